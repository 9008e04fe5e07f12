#include "ttl.hh"

#include "engine/log.hh"
#include "protocols/json/duration.hh"

namespace pharos::session {
using namespace engine;

int64_t ttl_ns(const session& s) {
    if (s.ttl.empty()) return 0;
    auto d = json::parse_go_duration(s.ttl);
    return d ? d->count() : 0;
}

void ttl_timers::start() {
    st_->local().read().sessions.for_each([&](const session& s) { reset(s.id, ttl_ns(s)); });
    this_reactor().spawn(run());
}

task<void> ttl_timers::stop() {
    stopping_ = true;
    wake_.notify();
    co_await gate_.close();
}

void ttl_timers::clear(const std::string& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    by_time_.erase({it->second, id});
    by_id_.erase(it);
}

void ttl_timers::reset(const std::string& id, int64_t ttl) {
    clear(id);
    if (ttl <= 0) return;
    deadline when = clock::now() + std::chrono::nanoseconds(ttl) * ttl_multiplier;
    by_id_[id] = when;
    bool first = by_time_.empty() || when < by_time_.begin()->first;
    by_time_.insert({when, id});
    if (first) wake_.notify();
}

std::optional<session> ttl_timers::renew(const std::string& id) {
    const session* s = st_->local().read().sessions.get(id);
    if (!s) {
        clear(id);
        return std::nullopt;
    }
    session copy = *s;
    reset(id, ttl_ns(copy));
    return copy;
}

// One loop: sleeps until the earliest expiry (a reset of an earlier one wakes
// it), then destroys what expired, one command each.
task<void> ttl_timers::run() {
    gate::holder g(gate_);
    if (!g) co_return;
    while (!stopping_) {
        deadline next = by_time_.empty() ? no_deadline : by_time_.begin()->first;
        if (clock::now() < next) {
            co_await wake_.wait(next);
            continue;
        }
        std::string id = by_time_.begin()->second;
        clear(id);
        if (!st_->local().read().sessions.get(id)) continue;  // destroyed meanwhile
        state::session_destroy d;
        d.id = id;
        auto r = co_await st_->local().write(state::command(std::move(d)));
        if (!r.error.empty()) log(log_level::warn, "session: expiring %s failed: %s", id.c_str(), r.error.c_str());
    }
}

}  // namespace pharos::session
