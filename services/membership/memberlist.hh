// membership::memberlist: the SWIM + Lifeguard protocol engine, wire-compatible
// with HashiCorp memberlist (spec: memberlist-protocol.md §7, §10-§12).
//
// It is deterministic, single-threaded code with no I/O of its own: it sends
// through a `transport` (a UDP packet to an address; one request/reply stream
// exchange for push/pull, the TCP fallback ping and reliable user messages),
// reads time from transport::now(), and keeps its own timers, which the driver
// fires with run_timers() at next_deadline() (transport::wake_at tells the
// driver when an earlier deadline appears). The real sockets (transport.hh) and
// the seeded simulated network (tests) are two drivers of the same code.
//
// Lives on one shard (the gossip shard); nothing here may be touched from
// another. The transport must outlive it; stream callbacks are dropped once
// the memberlist is destroyed (they hold a weak liveness token).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/clock.hh"
#include "protocols/gossip/codec.hh"
#include "services/membership/broadcast.hh"

namespace pharos::membership {

using time_point = engine::clock::time_point;
using duration = engine::clock::duration;
using gossip::node_state;

// An IP (raw 4 or 16 bytes, as on the wire) and a port.
struct address {
    std::string ip;
    uint16_t port = 0;
    static address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);
    std::string to_string() const;  // "1.2.3.4:7946"
    auto operator<=>(const address&) const = default;
};

// memberlist's Config, with Go's defaults from DefaultLANConfig/WANConfig/LocalConfig.
struct config {
    std::string name;
    address advertise;  // where peers reach us (UDP and TCP on the same port)
    std::string meta;   // our Meta at start (<= 512 bytes); update_meta() changes it later
    duration tcp_timeout = std::chrono::seconds(10);
    int indirect_checks = 3;
    int retransmit_mult = 4;
    int suspicion_mult = 4;
    int suspicion_max_timeout_mult = 6;
    duration push_pull_interval = std::chrono::seconds(30);
    // A periodic push/pull (Join=false, sent or answered) carries at most this many member entries: us,
    // (in a reply) our newer version of the asker's stale entries, the most recent state changes, then a
    // rotating slice of the table (README "Bounded push/pull"); a join push/pull always carries the
    // whole table. 0: the whole table every time, as Go does.
    size_t push_pull_max_nodes = 256;
    duration probe_timeout = std::chrono::milliseconds(500);
    duration probe_interval = std::chrono::seconds(1);
    bool disable_tcp_pings = false;
    int awareness_max_multiplier = 8;
    int gossip_nodes = 3;
    duration gossip_interval = std::chrono::milliseconds(200);
    duration gossip_to_the_dead_time = std::chrono::seconds(30);
    duration dead_node_reclaim_time{0};  // 0: never
    bool enable_compression = true;
    size_t udp_buffer_size = 1400;
    uint8_t protocol_version = 2;
    uint8_t delegate_min = 0, delegate_max = 0, delegate_version = 0;
    gossip::wire_options wire;  // keyring, verify flags, label
    // Serf's reconnect of failed members (not memberlist's): every interval, with probability
    // failed/alive, a join push/pull with one failed member; 0 = off. Failed members are
    // forgotten after reconnect_timeout.
    duration reconnect_interval{0};
    duration reconnect_timeout = std::chrono::hours(72);

    static config lan(std::string name, address advertise);
    static config wan(std::string name, address advertise);
    static config local(std::string name, address advertise);
};

// A member as handed out (callbacks, members(), find()): materialized from the compact internal
// entry on demand, so it is a snapshot, not a view into the table.
struct member {
    std::string name;
    address addr;
    std::string meta;
    std::string vsn;  // 6 bytes when known
    uint32_t incarnation = 0;
    node_state state = node_state::dead;
    time_point state_change{};
    uint8_t pmax() const { return vsn.size() > 1 ? uint8_t(vsn[1]) : 0; }
};

