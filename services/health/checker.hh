// health::checker: runs the agent's probing checks (HTTP, TCP, UDP, script,
// gRPC, alias). One instance per shard (sharded<checker>); a check lives on
// shard_for(id): between runs it is a small entry with a timer node in the
// shard's timer heap (no coroutine); at its start time the timer spawns one
// run, which probes with a deadline of start + Timeout, applies flap damping,
// queues a status change only when the status or output differs from what it
// last reported, and re-arms the timer. Each shard sends its queued changes to the sink (the agent) in one
// batch per flush window, so steady checks cost no writes at all.
//
// Start times: the first run of each check is at a phase within its interval
// taken from a per-shard low-discrepancy sequence (golden-ratio steps from a
// random start), so N checks with one interval start evenly spaced, never in
// bursts; later runs keep the cadence (start + k * Interval), skipping runs
// that a slow probe overran. Lag (actual start - scheduled start) is measured.
//
// Alias checks (AliasService / AliasNode) are coroutines too, but they wait on
// the shard's watch hub for writes touching the aliased node instead of a timer.
//
// Ownership: entries are shared between the shard's map and a running probe;
// remove() cancels the probe (its I/O ends at once), drops the map's reference
// and, with it, the armed timer. stop() cancels all and waits for every run.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gate.hh"
#include "engine/smp.hh"
#include "engine/task.hh"
#include "services/health/probe.hh"
#include "services/state/state.hh"

namespace pharos::health {

enum class kind : uint8_t { http, tcp, udp, script, grpc, alias, h2ping };

// What the agent hands over for one check.
struct check_spec {
    std::string id;
    uint64_t generation = 0;  // the agent's registration number: stale results are dropped
    kind k = kind::http;
    http_options http;        // http
    std::string address;      // tcp, udp, h2ping: host:port; grpc: host:port[/service]
    bool grpc_use_tls = false;  // and H2PingUseTLS
    std::vector<std::string> args;  // script
    std::string alias_node, alias_service;
    int64_t interval_ns = 10'000'000'000;
    int64_t timeout_ns = 0;  // 0: 10 s (30 s for scripts, as Consul's monitor)
    size_t output_max = 4096;
    int success_before_passing = 0, failures_before_warning = 0, failures_before_critical = 0;
    std::string status = "critical", output;  // as the catalog has it now
};

// A status change for the sink.
struct update {
    std::string id;
    uint64_t generation = 0;
    std::string status, output;
};

// Receives batches on its own shard (the one given to the checker).
class sink {
public:
    virtual engine::task<void> deliver(std::vector<update> batch) = 0;
    virtual ~sink() = default;
};

// Consul's StatusHandler: consecutive results needed before a transition.
struct damper {
    uint16_t successes = 0, failures = 0;
    // The status to report for a probe result, or false to ignore it.
    bool admit(status result, int success_before_passing, int failures_before_warning, int failures_before_critical,
               status& out);
};

// Lag histogram: buckets of 2^(i/4) microseconds.
struct lag_histogram {
    static constexpr int buckets = 96;
    uint64_t count[buckets] = {};
    uint64_t total = 0;
    void add(int64_t ns);
    void merge(const lag_histogram& o);
    double quantile_ms(double q) const;  // upper bound of the bucket holding quantile q
};

struct checker_stats {
    uint64_t checks = 0;
    uint64_t probes = 0;
    uint64_t changes = 0;  // updates queued
    uint64_t batches = 0;  // batches delivered
    lag_histogram lag;
    void merge(const checker_stats& o);
};

class checker {
public:
    // `s` lives on `sink_shard` and outlives the group. Alias checks read the
    // catalog from `st` (this shard's snapshot and watch hub); `local_node` is
    // the node an alias without AliasNode looks at.
    checker(sink* s, unsigned sink_shard, engine::sharded<state::service>* st = nullptr, std::string local_node = "");
    checker(const checker&) = delete;
    engine::task<void> stop();

    // The shard that runs check `id` among `shards`.
    static unsigned shard_for(std::string_view id, unsigned shards) noexcept;

    // On shard_for(spec.id): starts the check, replacing one with the same ID.
    void add(check_spec spec);
    // Stops check `id` (any generation). Its in-flight probe is cancelled.
    void remove(std::string_view id);
    const checker_stats& stats() const noexcept { return stats_; }
    size_t size() const noexcept { return checks_.size(); }

    // The flush window (default 10 ms). Tests may shorten it.
    void set_flush_window(engine::clock::duration d) { flush_window_ = d; }

private:
    struct entry;
    // Puts `e` in the timer heap for its next run at `when`.
    void arm(entry& e, engine::deadline when);
    // One run of `e` (spawned by its timer): probe, damp, report, re-arm.
    engine::task<void> run_once(std::shared_ptr<entry> e);
    // Alias checks: no probe; the worst status of the aliased node's (and
    // service's) checks, recomputed whenever a write touches that node.
    engine::task<void> run_alias(std::shared_ptr<entry> e);
    probe_result alias_status(const entry& e, const std::string& node) const;
    engine::task<probe_result> probe(entry& e, engine::deadline dl);
    void report(entry& e, probe_result r);
    engine::task<void> flush();
    engine::deadline first_start(int64_t interval_ns);

    sink* sink_;
    unsigned sink_shard_;
    engine::sharded<state::service>* st_;
    std::string local_node_;
    std::unordered_map<std::string_view, std::shared_ptr<entry>> checks_;  // keys: the entries' own IDs
    std::vector<update> pending_;
    bool flushing_ = false;
    engine::clock::duration flush_window_ = std::chrono::milliseconds(10);
    double phase_;  // low-discrepancy sequence state in [0, 1)
    checker_stats stats_;
    engine::cancel_source cancel_;
    engine::gate gate_;
};

}  // namespace pharos::health
