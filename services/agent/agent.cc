#include "agent.hh"

#include <algorithm>
#include <cstdio>

#include "engine/log.hh"
#include "services/agent/gossip.hh"

namespace pharos::agent {
using namespace engine;

namespace {
constexpr const char* node_maint_id = "_node_maintenance";
constexpr const char* service_maint_prefix = "_service_maintenance:";
constexpr const char* default_node_maint_reason =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";
constexpr const char* default_service_maint_reason =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace

std::string advertise_address(const config& c) {
    if (!c.advertise_addr.empty()) return c.advertise_addr;
    if (c.bind_addr.empty() || c.bind_addr == "0.0.0.0" || c.bind_addr == "::") return "127.0.0.1";
    return c.bind_addr;
}

struct agent::ttl_timer {
    deadline expires = no_deadline;
    bool stop = false;
    wait_slot slot;
};

agent::agent(config cfg, sharded<state::service>* st) : cfg_(std::move(cfg)), st_(st) {
    started_ = std::chrono::system_clock::now();
}

catalog::register_request agent::node_registration() const {
    catalog::register_request r;
    r.n.id = cfg_.node_id;
    r.n.name = cfg_.node_name;
    r.n.address = advertise_address(cfg_);
    r.n.datacenter = cfg_.datacenter;
    r.n.tagged_addresses = {{"lan", r.n.address}, {"lan_ipv4", r.n.address}, {"wan", r.n.address},
                            {"wan_ipv4", r.n.address}};
    r.n.meta.emplace_back("consul-network-segment", "");
    for (auto& [k, v] : cfg_.node_meta) r.n.meta.emplace_back(k, v);
    std::sort(r.n.meta.begin(), r.n.meta.end());
    return r;
}

task<outcome> agent::write(state::command c) {
    auto res = co_await st_->local().write(std::move(c));
    if (!res.error.empty()) co_return failure{500, res.error};
    co_return std::nullopt;
}

task<void> agent::start() {
    catalog::register_request r = node_registration();
    catalog::check serf;
    serf.check_id = "serfHealth";
    serf.name = "Serf Health Status";
    serf.status = "passing";
    serf.output = "Agent alive and reachable";
    r.checks.push_back(serf);
    if (cfg_.server) {
        catalog::service s;
        s.id = "consul";
        s.name = "consul";
        s.port = cfg_.ports.server;
        s.meta = {{"non_voter", "false"},         {"raft_version", "3"},           {"read_replica", "false"},
                  {"serf_protocol_current", "2"}, {"serf_protocol_max", "5"},      {"serf_protocol_min", "1"},
                  {"version", "1.17.0"}};
        r.svc = s;
    }
    auto out = co_await write(std::move(r));
    if (out) log(log_level::error, "agent: registering the local node failed: %s", out->message.c_str());
    co_await checker_.start(static_cast<health::sink*>(this), this_shard(), st_, cfg_.node_name);
    checker_started_ = true;
    this_reactor().spawn(reap_loop().with_cancel(&reaper_cancel_));
}

task<void> agent::stop() {
    reaper_cancel_.request_cancel();
    if (checker_started_) {
        checker_started_ = false;
        co_await checker_.stop();  // no probe result arrives after this
    }
    for (auto& [id, t] : ttl_) {
        t->stop = true;
        t->slot.notify();
    }
    for (auto* w : local_waiters_) w->notify();
    for (auto* w : event_waiters_) w->notify();
    co_await gate_.close();
}

task<void> agent::leave(deadline dl) {
    left_ = true;
    if (gossip_) co_await gossip_->leave(dl);
}

const catalog::service* agent::find_service(const std::string& id) const {
    auto it = services_.find(id);
    return it == services_.end() ? nullptr : &it->second;
}

std::string agent::content_hash(const catalog::service& s) const {
    uint64_t h = fnv1a(s.id);
    h = fnv1a(s.name, h);
    h = fnv1a(s.kind, h);
    for (auto& t : s.tags) h = fnv1a(t, fnv1a("\x01", h));
    h = fnv1a(s.address, h);
    h = fnv1a(std::to_string(s.port), h);
    for (auto& [k, v] : s.meta) h = fnv1a(v, fnv1a(k, fnv1a("\x02", h)));
    for (auto& [k, a] : s.tagged_addresses) h = fnv1a(std::to_string(a.port), fnv1a(a.address, fnv1a(k, h)));
    h = fnv1a(std::to_string(s.weight_passing) + "/" + std::to_string(s.weight_warning), h);
    h = fnv1a(s.enable_tag_override ? "t" : "f", h);
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
    return buf;
}

void agent::wake_all(std::vector<wait_slot*>& waiters) {
    auto woken = std::move(waiters);
    waiters.clear();
    for (auto* w : woken) w->notify();
}

void agent::local_changed() { wake_all(local_waiters_); }

task<bool> agent::wait_in(std::vector<wait_slot*>& waiters, deadline dl) {
    gate::holder g(gate_);
    if (!g) co_return false;
    wait_slot slot;
    waiters.push_back(&slot);
    co_await slot.wait(dl);
    auto it = std::find(waiters.begin(), waiters.end(), &slot);
    if (it != waiters.end()) waiters.erase(it);
    co_return !gate_.closing();
}

task<bool> agent::wait_local_change(deadline dl) { return wait_in(local_waiters_, dl); }

task<outcome> agent::register_service(catalog::service s, std::vector<check_definition> checks,
                                      bool replace_existing_checks) {
    if (s.name.empty()) co_return failure{400, "Validation failed: Missing service name"};
    if (s.id.empty()) s.id = s.name;
    if (s.weight_passing <= 0) co_return failure{400, "Validation failed: Passing must be greater than 0"};
    s.node = cfg_.node_name;
    for (auto& c : checks) {
        if (auto refused = script_refused(c)) co_return *refused;
        if (c.row.status.empty()) c.row.status = "critical";
        if (!catalog::valid_status(c.row.status)) co_return failure{400, "Invalid check status: '" + c.row.status + "'"};
        c.row.service_id = s.id;
        c.row.node = cfg_.node_name;
    }
    // Checks of this service that the new registration drops.
    std::vector<std::string> stale;
    if (replace_existing_checks) {
        for (auto& [id, c] : checks_) {
            bool kept = std::any_of(checks.begin(), checks.end(),
                                    [&](const check_definition& n) { return n.row.check_id == id; });
            if (c.row->service_id == s.id && !kept && id.rfind(service_maint_prefix, 0) != 0) stale.push_back(id);
        }
    }
    catalog::register_request r = node_registration();
    r.svc = s;
    for (auto& c : checks) {
        // A re-registered check keeps its current status unless the request sets one.
        auto it = checks_.find(c.row.check_id);
        if (it != checks_.end() && !c.status_given) {
            c.row.status = it->second.row->status;
            c.row.output = it->second.row->output;
        }
        r.checks.push_back(c.row);
    }
    if (auto f = co_await write(std::move(r))) co_return f;
    for (auto& id : stale) co_await deregister_check(id);
    services_[s.id] = s;
    std::vector<std::string> ids;
    for (auto& c : checks) {
        c.row.service_name = s.name;
        c.row.service_tags = s.tags;
        std::string id = c.row.check_id;
        int64_t ttl = c.ttl_ns;
        local_check lc = make_local(std::move(c));
        share_row(lc);
        auto old = checks_.find(id);
        if (old != checks_.end() && old->second.row->status == lc.row->status)
            lc.critical_since = old->second.critical_since;
        note_status(lc);
        checks_[id] = std::move(lc);
        if (ttl > 0) arm_ttl(id, ttl);
        ids.push_back(id);
    }
    for (auto& id : ids) co_await sync_probe(id);
    local_changed();
    co_return std::nullopt;
}

task<outcome> agent::deregister_service(std::string id) {
    if (!services_.count(id)) co_return std::nullopt;  // Consul: a no-op (logged), 200
    catalog::deregister_request d;
    d.node = cfg_.node_name;
    d.service_id = id;
    if (auto f = co_await write(std::move(d))) co_return f;
    services_.erase(id);
    std::vector<std::string> gone;
    for (auto it = checks_.begin(); it != checks_.end();) {
        if (it->second.row->service_id == id) {
            disarm_ttl(it->first);
            gone.push_back(it->first);
            it = checks_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& g : gone) co_await sync_probe(g);
    local_changed();
    co_return std::nullopt;
}

task<outcome> agent::service_maintenance(std::string id, bool enable, std::string reason) {
    const catalog::service* s = find_service(id);
    if (!s) co_return failure{404, "Unknown service ID \"" + id + "\""};
    std::string check_id = service_maint_prefix + id;
    if (!enable) {
        if (!checks_.count(check_id)) co_return std::nullopt;
        co_return co_await deregister_check(check_id);
    }
    if (checks_.count(check_id)) co_return std::nullopt;
    check_definition c;
    c.row.check_id = check_id;
    c.row.name = "Service Maintenance Mode";
    c.row.notes = reason.empty() ? default_service_maint_reason : reason;
    c.row.service_id = id;
    c.row.status = "critical";
    c.row.type = "maintenance";
    c.status_given = true;
    co_return co_await register_check(std::move(c));
}

task<outcome> agent::node_maintenance(bool enable, std::string reason) {
    if (!enable) {
        if (!checks_.count(node_maint_id)) co_return std::nullopt;
        co_return co_await deregister_check(node_maint_id);
    }
    if (checks_.count(node_maint_id)) co_return std::nullopt;
    check_definition c;
    c.row.check_id = node_maint_id;
    c.row.name = "Node Maintenance Mode";
    c.row.notes = reason.empty() ? default_node_maint_reason : reason;
    c.row.status = "critical";
    c.row.type = "maintenance";
    c.status_given = true;
    co_return co_await register_check(std::move(c));
}

task<outcome> agent::register_check(check_definition c) {
    if (c.row.name.empty()) co_return failure{400, "Missing check name"};
    if (auto refused = script_refused(c)) co_return *refused;
    if (c.row.check_id.empty()) c.row.check_id = c.row.name;
    if (c.row.status.empty()) c.row.status = "critical";
    if (!catalog::valid_status(c.row.status)) co_return failure{400, "Bad check status"};
    c.row.node = cfg_.node_name;
    if (!c.row.service_id.empty()) {
        const catalog::service* s = find_service(c.row.service_id);
        if (!s) co_return failure{404, "ServiceID \"" + c.row.service_id + "\" does not exist"};
        c.row.service_name = s->name;
        c.row.service_tags = s->tags;
    }
    auto it = checks_.find(c.row.check_id);
    if (it != checks_.end() && !c.status_given) {
        c.row.status = it->second.row->status;
        c.row.output = it->second.row->output;
    }
    catalog::register_request r = node_registration();
    r.checks.push_back(c.row);
    if (auto f = co_await write(std::move(r))) co_return f;
    std::string id = c.row.check_id;
    int64_t ttl = c.ttl_ns;
    local_check lc = make_local(std::move(c));
    share_row(lc);
    if (auto prev = checks_.find(id); prev != checks_.end() && prev->second.row->status == lc.row->status)
        lc.critical_since = prev->second.critical_since;
    note_status(lc);
    checks_[id] = std::move(lc);
    if (ttl > 0)
        arm_ttl(id, ttl);
    else
        disarm_ttl(id);
    co_await sync_probe(id);
    local_changed();
    co_return std::nullopt;
}

task<outcome> agent::deregister_check(std::string id) {
    if (!checks_.count(id)) co_return failure{404, "Unknown check ID \"" + id + "\". Ensure that the check ID is passed, not the check name."};
    catalog::deregister_request d;
    d.node = cfg_.node_name;
    d.check_id = id;
    if (auto f = co_await write(std::move(d))) co_return f;
    checks_.erase(id);
    disarm_ttl(id);
    co_await sync_probe(id);
    local_changed();
    co_return std::nullopt;
}

task<outcome> agent::update_ttl(std::string id, std::string status, std::string output) {
    auto it = checks_.find(id);
    if (it == checks_.end()) co_return failure{404, "Unknown check ID \"" + id + "\". Ensure that the check ID is passed, not the check name."};
    if (it->second.ttl_ns <= 0) co_return failure{500, "CheckID \"" + id + "\" does not have associated TTL"};
    if (!catalog::valid_status(status) || status == "maintenance")
        co_return failure{400, "Invalid check status: '" + status + "'"};
    int max = it->second.output_max_size > 0 ? it->second.output_max_size : cfg_.check_output_max_size;
    if (max > 0 && output.size() > size_t(max))
        output = output.substr(0, size_t(max)) + " ... (captured " + std::to_string(max) + " of " +
                 std::to_string(output.size()) + " bytes)";
    arm_ttl(id, it->second.ttl_ns);
    if (it->second.row->status != status || it->second.row->output != output) {
        state::check_update u;
        u.node = cfg_.node_name;
        u.check_id = id;
        u.status = status;
        u.output = output;
        if (auto f = co_await write(std::move(u))) co_return f;
        it = checks_.find(id);
        if (it != checks_.end()) {
            set_result(it->second, std::move(status), std::move(output));
            share_row(it->second);
            note_status(it->second);
        }
        local_changed();
    }
    co_return std::nullopt;
}

void agent::arm_ttl(const std::string& id, int64_t ttl_ns) {
    auto& t = ttl_[id];
    deadline when = clock::now() + std::chrono::nanoseconds(ttl_ns);
    if (!t) {
        t = std::make_shared<ttl_timer>();
        t->expires = when;
        this_reactor().spawn(run_ttl(id, t));
        return;
    }
    t->expires = when;
    t->slot.notify();
}

void agent::disarm_ttl(const std::string& id) {
    auto it = ttl_.find(id);
    if (it == ttl_.end()) return;
    it->second->stop = true;
    it->second->slot.notify();
    ttl_.erase(it);
}

// One coroutine per TTL check: sleeps until the check's expiry, which updates
// move forward; on expiry the check turns critical with Consul's output.
task<void> agent::run_ttl(std::string id, std::shared_ptr<ttl_timer> t) {
    gate::holder g(gate_);
    if (!g) co_return;
    while (!t->stop) {
        int r = co_await t->slot.wait(t->expires);
        if (t->stop || r == -ECANCELED) break;
        if (r == 0) continue;  // re-armed or stopped: look again
        if (clock::now() < t->expires) continue;
        auto it = checks_.find(id);
        if (it == checks_.end()) break;
        std::string out = "TTL expired";
        if (!it->second.row->output.empty() && it->second.row->status != "critical")
            out += " (last output before timeout follows): " + it->second.row->output;
        if (it->second.row->status != "critical" || it->second.row->output != out) {
            state::check_update u;
            u.node = cfg_.node_name;
            u.check_id = id;
            u.status = "critical";
            u.output = out;
            co_await write(std::move(u));
            it = checks_.find(id);
            if (it != checks_.end()) {
                set_result(it->second, "critical", std::move(out));
                share_row(it->second);
                note_status(it->second);
            }
            local_changed();
        }
        t->expires = no_deadline;
    }
}

// ---------- probes ----------

void agent::note_status(local_check& c) {
    if (c.row->status != "critical")
        c.critical_since = clock::time_point{};
    else if (c.critical_since == clock::time_point{})
        c.critical_since = clock::now();
}

local_check agent::make_local(check_definition&& c) {
    local_check lc;
    lc.row = std::make_shared<const catalog::check>(std::move(c.row));
    if (!c.args.empty() || !c.alias_node.empty() || !c.alias_service.empty() || !c.h2ping.empty()) {
        local_check::probe_fields p;
        p.args = std::move(c.args);
        p.alias_node = std::move(c.alias_node);
        p.alias_service = std::move(c.alias_service);
        p.h2ping = std::move(c.h2ping);
        p.h2ping_use_tls = c.h2ping_use_tls;
        lc.probe = std::make_unique<const local_check::probe_fields>(std::move(p));
    }
    lc.ttl_ns = c.ttl_ns;
    lc.output_max_size = c.output_max_size;
    lc.success_before_passing = c.success_before_passing;
    lc.failures_before_warning = c.failures_before_warning;
    lc.failures_before_critical = c.failures_before_critical;
    return lc;
}

void agent::share_row(local_check& c) const {
    const catalog::check& mine = *c.row;
    std::shared_ptr<const catalog::check> cat = st_->local().read().catalog.check_row(mine.node, mine.check_id);
    if (cat && cat != c.row && catalog::same_check(*cat, mine)) c.row = std::move(cat);
}

void agent::set_result(local_check& c, std::string status, std::string output) {
    catalog::check row = *c.row;
    row.status = std::move(status);
    row.output = std::move(output);
    row.create_index = row.modify_index = 0;
    c.row = std::make_shared<const catalog::check>(std::move(row));
}

std::optional<failure> agent::script_refused(const check_definition& c) const {
    if (c.args.empty()) return std::nullopt;
    if (c.from_config) {
        if (cfg_.enable_script_checks || cfg_.enable_local_script_checks) return std::nullopt;
        return failure{400, "Invalid check: Scripts are disabled on this agent; to enable, configure "
                            "'enable_script_checks' or 'enable_local_script_checks' to true"};
    }
    if (cfg_.enable_script_checks) return std::nullopt;
    return failure{400, "Invalid check: Scripts are disabled on this agent from remote calls; to enable, configure "
                        "'enable_script_checks' to true"};
}

namespace {
// The probe a check runs, if any. Docker and OSService are stored, not run.
std::optional<health::kind> probe_kind(const local_check& c) {
    std::string_view t = c.row->type;
    if (t == "http") return health::kind::http;
    if (t == "tcp") return health::kind::tcp;
    if (t == "udp") return health::kind::udp;
    if (t == "grpc") return health::kind::grpc;
    if (t == "h2ping") return health::kind::h2ping;
    if (t == "script") return health::kind::script;
    if (t == "alias") return health::kind::alias;
    return std::nullopt;
}
}  // namespace

task<void> agent::sync_probe(std::string id) {
    if (!checker_started_) co_return;
    unsigned shard = health::checker::shard_for(id, checker_.size());
    auto it = checks_.find(id);
    std::optional<health::kind> k;
    if (it != checks_.end()) k = probe_kind(it->second);
    if (!k) {
        auto rm = [id](health::checker& c) { c.remove(id); };
        co_await checker_.invoke_on(shard, std::move(rm));
        co_return;
    }
    local_check& c = it->second;
    c.generation = ++generation_;
    const catalog::check_definition& d = c.row->def();
    health::check_spec spec;
    spec.id = id;
    spec.generation = c.generation;
    spec.k = *k;
    spec.http.url = d.http;
    spec.http.method = d.method;
    spec.http.header = d.header;
    spec.http.body = d.body;
    spec.http.tls_server_name = d.tls_server_name;
    spec.http.tls_skip_verify = d.tls_skip_verify;
    spec.address = *k == health::kind::tcp ? d.tcp : *k == health::kind::udp ? d.udp : d.grpc;
    spec.grpc_use_tls = d.grpc_use_tls;
    if (c.probe) {
        spec.args = c.probe->args;
        spec.alias_node = c.probe->alias_node;
        spec.alias_service = c.probe->alias_service;
        if (*k == health::kind::h2ping) {
            spec.address = c.probe->h2ping;
            spec.grpc_use_tls = c.probe->h2ping_use_tls;
        }
    }
    spec.interval_ns = d.interval_ns;
    spec.timeout_ns = d.timeout_ns;
    int max = c.output_max_size > 0 ? c.output_max_size : cfg_.check_output_max_size;
    spec.output_max = size_t(max > 0 ? max : 4096);
    spec.success_before_passing = c.success_before_passing;
    spec.failures_before_warning = c.failures_before_warning;
    spec.failures_before_critical = c.failures_before_critical;
    spec.status = c.row->status;
    spec.output = c.row->output;
    auto add = [spec = std::move(spec)](health::checker& ch) mutable { ch.add(std::move(spec)); };
    co_await checker_.invoke_on(shard, std::move(add));
}

task<void> agent::deliver(std::vector<health::update> batch) {
    state::check_updates cmd;
    std::vector<std::string> ids;  // the checks changed, to share their new rows after the write
    for (auto& u : batch) {
        auto it = checks_.find(u.id);
        if (it == checks_.end() || it->second.generation != u.generation) continue;  // re-registered or gone
        const catalog::check& row = *it->second.row;
        if (row.status == u.status && row.output == u.output) continue;
        set_result(it->second, u.status, u.output);
        note_status(it->second);
        state::check_update cu;
        cu.node = cfg_.node_name;
        cu.check_id = u.id;
        cu.status = std::move(u.status);
        cu.output = std::move(u.output);
        cmd.updates.push_back(std::move(cu));
        ids.push_back(std::move(u.id));
    }
    if (cmd.updates.empty()) co_return;
    auto out = co_await write(std::move(cmd));
    if (out) log(log_level::warn, "agent: writing %s", out->message.c_str());
    for (auto& id : ids) {
        auto it = checks_.find(id);
        if (it != checks_.end()) share_row(it->second);
    }
    local_changed();
}

task<health::checker_stats> agent::health_stats() {
    health::checker_stats total;
    if (!checker_started_) co_return total;
    for (unsigned i = 0; i < checker_.size(); ++i) {
        auto get = [](health::checker& c) { return c.stats(); };
        health::checker_stats s = co_await checker_.invoke_on(i, get);
        total.merge(s);
    }
    co_return total;
}

// Consul's reaper: a service whose check (with DeregisterCriticalServiceAfter)
// has been critical for that long (at least a minute) is deregistered.
task<void> agent::reap_once() {
    clock::time_point now = clock::now();
    std::vector<std::string> doomed;
    for (auto& [id, c] : checks_) {
        int64_t after = c.row->def().deregister_critical_service_after_ns;
        if (after <= 0 || c.row->service_id.empty() || c.row->status != "critical") continue;
        if (c.critical_since == clock::time_point{}) continue;
        after = std::max<int64_t>(after, 60'000'000'000);
        if (now - c.critical_since >= std::chrono::nanoseconds(after)) doomed.push_back(c.row->service_id);
    }
    std::sort(doomed.begin(), doomed.end());
    doomed.erase(std::unique(doomed.begin(), doomed.end()), doomed.end());
    for (auto& sid : doomed) {
        log(log_level::info, "agent: check critical for too long: deregistering service %s", sid.c_str());
        co_await deregister_service(sid);
    }
}

task<void> agent::reap_loop() {
    gate::holder g(gate_);
    if (!g) co_return;
    for (;;) {
        auto slept = co_await sleep_for(std::chrono::seconds(30));
        if (!slept) co_return;
        co_await reap_once();
    }
}

agent::fired agent::fire_event(user_event e) {
    fired out;
    if (auto err = validate_event(e)) {
        out.error = failure{500, *err};
        return out;
    }
    e.id = random_uuid_v4();
    e.version = user_event_max_version;
    if (gossip_ && gossip_->gossiping()) {
        // Ingested here through the pool's local delivery (set_gossip), with the Serf LTime.
        if (auto err = gossip_->fire_event(e, &e.ltime)) out.error = failure{500, *err};
    } else {
        e.ltime = ++ltime_;
        ingest_event(e);
    }
    out.event = std::move(e);
    return out;
}

void agent::ingest_event(user_event e) {
    if (e.version > user_event_max_version)
        log(log_level::warn, "agent: event version %d may have unsupported features (%s)", e.version,
            e.name.c_str());
    if (!should_process(e, cfg_.node_name, services_)) return;
    if (e.name == "_rexec") {  // Consul's remote exec: not kept in the buffer (and not run here)
        log(log_level::info, "agent: ignoring remote exec event (%s): not supported", e.id.c_str());
        return;
    }
    events_.push_back(std::move(e));
    while (events_.size() > 256) events_.pop_front();
    wake_all(event_waiters_);
}

void agent::set_gossip(lan_gossip* g) {
    if (gossip_) gossip_->set_event_sink({});
    gossip_ = g;
    if (g) g->set_event_sink([this](user_event e) { ingest_event(std::move(e)); });
}

task<bool> agent::wait_event(deadline dl) { return wait_in(event_waiters_, dl); }

}  // namespace pharos::agent
