// session::ttl_timers: the TTL expiry of sessions, on the state owner's shard
// (Consul's leader-side session timers). A session with a TTL expires 2×TTL
// after its creation or last renewal (Consul's SessionTTLMultiplier), on the
// engine clock; expiry writes a session_destroy command through
// state::service::write, so the invalidation itself (releasing or deleting
// keys, lock-delay) is part of the replicated log. Timers are not state: on
// start every TTL session of the current state gets a full 2×TTL, as Consul's
// new leader does.
//
// Lives on the state owner shard; the API reaches it with submit_to. One loop
// sleeps until the earliest expiry. stop() ends it and waits for it.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>

#include "engine/gate.hh"
#include "engine/io.hh"
#include "services/state/state.hh"

namespace pharos::session {

inline constexpr int ttl_multiplier = 2;  // structs.SessionTTLMultiplier

class ttl_timers {
public:
    explicit ttl_timers(engine::sharded<state::service>* st) : st_(st) {}
    ttl_timers(const ttl_timers&) = delete;
    // Arms every TTL session of the current state and starts the loop.
    void start();
    // Stops the loop. Pending expiries are dropped (the next start re-arms).
    engine::task<void> stop();

    // (Re)arms `id` to expire 2×TTL from now; ttl_ns <= 0 clears it.
    void reset(const std::string& id, int64_t ttl_ns);
    void clear(const std::string& id);
    // Renew: the session as it is now (nullopt if unknown), with its timer reset.
    std::optional<session> renew(const std::string& id);
    size_t armed() const noexcept { return by_id_.size(); }

private:
    engine::task<void> run();
    engine::sharded<state::service>* st_;
    std::map<std::string, engine::deadline> by_id_;
    std::set<std::pair<engine::deadline, std::string>> by_time_;
    engine::wait_slot wake_;
    engine::gate gate_;
    bool stopping_ = false;
};

// A session's TTL text as nanoseconds (0 when empty or unparsable).
int64_t ttl_ns(const session& s);

}  // namespace pharos::session
