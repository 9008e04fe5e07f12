#include "server.hh"

#include <algorithm>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <iterator>
#include <ostream>
#include <stdexcept>

#include "engine/log.hh"

namespace pharos::http {
using namespace engine;
namespace bhttp = boost::beast::http;

task<void> server::start() {
    auto at = socket_address::parse(cfg_.addr, cfg_.port);
    if (!at) throw std::runtime_error("http: bad address " + cfg_.addr);
    // The first shard checks that no other process holds the port: SO_REUSEPORT
    // would let two agents share it silently.
    // A process killed a moment ago may still hold it while the kernel tears its
    // io_uring down: wait up to 2 s for that before giving up.
    if (this_shard() == 0 && cfg_.port != 0) {
        auto free = tcp_listener::check_free(*at);
        for (int i = 0; i < 20 && !free; ++i) {
            co_await sleep_for(std::chrono::milliseconds(100));
            free = tcp_listener::check_free(*at);
        }
        if (!free) throw std::runtime_error("http: listen on " + at->to_string() + ": " + free.error().message());
    }
    auto l = tcp_listener::listen(*at);
    if (!l) throw std::runtime_error("http: listen on " + at->to_string() + ": " + l.error().message());
    listener_ = std::move(*l);
    gate_.try_enter();  // held by the accept loop
    this_reactor().spawn(accept_loop());
    co_return;
}

task<void> server::accept_loop() {
    for (;;) {
        auto c = co_await listener_.accept();
        if (!c) {
            if (!listener_.is_open() || is_cancelled(c.error())) break;
            log(log_level::warn, "http: accept: %s", c.error().message().c_str());
            continue;  // EMFILE and the like: keep serving the connections we have
        }
        if (!gate_.try_enter()) break;
        ++stats_.connections;
        this_reactor().spawn(serve(std::move(*c)).with_cancel(&idle_));
    }
    gate_.leave();
}

task<void> server::stop() {
    listener_.close();
    idle_.request_cancel();
    auto drained = co_await gate_.close(after(cfg_.stop_timeout));
    if (drained.ok()) co_return;
    // Requests still in progress (a slow handler, a client that does not read):
    // cancel them, and wait until every connection has left, since each touches
    // this server until it does.
    log(log_level::warn, "http: stop: cancelling %zu connection(s) still busy after %lld ms", gate_.count(),
        (long long)cfg_.stop_timeout.count());
    hard_.request_cancel();
    (void)co_await gate_.close();
}

namespace {

// Responses are written under the server's hard_ source, not the idle one: once a
// request is being answered, stopping the server does not cut the answer short
// unless stop_timeout has passed.
task<result<void>> write_out(tcp_stream* conn, std::string* out, deadline dl) {
    co_return co_await conn->write(buffer::copy_of(*out), dl);
}

// Go's net/http reads a request body only with a single Transfer-Encoding of
// "chunked" and answers 501 to anything else. Beast would take "gzip" (or
// "chunked, chunked") as a request without a body and parse what follows as the
// next request, which is how requests are smuggled past a proxy.
bool unsupported_transfer_encoding(const bhttp::request_parser<bhttp::string_body>& p) {
    const auto& h = p.get();
    auto [first, last] = h.equal_range(bhttp::field::transfer_encoding);
    if (first == last) return false;
    if (std::next(first) != last) return true;
    std::string_view v = first->value();
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return !boost::beast::iequals(v, "chunked");
}

// What Consul (go-connlimit) writes to a connection past the per-client limit.
const std::string& too_many_connections() {
    static const std::string wire = [] {
        response r;
        r.status = 429;
        r.headers.emplace_back("Content-Type", "text/plain");
        r.body = "Your IP is issuing too many concurrent connections, please rate limit your calls\n";
        std::string out;
        serialize(r, false, out);
        return out;
    }();
    return wire;
}

// What a handler (or a deferred's finish()) that threw is answered with.
response internal_error(const char* what, const std::exception& e) {
    log(log_level::error, "http: %s: %s", what, e.what());
    return response::text(500, std::string(e.what()) + "\n");
}

// Fills `req` from a finished Beast message. False if the target is malformed.
bool to_request(bhttp::request<bhttp::string_body>& m, request& req) {
    req.method = std::string(m.method_string());
    req.target = std::string(m.target());
    if (!split_target(req.target, req.path, req.query)) return false;
    req.headers.clear();
    req.headers.reserve(size_t(std::distance(m.begin(), m.end())));
    for (auto& f : m) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(m.body());
    req.keep_alive = m.keep_alive();
    return true;
}

}  // namespace

// One connection, from accept to close. Whatever happens inside, the per-client
// slot taken here is given back and the gate left, in that order: stop() returns
// only once every slot is released.
task<void> server::serve(tcp_stream conn) {
    ++stats_.open_connections;
    std::string peer_ip;
    if (auto p = conn.peer()) peer_ip = p->ip();
    bool admitted = true;
    bool reserved = false;
    if (limit_.max() > 0 && !peer_ip.empty()) {
        reserved = co_await limit_.acquire(peer_ip).with_cancel(nullptr);
        admitted = reserved;
    }
    if (admitted) {
        try {
            co_await serve_requests(conn, peer_ip);
        } catch (const std::exception& e) {
            log(log_level::error, "http: connection from %s: %s", peer_ip.c_str(), e.what());
        }
    } else {
        // As Consul: the status line and a short body, a 10 ms write deadline for
        // slow readers, then close. The request, if any was sent, is not read.
        ++stats_.rejected_connections;
        std::string out = too_many_connections();
        auto w = co_await write_out(&conn, &out, after(std::chrono::milliseconds(10))).with_cancel(&hard_);
        if (w) co_await linger(conn);
    }
    conn.close();
    if (reserved) co_await limit_.release(peer_ip).with_cancel(nullptr);
    --stats_.open_connections;
    gate_.leave();
}

// After an answer to a request we did not read (an error, a 429): shut down
// writing and discard what the client still sends until it closes, for at most
// min(request_timeout, 500 ms). Closing with unread bytes would reset the
// connection, and a reset can destroy the answer before the client reads it.
// Cancel safety: cancelled by stop() like any read; nothing is lost but the wait.
task<void> server::linger(tcp_stream& conn) {
    (void)conn.shutdown_write();
    deadline until = after(std::min<std::chrono::milliseconds>(cfg_.request_timeout, std::chrono::milliseconds(500)));
    for (;;) {
        auto chunk = co_await conn.read(until);
        if (!chunk || chunk->empty()) break;
    }
}

// Reads one request into `req`. Returns 0 when `req` is ready, 1 when the
// connection closed or failed (nothing to answer), or the HTTP status of a
// request that could not be read (400, 413, 431, 501), whose error response is
// then in `out`. Writes what `out` holds before it waits for more bytes. The
// Beast parser lives in this frame only while a request is being read.
// Cancel safety: as tcp_stream::read; a cancelled call has consumed nothing
// that a later call needs (the connection is closed after a cancel anyway).
task<unsigned> server::read_request(tcp_stream& conn, std::string& in, std::string& out, request& req,
                                    unsigned& version) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(std::uint32_t(cfg_.max_header_bytes));
    parser.body_limit(cfg_.max_body_bytes);
    // Not eager: put() stops at the end of the header, so that we know how many
    // bytes it took (Beast applies header_limit to each put() call, not to the
    // whole header, once it has consumed some complete fields).
    parser.eager(false);
    size_t header_bytes = 0;
    deadline request_deadline = no_deadline;
    boost::beast::error_code ec;
    unsigned fail_status = 0;
    bool te_checked = false;
    // Parse what we have; read more until one request is complete.
    for (;;) {
        if (!in.empty()) {
            bool header_before = parser.is_header_done();
            size_t used = parser.put(boost::asio::buffer(in), ec);
            in.erase(0, used);
            if (!header_before && (!ec || ec == bhttp::error::need_more)) {
                header_bytes += used;
                size_t pending = parser.is_header_done() ? 0 : in.size();
                if (header_bytes + pending > cfg_.max_header_bytes) {
                    fail_status = 431;
                    break;
                }
            }
            if (!te_checked && parser.is_header_done()) {
                te_checked = true;
                if (unsupported_transfer_encoding(parser)) {
                    fail_status = 501;
                    break;
                }
            }
            if (parser.is_done()) break;
            if (ec == bhttp::error::need_more) ec = {};
            if (ec) {
                if (ec == bhttp::error::header_limit)
                    fail_status = 431;
                else if (ec == bhttp::error::body_limit)
                    fail_status = 413;
                else
                    fail_status = 400;
                break;
            }
            if (used > 0 && !in.empty()) continue;
        }
        // Waiting for bytes: a request already begun has a deadline; an idle
        // connection has the idle timeout and may be cancelled by stop().
        if (!out.empty()) {
            auto w = co_await write_out(&conn, &out, after(cfg_.write_timeout)).with_cancel(&hard_);
            out.clear();
            if (!w) co_return 1;
        }
        bool begun = parser.got_some() || !in.empty();
        if (begun && request_deadline == no_deadline) request_deadline = after(cfg_.request_timeout);
        deadline dl = begun ? request_deadline : after(cfg_.idle_timeout);
        auto chunk = co_await conn.read(dl);
        if (!chunk || chunk->empty()) co_return 1;  // closed or failed, mid-request or not: nothing to answer
        in.append(chunk->view());
    }
    if (fail_status) {
        std::string text = fail_status == 413   ? "Request body too large\n"
                           : fail_status == 431 ? "Request header fields too large\n"
                           : fail_status == 501 ? "Unsupported transfer encoding\n"
                                                : "Bad Request: " + ec.message() + "\n";
        response r = response::text(fail_status, std::move(text));
        r.close = true;
        serialize(r, false, out);
        co_return fail_status;
    }
    auto msg = parser.release();
    if (!to_request(msg, req)) {
        response r = response::text(400, "Bad Request: malformed request target\n");
        r.close = true;
        serialize(r, false, out);
        co_return 400;
    }
    version = msg.version();
    in.shrink_to_fit();
    co_return 0;
}