namespace detail {
struct pooled;  // an interned string (memberlist.cc): names, metas and vsns are stored once per process
}

// Callbacks into the owner (Serf-like layer / agent). All optional; called on the gossip shard
// from inside memberlist methods, so they must not destroy the memberlist.
struct delegate {
    std::function<void(const member&)> on_join, on_leave, on_update;
    std::function<std::string(bool join)> local_state;                  // push/pull user state
    std::function<void(std::string_view, bool join)> merge_remote_state;
    std::function<void(std::string_view)> on_user_msg;
    std::function<std::string()> ack_payload;                         // e.g. a Serf coordinate
};

class transport {
public:
    virtual ~transport() = default;
    virtual time_point now() = 0;
    virtual void send_packet(const address& to, std::string bytes) = 0;
    // Dials `to`, writes `request`, and when `want_reply` reads one complete stream message (as
    // gossip::open_stream frames it with `wire`) and hands its raw bytes to done. done(nullopt):
    // no contact, or no complete reply by `deadline`. done is always called later, never inline.
    virtual void stream(const address& to, std::string request, bool want_reply, time_point deadline,
                        std::function<void(std::optional<std::string>)> done) = 0;
    // As stream(), but done also says whether the dial was refused outright (a reset answered the
    // connect: nothing listens at `to`, its process is gone), as opposed to no contact or no reply
    // by the deadline. The TCP fallback ping acts on it. Default: stream(), never refused.
    virtual void stream_with_refusal(const address& to, std::string request, bool want_reply, time_point deadline,
                                     std::function<void(std::optional<std::string>, bool refused)> done) {
        stream(to, std::move(request), want_reply, deadline,
               [done = std::move(done)](std::optional<std::string> reply) { done(std::move(reply), false); });
    }
    // The memberlist has a timer due at `t`; the driver must call run_timers() then.
    virtual void wake_at(time_point t) = 0;
};

struct counters {
    uint64_t packets_in = 0, packets_bad = 0, messages_bad = 0, messages_unknown = 0;
    uint64_t packets_out = 0, bytes_out = 0, bytes_in = 0;
    uint64_t streams_in = 0, streams_bad = 0;
    uint64_t probes = 0, probes_failed = 0, pings_wrong_node = 0, conflicts = 0;
    uint64_t suspects_raised = 0, deaths_declared = 0, refutes = 0;
    uint64_t probes_refused = 0;  // failed probes suspected early: the TCP fallback was refused
    uint64_t eager_gossip = 0;    // gossip rounds sent at once for a new suspect, dead or refutation
    // Dropped input by reason, indexed by gossip::errc (ok unused): packets that failed
    // open_packet or flatten (oversized ones count as too_large), streams that failed open_stream.
    std::array<uint64_t, 11> packet_drops{}, stream_drops{};
};

// Lifeguard's suspicion arithmetic (Go's suspicionTimeout / remainingSuspicionTime), exposed for tests.
duration suspicion_timeout(int mult, size_t n, duration interval);
duration remaining_suspicion(int confirmations, int k, duration elapsed, duration min, duration max);

class memberlist {
public:
    memberlist(config cfg, transport& t, delegate d = {}, uint64_t seed = 1);
    ~memberlist();
    memberlist(const memberlist&) = delete;
    memberlist& operator=(const memberlist&) = delete;

    // Marks the local node alive (incarnation 1) and starts the probe, gossip and push/pull
    // loops, each after a random stagger within its interval.
    void start();
    // Stops every loop and ignores further input; pending stream callbacks become no-ops.
    void shutdown();

    // TCP push/pull (Join=true) with each address; done(number that succeeded).
    void join(std::vector<address> addrs, std::function<void(int)> done = {});
    // Broadcasts dead{self, From: self}; done() once it has been sent out (or right away
    // when no other node is alive). The node keeps answering until shutdown().
    void leave(std::function<void()> done = {});
    // New meta, gossiped with a fresh incarnation.
    void update_meta(std::string meta);
    // A user message piggybacked on gossip (memberlist's delegate broadcasts).
    void broadcast_user(std::string payload);
    // A user message over UDP / over a stream to one member.
    void send_user_best_effort(const address& to, std::string_view payload);
    void send_user_reliable(const address& to, std::string_view payload);

