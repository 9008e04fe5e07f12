// pharos-watchers: a load tool for blocking queries at scale, built on the engine.
//
//   pharos-watchers [-addr 127.0.0.1:8500] [-n 100000] [-sources K] [-prefix bench/watch]
//                   [-wait 5m] [-shards 1] [-settle 1s] [-timeout 30s] [-concurrency 1000]
//                   [-on-blocked CMD] [-linger DUR] [-agent-pid PID] [-backend auto|io_uring|epoll]
//
// It learns the prefix's X-Consul-Index with one plain GET, then opens N
// connections (source addresses spread over 127.0.0.1..127.0.0.K, since loopback
// has one ephemeral port range per source address) and sends on each
//   GET /v1/kv/<prefix>?recurse&index=<index>&wait=<W>
// Once every request is sent and a settle period passed with no answer, all N
// count as blocked (CMD runs then, through /bin/sh, e.g. to sample the agent's
// RSS). Then one PUT /v1/kv/<prefix>/x on a separate connection, and it reports
// how long after the PUT's response the last watcher got its 200 with the new
// index, the wake latency percentiles and the answers by status. With
// -agent-pid it also reports the agent's CPU time for the wake (all threads),
// which, unlike the latencies, does not depend on what else the machine runs.
//
// Exit status: 0 if every watcher was answered 200 with the new index, 1 if
// not, 2 on bad usage or an environment that cannot hold N connections.
// The last line is machine-readable: "RESULT key=value ...".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/io.hh"
#include "engine/log.hh"
#include "engine/net.hh"
#include "engine/smp.hh"
#include "protocols/http/client.hh"
#include "protocols/json/duration.hh"
#include "tools/common/flags.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

struct options {
    std::string addr = "127.0.0.1:8500";
    unsigned n = 100000;
    unsigned sources = 0;  // 0: enough for the ephemeral port range
    std::string prefix = "bench/watch";
    std::string wait = "5m";
    unsigned shards = 1;
    clock::duration settle = std::chrono::seconds(1);
    clock::duration timeout = std::chrono::seconds(30);  // after the PUT's response
    clock::duration linger{0};                           // connections stay open this long at the end
    int agent_pid = 0;                                   // > 0: report the agent's CPU time for the wake
    unsigned concurrency = 1000;                         // connects in flight, all shards
    std::string on_blocked;
    backend_kind backend = backend_kind::automatic;
};

// What happened to one watcher.
enum class outcome : uint8_t {
    pending,
    new_index,       // 200 with an index past the initial one
    same_index,      // answered, but without a new index (wait expired, spurious)
    other_status,    // anything but 200
    closed,          // the agent closed the connection without an answer
    error,           // read or write failed
    no_answer,       // still blocked when the tool gave up
    connect_failed,  // never connected
    count
};
constexpr const char* outcome_names[] = {"pending",         "200 new index", "answered, old index", "other status",
                                         "closed by agent", "error",         "no answer",           "connect failed"};

// Everything a shard needs to run its share of the watchers; copied to each shard.
struct plan {
    options opt;
    socket_address to;
    std::vector<socket_address> sources;  // 127.0.0.x, port 0
    std::string request;                  // the blocking GET, whole
    uint64_t initial_index = 0;
    clock::duration read_limit{};  // a watcher gives up reading after this
};

// Counters that shard 0 polls between phases.
struct shard_counts {
    uint64_t sent = 0, finished = 0, connect_failed = 0, early = 0;
};

// What a shard reports at the end: wake times of the watchers answered with the
// new index (steady ns), outcome counts, statuses and error texts.
struct shard_report {
    std::array<uint64_t, size_t(outcome::count)> outcomes{};
    std::map<unsigned, uint64_t> by_status;
    std::map<std::string, uint64_t> errors;
    std::vector<int64_t> woke_ns;
    uint64_t early = 0;
};

int64_t now_ns() { return clock::now().time_since_epoch().count(); }

// A parsed response head; `complete` once the whole body is in.
struct response_head {
    bool complete = false;
    unsigned status = 0;
    uint64_t index = 0;
};

