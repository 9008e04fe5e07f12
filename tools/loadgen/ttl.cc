// pharos-ttl: keeps N TTL checks alive at a steady rate, as N clients that each
// pass their check once per period would, built on the engine.
//
//   pharos-ttl [-addr 127.0.0.1:8500] [-n 20000] [-prefix t] [-period 1s] [-duration 60s]
//              [-conns 1000] [-per-source 150] [-note alive] [-late 250ms] [-shards 1] [-backend auto|io_uring|epoll]
//
// Check i (ID "<prefix><i>") is passed with PUT /v1/agent/check/pass/<id>?note=<note>
// at t0 + k·period + (i/N)·period for k = 0, 1, ...: updates are spread evenly
// over each period, never in bursts. Checks are dealt to C keep-alive
// connections (check i on connection i mod C, in order), so one connection sends
// every C·period/N and the agent sees N/period requests per second. Connections
// come from source addresses 127.0.0.1, .2, ... (-per-source each), as many
// clients would: the agent limits connections per client address. A send that
// starts more than -late after its due time (the connection was still waiting
// for the previous answer) counts as late; a late send is still sent.
//
// It reports updates sent and answered, updates/s, answers by status (non-2xx
// are missed updates), transport errors, late sends and the largest lateness,
// and the answer latency p50/p99. Exit status 0 if every update was answered
// 2xx, 1 if not, 2 on bad usage. The last line is "RESULT key=value ...".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/io.hh"
#include "engine/log.hh"
#include "engine/net.hh"
#include "engine/smp.hh"
#include "protocols/json/duration.hh"
#include "tools/common/flags.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

struct options {
    std::string addr = "127.0.0.1:8500";
    unsigned n = 20000;
    std::string prefix = "t";
    clock::duration period = std::chrono::seconds(1);
    clock::duration duration = std::chrono::seconds(60);
    unsigned conns = 1000;
    unsigned per_source = 150;  // connections per source address (the agent allows 200 per client IP)
    std::string note = "alive";
    clock::duration late = std::chrono::milliseconds(250);
    unsigned shards = 1;
    backend_kind backend = backend_kind::automatic;
};

// What one shard measured.
struct report {
    uint64_t sent = 0, answered = 0, errors = 0, late = 0, reconnects = 0;
    int64_t max_late_ns = 0;
    std::map<unsigned, uint64_t> by_status;
    std::vector<int64_t> latency_ns;  // sampled: every answer
};

struct plan {
    options opt;
    socket_address to;
    deadline t0;
};

// Reads one response (status line, headers, Content-Length or chunked body)
// from `c`; `in` keeps bytes past it. Returns the status, 0 on a broken stream.
task<unsigned> read_response(tcp_stream& c, std::string& in, deadline dl) {
    for (;;) {
        auto end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
            unsigned status = 0;
            if (in.size() > 12 && in.compare(0, 5, "HTTP/") == 0) status = unsigned(std::atoi(in.c_str() + 9));
            size_t body = 0;
            bool chunked = false;
            std::string head = in.substr(0, end);
            for (auto& ch : head) ch = char(std::tolower(static_cast<unsigned char>(ch)));
            if (auto p = head.find("\r\ncontent-length:"); p != std::string::npos)
                body = size_t(std::strtoull(head.c_str() + p + 17, nullptr, 10));
            else if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos)
                chunked = true;
            size_t need = end + 4 + body;
            if (chunked) {
                auto z = in.find("0\r\n\r\n", end + 4);
                if (z == std::string::npos) need = std::string::npos;
                else need = z + 5;
            }
            if (need != std::string::npos && in.size() >= need) {
                in.erase(0, need);
                co_return status;
            }
        }
        auto chunk = co_await c.read(dl);
        if (!chunk || chunk->empty()) co_return 0;
        in.append(chunk->view());
    }
}

// One connection's share: checks first, first + C, ... in order, each once per period.
task<void> connection(const plan* p, unsigned first, report* r) {
    const options& o = p->opt;
    deadline end = p->t0 + o.duration;
    std::vector<unsigned> mine;
    for (unsigned i = first; i < o.n; i += o.conns) mine.push_back(i);
    if (mine.empty()) co_return;
    tcp_stream c;
    std::string in;
    const auto period = o.period;
    for (int64_t k = 0;; ++k) {
        for (unsigned i : mine) {
            deadline due = p->t0 + k * period + period * i / o.n;
            if (due >= end || clock::now() >= end) co_return;  // the run ends on time, late or not
            (void)co_await sleep_until(due);
            int64_t lateness = (clock::now() - due).count();
            if (lateness > o.late.count()) ++r->late;
            r->max_late_ns = std::max(r->max_late_ns, lateness);
            if (!c.is_open()) {
                std::string src_ip = "127.0.0." + std::to_string(1 + first / o.per_source);
                socket_address src = socket_address::parse(src_ip, 0).value();
                auto cc = co_await tcp_stream::connect(p->to, after(std::chrono::seconds(5)), &src);
                if (!cc) {
                    ++r->errors;
                    continue;
                }
                c = std::move(*cc);
                (void)c.set_nodelay(true);
                in.clear();
                ++r->reconnects;
            }
            std::string req = "PUT /v1/agent/check/pass/" + o.prefix + std::to_string(i) + "?note=" + o.note +
                              " HTTP/1.1\r\nHost: " + p->to.to_string() + "\r\nContent-Length: 0\r\n\r\n";
            deadline sent_at = clock::now();
            ++r->sent;
            auto w = co_await c.write(buffer::copy_of(req), after(std::chrono::seconds(10)));
            if (!w) {
                ++r->errors;
                c.close();
                continue;
            }
            unsigned st = co_await read_response(c, in, after(std::chrono::seconds(10)));
            if (st == 0) {
                ++r->errors;
                c.close();
                continue;
            }
            ++r->answered;
            ++r->by_status[st];
            r->latency_ns.push_back((clock::now() - sent_at).count());
        }
    }
}

