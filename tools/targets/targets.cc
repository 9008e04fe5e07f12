// pharos-targets: a farm of health-check targets on loopback, for tests,
// benchmarks and users load-testing their own agent.
//
//   pharos-targets [-addr 127.0.0.1] [-port 20000] [-ports 16] [-n 1000] [-shards 1]
//                  [-mode healthy] [-delay 2s] [-period 10s] [-backend auto|io_uring|epoll]
//
// It listens on -ports consecutive ports from -port (0: ephemeral ports, printed).
// Every port serves every target over HTTP/1.1 (each answer closes the
// connection): GET /t/<i> answers as target i behaves now:
//   healthy   200 "ok"
//   failing   503 "failing"
//   slow      200 "ok" after -delay (or the target's own delay)
//   flapping  healthy and failing in turn, each for -period
//   dead      the connection is closed without an answer
// A TCP check passes on any port (the farm accepts); `dead` for TCP is per
// port: /control/port?port=P&mode=dead closes that port's listener, healthy reopens it.
//
// Control (any port, any method):
//   /control/set?targets=A[-B]&mode=M[&delay=D][&period=P]   change targets A..B (or "all")
//   /control/port?port=P&mode=dead|healthy                    close or reopen a listener
//   /control/stats                                            {"requests":N,"by_mode":{...}}
// A change is applied on every shard before the answer ("ok <n> targets").
// The first line printed on stdout is "READY <first port> <ports>".
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/gate.hh"
#include "engine/log.hh"
#include "engine/net.hh"
#include "engine/signals.hh"
#include "engine/smp.hh"
#include "protocols/json/duration.hh"
#include "tools/common/flags.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

enum class mode : uint8_t { healthy, failing, slow, flapping, dead };
const char* mode_names[] = {"healthy", "failing", "slow", "flapping", "dead"};

bool parse_mode(const std::string& s, mode& m) {
    for (int i = 0; i < 5; ++i)
        if (s == mode_names[i]) {
            m = mode(i);
            return true;
        }
    return false;
}

struct options {
    std::string addr = "127.0.0.1";
    uint16_t port = 20000;
    unsigned ports = 16;
    unsigned n = 1000;
    unsigned shards = 1;
    mode initial = mode::healthy;
    clock::duration delay = std::chrono::seconds(2);
    clock::duration period = std::chrono::seconds(10);
    backend_kind backend = backend_kind::automatic;
};

// One per shard: the targets' behaviour (a copy on each shard, changed on all
// together) and this shard's listeners.
struct farm {
    farm(options o) : opt(o), modes(o.n, o.initial), delays(o.n, o.delay), periods(o.n, o.period) {}
    options opt;
    std::vector<mode> modes;
    std::vector<clock::duration> delays, periods;
    std::vector<uint16_t> port_numbers;  // same on every shard
    std::map<uint16_t, std::unique_ptr<tcp_listener>> listeners;
    uint64_t requests = 0;
    gate g;

    task<void> stop() {
        for (auto& [p, l] : listeners) l->close();
        co_await g.close();
    }
};

sharded<farm>* the_farm = nullptr;