// Parses what `in` holds so far. False on a malformed response.
bool parse_response(const std::string& in, response_head& h) {
    size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) return in.size() < 64 * 1024;
    if (in.compare(0, 5, "HTTP/") != 0 || in.size() < 12) return false;
    h.status = unsigned(std::strtoul(in.c_str() + 9, nullptr, 10));
    size_t content_length = 0;
    size_t pos = in.find("\r\n") + 2;
    while (pos < end) {
        size_t eol = in.find("\r\n", pos);
        size_t colon = in.find(':', pos);
        if (colon != std::string::npos && colon < eol) {
            std::string_view name(in.data() + pos, colon - pos);
            const char* v = in.c_str() + colon + 1;
            while (*v == ' ') ++v;
            if (name.size() == 14 && strncasecmp(name.data(), "Content-Length", 14) == 0)
                content_length = std::strtoull(v, nullptr, 10);
            else if (name.size() == 14 && strncasecmp(name.data(), "X-Consul-Index", 14) == 0)
                h.index = std::strtoull(v, nullptr, 10);
        }
        pos = eol + 2;
    }
    h.complete = in.size() >= end + 4 + content_length;
    return true;
}

// The watchers of one shard (sharded<watch_shard>). Lives on its shard; every
// member is touched only there. stop() cancels what still runs and closes the
// connections, so no watcher outlives it.
class watch_shard {
public:
    explicit watch_shard(plan p) : plan_(std::move(p)) {
        unsigned shards = this_reactor().group().size(), me = this_shard();
        count_ = plan_.opt.n / shards + (me < plan_.opt.n % shards ? 1 : 0);
        limit_ = std::max(1u, plan_.opt.concurrency / shards);
        res_.resize(count_);
        conns_.resize(count_);
    }

    // Starts every watcher of this shard, at most `limit_` connects at a time, and
    // returns once each has sent its request or failed to.
    task<void> launch() {
        unsigned shards = this_reactor().group().size(), me = this_shard();
        for (unsigned k = 0; k < count_; ++k) {
            while (connecting_ >= limit_) (void)co_await slot_free_.wait(no_deadline);
            ++connecting_;
            ++live_;
            unsigned global = me + k * shards;
            this_reactor().spawn(watcher(k, global).with_cancel(&stop_));
            co_await maybe_yield();
        }
        while (counts_.sent + counts_.connect_failed + send_failed_ < count_) (void)co_await changed_.wait(no_deadline);
    }

    shard_counts counts() const { return counts_; }
    // From now on an answer is what the PUT woke, not an early one.
    void mark_put() { put_issued_ = true; }

    // Waits until every watcher is answered or `dl`, cancels the rest, and reports.
    task<shard_report> finish(deadline dl) {
        while (counts_.finished < count_) {
            if (co_await changed_.wait(dl) < 0) break;
        }
        stop_.request_cancel();
        while (live_ > 0) (void)co_await changed_.wait(no_deadline);
        shard_report rep;
        rep.early = counts_.early;
        for (auto& r : res_) {
            rep.outcomes[size_t(r.what)]++;
            if (r.status) rep.by_status[r.status]++;
            if (r.what == outcome::new_index) rep.woke_ns.push_back(r.done_ns);
        }
        rep.errors = std::move(errors_);
        co_return rep;
    }

    // Closes every connection: shut down first, so that each armed receive ends
    // with EOF instead of being cancelled (on io_uring a cancel by fd scans every
    // armed poll of the ring: closing N armed connections one by one is O(N^2)).
    task<void> stop() {
        stop_.request_cancel();
        while (live_ > 0) (void)co_await changed_.wait(no_deadline);
        for (auto& c : conns_)
            if (c.is_open()) ::shutdown(c.fd(), SHUT_RDWR);
        (void)co_await sleep_for(std::chrono::milliseconds(100));  // let the EOFs complete
        for (auto& c : conns_) {
            c.close();
            co_await maybe_yield();
        }
        conns_.clear();
    }

private:
    struct watch_result {
        int64_t done_ns = 0;
        unsigned status = 0;
        outcome what = outcome::pending;
    };

    void note_error(const std::string& what) {
        if (errors_.size() < 16 || errors_.count(what)) errors_[what]++;
    }

