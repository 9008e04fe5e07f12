#include "probe.hh"

#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "engine/io.hh"
#include "services/health/lookup.hh"
#include "services/health/tls.hh"

namespace pharos::health {
using namespace engine;

const char* status_name(status s) noexcept {
    switch (s) {
        case status::passing: return "passing";
        case status::warning: return "warning";
        default: return "critical";
    }
}

// ---------- ring_capture ----------

void ring_capture::append(std::string_view s) {
    total_ += s.size();
    if (s.size() >= cap_) {
        buf_.assign(s.substr(s.size() - cap_));
        head_ = 0;
        return;
    }
    if (buf_.size() + s.size() <= cap_) {
        buf_.append(s);
        head_ = buf_.size() % cap_;
        return;
    }
    if (buf_.size() < cap_) {  // fill up, then wrap
        size_t room = cap_ - buf_.size();
        buf_.append(s.substr(0, room));
        s.remove_prefix(room);
        head_ = 0;
    }
    for (char c : s) {
        buf_[head_] = c;
        head_ = (head_ + 1) % cap_;
    }
}

std::string ring_capture::str() const {
    if (buf_.size() < cap_ || head_ == 0) return buf_;
    return buf_.substr(head_) + buf_.substr(0, head_);
}

// ---------- names and errors ----------

std::string errno_text(int neg) {
    int e = -neg;
    if (e == ETIMEDOUT || e == ETIME) return "i/o timeout";
    if (e == ECANCELED) return "operation was canceled";
    std::string s = std::strerror(e);
    if (!s.empty()) s[0] = char(std::tolower(static_cast<unsigned char>(s[0])));
    return s;
}

namespace {
// /etc/hosts, read once per process (names map to their first address).
const std::map<std::string, std::string>& hosts_file() {
    static std::once_flag once;
    static std::map<std::string, std::string> m;
    std::call_once(once, [] {
        std::ifstream f("/etc/hosts");
        std::string line;
        while (std::getline(f, line)) {
            if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
            std::istringstream in(line);
            std::string ip, name;
            if (!(in >> ip)) continue;
            while (in >> name) m.emplace(name, ip);
        }
    });
    return m;
}

}  // namespace

bool split_host_port(std::string_view hp, std::string& host, std::string& port) {
    if (!hp.empty() && hp.front() == '[') {
        auto close = hp.find(']');
        if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':') return false;
        host = std::string(hp.substr(1, close - 1));
        port = std::string(hp.substr(close + 2));
        return true;
    }
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(hp.substr(0, colon));
    port = std::string(hp.substr(colon + 1));
    return host.find(':') == std::string::npos;
}

result<socket_address> resolve(std::string_view hp, std::string_view network, std::string* error) {
    std::string host, port;
    if (!split_host_port(hp, host, port)) {
        *error = "dial " + std::string(network) + ": address " + std::string(hp) + ": missing port in address";
        return std::error_code(EINVAL, std::system_category());
    }
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || p < 0 || p > 65535) {
        *error = "dial " + std::string(network) + ": address " + std::string(hp) + ": invalid port";
        return std::error_code(EINVAL, std::system_category());
    }
    std::string ip = host;
    if (host.empty()) ip = "127.0.0.1";  // Go dials the local system for ":port"
    else if (host == "localhost") ip = "127.0.0.1";
    else if (auto a = socket_address::parse(host, 0); !a) {
        auto& h = hosts_file();
        auto it = h.find(host);
        if (it == h.end()) {
            *error = "dial " + std::string(network) + ": lookup " + host + ": no such host";
            return std::error_code(ENOENT, std::system_category());
        }
        ip = it->second;
    }
    auto a = socket_address::parse(ip, uint16_t(p));
    if (!a) *error = "dial " + std::string(network) + ": lookup " + host + ": no such host";
    return a;
}

// ---------- HTTP ----------

http_target::http_target(const parts& p) : tls_(p.tls), skip_verify_(p.skip_verify) {
    const std::string* texts[n_texts] = {&p.url, &p.method, &p.sni, &p.addr_text, &p.dial, &p.request, &p.error};
    size_t total = 0;
    for (int i = 0; i < n_texts; ++i) end_[i] = uint32_t(total += texts[i]->size());
    text_ = std::make_unique_for_overwrite<char[]>(total);
    for (int i = 0; i < n_texts; ++i) std::memcpy(text_.get() + (i ? end_[i - 1] : 0), texts[i]->data(), texts[i]->size());
    if (p.addr.len > 0 && size_t(p.addr.len) <= sizeof sa_) {
        std::memcpy(&sa_, p.addr.sa(), p.addr.len);
        salen_ = uint8_t(p.addr.len);
    }
}

