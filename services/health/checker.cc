#include "checker.hh"

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>

#include "engine/log.hh"
#include "engine/reactor.hh"

namespace pharos::health {
using namespace engine;

namespace {
uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}
uint64_t result_hash(std::string_view st, std::string_view out) { return fnv1a(out, fnv1a(st) ^ 0x9e3779b97f4a7c15ull); }
constexpr double golden = 0.6180339887498949;
}  // namespace

// ---------- damping ----------

bool damper::admit(status r, int sbp, int fbw, int fbc, status& out) {
    if (fbw <= 0) fbw = fbc;  // Consul: FailuresBeforeWarning defaults to FailuresBeforeCritical
    if (r != status::critical) {
        if (successes < UINT16_MAX) ++successes;
        failures = 0;
        if (successes >= sbp) {
            out = r;
            return true;
        }
        return false;
    }
    successes = 0;
    if (failures < UINT16_MAX) ++failures;
    if (failures >= fbc) {
        out = status::critical;
        return true;
    }
    if (failures >= fbw) {
        out = status::warning;
        return true;
    }
    return false;
}

// ---------- lag ----------

void lag_histogram::add(int64_t ns) {
    double us = double(ns < 0 ? 0 : ns) / 1000.0;
    int b = us < 1 ? 0 : int(std::log2(us) * 4) + 1;
    if (b >= buckets) b = buckets - 1;
    ++count[b];
    ++total;
}
void lag_histogram::merge(const lag_histogram& o) {
    for (int i = 0; i < buckets; ++i) count[i] += o.count[i];
    total += o.total;
}
double lag_histogram::quantile_ms(double q) const {
    if (!total) return 0;
    uint64_t want = uint64_t(std::ceil(q * double(total)));
    uint64_t seen = 0;
    for (int i = 0; i < buckets; ++i) {
        seen += count[i];
        if (seen >= want && count[i]) return i == 0 ? 0.001 : std::exp2(double(i) / 4.0) / 1000.0;
    }
    return std::exp2(double(buckets - 1) / 4.0) / 1000.0;
}
void checker_stats::merge(const checker_stats& o) {
    checks += o.checks;
    probes += o.probes;
    changes += o.changes;
    batches += o.batches;
    lag.merge(o.lag);
}

// ---------- checker ----------

// What a running check keeps: only what its runs read, the rarely used parts
// out of line, so that an idle check costs little (see README.md).
//
// A waiting check is this entry and its timer node in the shard's timer heap:
// no coroutine. The timer spawns run_once (probe, report, re-arm), whose frame
// lives only while the probe runs.
struct checker::entry : std::enable_shared_from_this<checker::entry> {
    explicit entry(checker* c) : owner(c) {}
    entry(const entry&) = delete;
    ~entry() {
        if (timer.armed()) this_reactor().cancel_timer(&timer);
    }
    struct rare {  // script, gRPC, H2PING and alias checks
        std::vector<std::string> args;
        std::string alias_node, alias_service;
        std::string tls_server_name;
        bool tls_skip_verify = false;
        bool grpc_use_tls = false;
        std::unique_ptr<cancel_source> alias_cancel;  // alias: its coroutine's, for remove()
    };
    std::string id;
    uint64_t generation = 0;
    int64_t interval_ns = 0, timeout_ns = 0;
    uint64_t reported = 0;  // hash of the status and output the sink has
    std::shared_ptr<const http_target> http;  // http
    catalog::cstr address;                    // tcp, udp, grpc, h2ping
    std::unique_ptr<rare> more;               // null for HTTP, TCP and UDP checks
    checker* owner;
    timer_node timer;                // armed while waiting; `when` is the scheduled start of the next run
    cancel_source* running = nullptr;  // the run's (in its frame) while a probe runs; remove() cancels it
    damper damp;
    uint32_t output_max = 0;
    int16_t success_before_passing = 0, failures_before_warning = 0, failures_before_critical = 0;
    kind k = kind::http;
    bool removed = false;  // by remove() or stop(): a run not yet started does not start
};

checker::checker(sink* s, unsigned sink_shard, sharded<state::service>* st, std::string local_node)
    : sink_(s), sink_shard_(sink_shard), st_(st), local_node_(std::move(local_node)) {
    std::random_device rd;
    phase_ = double(rd() % 1000003) / 1000003.0;
}