    // One watcher: connect, send the blocking GET, read one response. The
    // connection stays open (in conns_) until stop(), so closing it is not part
    // of what the agent does while it answers the others.
    task<void> watcher(unsigned k, unsigned global) {
        watch_result& out = res_[k];
        deadline connect_dl = after(std::chrono::seconds(30));
        auto c = co_await tcp_stream::connect(plan_.to, connect_dl, &plan_.sources[global % plan_.sources.size()]);
        --connecting_;
        slot_free_.notify();
        if (!c) {
            out.what = outcome::connect_failed;
            note_error("connect: " + c.error().message());
            ++counts_.connect_failed;
            done(out);
            co_return;
        }
        tcp_stream conn = std::move(*c);
        auto w = co_await conn.write(buffer::copy_of(plan_.request), connect_dl);
        if (!w) {
            out.what = outcome::error;
            note_error("write: " + w.error().message());
            ++send_failed_;
            conns_[k] = std::move(conn);
            done(out);
            co_return;
        }
        ++counts_.sent;
        changed_.notify();

        deadline read_dl = after(plan_.read_limit);
        std::string in;
        response_head head;
        for (;;) {
            auto chunk = co_await conn.read(read_dl);
            if (!chunk) {
                if (is_cancelled(chunk.error()) || is_timed_out(chunk.error())) {
                    out.what = outcome::no_answer;
                } else {
                    out.what = outcome::error;
                    note_error("read: " + chunk.error().message());
                }
                break;
            }
            if (chunk->empty()) {
                out.what = outcome::closed;
                break;
            }
            in.append(chunk->view());
            if (!parse_response(in, head)) {
                out.what = outcome::error;
                note_error("malformed response");
                break;
            }
            if (head.complete) {
                out.done_ns = now_ns();
                out.status = head.status;
                if (head.status != 200)
                    out.what = outcome::other_status;
                else if (head.index > plan_.initial_index)
                    out.what = outcome::new_index;
                else
                    out.what = outcome::same_index;
                if (!put_issued_) ++counts_.early;
                break;
            }
        }
        conns_[k] = std::move(conn);
        done(out);
    }

    void done(watch_result&) {
        --live_;
        ++counts_.finished;
        changed_.notify();
    }

    plan plan_;
    unsigned count_ = 0, limit_ = 1;
    unsigned connecting_ = 0, live_ = 0, send_failed_ = 0;
    bool put_issued_ = false;
    shard_counts counts_;
    std::vector<watch_result> res_;
    std::vector<tcp_stream> conns_;
    std::map<std::string, uint64_t> errors_;
    wait_slot changed_;    // the one phase task of this shard waits here
    wait_slot slot_free_;  // launch() waits here for a connect slot
    cancel_source stop_;   // every watcher runs under it
};

double ms(int64_t ns) { return double(ns) / 1e6; }

// CPU time of every thread of `pid` ("self" if 0), in ns, from /proc/<pid>/task/*/schedstat; -1 if unreadable.
int64_t cpu_ns(int pid) {
    std::string dir = "/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/task";
    std::error_code ec;
    int64_t total = 0;
    bool any = false;
    for (auto& t : std::filesystem::directory_iterator(dir, ec)) {
        std::ifstream f(t.path() / "schedstat");
        int64_t on_cpu = 0;
        if (f >> on_cpu) {
            total += on_cpu;
            any = true;
        }
    }
    return any ? total : -1;
}

int64_t percentile(const std::vector<int64_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    size_t i = size_t(p * double(sorted.size() - 1) + 0.5);
    return sorted[std::min(i, sorted.size() - 1)];
}

// Sums every shard's counters.
task<shard_counts> total_counts(sharded<watch_shard>* w) {
    shard_counts t;
    for (unsigned i = 0; i < w->size(); ++i) {
        auto fn = [](watch_shard& s) { return s.counts(); };
        shard_counts c = co_await w->invoke_on(i, fn);
        t.sent += c.sent;
        t.finished += c.finished;
        t.connect_failed += c.connect_failed;
        t.early += c.early;
    }
    co_return t;
}