// Reads, answers and writes requests until the connection should close. After an
// error response it lingers (see linger()).
task<void> server::serve_requests(tcp_stream& conn, const std::string& peer_ip) {
    std::string in;   // received, not yet parsed
    std::string out;  // responses not yet written
    bool failed = false;  // the last response answers a request we could not read
    for (;;) {
        auto req = std::make_unique<request>();  // on the heap: freed while a deferred response waits
        req->peer_ip = peer_ip;
        unsigned version = 11;
        unsigned got = co_await read_request(conn, in, out, *req, version);
        if (got == 1) break;
        if (got != 0) {
            ++stats_.bad_requests;
            failed = true;
            break;
        }
        ++stats_.requests;
        response resp;
        try {
            // Scoped: a task owns its frame until destroyed, so the handler's frames go at the brace.
            auto call = handler_(*req);
            resp = co_await std::move(call).with_cancel(&hard_);
        } catch (const std::exception& e) {
            resp = internal_error("handler", e);
        }
        bool keep = req->keep_alive && !resp.close;
        if (resp.later) req.reset();  // the handler has returned: a blocking query waits without it
        while (resp.later) {
            std::shared_ptr<deferred> later = std::move(resp.later);
            try {
                auto finish = later->finish();
                resp = co_await std::move(finish).with_cancel(&hard_);
            } catch (const std::exception& e) {
                resp = internal_error("deferred response", e);
            }
            keep = keep && !resp.close;
        }
        // HTTP/1.0 closes by default: a client that asked to keep the connection
        // keeps it only if the response says so (as Go's net/http does).
        if (keep && version == 10) resp.headers.emplace_back("Connection", "keep-alive");
        serialize(resp, keep, out);
        if (!keep) break;
        // Pipelining: if the next request is already here, answer it before writing.
        if (in.empty() || out.size() > 256 * 1024) {
            auto w = co_await write_out(&conn, &out, after(cfg_.write_timeout)).with_cancel(&hard_);
            out.clear();
            if (!w) break;
        }
    }
    if (!out.empty()) {
        auto w = co_await write_out(&conn, &out, after(cfg_.write_timeout)).with_cancel(&hard_);
        if (w && failed) co_await linger(conn);
    }
}

}  // namespace pharos::http