socket_address http_target::addr() const noexcept {
    return salen_ ? socket_address::from(reinterpret_cast<const sockaddr*>(&sa_), salen_) : socket_address{};
}

std::shared_ptr<const http_target> http_target::at(const socket_address& a) const {
    parts p;
    p.url = url();
    p.method = method();
    p.tls = tls_;
    p.sni = sni();
    p.skip_verify = skip_verify_;
    p.addr = a;
    p.addr_text = a.to_string();
    p.request = request();
    p.error = error();
    return std::make_shared<const http_target>(p);
}

std::shared_ptr<const http_target> prepare_http(const http_options& o) {
    http_target::parts p;
    auto* t = &p;
    auto done = [&p] { return std::make_shared<const http_target>(p); };
    t->url = o.url;
    t->method = o.method.empty() ? "GET" : o.method;
    t->skip_verify = o.tls_skip_verify;
    std::string_view u = o.url;
    std::string_view rest;
    if (u.size() >= 8 && strncasecmp(u.data(), "https://", 8) == 0) {
        t->tls = true;
        rest = u.substr(8);
    } else if (u.size() >= 7 && strncasecmp(u.data(), "http://", 7) == 0) {
        rest = u.substr(7);
    } else {
        // Go: Get "x": unsupported protocol scheme ""
        std::string scheme;
        if (auto c = u.find("://"); c != std::string_view::npos) scheme = std::string(u.substr(0, c));
        std::string m = t->method;
        for (size_t i = 1; i < m.size(); ++i) m[i] = char(std::tolower(static_cast<unsigned char>(m[i])));
        t->error = m + " \"" + o.url + "\": unsupported protocol scheme \"" + scheme + "\"";
        return done();
    }
    auto slash = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, slash);
    std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (auto h = target.find('#'); h != std::string::npos) target.resize(h);
    if (target.empty() || target[0] == '?') target.insert(0, "/");
    if (auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    std::string hp(authority);
    bool has_port = !hp.empty() && (hp.back() != ']') && hp.rfind(':') != std::string::npos &&
                    (hp.front() != '[' || hp.rfind(']') < hp.rfind(':'));
    std::string dial = has_port ? hp : hp + (t->tls ? ":443" : ":80");
    std::string host_only = hp;
    if (has_port) host_only = hp.substr(0, hp.rfind(':'));
    if (!host_only.empty() && host_only.front() == '[') host_only = host_only.substr(1, host_only.size() - 2);
    std::string err;
    auto a = resolve(dial, "tcp", &err);
    if (!a && a.error().value() == ENOENT) {
        t->dial = dial;  // a name for DNS: looked up (through the shard's cache) at each run
    } else if (!a) {
        std::string m = t->method;
        for (size_t i = 1; i < m.size(); ++i) m[i] = char(std::tolower(static_cast<unsigned char>(m[i])));
        t->error = m + " \"" + o.url + "\": " + err;
        return done();
    }
    if (a) {
        t->addr = *a;
        t->addr_text = a->to_string();
    }
    t->sni = o.tls_server_name;
    if (t->sni.empty() && !socket_address::parse(host_only, 0)) t->sni = host_only;  // names only, as Go

    // Host, User-Agent and Accept unless the check's Header sets them.
    std::string host_header = hp;
    bool ua = false, accept = false;
    std::string extra;
    for (auto& [k, vs] : o.header) {
        if (strcasecmp(k.c_str(), "Host") == 0) {
            if (!vs.empty()) host_header = vs[0];
            continue;
        }
        if (strcasecmp(k.c_str(), "User-Agent") == 0) ua = true;
        if (strcasecmp(k.c_str(), "Accept") == 0) accept = true;
        if (strcasecmp(k.c_str(), "Connection") == 0 || strcasecmp(k.c_str(), "Content-Length") == 0) continue;
        for (auto& v : vs) extra += k + ": " + v + "\r\n";
    }
    std::string& r = t->request;
    r = t->method + " " + target + " HTTP/1.1\r\nHost: " + host_header + "\r\n";
    if (!ua) r += "User-Agent: Consul Health Check\r\n";
    if (!accept) r += "Accept: text/plain, text/*, */*\r\n";
    r += extra;
    if (!o.body.empty()) r += "Content-Length: " + std::to_string(o.body.size()) + "\r\n";
    r += "Connection: close\r\n\r\n";
    r += o.body;
    return done();
}

