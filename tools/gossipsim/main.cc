// pharos-gossip-sim: the memberlist engine (services/membership) at scale on
// the seeded simulated network, in one process on virtual time. Every node
// starts with the full member list (memberlist::bootstrap: the join push/pull
// merge path, without rebroadcasts), then the run measures, in this order:
//   steady   bytes per node per second over one push/pull period (UDP and stream, as encoded)
//   kill     for each killed node, when 50 / 99 / 99.99 % of the live members know it suspect, and dead
//   loss     false positives at --loss (live members declared dead by anyone), suspicions, refutes
//   heal     a half/half partition until each side declares the other dead, then the time to converge
// and prints the SWIM/Lifeguard analytic figures for the same N beside them.
// Usage: pharos-gossip-sim [-nodes N] [-seed S] [-kills K] [-loss P] [-loss-seconds T]
//        [-tcp-pings on|off] [-compression on|off] [-push-pull-max K] [-phases steady,kill,loss,heal]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "services/membership/sim.hh"
#include "tools/common/flags.hh"

using namespace pharos;
using namespace pharos::membership;
using namespace std::chrono_literals;
namespace g = pharos::gossip;

namespace {

struct opts {
    size_t nodes = 1000;
    uint64_t seed = 1;
    int kills = 3;
    double loss = 0.10;
    int loss_seconds = 120;
    bool tcp_pings = true, compression = true;
    long push_pull_max = -1;  // -1: config's default; 0: the whole table (Go)
    std::string phases = "steady,kill,loss,heal";
} o;

double secs(duration d) { return std::chrono::duration<double>(d).count(); }

double wall() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

long rss_kb(const char* key) {  // VmRSS / VmHWM from /proc/self/status
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key) + 1));
    return -1;
}

// Nearest-rank percentile of the first-seen times (virtual seconds); -1 when fewer than rank.
double pct(std::vector<double> v, size_t population, double p) {
    std::sort(v.begin(), v.end());
    size_t rank = size_t(std::ceil(p * double(population)));
    if (rank == 0) rank = 1;
    return rank <= v.size() ? v[rank - 1] : -1;
}

struct sim {
    sim_network net;
    std::vector<char> dead;  // killed by us
    uint64_t false_deaths = 0;
    std::vector<std::pair<size_t, size_t>> false_pairs;  // (observer, victim), first few

    explicit sim(sim_network::options so) : net(so) {}

    size_t live() const { return size_t(std::count(dead.begin(), dead.end(), 0)); }
    uint64_t udp_bytes() {
        uint64_t b = 0;
        for (size_t i = 0; i < net.size(); ++i) b += net.node(i).stats().bytes_out;
        return b;
    }
    uint64_t sum(uint64_t counters::*f) {
        uint64_t s = 0;
        for (size_t i = 0; i < net.size(); ++i) s += net.node(i).stats().*f;
        return s;
    }
    bool all_see_all_alive() {
        size_t want = live();
        for (size_t i = 0; i < net.size(); ++i)
            if (!dead[i] && net.node(i).count(node_state::alive) != want) return false;
        return true;
    }
};

size_t victim_index(const std::string& name) { return std::stoul(name.substr(1)); }

}  // namespace

