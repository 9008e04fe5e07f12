// agent::serf_events and Consul's user events on top of it.
//
// - serf_events: Serf's user events (messageUserEvent) over one memberlist's
//   user messages, sans-I/O like serf_queries: it sends through a broadcaster
//   callback (memberlist broadcast_user) and has no clock or sockets, so the
//   agent drives it on real sockets and tests on sim_network. As Serf: the
//   event Lamport clock stamps each fired event (LTime = clock, then +1) and
//   witnesses every one received; a 512-slot buffer indexed by LTime % 512
//   keeps (Name, Payload) per LTime, so each event is delivered once and
//   re-broadcast once, on first receipt; events older than clock - 512 are
//   dropped. fire() refuses name + payload over 512 bytes before encoding or a
//   message over 512 bytes after (Serf's UserEventSizeLimit and its errors).
//   The clock starts at 1 (Serf's Create). In every push/pull (Serf's
//   messagePushPull, see lan_gossip) the clock and the buffer go along: the
//   receiver witnesses EventLTime - 1 and handles each buffered event (new
//   ones are delivered, not relayed), which repairs events lost in gossip; a
//   node joining with ignore_old (as Consul's agents join) first raises its
//   minimum event time to the peer's clock, so it does not replay the past.
//   Not done: coalescing (CC is carried, never acted on: Consul sends false).
// - Consul's user events (agent/user_event.go): the Serf event is named
//   "consul:event:<name>" and its payload is Consul's UserEvent in msgpack
//   ({ID, n, p, nf, sf, tf, v}, empty ones omitted, no LTime: the receiver
//   takes the Serf LTime). should_process() is Consul's shouldProcessUserEvent
//   (node regex on the node name, service regex on the local service IDs, tag
//   regex on a matching service's tags; ECMAScript regexes where Go uses RE2).
//
// serf_events lives on the gossip shard inside lan_gossip; the rest is plain data.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/gossip/serf.hh"
#include "services/catalog/store.hh"

namespace pharos::agent {

// A Consul user event, as /v1/event/fire answers and /v1/event/list lists it.
struct user_event {
    std::string id;
    std::string name;
    std::string payload;  // empty is null
    std::string node_filter, service_filter, tag_filter;
    int version = 1;
    uint64_t ltime = 0;
};

constexpr size_t user_event_size_limit = 512;  // Serf's default UserEventSizeLimit
constexpr size_t event_buffer_size = 512;      // Serf's default EventBuffer

class serf_events {
public:
    using broadcaster = std::function<void(std::string)>;
    using handler = std::function<void(const gossip::serf::user_event&)>;

    explicit serf_events(broadcaster b, size_t buffer = event_buffer_size);
    // Called once for each new event (fired here or received), before it is gossiped on.
    void set_handler(handler h) { handler_ = std::move(h); }
    // Serf's UserEvent: handled here first, then queued for gossip. nullopt, or Serf's error text (nothing
    // is sent then). `ltime` receives the event's Lamport time.
    std::optional<std::string> fire(std::string name, std::string payload, bool coalesce, uint64_t* ltime = nullptr);
    // A memberlist user message: true if it was a user event (handled and, when new, re-broadcast).
    bool on_user_msg(std::string_view msg);
    uint64_t clock() const noexcept { return clock_; }
    // The push/pull side (Serf's LocalState / MergeRemoteState for events).
    void export_state(gossip::serf::push_pull_state& pp) const;
    void merge_state(const gossip::serf::push_pull_state& pp, bool join_ignoring_old);

private:
    struct seen {
        uint64_t ltime = 0;
        bool used = false;
        std::vector<std::pair<std::string, std::string>> events;  // (Name, Payload)
    };
    // Serf's handleUserEvent: true if new (deliver and re-broadcast).
    bool handle(const gossip::serf::user_event& e);

    broadcaster broadcast_;
    handler handler_;
    uint64_t clock_ = 1;
    uint64_t min_time_ = 0;  // Serf's eventMinTime
    std::vector<seen> buffer_;
};

constexpr std::string_view consul_event_prefix = "consul:event:";
constexpr int user_event_max_version = 1;

// Consul's UserEvent in msgpack (the Serf event's payload); LTime is not encoded.
std::string encode_consul_event(const user_event& e);
std::optional<user_event> decode_consul_event(std::string_view payload);

// Consul's validateUserEventParams: nullopt, or its error text.
std::optional<std::string> validate_event(const user_event& e);

// Consul's agent.UserEvent once validated (ID and Version set by the caller): gossips `e` as
// "consul:event:<name>" with coalesce false. nullopt, or Serf's error; `ltime` receives its LTime.
std::optional<std::string> fire_consul_event(serf_events& ev, const user_event& e, uint64_t* ltime = nullptr);

// The Consul event a Serf event carries (its LTime taken from the Serf event): nullopt if it is not
// named consul:event:* or its payload does not decode.
std::optional<user_event> consul_event_of(const gossip::serf::user_event& e);

// Consul's shouldProcessUserEvent on node `node` with local services `services` (by ID).
bool should_process(const user_event& e, const std::string& node,
                    const std::map<std::string, catalog::service>& services);

}  // namespace pharos::agent