task<int> run(plan p) {
    const options& o = p.opt;
    std::printf(
        "pharos-watchers: %u watchers on %s, prefix \"%s\", wait %s, %zu source address(es), %u shard(s), "
        "backend %s\n",
        o.n, p.to.to_string().c_str(), o.prefix.c_str(), o.wait.c_str(), p.sources.size(),
        this_reactor().group().size(), this_reactor().backend_name());

    // 1. The prefix's current index, from one non-blocking GET.
    auto get = http::fetch(p.to, "GET", "/v1/kv/" + o.prefix + "?recurse", "", http::header_list(),
                           after(std::chrono::seconds(10)));
    auto first = co_await std::move(get);
    if (!first) {
        std::printf("error: GET /v1/kv/%s?recurse on %s: %s\n", o.prefix.c_str(), p.to.to_string().c_str(),
                    first.error().message().c_str());
        co_return 2;
    }
    std::string idx(first->header("X-Consul-Index"));
    p.initial_index = std::strtoull(idx.c_str(), nullptr, 10);
    if (p.initial_index == 0) {
        std::printf("error: the agent answered %u without an X-Consul-Index\n", first->status);
        co_return 2;
    }
    std::string host = p.to.to_string();
    p.request = "GET /v1/kv/" + o.prefix + "?recurse&index=" + std::to_string(p.initial_index) + "&wait=" + o.wait +
                " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: pharos-watchers\r\n\r\n";
    std::printf("index %lu (GET answered %u)\n", (unsigned long)p.initial_index, first->status);

    // 2. N blocking GETs.
    sharded<watch_shard> w;
    co_await w.start(p);
    int64_t t0 = now_ns();
    std::vector<task<void>> launches;
    for (unsigned i = 0; i < w.size(); ++i) {
        auto fn = [](watch_shard& s) { return s.launch(); };
        launches.push_back(w.invoke_on(i, fn));
    }
    co_await when_all(std::move(launches));
    int64_t t_sent = now_ns();
    shard_counts c = co_await total_counts(&w);
    std::printf("sent %lu blocking GETs in %.0f ms (%.0f/s); %lu connects failed\n", (unsigned long)c.sent,
                ms(t_sent - t0), double(c.sent) / (double(t_sent - t0) / 1e9), (unsigned long)c.connect_failed);

    // 3. Settle: nobody may have been answered.
    (void)co_await sleep_for(o.settle);
    c = co_await total_counts(&w);
    bool all_blocked = c.sent == o.n && c.finished == 0;
    if (all_blocked)
        std::printf("all %u watchers blocked (none answered %.0f ms after the last GET was sent)\n", o.n,
                    ms(o.settle.count()));
    else
        std::printf("NOT all blocked: %lu of %u sent, %lu already finished (%lu answered early)\n",
                    (unsigned long)c.sent, o.n, (unsigned long)c.finished, (unsigned long)c.early);
    std::fflush(stdout);
    if (!o.on_blocked.empty()) {
        int rc = std::system(o.on_blocked.c_str());
        if (rc != 0) std::printf("warning: -on-blocked command exited with %d\n", rc);
        std::fflush(stdout);
    }

    // 4. One write, on a connection of its own.
    for (unsigned i = 0; i < w.size(); ++i) {
        auto fn = [](watch_shard& s) { s.mark_put(); };
        co_await w.invoke_on(i, fn);
    }
    int64_t agent_cpu0 = o.agent_pid ? cpu_ns(o.agent_pid) : -1, tool_cpu0 = cpu_ns(0);
    int64_t t_put = now_ns();
    auto put_call = http::fetch(p.to, "PUT", "/v1/kv/" + o.prefix + "/x", "woken", http::header_list(),
                                after(std::chrono::seconds(30)));
    auto put = co_await std::move(put_call);
    int64_t t_put_done = now_ns();
    if (!put) {
        std::printf("error: PUT /v1/kv/%s/x failed: %s\n", o.prefix.c_str(), put.error().message().c_str());
    } else if (put->status != 200) {
        std::printf("error: PUT /v1/kv/%s/x answered %u\n", o.prefix.c_str(), put->status);
    } else {
        std::printf("PUT answered in %.2f ms (sent at monotonic %.6f s)\n", ms(t_put_done - t_put),
                    double(t_put) / 1e9);
    }

    // 5. Wait for every watcher (or the timeout), then gather.
    deadline dl = after(o.timeout);
    std::vector<task<shard_report>> finishes;
    for (unsigned i = 0; i < w.size(); ++i) {
        auto fn = [dl](watch_shard& s) { return s.finish(dl); };
        finishes.push_back(w.invoke_on(i, fn));
    }
    auto reports = co_await when_all(std::move(finishes));
    shard_report all;
    for (auto& r : reports) {
        for (size_t k = 0; k < all.outcomes.size(); ++k) all.outcomes[k] += r.outcomes[k];
        for (auto& [s, n] : r.by_status) all.by_status[s] += n;
        for (auto& [e, n] : r.errors) all.errors[e] += n;
        all.woke_ns.insert(all.woke_ns.end(), r.woke_ns.begin(), r.woke_ns.end());
        all.early += r.early;
    }
    int64_t agent_cpu = agent_cpu0 >= 0 ? cpu_ns(o.agent_pid) - agent_cpu0 : -1, tool_cpu = cpu_ns(0) - tool_cpu0;
    if (o.linger.count() > 0) (void)co_await sleep_for(o.linger);
    int64_t t_gathered = now_ns();
    co_await w.stop();
    std::printf("closed every connection in %.0f ms\n", ms(now_ns() - t_gathered));

    std::sort(all.woke_ns.begin(), all.woke_ns.end());
    std::vector<int64_t> after_put;  // wake latency from the PUT being sent
    for (int64_t t : all.woke_ns) after_put.push_back(t - t_put);
    uint64_t woken = all.woke_ns.size();
    bool all_woken = woken == o.n;
    int64_t last_after_resp = woken ? all.woke_ns.back() - t_put_done : 0;
    int64_t first_after_resp = woken ? all.woke_ns.front() - t_put_done : 0;

    std::printf("answers:");
    for (size_t k = 1; k < all.outcomes.size(); ++k)
        if (all.outcomes[k]) std::printf("  %s %lu", outcome_names[k], (unsigned long)all.outcomes[k]);
    std::printf("\nby status:");
    for (auto& [s, n] : all.by_status) std::printf("  %u: %lu", s, (unsigned long)n);
    if (all.by_status.empty()) std::printf("  (none)");
    std::printf("\n");
    for (auto& [e, n] : all.errors) std::printf("  error x%lu: %s\n", (unsigned long)n, e.c_str());
    if (woken) {
        std::printf("wake latency from the PUT sent (%lu watchers): p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
                    (unsigned long)woken, ms(percentile(after_put, 0.5)), ms(percentile(after_put, 0.99)),
                    ms(after_put.back()));
        std::printf("from the PUT's response: first watcher %+.1f ms, last watcher %+.1f ms%s\n", ms(first_after_resp),
                    ms(last_after_resp),
                    all_woken ? (last_after_resp <= 1000000000 ? " (all answered within 1 s)" : " (OVER 1 s)")
                              : " (NOT every watcher was answered)");
    }
    std::printf("CPU from the PUT until every watcher was answered: tool %.0f ms (%.1f us/watcher)", ms(tool_cpu),
                double(tool_cpu) / 1e3 / o.n);
    if (agent_cpu >= 0) std::printf(", agent %.0f ms (%.1f us/watcher)", ms(agent_cpu), double(agent_cpu) / 1e3 / o.n);
    std::printf("\n");
    std::printf(
        "RESULT n=%u sent=%lu all_blocked=%d early=%lu woken=%lu all_woken=%d put_ms=%.2f p50_ms=%.1f "
        "p99_ms=%.1f max_ms=%.1f last_after_put_response_ms=%.1f connect_ms=%.0f agent_cpu_ms=%.0f tool_cpu_ms=%.0f\n",
        o.n, (unsigned long)c.sent, all_blocked ? 1 : 0, (unsigned long)all.early, (unsigned long)woken,
        all_woken ? 1 : 0, ms(t_put_done - t_put), ms(percentile(after_put, 0.5)), ms(percentile(after_put, 0.99)),
        woken ? ms(after_put.back()) : 0.0, ms(last_after_resp), ms(t_sent - t0), ms(agent_cpu), ms(tool_cpu));
    std::fflush(stdout);
    co_return all_woken&& all_blocked ? 0 : 1;
}