namespace {
// An HTTP/1.1 response read incrementally: status line, headers, then a body
// framed by Content-Length, chunked coding or the end of the connection.
struct response_reader {
    explicit response_reader(size_t cap, bool head) : body(cap), head_request(head) {}
    enum class framing { length, chunked, eof, none };
    std::string in;  // unconsumed bytes
    bool headers_done = false;
    unsigned code = 0;
    std::string status_text;  // "200 OK"
    framing fr = framing::eof;
    uint64_t remaining = 0;
    // chunked
    bool in_chunk_data = false, chunk_crlf = false, chunks_done = false;
    ring_capture body;
    bool head_request;
    bool done = false;
    std::string error;

    // Consumes `in`; sets done or error.
    void step() {
        if (!headers_done) {
            auto end = in.find("\r\n\r\n");
            if (end == std::string::npos) {
                if (in.size() > (1 << 20)) error = "net/http: response headers too large";
                return;
            }
            parse_head(std::string_view(in).substr(0, end));
            in.erase(0, end + 4);
            if (!error.empty()) return;
            headers_done = true;
            if (fr == framing::none || (fr == framing::length && remaining == 0)) {
                done = true;
                return;
            }
        }
        switch (fr) {
            case framing::length: {
                size_t n = std::min<uint64_t>(remaining, in.size());
                body.append(std::string_view(in).substr(0, n));
                in.erase(0, n);
                remaining -= n;
                if (remaining == 0) done = true;
                break;
            }
            case framing::eof:
                body.append(in);
                in.clear();
                break;
            case framing::chunked: chunked(); break;
            case framing::none: done = true; break;
        }
    }
    void chunked() {
        for (;;) {
            if (in_chunk_data) {
                size_t n = std::min<uint64_t>(remaining, in.size());
                body.append(std::string_view(in).substr(0, n));
                in.erase(0, n);
                remaining -= n;
                if (remaining > 0) return;
                in_chunk_data = false;
                chunk_crlf = true;
            }
            if (chunk_crlf) {
                if (in.size() < 2) return;
                in.erase(0, 2);
                chunk_crlf = false;
            }
            auto eol = in.find("\r\n");
            if (eol == std::string::npos) {
                if (in.size() > 4096) error = "net/http: malformed chunked encoding";
                return;
            }
            uint64_t size = 0;
            size_t i = 0;
            for (; i < eol && std::isxdigit(static_cast<unsigned char>(in[i])); ++i)
                size = size * 16 + uint64_t(std::isdigit(static_cast<unsigned char>(in[i])) ? in[i] - '0' : (std::tolower(in[i]) - 'a' + 10));
            if (i == 0) {
                error = "net/http: malformed chunked encoding";
                return;
            }
            in.erase(0, eol + 2);
            if (size == 0) {  // trailers follow; the body is complete
                done = true;
                return;
            }
            remaining = size;
            in_chunk_data = true;
        }
    }
    void parse_head(std::string_view h) {
        auto eol = h.find("\r\n");
        std::string_view line = h.substr(0, eol);
        if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
            error = "net/http: HTTP/1.x transport connection broken: malformed HTTP response \"" +
                    std::string(line.substr(0, 64)) + "\"";
            return;
        }
        status_text = std::string(line.substr(9));
        while (!status_text.empty() && status_text.front() == ' ') status_text.erase(0, 1);
        code = 0;
        for (size_t i = 0; i < 3 && i < status_text.size(); ++i) {
            if (!std::isdigit(static_cast<unsigned char>(status_text[i]))) {
                error = "net/http: HTTP/1.x transport connection broken: malformed HTTP status code \"" +
                        status_text.substr(0, 3) + "\"";
                return;
            }
            code = code * 10 + unsigned(status_text[i] - '0');
        }
        fr = framing::eof;
        if (head_request || code == 204 || code == 304 || code / 100 == 1) fr = framing::none;
        std::string_view rest = eol == std::string_view::npos ? std::string_view() : h.substr(eol + 2);
        while (!rest.empty() && fr != framing::none) {
            auto e = rest.find("\r\n");
            std::string_view l = rest.substr(0, e);
            rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 2);
            auto colon = l.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view k = l.substr(0, colon), v = l.substr(colon + 1);
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
            if (k.size() == 17 && strncasecmp(k.data(), "Transfer-Encoding", 17) == 0 && v.size() >= 7 &&
                strncasecmp(v.data() + v.size() - 7, "chunked", 7) == 0) {
                fr = framing::chunked;
            } else if (k.size() == 14 && strncasecmp(k.data(), "Content-Length", 14) == 0 && fr != framing::chunked) {
                fr = framing::length;
                remaining = std::strtoull(std::string(v).c_str(), nullptr, 10);
            }
        }
    }
};

