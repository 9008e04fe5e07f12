// agent::agent: the agent's local state, as Consul's agent keeps it: the
// services and checks registered through /v1/agent (with their definitions),
// TTL timers, node and service maintenance, the user-event buffer (fed by the
// LAN pool's Serf user events, see serf_events.hh), and the
// agent's own identity (self, members).
//
// It lives on the state owner shard; the API reaches it with submit_to. Every
// local change is written to the catalog through state::service in the same
// call (the agent and the server are one process here, so "anti-entropy" is
// immediate): the catalog is what /v1/catalog and /v1/health read.
//
// Probing checks (HTTP, TCP, UDP, script, gRPC, alias) run in health::checker,
// spread over every shard; their status changes come back here in batches
// (deliver) and go to the catalog as one check_updates command per batch. TTL
// checks run here. A reaper removes services whose check has been critical for
// longer than DeregisterCriticalServiceAfter (every 30 s, minimum 1 minute).
#pragma once
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/gate.hh"
#include "engine/io.hh"
#include "engine/task.hh"
#include "services/agent/config.hh"
#include "services/agent/serf_events.hh"
#include "services/catalog/store.hh"
#include "services/health/checker.hh"
#include "services/state/state.hh"

namespace pharos::agent {

// A check as a registration request gives it: the catalog row plus what the runner needs.
struct check_definition {
    catalog::check row;  // node, service name and tags are filled by the agent
    int64_t ttl_ns = 0;
    std::vector<std::string> args;  // script checks
    std::string shell, docker_container_id, h2ping, alias_node, alias_service;
    bool h2ping_use_tls = true;
    int output_max_size = 0;
    int success_before_passing = 0, failures_before_warning = 0, failures_before_critical = 0;
    bool status_given = false;  // Status was in the request
    bool from_config = false;   // from a config file (enable_local_script_checks applies)
};

// A check as the agent keeps it once registered: small, the row shared.
struct local_check {
    // The row (status and output included). After each write of it, the
    // catalog's row itself when that is equal (Raft indexes aside), so the agent
    // and the catalog hold one row per check; else the agent's own copy.
    // Immutable: a change makes a new row. Rendered with indexes 0.
    std::shared_ptr<const catalog::check> row;
    struct probe_fields {
        std::vector<std::string> args;  // script checks
        std::string alias_node, alias_service;
        std::string h2ping;  // H2PING checks: host:port
        bool h2ping_use_tls = true;
    };
    std::unique_ptr<const probe_fields> probe;  // script, alias and H2PING checks only
    int64_t ttl_ns = 0;
    int output_max_size = 0;
    int success_before_passing = 0, failures_before_warning = 0, failures_before_critical = 0;
    uint64_t generation = 0;                     // numbers each start of its probe
    engine::clock::time_point critical_since{};  // zero unless critical
};

// An error with the HTTP status Consul answers.
struct failure {
    unsigned status = 500;
    std::string message;
};
using outcome = std::optional<failure>;  // nullopt: done

// The address the agent advertises: -advertise, else -bind unless it is a
// wildcard, else 127.0.0.1.
std::string advertise_address(const config& c);

class lan_gossip;

class agent final : public health::sink {
public:
    agent(config cfg, engine::sharded<state::service>* st);
    agent(const agent&) = delete;
    // Registers the agent's node, its serfHealth check and (on servers) the consul service.
    engine::task<void> start();
    // Stops the TTL timers and wakes hash-blocked readers.
    engine::task<void> stop();

    const config& cfg() const noexcept { return cfg_; }
    const std::string& node_name() const noexcept { return cfg_.node_name; }
    std::chrono::system_clock::time_point started() const noexcept { return started_; }

    // --- services ---
    engine::task<outcome> register_service(catalog::service s, std::vector<check_definition> checks,
                                           bool replace_existing_checks);
    engine::task<outcome> deregister_service(std::string id);
    engine::task<outcome> service_maintenance(std::string id, bool enable, std::string reason);
    engine::task<outcome> node_maintenance(bool enable, std::string reason);
    const std::map<std::string, catalog::service>& services() const noexcept { return services_; }
    const catalog::service* find_service(const std::string& id) const;
    // Consul's ContentHash of a local service (hex, 16 digits).
    std::string content_hash(const catalog::service& s) const;
    // Waits until the local services or checks change, or `dl`. False once the
    // agent is stopping (callers stop waiting). Cancel safe.
    engine::task<bool> wait_local_change(engine::deadline dl);