unsigned checker::shard_for(std::string_view id, unsigned shards) noexcept {
    return shards <= 1 ? 0 : unsigned(fnv1a(id) % shards);
}

task<void> checker::stop() {
    cancel_.request_cancel();
    checks_.clear();
    co_await gate_.close();
}

deadline checker::first_start(int64_t interval_ns) {
    phase_ += golden;
    if (phase_ >= 1) phase_ -= 1;
    return clock::now() + std::chrono::nanoseconds(int64_t(phase_ * double(interval_ns)));
}

void checker::add(check_spec spec) {
    remove(spec.id);
    if (gate_.closing()) return;
    auto e = std::make_shared<entry>(this);
    e->id = std::move(spec.id);
    e->generation = spec.generation;
    e->k = spec.k;
    e->interval_ns = std::max<int64_t>(spec.interval_ns, 1'000'000'000);
    e->timeout_ns = spec.timeout_ns > 0 ? spec.timeout_ns : spec.k == kind::script ? 30'000'000'000 : 10'000'000'000;
    e->output_max = uint32_t(spec.output_max == 0 || spec.output_max > UINT32_MAX ? 4096 : spec.output_max);
    auto small = [](int v) { return int16_t(std::clamp(v, -32768, 32767)); };  // counts of consecutive results
    e->success_before_passing = small(spec.success_before_passing);
    e->failures_before_warning = small(spec.failures_before_warning);
    e->failures_before_critical = small(spec.failures_before_critical);
    e->reported = result_hash(spec.status, spec.output);
    if (spec.k == kind::http) e->http = prepare_http(spec.http);
    if (spec.k == kind::tcp || spec.k == kind::udp || spec.k == kind::grpc || spec.k == kind::h2ping)
        e->address = std::string_view(spec.address);
    if (spec.k == kind::script || spec.k == kind::grpc || spec.k == kind::h2ping || spec.k == kind::alias) {
        entry::rare m;
        m.args = std::move(spec.args);
        m.alias_node = std::move(spec.alias_node);
        m.alias_service = std::move(spec.alias_service);
        m.tls_server_name = std::move(spec.http.tls_server_name);
        m.tls_skip_verify = spec.http.tls_skip_verify;
        m.grpc_use_tls = spec.grpc_use_tls;
        if (spec.k == kind::alias) m.alias_cancel = std::make_unique<cancel_source>(&cancel_);
        e->more = std::make_unique<entry::rare>(std::move(m));
    }
    checks_[e->id] = e;
    ++stats_.checks;
    if (e->k == kind::alias) {
        e->running = e->more->alias_cancel.get();
        this_reactor().spawn(run_alias(e).with_cancel(e->running));
        return;
    }
    arm(*e, first_start(e->interval_ns));
}

void checker::arm(entry& e, deadline when) {
    e.timer.when = when;
    e.timer.ctx = &e;
    e.timer.fire = [](timer_node* n) {
        // Armed only while the entry is alive (its destructor disarms it) and
        // not running; removed or stopping: no run.
        auto* self = static_cast<entry*>(n->ctx);
        checker* c = self->owner;
        if (self->removed || c->gate_.closing()) return;
        this_reactor().spawn(c->run_once(self->shared_from_this()));
    };
    this_reactor().add_timer(&e.timer);
}

void checker::remove(std::string_view id) {
    auto it = checks_.find(id);
    if (it == checks_.end()) return;
    it->second->removed = true;
    if (it->second->running) it->second->running->request_cancel();
    checks_.erase(it);
    --stats_.checks;
}

task<probe_result> checker::probe(entry& e, deadline dl) {
    switch (e.k) {
        case kind::http: co_return co_await probe_http(e.http, e.output_max, dl);
        case kind::tcp: co_return co_await probe_tcp(e.address.str(), dl);
        case kind::udp: co_return co_await probe_udp(e.address.str(), dl);
        case kind::script: co_return co_await probe_script(e.more->args, e.output_max, e.timeout_ns, dl);
        case kind::grpc: co_return co_await probe_grpc(e.address.str(), e.more->grpc_use_tls, e.more->tls_server_name,
                                                       e.more->tls_skip_verify, dl);
        case kind::h2ping: co_return co_await probe_h2ping(e.address.str(), e.more->grpc_use_tls,
                                                           e.more->tls_server_name, e.more->tls_skip_verify, dl);
        case kind::alias: break;
    }
    probe_result r;
    r.output = "unsupported check type";
    co_return r;
}

task<void> checker::run_once(std::shared_ptr<entry> e) {
    gate::holder g(gate_);
    if (!g || e->removed || cancel_.requested()) co_return;
    cancel_source src(&cancel_);  // cancelled by remove() and stop(): the probe's I/O ends at once
    e->running = &src;
    deadline scheduled = e->timer.when;
    deadline start = clock::now();
    stats_.lag.add((start - scheduled).count());
    ++stats_.probes;
    task<probe_result> p = probe(*e, start + std::chrono::nanoseconds(e->timeout_ns));
    probe_result r = co_await std::move(p).with_cancel(&src);
    e->running = nullptr;
    if (src.requested() || e->removed) co_return;
    report(*e, std::move(r));
    const auto interval = std::chrono::nanoseconds(e->interval_ns);
    deadline next = scheduled + interval;
    deadline now = clock::now();
    if (next <= now) {  // the probe overran whole intervals: keep the phase, skip the missed runs
        auto behind = (now - next) / interval + 1;
        next += behind * interval;
    }
    arm(*e, next);
}

task<void> checker::run_alias(std::shared_ptr<entry> e) {
    gate::holder g(gate_);
    if (!g || !st_) co_return;
    std::string node = e->more->alias_node.empty() ? local_node_ : e->more->alias_node;
    for (;;) {
        // Registered before reading the snapshot, so no write in between is missed.
        state::watcher w(st_->local().hub(), state::topic::node, node);
        ++stats_.probes;
        report(*e, alias_status(*e, node));
        int r = co_await w.wait(no_deadline);
        if (r == -ECANCELED || e->removed || st_->local().stopping()) break;
    }
}

// Consul's CheckAlias: node-level checks and the aliased service's checks;
// the first critical wins, else any warning, else passing. Other alias checks
// are left out (two node-level aliases on one node would otherwise loop).
probe_result checker::alias_status(const entry& e, const std::string& node) const {
    const state::snapshot& snap = st_->local().read();
    const std::string& svc = e.more->alias_service;
    probe_result r;
    r.st = status::passing;
    r.output = "No checks found.";
    bool done = false;
    snap.catalog.for_each_node_check(node, [&](const catalog::check& c) {
        // Never itself nor another alias: aliases of aliases would feed each other's output.
        if (done || (c.check_id == e.id && node == local_node_) || c.type == "alias") return;
        if (!c.service_id.empty() && c.service_id != svc) return;
        if (c.status == "critical" || c.status == "warning") {
            r.st = c.status == "critical" ? status::critical : status::warning;
            r.output = "Aliased check \"" + c.name + "\" failing: " + c.output;
            done = r.st == status::critical;
        } else if (r.st == status::passing) {
            r.output = "All checks passing.";
        }
    });
    if (!svc.empty() && !snap.catalog.get_service(node, svc)) {
        r.st = status::critical;
        r.output = "Service " + svc + " could not be found on node " + node;
    }
    return r;
}

void checker::report(entry& e, probe_result r) {
    status st = r.st;
    if (e.k != kind::alias &&
        !e.damp.admit(r.st, e.success_before_passing, e.failures_before_warning, e.failures_before_critical, st))
        return;
    const char* name = status_name(st);
    uint64_t h = result_hash(name, r.output);
    if (h == e.reported) return;
    e.reported = h;
    update u;
    u.id = e.id;
    u.generation = e.generation;
    u.status = name;
    u.output = std::move(r.output);
    pending_.push_back(std::move(u));
    ++stats_.changes;
    if (!flushing_) {
        flushing_ = true;
        this_reactor().spawn(flush());
    }
}

task<void> checker::flush() {
    gate::holder g(gate_);
    if (!g) {
        flushing_ = false;
        co_return;
    }
    co_await sleep_for(flush_window_);
    while (!pending_.empty()) {
        std::vector<update> batch = std::move(pending_);
        pending_.clear();
        ++stats_.batches;
        sink* s = sink_;
        auto fn = [s, batch = std::move(batch)]() mutable { return s->deliver(std::move(batch)); };
        co_await submit_to(sink_shard_, std::move(fn));
    }
    flushing_ = false;
}

}  // namespace pharos::health