std::string go_method(std::string_view m) {
    std::string s(m);
    for (size_t i = 1; i < s.size(); ++i) s[i] = char(std::tolower(static_cast<unsigned char>(s[i])));
    return s;
}
}  // namespace

namespace {
// One raw operation on `fd` without a deadline of its own: the probe's single
// timer cancels the whole exchange (see probe_http). Returns the kernel result.
task<int> raw_op(op_kind kind, int fd, const socket_address* to, buffer* b) {
    io_op* op = this_reactor().alloc_op();
    op->kind = kind;
    op->fd = fd;
    if (to) {
        op->addr = to->ss;
        op->addrlen = to->len;
    }
    if (b) op->buf = std::move(*b);
    op_awaiter a(op, no_deadline);
    int res = co_await a;
    if (b) *b = a.take_buffer();
    co_return res;
}

// Closes a probe's connection. Once the target's EOF has been read (with
// `Connection: close` it answers, then closes first), the socket is closed with
// SO_LINGER {1, 0}: one RST instead of our FIN and the target's ACK, and the
// target's socket (FIN_WAIT2, its application done with it) is destroyed at
// once instead of spending 60 s in TIME_WAIT. Invisible to an application that
// has closed its socket (the usual case: only the kernel still holds it). One
// that only shut down its sending side and then reads would see ECONNRESET
// instead of EOF; Go's and nginx's servers do not read after answering a
// `Connection: close` request. Without the EOF (a response framed by length
// whose FIN has not arrived yet, a timeout, an error, a target keeping the
// connection open) the close is the normal one: a FIN, as Consul's.
void close_probe(reactor& r, int fd, bool peer_closed) noexcept {
    if (peer_closed) {
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    r.close_fd(fd);
}

// Whether the target's EOF is already queued on `fd` (a response framed by
// length or chunks ends before it): one non-blocking receive, no waiting.
bool eof_queued(int fd) noexcept {
    char b;
    return ::recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

// Go's `Get "<url>": ` before a transport error.
std::string error_prefix(const http_target& t) {
    std::string s = go_method(t.method());
    s.append(" \"").append(t.url()).append("\": ");
    return s;
}

std::string timeout_text(const http_target& t) {
    return error_prefix(t) + "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
}

// "HTTP GET <url>: 200 OK Output: <body>"
std::string result_text(const http_target& t, const std::string& status_text, const std::string& body) {
    std::string s = "HTTP ";
    s.append(t.method()).append(" ").append(t.url()).append(": ").append(status_text).append(" Output: ").append(body);
    return s;
}

// Plain HTTP: socket, connect, send, one-shot receives into one buffer, close.
// Runs under the cancel source of probe_http, whose one timer is the deadline.
task<probe_result> http_plain(std::shared_ptr<const http_target> t, size_t max_output, deadline dl) {
    probe_result res;
    reactor& r = this_reactor();
    auto prefix = [&t]() { return error_prefix(*t); };
    auto failed = [&](int err, const char* what) {
        if (err == -ECANCELED && clock::now() >= dl) return timeout_text(*t);
        if (std::strcmp(what, "connect") == 0)
            return prefix() + "dial tcp " + std::string(t->addr_text()) + ": connect: " + errno_text(err);
        return prefix() + what + " tcp " + std::string(t->addr_text()) + ": " + errno_text(err);
    };
    // Non-blocking connect in the call: on loopback (and whenever the answer
    // is already there) the handshake has finished when connect returns
    // EINPROGRESS (the SYN-ACK is processed as the call releases the socket),
    // so the request is sent straight away, which saves a reactor operation
    // for the connect and a buffer copy for the send. A send that finds the
    // handshake still going (EAGAIN) waits for writability through the
    // reactor, then reads the connect's result (SO_ERROR). A send error before
    // the connection is known to be up is the connect's error (the send
    // returns, and clears, the socket's pending error: refused, unreachable).
    const socket_address addr = t->addr();
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        res.output = prefix() + "dial tcp " + std::string(t->addr_text()) + ": socket: " + errno_text(-errno);
        co_return res;
    }
    bool connected = ::connect(fd, addr.sa(), addr.len) == 0;
    if (!connected && errno != EINPROGRESS) {
        int e = errno;
        r.close_fd(fd);
        res.output = failed(-e, "connect");
        co_return res;
    }
    size_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = ::send(fd, t->request().data(), t->request().size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            off = size_t(n);
            break;
        }
        int e = errno;
        if ((e == EAGAIN || e == EWOULDBLOCK) && !connected) {
            rc = co_await raw_op(op_kind::poll_out, fd, nullptr, nullptr);
            int err = 0;
            socklen_t len = sizeof err;
            if (rc >= 0 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            if (rc < 0 || err != 0) {
                r.close_fd(fd);
                res.output = failed(rc < 0 ? rc : -err, "connect");
                co_return res;
            }
            connected = true;
            continue;
        }
        if (e == EAGAIN || e == EWOULDBLOCK) break;  // no room yet: the rest goes through the reactor
        r.close_fd(fd);
        res.output = failed(-e, connected ? "write" : "connect");
        co_return res;
    }
    while (off < t->request().size()) {
        buffer rest = buffer::copy_of(t->request().substr(off));
        rc = co_await raw_op(op_kind::send, fd, nullptr, &rest);
        if (rc < 0) {
            r.close_fd(fd);
            res.output = failed(rc, "write");
            co_return res;
        }
        off += size_t(rc);
    }
    response_reader rd(max_output ? max_output : 4096, t->method() == "HEAD");
    buffer in(16384);
    bool peer_closed = false;  // the target's EOF read: close with RST (close_probe)
    for (;;) {
        in.resize(0);
        rc = co_await raw_op(op_kind::recv, fd, nullptr, &in);
        if (rc < 0) {
            r.close_fd(fd);
            if (!rd.headers_done) {
                res.output = failed(rc, "read");
                co_return res;
            }
            break;  // a body cut short: reported as read so far
        }
        if (rc == 0) {
            if (!rd.headers_done) {
                close_probe(r, fd, true);
                res.output = prefix() + "EOF";
                co_return res;
            }
            peer_closed = true;
            break;
        }
        rd.in.append(in.data(), size_t(rc));
        rd.step();
        if (!rd.error.empty()) {
            r.close_fd(fd);
            res.output = prefix() + rd.error;
            co_return res;
        }
        if (rd.done) {
            peer_closed = eof_queued(fd);
            break;
        }
    }
    close_probe(r, fd, peer_closed);
    if (rd.code >= 200 && rd.code <= 299) res.st = status::passing;
    else if (rd.code == 429) res.st = status::warning;
    res.output = result_text(*t, rd.status_text, rd.body.str());
    co_return res;
}
}  // namespace

task<probe_result> probe_http(std::shared_ptr<const http_target> t, size_t max_output, deadline dl) {
    if (t->error().empty() && !t->dial().empty()) {  // a DNS name: this run's address
        std::string err;
        auto a = co_await resolve_dial(std::string(t->dial()), "tcp", dl, &err);
        if (!a) {
            probe_result res;
            res.output = clock::now() >= dl ? timeout_text(*t) : error_prefix(*t) + err;
            co_return res;
        }
        t = t->at(*a);
    }
    if (t->error().empty() && !t->tls()) {
        // One timer for the whole exchange instead of one per operation.
        cancel_source* parent = co_await current_cancel_source();
        cancel_source src(parent);
        timer_node tn;
        tn.when = dl;
        tn.ctx = &src;
        tn.fire = [](timer_node* n) { static_cast<cancel_source*>(n->ctx)->request_cancel(); };
        this_reactor().add_timer(&tn);
        task<probe_result> sub = http_plain(t, max_output, dl);
        probe_result r = co_await std::move(sub).with_cancel(&src);
        if (tn.armed()) this_reactor().cancel_timer(&tn);
        co_return r;
    }
    co_return co_await probe_https(std::move(t), max_output, dl);
}

task<probe_result> probe_https(std::shared_ptr<const http_target> t, size_t max_output, deadline dl) {
    probe_result res;
    res.st = status::critical;
    if (!t->error().empty()) {
        res.output = std::string(t->error());
        co_return res;
    }
    auto prefix = [&t]() { return error_prefix(*t); };
    tls_options tls;
    if (t->tls()) {
        tls.server_name = std::string(t->sni());
        tls.skip_verify = t->skip_verify();
        tls.alpn.push_back("http/1.1");
    }
    conn c;
    std::string err;
    const std::string addr_text(t->addr_text());
    bool ok = co_await conn::open(c, t->addr(), addr_text, t->tls() ? &tls : nullptr, dl, &err);
    if (!ok) {
        if (err.find("i/o timeout") != std::string::npos)
            res.output = prefix() + "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
        else
            res.output = prefix() + err;
        co_return res;
    }
    auto w = co_await c.write(std::string(t->request()), dl);
    if (!w) {
        res.output = prefix() + (is_timed_out(w.error())
                                   ? std::string("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
                                   : "write tcp " + addr_text + ": " + errno_text(-w.error().value()));
        co_return res;
    }
    response_reader rd(max_output ? max_output : 4096, t->method() == "HEAD");
    for (;;) {
        auto more = co_await c.read(rd.in, dl);
        if (!more) {
            if (!rd.headers_done) {
                res.output = prefix() + (is_timed_out(more.error())
                                           ? std::string("context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
                                           : "read tcp " + addr_text + ": " + errno_text(-more.error().value()));
                co_return res;
            }
            break;  // a body cut short: Consul logs it and reports what it read
        }
        bool eof = !*more;
        rd.step();
        if (!rd.error.empty()) {
            res.output = prefix() + rd.error;
            co_return res;
        }
        if (rd.done) break;
        if (eof) {
            if (!rd.headers_done) {
                res.output = prefix() + "EOF";
                co_return res;
            }
            break;
        }
    }
    c.close();
    if (rd.code >= 200 && rd.code <= 299) res.st = status::passing;
    else if (rd.code == 429) res.st = status::warning;
    res.output = result_text(*t, rd.status_text, rd.body.str());
    co_return res;
}

// ---------- TCP / UDP ----------

task<probe_result> probe_tcp(std::string addr_text, deadline dl) {
    probe_result res;
    std::string err;
    auto a = co_await resolve_dial(addr_text, "tcp", dl, &err);
    if (!a) {
        res.output = err;
        co_return res;
    }
    conn c;
    std::string dialed = a->to_string();  // Go names the resolved address in dial errors
    bool ok = co_await conn::open(c, *a, dialed, nullptr, dl, &err);
    if (!ok) {
        res.output = err;
        co_return res;
    }
    c.close();
    res.st = status::passing;
    res.output = "TCP connect " + addr_text + ": Success";
    co_return res;
}

task<probe_result> probe_udp(std::string addr_text, deadline dl) {
    probe_result res;
    std::string err;
    auto a = co_await resolve_dial(addr_text, "udp", dl, &err);
    if (!a) {
        res.output = err;
        co_return res;
    }
    int fd = ::socket(a->family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::connect(fd, a->sa(), a->len) < 0) {
        res.output = "dial udp " + a->to_string() + ": " + errno_text(-errno);
        if (fd >= 0) ::close(fd);
        co_return res;
    }
    reactor& r = this_reactor();
    if (::send(fd, "", 0, 0) < 0) {
        res.output = "Failed to send UDP message: write udp " + a->to_string() + ": " + errno_text(-errno);
        r.close_fd(fd);
        co_return res;
    }
    sockaddr_storage local{};
    socklen_t ll = sizeof local;
    getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
    std::string local_text = socket_address::from(reinterpret_cast<sockaddr*>(&local), ll).to_string();
    for (;;) {
        char b;
        ssize_t n = ::recv(fd, &b, 1, 0);
        if (n >= 0) break;  // a reply
        int e = errno;
        if (e != EAGAIN && e != EWOULDBLOCK) {
            res.output = "read udp " + local_text + "->" + a->to_string() + ": read: " + errno_text(-e);
            r.close_fd(fd);
            co_return res;
        }
        io_op* op = r.alloc_op();
        op->kind = op_kind::poll_in;
        op->fd = fd;
        op_awaiter aw(op, dl);
        int pr = co_await aw;
        if (pr == -ETIMEDOUT) break;  // silence: Consul counts the read timeout as success
        if (pr < 0) {
            r.close_fd(fd);
            res.output = "read udp " + local_text + "->" + a->to_string() + ": " + errno_text(pr);
            co_return res;
        }
    }
    r.close_fd(fd);
    res.st = status::passing;
    res.output = "UDP connect " + addr_text + ": Success";
    co_return res;
}

}  // namespace pharos::health