// A shard's connections (every shard takes the connections c with c mod shards == its id).
task<report> run_shard(plan p) {
    report r;
    unsigned shards = this_reactor().group().size(), me = this_shard();
    std::vector<task<void>> conns;
    for (unsigned c = me; c < p.opt.conns; c += shards) conns.push_back(connection(&p, c, &r));
    co_await when_all(std::move(conns));
    co_return r;
}

double pct_ms(std::vector<int64_t>& v, double q) {
    if (v.empty()) return 0;
    size_t i = std::min(v.size() - 1, size_t(q * double(v.size())));
    return double(v[i]) / 1e6;
}

task<int> run(plan p) {
    const options& o = p.opt;
    std::printf("pharos-ttl: %u checks \"%s0..\" on %s, one pass each per %.3f s over %u connections, %.0f s\n", o.n,
                o.prefix.c_str(), p.to.to_string().c_str(), double(o.period.count()) / 1e9, o.conns,
                double(o.duration.count()) / 1e9);
    std::fflush(stdout);
    p.t0 = after(std::chrono::milliseconds(100));
    std::vector<task<report>> parts;
    for (unsigned s = 0; s < this_reactor().group().size(); ++s) {
        auto fn = [p]() { return run_shard(p); };
        parts.push_back(submit_to(s, std::move(fn)));
    }
    auto reports = co_await when_all(std::move(parts));
    report all;
    for (auto& r : reports) {
        all.sent += r.sent;
        all.answered += r.answered;
        all.errors += r.errors;
        all.late += r.late;
        all.reconnects += r.reconnects;
        all.max_late_ns = std::max(all.max_late_ns, r.max_late_ns);
        for (auto& [s, n] : r.by_status) all.by_status[s] += n;
        all.latency_ns.insert(all.latency_ns.end(), r.latency_ns.begin(), r.latency_ns.end());
    }
    std::sort(all.latency_ns.begin(), all.latency_ns.end());
    double secs = double(o.duration.count()) / 1e9;
    uint64_t ok = 0, non2xx = 0;
    for (auto& [s, n] : all.by_status) (s / 100 == 2 ? ok : non2xx) += n;
    std::printf("sent %lu, answered %lu (%.0f/s);", (unsigned long)all.sent, (unsigned long)all.answered,
                double(all.answered) / secs);
    for (auto& [s, n] : all.by_status) std::printf(" %u: %lu", s, (unsigned long)n);
    std::printf("\nerrors %lu, late sends (> %.0f ms) %lu, max lateness %.1f ms, latency p50 %.2f ms p99 %.2f ms\n",
                (unsigned long)all.errors, double(o.late.count()) / 1e6, (unsigned long)all.late,
                double(all.max_late_ns) / 1e6, pct_ms(all.latency_ns, 0.5), pct_ms(all.latency_ns, 0.99));
    std::printf("RESULT sent=%lu answered=%lu updates_per_s=%.0f ok=%lu non2xx=%lu errors=%lu late=%lu "
                "max_late_ms=%.1f latency_p50_ms=%.2f latency_p99_ms=%.2f connections=%lu\n",
                (unsigned long)all.sent, (unsigned long)all.answered, double(all.answered) / secs, (unsigned long)ok,
                (unsigned long)non2xx, (unsigned long)all.errors, (unsigned long)all.late,
                double(all.max_late_ns) / 1e6, pct_ms(all.latency_ns, 0.5), pct_ms(all.latency_ns, 0.99),
                (unsigned long)all.reconnects);
    std::fflush(stdout);
    co_return (non2xx == 0 && all.errors == 0 && all.answered == all.sent) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    tools::flag_set f("pharos-ttl", "Keeps N TTL checks alive at a steady rate (see the header of tools/loadgen/ttl.cc).");
    f.string("addr", o.addr, "agent HTTP address IP:PORT");
    f.number("n", o.n, "TTL checks", 1u, 10000000u);
    f.string("prefix", o.prefix, "check IDs are <prefix><i>");
    f.duration("period", o.period, "each check is passed once per period");
    f.duration("duration", o.duration, "how long to run");
    f.number("conns", o.conns, "keep-alive connections", 1u, 10000000u);
    f.number("per-source", o.per_source, "connections per source address 127.0.0.x", 1u, 10000000u);
    f.string("note", o.note, "the ?note= of each pass");
    f.duration("late", o.late, "a send starting later than this after its due time counts as late");
    f.number("shards", o.shards, "engine shards", 1u, 256u);
    f.backend("backend", o.backend);
    f.parse(argc, argv);
    auto usage_error = [&f](const std::string& why) { f.fail(why); };
    try {
        if (o.period.count() == 0 || o.duration.count() == 0) usage_error("-period and -duration must be positive");
        if ((o.conns + o.per_source - 1) / o.per_source > 254) usage_error("-conns / -per-source: at most 254 sources");
        plan p;
        p.opt = o;
        auto to = tools::parse_ip_port(o.addr);
        if (!to) usage_error("bad -addr (IP:PORT): " + o.addr);
        p.to = *to;
        smp_config cfg;
        cfg.shards = o.shards;
        cfg.reactor.backend = o.backend;
        cfg.stall_threshold_ms = 0;
        smp group(cfg);
        return group.run([p] { return run(p); });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pharos-ttl: %s\n", e.what());
        return 2;
    }
}