// Raises RLIMIT_NOFILE to the hard limit (past it if the process may), and
// exits with a clear message if that cannot hold `need` descriptors.
void raise_nofile(rlim_t need) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rlimit want = rl;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        want.rlim_cur = want.rlim_max = need;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;  // privileged: went past the hard limit
        want = rl;
    }
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
        std::fprintf(stderr, "pharos-watchers: setrlimit(RLIMIT_NOFILE, %lu): %s\n", (unsigned long)want.rlim_cur,
                     std::strerror(errno));
        std::exit(2);
    }
    if (want.rlim_cur != RLIM_INFINITY && want.rlim_cur < need) {
        std::fprintf(stderr,
                     "pharos-watchers: too few file descriptors: RLIMIT_NOFILE hard limit is %lu, but %lu watchers "
                     "need at least %lu.\n  Raise the hard limit (ulimit -Hn %lu, as root with CAP_SYS_RESOURCE; "
                     "LimitNOFILE= under systemd; --ulimit nofile= under docker) or lower -n.\n",
                     (unsigned long)rl.rlim_max, (unsigned long)(need - 256), (unsigned long)need, (unsigned long)need);
        std::exit(2);
    }
}

unsigned ephemeral_ports() {
    std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned lo = 32768, hi = 60999;
    f >> lo >> hi;
    return hi >= lo ? hi - lo + 1 : 28232;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    tools::flag_set f("pharos-watchers", "N blocking queries on one KV prefix, then one write (see the header of "
                                         "tools/loadgen/watchers.cc).");
    f.string("addr", o.addr, "agent HTTP address IP:PORT");
    f.number("n", o.n, "watchers", 1u, 100000000u);
    f.number("sources", o.sources, "source addresses 127.0.0.1..K (0: enough for the ephemeral port range)", 0u, 254u);
    f.string("prefix", o.prefix, "KV prefix watched");
    f.custom("wait", "DUR", "the ?wait= of each blocking query (at most 10m)", o.wait, [&o](std::string_view v) {
        if (!json::parse_go_duration(v)) return false;
        o.wait = std::string(v);
        return true;
    });
    f.number("shards", o.shards, "engine shards", 1u, 256u);
    f.duration("settle", o.settle, "no answer for this long after the last send: all are blocked");
    f.duration("timeout", o.timeout, "how long after the PUT's answer to wait for every watcher");
    f.number("concurrency", o.concurrency, "connects in flight, all shards", 1u, 100000000u);
    f.string("on-blocked", o.on_blocked, "a command (/bin/sh) to run once all are blocked");
    f.duration("linger", o.linger, "connections stay open this long at the end");
    f.number("agent-pid", o.agent_pid, "report this process's CPU time for the wake", 0, std::numeric_limits<int>::max());
    f.backend("backend", o.backend);
    f.parse(argc, argv);
    auto usage_error = [&f](const std::string& why) { f.fail(why); };
    try {
        while (!o.prefix.empty() && o.prefix.front() == '/') o.prefix.erase(0, 1);
        while (!o.prefix.empty() && o.prefix.back() == '/') o.prefix.pop_back();
        if (o.prefix.empty()) usage_error("-prefix must not be empty");

        plan p;
        auto to = tools::parse_ip_port(o.addr);
        if (!to) usage_error("bad -addr (IP:PORT): " + o.addr);
        p.to = *to;
        clock::duration wait = *json::parse_go_duration(o.wait);
        if (wait.count() == 0 || wait > std::chrono::minutes(10)) wait = std::chrono::minutes(10);
        p.read_limit = wait + wait / 16 + std::chrono::seconds(30);

        // Loopback: each source address has its own ephemeral port range towards one
        // destination. connect() searches that range for a free port, and the search
        // slows sharply as it fills (19,500 connects from one address: 50 s; from
        // four: 3 s), so by default each address carries at most 5,000.
        unsigned per_source = std::max(1u, std::min(5000u, ephemeral_ports() * 9 / 10));
        if (o.sources == 0) o.sources = (o.n + per_source - 1) / per_source;
        if (o.sources > 254) usage_error("-n needs more than 254 source addresses (127.0.0.1..127.0.0.254)");
        if ((o.n + o.sources - 1) / o.sources > ephemeral_ports())
            usage_error(std::to_string(o.n) + " watchers over " + std::to_string(o.sources) +
                        " source addresses exceed the " + std::to_string(ephemeral_ports()) +
                        " ephemeral ports of each; raise -sources");
        if (p.to.family() != AF_INET || p.to.ip().rfind("127.", 0) != 0)
            usage_error("-addr must be a 127.0.0.0/8 address (sources are spread over 127.0.0.x)");
        for (unsigned x = 1; x <= o.sources; ++x) {
            p.sources.push_back(socket_address::parse("127.0.0." + std::to_string(x), 0).value());
        }
        p.opt = o;

        raise_nofile(rlim_t(o.n) + 256);

        smp_config cfg;
        cfg.shards = o.shards;
        cfg.reactor.backend = o.backend;
        cfg.stall_threshold_ms = 0;
        smp group(cfg);
        return group.run([p] { return run(p); });
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pharos-watchers: %s\n", e.what());
        return 2;
    }
}