std::string query_value(const std::string& q, const std::string& key) {
    size_t pos = 0;
    while (pos <= q.size()) {
        size_t amp = q.find('&', pos);
        std::string kv = q.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = kv.find('=');
        if (kv.substr(0, eq) == key) return eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return "";
}

std::string reply(int code, const std::string& body) {
    const char* reason = code == 200 ? "OK" : code == 503 ? "Service Unavailable" : code == 404 ? "Not Found" : "Bad Request";
    return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: text/plain\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

task<void> accept_loop(farm* f, tcp_listener* l);

// Opens port `p` on this shard (SO_REUSEPORT: one listener per shard).
bool open_port(farm& f, uint16_t p) {
    if (f.listeners.count(p)) return true;
    auto a = socket_address::parse(f.opt.addr, p);
    if (!a) return false;
    auto l = tcp_listener::listen(*a);
    if (!l) return false;
    auto ptr = std::make_unique<tcp_listener>(std::move(*l));
    tcp_listener* raw = ptr.get();
    f.listeners[p] = std::move(ptr);
    this_reactor().spawn(accept_loop(&f, raw));
    return true;
}

task<std::string> control(farm* f, std::string path, std::string q) {
    if (path == "/control/stats") {
        auto map = [](farm& x) { return x.requests; };
        auto sum = [](uint64_t a, uint64_t b) { return a + b; };
        uint64_t total = co_await the_farm->map_reduce(map, uint64_t(0), sum);
        unsigned counts[5] = {0, 0, 0, 0, 0};
        for (mode m : f->modes) ++counts[int(m)];
        std::string out = "{\"requests\":" + std::to_string(total) + ",\"by_mode\":{";
        for (int i = 0; i < 5; ++i) out += std::string(i ? "," : "") + "\"" + mode_names[i] + "\":" + std::to_string(counts[i]);
        co_return reply(200, out + "}}");
    }
    mode m;
    if (!parse_mode(query_value(q, "mode"), m)) co_return reply(400, "bad mode\n");
    if (path == "/control/port") {
        uint16_t p = uint16_t(std::atoi(query_value(q, "port").c_str()));
        if (m != mode::dead && m != mode::healthy) co_return reply(400, "port mode is dead or healthy\n");
        auto fn = [p, m](farm& x) {
            if (m == mode::dead) {
                if (auto it = x.listeners.find(p); it != x.listeners.end()) it->second->close();
                // the accept loop drops it
            } else {
                open_port(x, p);
            }
        };
        co_await the_farm->invoke_on_all(fn);
        co_return reply(200, "ok\n");
    }
    if (path != "/control/set") co_return reply(404, "unknown control\n");
    std::string t = query_value(q, "targets");
    unsigned lo = 0, hi = f->opt.n ? f->opt.n - 1 : 0;
    if (t != "all") {
        auto dash = t.find('-');
        lo = unsigned(std::atoi(t.c_str()));
        hi = dash == std::string::npos ? lo : unsigned(std::atoi(t.c_str() + dash + 1));
    }
    if (t.empty() || lo > hi || hi >= f->opt.n) co_return reply(400, "bad targets\n");
    clock::duration d = clock::duration::zero(), per = clock::duration::zero();
    if (auto v = query_value(q, "delay"); !v.empty()) {
        auto x = json::parse_go_duration(v);
        if (!x) co_return reply(400, "bad delay\n");
        d = *x;
    }
    if (auto v = query_value(q, "period"); !v.empty()) {
        auto x = json::parse_go_duration(v);
        if (!x || x->count() <= 0) co_return reply(400, "bad period\n");
        per = *x;
    }
    auto fn = [lo, hi, m, d, per](farm& x) {
        for (unsigned i = lo; i <= hi; ++i) {
            x.modes[i] = m;
            if (d.count() > 0) x.delays[i] = d;
            if (per.count() > 0) x.periods[i] = per;
        }
    };
    co_await the_farm->invoke_on_all(fn);
    co_return reply(200, "ok " + std::to_string(hi - lo + 1) + " targets\n");
}

// One connection: one request, one answer, then close.
task<void> serve(farm* f, tcp_stream c) {
    gate::holder g(f->g);
    if (!g) co_return;
    deadline dl = after(std::chrono::seconds(30));
    std::string in;
    while (in.find("\r\n\r\n") == std::string::npos) {
        auto chunk = co_await c.read(dl);
        if (!chunk || chunk->empty()) co_return;  // a TCP check: connect, then close
        in.append(chunk->view());
        if (in.size() > 65536) co_return;
    }
    ++f->requests;
    auto sp1 = in.find(' ');
    auto sp2 = in.find(' ', sp1 + 1);
    std::string target = in.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string path = target, q;
    if (auto qm = target.find('?'); qm != std::string::npos) {
        path = target.substr(0, qm);
        q = target.substr(qm + 1);
    }
    std::string out;
    if (path.rfind("/control/", 0) == 0) {
        out = co_await control(f, path, q);
    } else if (path.rfind("/t/", 0) == 0) {
        unsigned i = unsigned(std::strtoul(path.c_str() + 3, nullptr, 10));
        if (i >= f->opt.n) {
            out = reply(404, "no such target\n");
        } else {
            mode m = f->modes[i];
            if (m == mode::flapping) {
                auto per = f->periods[i].count();
                m = (clock::now().time_since_epoch().count() / per) % 2 == 0 ? mode::healthy : mode::failing;
            }
            switch (m) {
                case mode::dead: co_return;
                case mode::failing: out = reply(503, "failing"); break;
                case mode::slow: co_await sleep_for(f->delays[i]); [[fallthrough]];
                default: out = reply(200, "ok"); break;
            }
        }
    } else {
        out = reply(404, "not found\n");
    }
    co_await c.write(buffer::copy_of(out), dl);
}

task<void> accept_loop(farm* f, tcp_listener* l) {
    gate::holder g(f->g);
    if (!g) co_return;
    for (;;) {
        auto c = co_await l->accept();
        if (!c) {
            if (!l->is_open() || is_cancelled(c.error())) break;
            co_await sleep_for(std::chrono::milliseconds(10));  // EMFILE and the like: try again
            continue;
        }
        this_reactor().spawn(serve(f, std::move(*c)));
    }
    // Closed (dead port or stop): drop it unless reopened meanwhile.
    for (auto it = f->listeners.begin(); it != f->listeners.end(); ++it)
        if (it->second.get() == l) {
            f->listeners.erase(it);
            break;
        }
}

task<int> run(options o) {
    // Shard 0 picks the ports (ephemeral ones when -port 0), then every shard listens on them.
    std::vector<uint16_t> ports;
    for (unsigned i = 0; i < o.ports; ++i) {
        if (o.port) {
            ports.push_back(uint16_t(o.port + i));
            continue;
        }
        auto a = socket_address::parse(o.addr, 0);
        auto l = tcp_listener::listen(*a);
        if (!l) break;
        ports.push_back(l->port());
        l->close();
    }
    sharded<farm> f;
    the_farm = &f;
    co_await f.start(o);
    auto open_all = [ports](farm& x) {
        x.port_numbers = ports;
        unsigned ok = 0;
        for (uint16_t p : ports) ok += open_port(x, p);
        return ok;
    };
    unsigned opened = co_await f.invoke_on(0, open_all);
    for (unsigned i = 1; i < f.size(); ++i) co_await f.invoke_on(i, open_all);
    int rc = 0;
    if (opened != ports.size() || ports.empty()) {
        log(log_level::error, "pharos-targets: could not listen on every port from %u", unsigned(o.port));
        rc = 1;
    } else {
        std::printf("READY %u %u\n", unsigned(ports.front()), unsigned(ports.size()));
        if (!o.port) {
            for (auto p : ports) std::printf("PORT %u\n", unsigned(p));
        }
        std::fflush(stdout);
        std::vector<int> sigs(1, SIGINT);
        sigs.push_back(SIGTERM);
        co_await wait_for_signal(sigs);
    }
    co_await f.stop();
    co_return rc;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    tools::flag_set f("pharos-targets", "N HTTP and TCP health-check targets on loopback (see the header of tools/targets/targets.cc).");
    f.string("addr", o.addr, "address to listen on");
    f.number("port", o.port, "first port (0: any free ports)", uint16_t(0), uint16_t(65535));
    f.number("ports", o.ports, "ports, from -port up", 1u, 65535u);
    f.number("n", o.n, "targets", 1u, 100000000u);
    f.number("shards", o.shards, "engine shards", 1u, 256u);
    f.custom("mode", "M", "every target's behaviour at start: healthy, failing, slow, flapping or dead", "healthy",
             [&o](std::string_view v) { return parse_mode(std::string(v), o.initial); });
    f.duration("delay", o.delay, "how long a slow target waits before answering");
    f.duration("period", o.period, "a flapping target's period");
    f.backend("backend", o.backend);
    f.parse(argc, argv);
    // Every open connection holds a descriptor: lift the soft limit to the hard one.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    smp_config sc;
    sc.shards = o.shards;
    sc.reactor.backend = o.backend;
    sc.take_signals = true;
    smp group(sc);
    return group.run([o] { return run(o); });
}
