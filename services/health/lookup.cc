#include "lookup.hh"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <unordered_map>

#include "protocols/dns/wire.hh"
#include "services/health/probe.hh"

namespace pharos::health {
using namespace engine;

namespace {

std::mutex override_mu;
std::optional<resolv_conf> override_conf;    // guarded by override_mu
std::atomic<uint64_t> conf_generation{0};    // bumped by every override

uint16_t be16(std::string_view p, size_t at) { return uint16_t((uint8_t(p[at]) << 8) | uint8_t(p[at + 1])); }
uint32_t be32(std::string_view p, size_t at) { return (uint32_t(be16(p, at)) << 16) | be16(p, at + 2); }

struct cache_entry {
    std::vector<socket_address> addrs;  // empty: a cached "no such host"
    deadline expires;
    std::string server;  // for the negative answer's text
};

// Per-shard state: the configuration in use, the cache, the query ID source.
struct shard_state {
    uint64_t generation = ~uint64_t(0);
    resolv_conf conf;
    std::unordered_map<std::string, cache_entry> cache;
    std::mt19937 rng{std::random_device{}()};
    lookup_stats stats;

    void refresh() {
        uint64_t g = conf_generation.load(std::memory_order_acquire);
        if (g == generation) return;
        std::lock_guard<std::mutex> l(override_mu);
        conf = override_conf ? *override_conf : system_resolv_conf();
        cache.clear();
        generation = g;
    }
};

shard_state& shard() {
    thread_local shard_state s;
    s.refresh();
    return s;
}

// One answer to one question.
struct answer {
    uint8_t rcode = 0;
    bool truncated = false;
    std::vector<socket_address> addrs;
    uint32_t ttl = 0xffffffff;  // smallest TTL of the records used
    uint32_t neg_ttl = 0;       // from the authority's SOA (min of its TTL and MINIMUM), 0 if none
};

std::string make_query(uint16_t id, const dns::name& q, uint16_t qtype) {
    std::string m;
    m.reserve(18 + q.wire_len);
    m.push_back(char(id >> 8));
    m.push_back(char(id));
    m.push_back(char(dns::flag::rd >> 8));
    m.push_back(0);
    const char counts[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    m.append(counts, 8);
    m.append(q.wire_view());
    m.push_back(char(qtype >> 8));
    m.push_back(char(qtype));
    m.push_back(0);
    m.push_back(char(dns::class_in));
    return m;
}

// Parses the response to `query` (same ID and question); false if it is not one.
bool parse_answer(std::string_view p, std::string_view query, uint16_t qtype, answer& out) {
    if (p.size() < 12 || p.substr(0, 2) != query.substr(0, 2)) return false;
    uint16_t flags = be16(p, 2);
    if (!(flags & dns::flag::qr)) return false;
    out.rcode = uint8_t(flags & 0xF);
    out.truncated = flags & dns::flag::tc;
    uint16_t qd = be16(p, 4), an = be16(p, 6), ns = be16(p, 8);
    if (qd != 1) return qd == 0 && out.rcode != 0;  // some servers drop the question in errors
    size_t pos = 12;
    dns::name qn;
    if (!dns::read_name(p, pos, qn) || pos + 4 > p.size() || be16(p, pos) != qtype) return false;
    dns::name want;
    size_t qpos = 12;
    if (!dns::read_name(query, qpos, want) || qn.text() != want.text()) return false;
    pos += 4;
    std::vector<std::string> chain;  // the question's name and its CNAME targets
    chain.emplace_back(want.text());
    auto in_chain = [&chain](std::string_view n) { return std::find(chain.begin(), chain.end(), n) != chain.end(); };
    for (unsigned i = 0; i < unsigned(an) + ns; ++i) {
        dns::name owner;
        if (!dns::read_name(p, pos, owner) || pos + 10 > p.size()) return true;  // a cut packet: use what was read
        uint16_t type = be16(p, pos), cls = be16(p, pos + 2);
        uint32_t ttl = be32(p, pos + 4);
        uint16_t rdlen = be16(p, pos + 8);
        pos += 10;
        if (pos + rdlen > p.size()) return true;  // a cut packet: use what was read
        size_t rd = pos;
        pos += rdlen;
        if (cls != dns::class_in) continue;
        bool answer_section = i < an;
        if (answer_section && type == dns::type::CNAME && in_chain(owner.text())) {
            dns::name target;
            size_t tp = rd;
            if (dns::read_name(p, tp, target)) chain.emplace_back(target.text());
            out.ttl = std::min(out.ttl, ttl);
        } else if (answer_section && type == qtype && in_chain(owner.text())) {
            sockaddr_storage ss{};
            socklen_t len = 0;
            if (type == dns::type::A && rdlen == 4) {
                auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
                s4->sin_family = AF_INET;
                std::memcpy(&s4->sin_addr, p.data() + rd, 4);
                len = sizeof(sockaddr_in);
            } else if (type == dns::type::AAAA && rdlen == 16) {
                auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
                s6->sin6_family = AF_INET6;
                std::memcpy(&s6->sin6_addr, p.data() + rd, 16);
                len = sizeof(sockaddr_in6);
            } else {
                continue;
            }
            out.addrs.push_back(socket_address::from(reinterpret_cast<sockaddr*>(&ss), len));
            out.ttl = std::min(out.ttl, ttl);
        } else if (!answer_section && type == dns::type::SOA) {
            size_t sp = rd;
            dns::name mname, rname;
            if (dns::read_name(p, sp, mname) && dns::read_name(p, sp, rname) && sp + 20 <= rd + rdlen)
                out.neg_ttl = std::min(ttl, be32(p, sp + 16));
        }
    }
    return true;
}

uint16_t frame_len(std::string_view b) { return be16(b, 0); }

// One query over TCP (after a truncated UDP answer). Empty on failure.
task<std::string> exchange_tcp(std::string query, socket_address to, deadline dl) {
    auto c = co_await tcp_stream::connect(to, dl);
    if (!c) co_return std::string();
    std::string framed;
    framed.push_back(char(query.size() >> 8));
    framed.push_back(char(query.size() & 0xFF));
    framed.append(query);
    auto w = co_await c->write(buffer::copy_of(framed), dl);
    if (!w) co_return std::string();
    std::string in;
    for (;;) {
        if (in.size() >= 2 && in.size() >= 2u + frame_len(in)) co_return in.substr(2, frame_len(in));
        auto chunk = co_await c->read(dl);
        if (!chunk || chunk->empty()) co_return std::string();
        in.append(chunk->view());
    }
}

enum class outcome : uint8_t { found, not_found, misbehaving, timeout };

struct name_result {
    outcome o = outcome::timeout;
    std::vector<socket_address> addrs;
    uint32_t ttl = 0;
    std::string server;  // the server that answered (or was tried last)
};

// A and AAAA for one fully qualified name: each server in turn, `attempts`
// rounds, each try bounded by `timeout_s`, both questions on one UDP socket.
task<name_result> query_name(const dns::name* qn, deadline dl) {
    shard_state& st = shard();
    const resolv_conf& rc = st.conf;
    name_result res;
    for (int round = 0; round < std::max(1, rc.attempts); ++round) {
        for (const socket_address& server : rc.nameservers) {
            res.server = server.to_string();
            deadline try_dl = std::min(dl, clock::now() + std::chrono::seconds(std::max(1, rc.timeout_s)));
            if (clock::now() >= dl) co_return res;
            auto local = socket_address::parse(server.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
            auto sock = udp_socket::bind(*local);
            if (!sock) continue;
            std::string qa = make_query(uint16_t(st.rng()), *qn, dns::type::A);
            std::string q6 = make_query(uint16_t(st.rng()), *qn, dns::type::AAAA);
            if (!sock->send_to(qa, server) || !sock->send_to(q6, server)) continue;
            st.stats.queries += 2;
            answer a4, a6;
            bool got4 = false, got6 = false;
            while (!(got4 && got6)) {
                auto d = co_await sock->recv_from(try_dl);
                if (!d) break;
                if (!(d->from == server)) continue;
                std::string_view pkt = d->data.view();
                if (!got4 && parse_answer(pkt, qa, dns::type::A, a4)) got4 = true;
                else if (!got6 && parse_answer(pkt, q6, dns::type::AAAA, a6)) got6 = true;
            }
            if (!got4 && !got6) continue;  // silence: the next server
            // Truncated answers are asked again over TCP.
            if (got4 && a4.truncated) {
                std::string r = co_await exchange_tcp(qa, server, try_dl);
                answer t;
                if (!r.empty() && parse_answer(r, qa, dns::type::A, t)) a4 = std::move(t);
            }
            if (got6 && a6.truncated) {
                std::string r = co_await exchange_tcp(q6, server, try_dl);
                answer t;
                if (!r.empty() && parse_answer(r, q6, dns::type::AAAA, t)) a6 = std::move(t);
            }
            uint8_t rcode = got4 ? a4.rcode : a6.rcode;
            if (rcode == dns::rcode::nxdomain) {
                res.o = outcome::not_found;
                res.ttl = got4 ? a4.neg_ttl : a6.neg_ttl;
                co_return res;
            }
            if (rcode != dns::rcode::noerror) {
                res.o = outcome::misbehaving;  // SERVFAIL, REFUSED...: the next server
                continue;
            }
            for (auto& x : a4.addrs) res.addrs.push_back(x);  // IPv4 first
            for (auto& x : a6.addrs) res.addrs.push_back(x);
            if (res.addrs.empty()) {
                res.o = outcome::not_found;
                res.ttl = std::max(a4.neg_ttl, a6.neg_ttl);
                co_return res;
            }
            res.o = outcome::found;
            res.ttl = std::min(got4 && !a4.addrs.empty() ? a4.ttl : 0xffffffffu,
                               got6 && !a6.addrs.empty() ? a6.ttl : 0xffffffffu);
            co_return res;
        }
    }
    co_return res;
}

// The names to try for `host`, in Go's order (resolv.conf search and ndots).
std::vector<std::string> candidates(const std::string& host, const resolv_conf& rc) {
    std::vector<std::string> out;
    if (!host.empty() && host.back() == '.') {
        out.push_back(host.substr(0, host.size() - 1));
        return out;
    }
    int dots = int(std::count(host.begin(), host.end(), '.'));
    if (dots >= rc.ndots) out.push_back(host);
    for (auto& s : rc.search) out.push_back(host + "." + s);
    if (dots < rc.ndots) out.push_back(host);
    return out;
}

}  // namespace

resolv_conf parse_resolv_conf(std::string_view text) {
    resolv_conf c;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        if (auto h = line.find_first_of("#;"); h != std::string::npos) line.resize(h);
        std::istringstream l(line);
        std::string key;
        if (!(l >> key)) continue;
        if (key == "nameserver") {
            std::string ip;
            if (!(l >> ip)) continue;
            if (auto pct = ip.find('%'); pct != std::string::npos) ip.resize(pct);  // zone: not supported
            auto a = socket_address::parse(ip, 53);
            if (a) c.nameservers.push_back(*a);
        } else if (key == "search" || key == "domain") {
            c.search.clear();
            std::string d;
            while (l >> d) {
                while (!d.empty() && d.back() == '.') d.pop_back();
                if (!d.empty()) c.search.push_back(d);
            }
        } else if (key == "options") {
            std::string o;
            while (l >> o) {
                auto num = [&o](size_t prefix) { return std::atoi(o.c_str() + prefix); };
                if (o.rfind("ndots:", 0) == 0) c.ndots = std::clamp(num(6), 0, 15);
                else if (o.rfind("timeout:", 0) == 0) c.timeout_s = std::clamp(num(8), 1, 30);
                else if (o.rfind("attempts:", 0) == 0) c.attempts = std::clamp(num(9), 1, 5);
            }
        }
    }
    if (c.nameservers.empty()) {
        auto v4 = socket_address::parse("127.0.0.1", 53);
        auto v6 = socket_address::parse("::1", 53);
        c.nameservers.push_back(*v4);
        c.nameservers.push_back(*v6);
    }
    return c;
}

const resolv_conf& system_resolv_conf() {
    static std::once_flag once;
    static resolv_conf c;
    std::call_once(once, [] {
        std::ifstream f("/etc/resolv.conf");
        std::stringstream ss;
        ss << f.rdbuf();
        c = parse_resolv_conf(ss.str());
    });
    return c;
}

void set_resolv_conf_override(std::optional<resolv_conf> c) {
    std::lock_guard<std::mutex> l(override_mu);
    override_conf = std::move(c);
    conf_generation.fetch_add(1, std::memory_order_release);
}

const lookup_stats& shard_lookup_stats() { return shard().stats; }

task<std::vector<socket_address>> lookup_host(std::string host, deadline dl, std::string* error) {
    shard_state& st = shard();
    std::string key = host;
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (auto it = st.cache.find(key); it != st.cache.end()) {
        if (clock::now() < it->second.expires) {
            ++st.stats.cache_hits;
            if (it->second.addrs.empty()) *error = "lookup " + host + " on " + it->second.server + ": no such host";
            co_return it->second.addrs;
        }
        st.cache.erase(it);
    }
    std::vector<std::string> names = candidates(key, st.conf);
    name_result last;
    bool any_valid = false, all_not_found = true;
    uint32_t neg_ttl = 0xffffffff;
    for (const std::string& n : names) {
        auto qn = std::make_unique<dns::name>();
        if (!dns::name_from_text(n, *qn)) continue;
        any_valid = true;
        name_result r = co_await query_name(qn.get(), dl);
        if (r.o == outcome::found) {
            if (st.cache.size() >= 4096) st.cache.clear();  // bounded; refilled on demand
            cache_entry& e = st.cache[key];
            e.addrs = r.addrs;
            e.expires = clock::now() + std::chrono::seconds(std::min<uint32_t>(r.ttl, 3600));
            e.server = r.server;
            co_return r.addrs;
        }
        last = std::move(r);
        if (last.o == outcome::not_found) neg_ttl = std::min(neg_ttl, last.ttl);
        else all_not_found = false;
    }
    if (!any_valid) {
        *error = "lookup " + host + ": no such host";
        co_return std::vector<socket_address>();
    }
    const char* why = last.o == outcome::not_found     ? "no such host"
                      : last.o == outcome::misbehaving ? "server misbehaving"
                                                       : "i/o timeout";
    *error = "lookup " + host + " on " + last.server + ": " + why;
    if (all_not_found && neg_ttl > 0) {  // a negative answer cached for the SOA's negative TTL
        if (st.cache.size() >= 4096) st.cache.clear();
        cache_entry& e = st.cache[key];
        e.expires = clock::now() + std::chrono::seconds(std::min<uint32_t>(neg_ttl, 3600));
        e.server = last.server;
    }
    co_return std::vector<socket_address>();
}

task<result<socket_address>> resolve_dial(std::string hp, std::string network, deadline dl, std::string* error) {
    auto a = resolve(hp, network, error);
    if (a || a.error().value() != ENOENT) co_return a;  // resolved, or malformed
    std::string host, port;
    split_host_port(hp, host, port);
    std::string lerr;
    std::vector<socket_address> addrs = co_await lookup_host(host, dl, &lerr);
    if (addrs.empty()) {
        *error = "dial " + network + ": " + lerr;
        co_return std::error_code(ENOENT, std::system_category());
    }
    socket_address out = addrs.front();
    uint16_t p = uint16_t(std::atoi(port.c_str()));
    if (out.family() == AF_INET) reinterpret_cast<sockaddr_in*>(&out.ss)->sin_port = htons(p);
    else reinterpret_cast<sockaddr_in6*>(&out.ss)->sin6_port = htons(p);
    error->clear();
    co_return out;
}

}  // namespace pharos::health