    // --- checks ---
    engine::task<outcome> register_check(check_definition c);
    engine::task<outcome> deregister_check(std::string id);
    // pass / warn / fail / update of a TTL check.
    engine::task<outcome> update_ttl(std::string id, std::string status, std::string output);
    const std::map<std::string, local_check>& checks() const noexcept { return checks_; }

    // --- events ---
    // Consul's agent.UserEvent: validates `e`, gives it an ID and Version 1, and gossips it to the LAN
    // pool (Serf LTime), where every agent, this one included, ingests it if it passes the filters.
    // Without gossip it is ingested here with a local Lamport time. Errors: 500 with Consul's or Serf's
    // text (a bad filter, over 512 bytes).
    struct fired {
        outcome error;
        user_event event;
    };
    fired fire_event(user_event e);
    // Consul's handleEvents for one decoded event: kept (the newest 256) and blocked lists woken if it
    // passes the node/service/tag filters against this agent.
    void ingest_event(user_event e);
    const std::deque<user_event>& events() const noexcept { return events_; }
    engine::task<bool> wait_event(engine::deadline dl);  // as wait_local_change

    // --- probes ---
    // Status changes from the checkers (on this shard).
    engine::task<void> deliver(std::vector<health::update> batch) override;
    // Every shard's checker counters, summed.
    engine::task<health::checker_stats> health_stats();
    engine::sharded<health::checker>& checkers() noexcept { return checker_; }

    // Graceful leave: leaves the gossip pool (the dead-self message is sent, or `dl`) and marks the
    // member as left; the caller then shuts down. Cancel safe.
    engine::task<void> leave(engine::deadline dl);
    bool left() const noexcept { return left_; }

    // The LAN gossip pool (on this shard), or null when ports.serf_lan is -1. Set by the owner
    // after both started; cleared before the pool stops.
    // Also routes the pool's Consul events to ingest_event().
    void set_gossip(lan_gossip* g);
    lan_gossip* gossip() const noexcept { return gossip_; }

private:
    struct ttl_timer;
    catalog::register_request node_registration() const;
    engine::task<outcome> write(state::command c);
    engine::task<void> run_ttl(std::string id, std::shared_ptr<ttl_timer> t);
    void arm_ttl(const std::string& id, int64_t ttl_ns);
    void disarm_ttl(const std::string& id);
    void local_changed();
    // Starts, restarts or stops the probe of check `id` to match checks_.
    engine::task<void> sync_probe(std::string id);
    engine::task<void> reap_loop();
    engine::task<void> reap_once();
    void note_status(local_check& c);
    // The record kept for registration `c` (its row still the agent's own).
    static local_check make_local(check_definition&& c);
    // After a write of `c.row`: shares the catalog's row if it is equal.
    void share_row(local_check& c) const;
    // Replaces c.row by a copy with `status` and `output`.
    static void set_result(local_check& c, std::string status, std::string output);
    std::optional<failure> script_refused(const check_definition& c) const;
    static void wake_all(std::vector<engine::wait_slot*>& waiters);
    // Waits on `waiters` until woken or `dl`; false once the agent is stopping.
    engine::task<bool> wait_in(std::vector<engine::wait_slot*>& waiters, engine::deadline dl);

    config cfg_;
    engine::sharded<state::service>* st_;
    std::chrono::system_clock::time_point started_;
    std::map<std::string, catalog::service> services_;
    std::map<std::string, local_check> checks_;
    std::map<std::string, std::shared_ptr<ttl_timer>> ttl_;
    std::deque<user_event> events_;
    uint64_t ltime_ = 0;
    std::vector<engine::wait_slot*> local_waiters_, event_waiters_;
    engine::gate gate_;
    bool left_ = false;
    lan_gossip* gossip_ = nullptr;
    engine::sharded<health::checker> checker_;
    bool checker_started_ = false;
    uint64_t generation_ = 0;
    engine::cancel_source reaper_cancel_;
};

}  // namespace pharos::agent
