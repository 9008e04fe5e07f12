// agent::lan_gossip: the agent's LAN gossip pool, a thin Serf over the
// memberlist engine, and Consul's leader reconcile of members into the catalog.
//
// - serf_table: Serf's member list on top of memberlist's events. memberlist
//   forgets dead nodes after 30 s; Serf keeps failed members until
//   reconnect_timeout (then reaps them) and left members for tombstone_timeout.
//   Status numbers are Serf's (0 none, 1 alive, 2 leaving, 3 left, 4 failed);
//   suspect counts as alive, dead as failed, a node that announced its own
//   death (or was leaving: it sent a leave intent first) as left. Force-leave: a failed member becomes left (or is erased with
//   prune), and a Serf leave intent carries it to the other members. Plain data.
// - reconcile(): Consul's leader reconcile (agent/consul/leader.go), as a pure
//   function from (catalog, members) to state commands. Only members whose tags
//   say they are Consul agents of this datacenter count (Consul's
//   shouldHandleMember; a plain memberlist peer is listed but not registered): alive → the node with a
//   passing serfHealth check (and the "consul" service for servers); failed →
//   serfHealth critical; left → node deregistered; a catalog node that has a
//   serfHealth check but is no longer a member (reaped) → deregistered. The
//   local node is never deregistered. Remote nodes' own services are not
//   registered (that is their agents' anti-entropy, not built).
// - lan_gossip: lives on the agent's shard (the state owner's shard, shard 0),
//   which is the gossip shard. It owns the net_node, the serf_table, and a task
//   that runs reconcile() after membership changes (all changes since the last
//   pass in one pass; failures as one check_updates command) and every
//   minute, writing through state::service like every other write. The API
//   reaches it through agent::agent (submit_to the agent's shard).
// - Gossip keyring: `encrypt`, or <data_dir>/serf/local.keyring when it exists
//   (it wins, as in Consul; with `encrypt` and no file, the file is created).
//   key_operation() is Serf's KeyManager over serf_queries (serf_query.hh):
//   every member applies the key query to its own ring and rewrites its file.
// - User events: a serf_events on the pool carries Consul's events
//   ("consul:event:*", serf_events.hh) to the agent (set_event_sink, same shard).
//   Every push/pull carries Serf's messagePushPull as memberlist's user state:
//   the member, event and query clocks and the recent events (merged as Serf;
//   a join() ignores the peers' past events, as Consul's joins do). Its
//   StatusLTimes and LeftMembers go empty and are not merged.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/cancel.hh"
#include "engine/gate.hh"
#include "engine/io.hh"
#include "engine/task.hh"
#include "protocols/gossip/keyring.hh"
#include "protocols/gossip/serf.hh"
#include "services/agent/config.hh"
#include "services/agent/serf_events.hh"
#include "services/agent/serf_query.hh"
#include "services/catalog/store.hh"
#include "services/membership/memberlist.hh"
#include "services/state/state.hh"

namespace pharos::membership {
class net_node;
}

namespace pharos::agent {

enum class member_status : uint8_t { none = 0, alive = 1, leaving = 2, left = 3, failed = 4 };

struct serf_member {
    std::string name;
    std::string addr;  // IP text
    uint16_t port = 0;
    gossip::serf::tags tags;
    member_status status = member_status::none;
    uint8_t vsn[6] = {1, 5, 2, 2, 5, 4};  // memberlist min/max/cur, delegate min/max/cur
    engine::clock::time_point since{};    // last status change
    uint64_t status_ltime = 0;            // Lamport time of the last leave intent applied
};

// The tags Consul's agent puts in its LAN Meta (role, dc, segment, id, vsn*, build, port, ...).
gossip::serf::tags consul_tags(const config& c);

class serf_table {
public:
    using time_point = engine::clock::time_point;
    // memberlist events.
    void joined(const membership::member& m, time_point now);    // on_join / on_update
    void departed(const membership::member& m, time_point now);  // on_leave (dead or left)
    // A leave intent (graceful leave, force-leave): alive → leaving, failed → left (prune: erased).
    // True if its Lamport time is newer than the last intent applied to that member (the caller
    // then re-broadcasts it, as Serf).
    bool leave_intent(const gossip::serf::leave_intent& l, time_point now);
    // A join intent (a refuted leave): leaving → alive. True if new (re-broadcast).
    bool join_intent(const gossip::serf::join_intent& j);
    // Drops failed members older than reconnect_timeout and left ones older than tombstone_timeout.
    // True if any went.
    bool reap(time_point now, engine::clock::duration reconnect_timeout, engine::clock::duration tombstone_timeout);
    const std::map<std::string, serf_member>& members() const noexcept { return members_; }
    const serf_member* find(const std::string& name) const;
    uint64_t witness(uint64_t lt) { return clock_ = std::max(clock_, lt); }
    uint64_t tick() { return ++clock_; }

private:
    std::map<std::string, serf_member> members_;
    uint64_t clock_ = 0;
};

constexpr const char* serf_check_id = "serfHealth";
constexpr const char* serf_alive_output = "Agent alive and reachable";
constexpr const char* serf_failed_output = "Agent not live or unreachable";

// Consul's reconcile: the commands that bring `cat` in line with `members`. `self` is never deregistered.
std::vector<state::command> reconcile(const catalog::store& cat, const std::map<std::string, serf_member>& members,
                                      const std::string& self, const std::string& datacenter);

// "host", "host:port", "[v6]:port" → an address (default_port when none). nullopt if it does not resolve.
std::optional<membership::address> resolve_join_address(const std::string& text, uint16_t default_port);

class lan_gossip {
public:
    lan_gossip(config cfg, engine::sharded<state::service>* st);
    ~lan_gossip();
    lan_gossip(const lan_gossip&) = delete;

