// membership::sim_network: a seeded, deterministic simulated network for
// memberlist nodes in one thread, on virtual time: UDP packets are lost,
// delayed (uniformly in [min_delay, max_delay]) and duplicated with the given
// probabilities; streams are reliable but cut by partitions (no answer until the
// deadline) and by dead nodes (refused after a round trip, as a reset would);
// a partition assigns nodes to groups that cannot reach each other. Time moves
// only from event to event, so minutes of protocol run in milliseconds.
// Used by tests and by simulation tools; owns its nodes; single-threaded.
#pragma once
#include <functional>
#include <memory>
#include <queue>
#include <vector>

#include "services/membership/memberlist.hh"

namespace pharos::membership {

class sim_network {
public:
    struct options {
        double loss = 0, duplicate = 0;
        duration min_delay = std::chrono::microseconds(500), max_delay = std::chrono::milliseconds(5);
        uint64_t seed = 1;
    };
    explicit sim_network(options o);
    ~sim_network();

    // Adds a node named "n<i>" at 10.x.y.z:7946 with `cfg` (its name and address are set here).
    // Not started: call node(i).start() (and join) yourself.
    size_t add(config cfg, delegate d = {});
    memberlist& node(size_t i);
    address addr(size_t i) const;
    size_t size() const { return nodes_.size(); }
    static config named(config c, size_t i);
    // The state a join push/pull would bring nodes 0..n-1 of `base`: every one alive at incarnation 1
    // (for memberlist::bootstrap, so large simulations start converged).
    static gossip::push_pull everyone_alive(const config& base, size_t n);

    void kill(size_t i);  // kill -9: shuts the node down, packets to it vanish, dials to it are refused
    bool killed(size_t i) const;
    // group(i) for every node; nodes in different groups cannot talk. heal() ends it.
    void partition(std::function<int(size_t)> group);
    void heal() { group_.clear(); }
    // Changes packet loss and duplication from now on.
    void set_loss(double loss, double duplicate) { opt_.loss = loss, opt_.duplicate = duplicate; }

    time_point now() const { return now_; }
    void run_until(time_point t);
    void run_for(duration d) { run_until(now_ + d); }
    // Runs until pred() holds (checked every `step`) or `limit` passes; returns whether it held.
    bool run_until(const std::function<bool()>& pred, time_point limit,
                   duration step = std::chrono::milliseconds(50));

    uint64_t packets_sent() const { return packets_; }
    uint64_t bytes_sent() const { return bytes_; }           // UDP and stream bytes, as encoded
    uint64_t stream_bytes_sent() const { return stream_bytes_; }  // the stream part (requests and replies)

private:
    struct endpoint;
    struct event {
        time_point at;
        uint64_t seq;
        std::function<void()> fn;
        bool operator>(const event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
    };
    void post(time_point at, std::function<void()> fn);
    bool reachable(size_t a, size_t b) const;
    duration delay();
    size_t index_of(const address& a) const;

    options opt_;
    std::mt19937_64 rng_;
    time_point now_ = time_point(std::chrono::hours(1));
    uint64_t seq_ = 0, packets_ = 0, bytes_ = 0, stream_bytes_ = 0;
    std::priority_queue<event, std::vector<event>, std::greater<event>> q_;
    std::vector<std::unique_ptr<endpoint>> nodes_;
    std::vector<int> group_;
};

}  // namespace pharos::membership