int main(int argc, char** argv) {
    tools::flag_set f("pharos-gossip-sim", "N memberlist nodes on the seeded simulated network, in virtual time.");
    auto on_off = [&f](const char* name, bool& dst, const char* help) {
        f.custom(name, "on|off", help, dst ? "on" : "off", [&dst](std::string_view v) {
            if (v != "on" && v != "off") return false;
            dst = v == "on";
            return true;
        });
    };
    f.number("nodes", o.nodes, "members", size_t(3), size_t(1) << 24);
    f.number("seed", o.seed, "seed of the simulated network");
    f.number("kills", o.kills, "nodes killed in the kill phase", 0, 1 << 24);
    f.number("loss", o.loss, "packet loss in the loss phase (0..1)", 0.0, 1.0);
    f.number("loss-seconds", o.loss_seconds, "length of the loss phase (virtual seconds)", 0, 1 << 24);
    on_off("tcp-pings", o.tcp_pings, "TCP fallback pings");
    on_off("compression", o.compression, "LZW compression");
    f.string("phases", o.phases, "comma-separated: steady, kill, loss, heal");
    f.number("push-pull-max", o.push_pull_max, "entries in a periodic push/pull (0: the whole table; -1: the built-in default)", -1L, 1L << 24);
    f.parse(argc, argv);
    auto has = [](const char* p) { return o.phases.find(p) != std::string::npos; };
    const size_t n = o.nodes;

    // --- build and bootstrap ---
    double w0 = wall();
    sim_network::options so;
    so.seed = o.seed;
    sim s(so);
    s.dead.assign(n, 0);
    config base = config::lan("", {});
    base.disable_tcp_pings = !o.tcp_pings;
    base.enable_compression = o.compression;
    if (o.push_pull_max >= 0) base.push_pull_max_nodes = size_t(o.push_pull_max);
    base.reconnect_interval = 30s;  // Serf's reconnector at Serf's default (what brings a healed partition back)
    for (size_t i = 0; i < n; ++i) {
        delegate d;
        d.on_leave = [&s, i](const member& m) {
            size_t v = victim_index(m.name);
            if (!s.dead[v] && v != i) {
                ++s.false_deaths;
                if (s.false_pairs.size() < 5) s.false_pairs.push_back({i, v});
            }
        };
        s.net.add(base, std::move(d));
    }
    // The state a join push/pull would have brought: every node alive at incarnation 1.
    g::push_pull pp = sim_network::everyone_alive(base, n);
    for (size_t i = 0; i < n; ++i) {
        s.net.node(i).start();
        s.net.node(i).bootstrap(pp);
    }
    pp.nodes = {};
    if (!s.all_see_all_alive()) {
        std::fprintf(stderr, "bootstrap did not give every node the full list\n");
        return 1;
    }
    long rss_boot = rss_kb("VmRSS:");
    std::printf("nodes %zu seed %lu compression %s tcp-pings %s push-pull-max %zu\n", n, (unsigned long)o.seed,
                o.compression ? "on" : "off", o.tcp_pings ? "on" : "off", base.push_pull_max_nodes);
    std::printf("bootstrap: %.1f s wall, RSS %.0f MiB (%.0f B per member-table entry)\n", wall() - w0,
                rss_boot / 1024.0, rss_boot * 1024.0 / (double(n) * double(n)));
    std::fflush(stdout);

    // Analytic figures for this N with the LAN defaults (perf-anchors S1, C13, C14).
    const double T = secs(base.probe_interval), gi = secs(base.gossip_interval);
    const double first = T * M_E / (M_E - 1);   // SWIM: expected time until some member probes the failed one
    auto rounds = [&](double p, double loss) {  // Serf's model: frac(x) = 1/(1+(N+1)e^(-b(1-loss)x))
        return std::ceil(std::log((double(n) + 1) * p / (1 - p)) / (base.gossip_nodes * (1 - loss)));
    };
    const double smin = secs(suspicion_timeout(base.suspicion_mult, n, base.probe_interval));
    const double smax = smin * base.suspicion_max_timeout_mult;
    std::printf(
        "analytic: first probe of the failed node %.2f s (T*e/(e-1)); suspicion raised +%.2f s (probe "
        "deadline); gossip to 50/99/99.99%% in %.0f/%.0f/%.0f rounds of %.1f s; suspicion timeout %.0f s "
        "(min, k confirmations) .. %.0f s (max)\n",
        first, T, rounds(0.5, 0), rounds(0.99, 0), rounds(0.9999, 0), gi, smin, smax);
    std::printf("analytic: suspect known by 99.99%% ~ %.2f s; dead known by 99.99%% ~ %.2f s (min) .. %.2f s (max)\n",
                first + T + rounds(0.9999, 0) * gi, first + T + smin + rounds(0.9999, 0) * gi,
                first + T + smax + rounds(0.9999, 0) * gi);

    // --- steady state: bytes per node per second over one (scaled) push/pull period ---
    if (has("steady")) {
        double w = wall();
        s.net.run_for(base.push_pull_interval);  // every node's first push/pull is staggered in here
        duration period = base.push_pull_interval;
        if (n > 32) period = period * (int64_t(std::ceil(std::log2(double(n)) - 5.0)) + 1);
        uint64_t udp0 = s.udp_bytes(), tcp0 = s.net.stream_bytes_sent(), pk0 = s.sum(&counters::packets_out);
        uint64_t st0 = s.sum(&counters::streams_in);
        s.net.run_for(period);
        double per = double(n) * secs(period);
        double udp = double(s.udp_bytes() - udp0) / per, tcp = double(s.net.stream_bytes_sent() - tcp0) / per;
        uint64_t streams = s.sum(&counters::streams_in) - st0;
        std::printf(
            "steady (0%% loss, %.0f s = one push/pull period): %.0f B/node/s (UDP %.0f, streams %.0f), "
            "%.1f packets/node/s, %lu streams of %.0f B (request + reply); %.1f s wall\n",
            secs(period), udp + tcp, udp, tcp, double(s.sum(&counters::packets_out) - pk0) / per,
            (unsigned long)streams, streams ? double(s.net.stream_bytes_sent() - tcp0) / double(streams) : 0.0,
            wall() - w);
        std::fflush(stdout);
    }

    // --- kill: detection time percentiles ---
    std::mt19937_64 pick(o.seed * 7919);
    if (has("kill")) {
        std::vector<double> agg[2][3];
        for (int k = 0; k < o.kills; ++k) {
            double w = wall();
            size_t v;
            do v = pick() % n;
            while (s.dead[v]);
            std::string name = "n" + std::to_string(v);
            std::vector<double> t_suspect(n, -1), t_dead(n, -1);
            s.net.kill(v);
            s.dead[v] = 1;
            auto t0 = s.net.now();
            size_t pop = s.live(), nsus = 0, ndead = 0;
            std::vector<double> sus, dd;
            while (ndead < pop && s.net.now() - t0 < 300s) {
                s.net.run_for(10ms);
                double t = secs(s.net.now() - t0);
                for (size_t i = 0; i < n; ++i) {
                    if (s.dead[i] || t_dead[i] >= 0) continue;
                    auto st = s.net.node(i).state_of(name);
                    if (!st) continue;
                    if (*st != node_state::alive && t_suspect[i] < 0) t_suspect[i] = t, sus.push_back(t), ++nsus;
                    if (*st == node_state::dead || *st == node_state::left) t_dead[i] = t, dd.push_back(t), ++ndead;
                }
            }
            double ps[3] = {0.5, 0.99, 0.9999};
            std::printf(
                "kill %s: known by 50/99/99.99%% of %zu live members: suspect %.2f/%.2f/%.2f s, dead "
                "%.2f/%.2f/%.2f s; %.1f s wall\n",
                name.c_str(), pop, pct(sus, pop, ps[0]), pct(sus, pop, ps[1]), pct(sus, pop, ps[2]),
                pct(dd, pop, ps[0]), pct(dd, pop, ps[1]), pct(dd, pop, ps[2]), wall() - w);
            for (int j = 0; j < 3; ++j) {
                agg[0][j].push_back(pct(sus, pop, ps[j]));
                agg[1][j].push_back(pct(dd, pop, ps[j]));
            }
            std::fflush(stdout);
            s.net.run_for(5s);
        }
        auto mean = [](const std::vector<double>& v) {
            double t = 0;
            for (double x : v) t += x;
            return v.empty() ? 0 : t / double(v.size());
        };
        std::printf("kill mean over %d: suspect %.2f/%.2f/%.2f s, dead %.2f/%.2f/%.2f s (50/99/99.99%%)\n", o.kills,
                    mean(agg[0][0]), mean(agg[0][1]), mean(agg[0][2]), mean(agg[1][0]), mean(agg[1][1]),
                    mean(agg[1][2]));
    }

    // --- loss: false positives with Lifeguard ---
    if (has("loss")) {
        double w = wall();
        s.net.set_loss(o.loss, o.loss / 2);
        uint64_t fd0 = s.false_deaths, su0 = s.sum(&counters::suspects_raised), re0 = s.sum(&counters::refutes);
        uint64_t udp0 = s.udp_bytes(), tcp0 = s.net.stream_bytes_sent();
        s.net.run_for(std::chrono::seconds(o.loss_seconds));
        double per = double(s.live()) * o.loss_seconds;
        std::printf(
            "loss %.0f%% (+%.0f%% duplicates), %d s: %lu false deaths, %lu suspicions, %lu refutes, "
            "%.0f B/node/s; %.1f s wall\n",
            o.loss * 100, o.loss * 50, o.loss_seconds, (unsigned long)(s.false_deaths - fd0),
            (unsigned long)(s.sum(&counters::suspects_raised) - su0), (unsigned long)(s.sum(&counters::refutes) - re0),
            double(s.udp_bytes() - udp0 + s.net.stream_bytes_sent() - tcp0) / per, wall() - w);
        for (auto [obs, vic] : s.false_pairs) std::printf("  false death: n%zu declared n%zu\n", obs, vic);
        s.net.set_loss(0, 0);
        s.net.run_for(10s);
    }

    // --- heal: partition into halves, let each declare the other dead, heal, converge ---
    if (has("heal")) {
        double w = wall();
        s.net.partition([](size_t i) { return int(i % 2); });
        auto tp = s.net.now();
        size_t live_even = 0;
        for (size_t i = 0; i < n; i += 2) live_even += !s.dead[i];
        size_t live_odd = s.live() - live_even;
        bool split = s.net.run_until(
            [&] {
                for (size_t i = 0; i < n; ++i)
                    if (!s.dead[i] && s.net.node(i).count(node_state::alive) != (i % 2 ? live_odd : live_even))
                        return false;
                return true;
            },
            tp + 600s, 500ms);
        double t_split = secs(s.net.now() - tp);
        s.net.heal();
        auto th = s.net.now();
        bool ok = s.net.run_until([&] { return s.all_see_all_alive(); }, th + 900s, 500ms);
        std::printf(
            "heal: halves %s apart after %.1f s; after heal, every member sees all %zu alive %s %.1f s "
            "(0.5 s resolution, Serf reconnect every 30 s); %.1f s wall\n",
            split ? "fully" : "NOT fully", t_split, s.live(), ok ? "in" : "NOT within", secs(s.net.now() - th),
            wall() - w);
    }
    uint64_t drops = 0;
    for (size_t i = 0; i < n; ++i) drops += s.net.node(i).stats().packets_bad;
    std::printf("done: %.1f s wall, peak RSS %.0f MiB, %lu packets, %lu bad packets\n", wall() - w0,
                rss_kb("VmHWM:") / 1024.0, (unsigned long)s.net.packets_sent(), (unsigned long)drops);
    return 0;
}