    // Binds serf_lan (UDP and TCP) on -serf-lan-bind / -bind and starts gossiping. Throws
    // std::runtime_error on a bad encrypt key or a port that cannot be bound.
    engine::task<void> start();
    // Stops gossip (no leave) and the reconcile task. Cancel safety: must run to completion.
    engine::task<void> stop();

    // Push/pull with each address; the number that answered. `error` names the ones that did not.
    // Cancel safety: a join in flight completes in the background.
    engine::task<int> join(std::vector<std::string> addrs, engine::deadline dl, std::string* error = nullptr);
    // Retries `retry_join` every retry_interval until one join succeeds, retry_max times (0: forever);
    // calls on_exhausted when it gives up.
    void start_retry_join(std::function<void()> on_exhausted);
    // Graceful leave: the dead-self message is gossiped, then returns (or at dl). Cancel safe.
    engine::task<void> leave(engine::deadline dl);
    // Consul's force-leave. Errors as Consul's agent words them.
    std::optional<std::string> force_leave(const std::string& node, bool prune);

    enum class key_op { list, install, use, remove };
    // Serf's KeyManager: sends the key query (key_b64: the base64 key; ignored for list) to the LAN
    // pool and collects every member's answer until all answered or Serf's query timeout (3.2 s up
    // to 9 members). Errors (a bad key, gossip disabled) come back in key_response::error.
    // Cancel safety: the query has been gossiped once started; cancelling only stops the wait.
    engine::task<key_response> key_operation(key_op op, std::string key_b64);
    bool encrypted() const noexcept { return !keys_.empty(); }

    // Consul's user events (serf_events.hh): fire_event gossips a validated event with an ID as
    // "consul:event:<name>"; nullopt or Serf's error; `ltime` receives its Serf LTime. Every Consul
    // event that reaches this node for the first time (its own included, at once) goes to the sink.
    std::optional<std::string> fire_event(const user_event& e, uint64_t* ltime);
    void set_event_sink(std::function<void(user_event)> sink) { event_sink_ = std::move(sink); }
    bool gossiping() const noexcept { return started_ && !stopping_; }
    const gossip::keyring& keyring() const noexcept { return keys_; }

    const serf_table& table() const noexcept { return table_; }
    const std::string& self() const noexcept { return cfg_.node_name; }
    // Runs reconcile now (tests): returns once its writes are done.
    engine::task<void> reconcile_now();

private:
    engine::task<void> reconcile_loop();
    engine::task<void> retry_loop(std::function<void()> on_exhausted);
    engine::task<void> run_reconcile();
    void changed();
    void on_user_msg(std::string_view msg);
    std::string local_state();  // Serf's push/pull state (messagePushPull)
    void merge_remote_state(std::string_view buf, bool join);
    void spread(std::string msg);  // an intent we originate
    void load_keyring();           // encrypt / the keyring file → keys_; throws std::runtime_error
    std::optional<std::string> handle_query(const gossip::serf::query& q);

    config cfg_;
    engine::sharded<state::service>* st_;
    gossip::keyring keys_;
    std::unique_ptr<membership::net_node> node_;
    std::unique_ptr<serf_queries> queries_;
    std::unique_ptr<serf_events> events_;
    std::function<void(user_event)> event_sink_;
    std::string keyring_path_;  // "" without a data_dir: the ring lives in memory only
    serf_table table_;
    bool dirty_ = true, stopping_ = false, started_ = false, leaving_ = false;
    int joining_ = 0;  // join() calls in flight (Serf's eventJoinIgnore)
    engine::wait_slot wake_;
    engine::gate gate_;
    engine::cancel_source stop_;
};

}  // namespace pharos::agent