    // Merges a full member list as a join push/pull reply would (the same merge path), but
    // queues no rebroadcast of what it learned: for simulations that start every node with the
    // same complete list, as after a join once gossip has gone quiet. Call after start().
    void bootstrap(const gossip::push_pull& pp);

    // Driver entry points.
    void handle_packet(const address& from, std::string_view bytes);
    // A complete request stream message (raw, as framed by gossip::open_stream with wire());
    // returns the raw reply to write back, or "" for none. Then the driver closes the stream.
    std::string handle_stream(const address& from, std::string_view bytes);
    void run_timers();
    time_point next_deadline() const;

    // Read side.
    const config& cfg() const { return cfg_; }
    const gossip::wire_options& wire() const { return cfg_.wire; }
    std::vector<member> members() const;  // every known node with its state, in probe order
    // A snapshot of one member (use `if (auto m = ml.find(name)) m->state ...`).
    std::optional<member> find(std::string_view name) const;
    // The state alone, without materializing the member (cheap, for pollers).
    std::optional<node_state> state_of(std::string_view name) const;
    size_t num_alive() const;  // alive + suspect, self included (as Go's NumMembers)
    size_t count(node_state s) const;
    size_t estimated_nodes() const { return live_; }
    int health_score() const { return awareness_; }
    uint32_t incarnation() const { return incarnation_; }
    const counters& stats() const { return stats_; }
    bool running() const { return running_; }

private:
    // The compact member-table entry (56 bytes): strings interned process-wide and refcounted, the
    // IP inline. A free slot has name == nullptr. Entries live in entries_ and are found through
    // the open-addressing index idx_ (slot numbers, hashed by name); order_ is the probe order.
    struct entry {
        const detail::pooled* name = nullptr;
        const detail::pooled* meta = nullptr;
        const detail::pooled* vsn = nullptr;
        time_point state_change{};
        uint32_t incarnation = 0;
        uint16_t port = 0;
        uint8_t ip_len = 0;
        node_state state = node_state::dead;
        std::array<char, 16> ip{};
    };
    static constexpr uint32_t npos = UINT32_MAX;
    struct probe_state {
        uint32_t seq = 0;
        std::string target;
        uint32_t target_incarnation = 0;
        time_point sent{};
        int expected_nacks = 0, nacks = 0;
        bool tcp_ok = false;
        bool suspected = false;  // already suspected (the TCP fallback was refused)
        uint64_t timeout_timer = 0, deadline_timer = 0;
    };
    struct relay_state {
        uint32_t orig_seq = 0;
        address reply_to;
        bool nack = false;
        uint64_t timer = 0;
    };
    struct suspicion {
        int k = 0, confirmations = 0;
        duration min{}, max{};
        time_point start{}, state_change{};
        std::vector<std::string> from;  // who accused (the first one included)
        uint64_t timer = 0;
    };

    // timers
    uint64_t at(time_point t, std::function<void()> fn);
    void cancel(uint64_t id);

    // loops
    void probe_tick();
    void gossip_tick();
    void gossip_round();
    void gossip_soon();
    void push_pull_tick();
    void reconnect_tick();
    void probe_next();
    void start_probe(uint32_t target);
    void probe_timeout_phase();
    void probe_refused();
    void probe_deadline();
    void finish_probe(bool success, int awareness_delta);

    // state machine (Go's aliveNode, suspectNode, deadNode)
    void alive_node(const gossip::alive& a, bool bootstrap);
    void suspect_node(const gossip::suspect& s);
    void dead_node(const gossip::dead& d, std::function<void()> on_sent = {});
    void refute(uint32_t me, uint32_t accused);
    void confirm(const std::string& node, suspicion& s, const std::string& from);
    void suspicion_fired(const std::string& node, time_point state_change);
    void merge(const gossip::push_pull& pp);
    void reset_nodes();

    // messages in
    void handle_message(const address& from, std::string_view msg);
    void on_ping(const address& from, const gossip::ping& p);
    void on_indirect_ping(const address& from, const gossip::indirect_ping& p);
    void on_ack(const gossip::ack_resp& a);
    void on_nack(const gossip::nack_resp& n);

    // messages out
    void send_msg(const address& to, std::string msg);  // piggybacks broadcasts; no CRC
    void raw_send(const address& to, std::string packet, uint8_t pmax);  // pmax 0: unknown peer
    void push_pull_with(const address& to, bool join, std::function<void(bool)> done);
    // Our push/pull state; when answering, `remote` is the request (its stale entries are corrected).
    std::string local_push_pull(bool join, const gossip::push_pull* remote = nullptr);
    std::vector<uint32_t> push_pull_slots(bool join, const gossip::push_pull* remote);  // entries carried, in order
    duration push_pull_period() const;                  // push_pull_interval scaled with N, as Go's
    std::string self_vsn() const;
    void apply_awareness(int delta);
    duration scaled(duration d) const { return d * (awareness_ + 1); }
    size_t packet_overhead() const;
    int transmit_limit() const;
    std::vector<uint32_t> random_nodes(int k, const std::function<bool(const entry&)>& skip);
    void notify(std::function<void(const member&)>& fn, uint32_t slot) {
        if (fn) fn(materialize(entries_[slot]));
    }

    // the member table
    static std::string_view sv(const detail::pooled* p);
    static address addr_of(const entry& e);
    static uint8_t pmax(const entry& e);
    static bool dead_or_left(const entry& e) { return e.state == node_state::dead || e.state == node_state::left; }
    static void set_addr(entry& e, const address& a);
    static member materialize(const entry& e);
    uint32_t lookup(std::string_view name) const;  // npos when unknown
    uint32_t insert(std::string_view name);        // a new entry (not yet in order_)
    void erase_slot(uint32_t slot);                // frees it; the index must be rebuilt after
    void rebuild_index(size_t capacity);
    void index_put(uint32_t slot);
    bool is_self(const entry& e) const { return sv(e.name) == cfg_.name; }

    config cfg_;
    transport& t_;
    delegate d_;
    std::mt19937_64 rng_;
    std::shared_ptr<bool> alive_token_ = std::make_shared<bool>(true);
    bool running_ = false, leaving_ = false, bootstrapping_ = false;
    bool probe_pending_ = false;  // a probe tick came while a probe ran: probe when it ends (Go's ticker)
    bool eager_pending_ = false;  // an eager gossip round is queued

    std::vector<entry> entries_;
    std::vector<uint32_t> free_;   // free slots in entries_
    std::vector<uint32_t> idx_;    // open addressing, power-of-two size; npos = empty
    std::vector<uint32_t> order_;  // probe order (slots)
    size_t live_ = 0;
    size_t probe_index_ = 0;
    uint32_t push_pull_cursor_ = 0;  // next slot of entries_ for a bounded push/pull's rotating slice
    uint32_t seq_ = 0, incarnation_ = 0;
    int awareness_ = 0;

    std::optional<probe_state> probe_;
    std::unordered_map<uint32_t, relay_state> relays_;
    std::unordered_map<std::string, suspicion> suspicions_;
    std::map<std::string, std::pair<address, time_point>> failed_;  // for reconnect
    broadcast_queue broadcasts_, user_broadcasts_;

    std::map<std::pair<time_point, uint64_t>, std::function<void()>> timers_;
    std::unordered_map<uint64_t, time_point> timer_at_;
    uint64_t next_timer_ = 0;
    counters stats_;
};

}  // namespace pharos::membership
