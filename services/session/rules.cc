#include "rules.hh"

#include <algorithm>

namespace pharos::session {

std::optional<std::string> create(state::snapshot& st, session s, uint64_t index, state::change_set& cs) {
    if (s.id.empty()) return "Missing session ID";
    if (st.sessions.get(s.id)) return "failed inserting session: duplicate session ID";
    if (!st.catalog.get_node(s.node)) return "Missing node registration";
    for (auto& id : s.check_ids()) {
        const catalog::check* c = st.catalog.get_check(s.node, id);
        if (!c) return "Missing check '" + id + "' registration";
        if (c->status == "critical") return "Check '" + id + "' is in critical state";
    }
    st.sessions.insert(std::move(s), index);
    cs.sessions_table = true;
    return std::nullopt;
}

bool destroy(state::snapshot& st, std::string_view id, uint64_t index, int64_t now_ns, state::change_set& cs) {
    const session* s = st.sessions.get(id);
    if (!s) return false;
    std::vector<std::string> keys = st.sessions.held_keys(id);
    keys_behavior b = s->behavior;
    int64_t delay = std::min(s->lock_delay_ns, max_lock_delay_ns);
    std::string sid(id);
    st.sessions.erase(sid, index);  // `s` is gone now
    cs.sessions_table = true;
    for (auto& key : keys) {
        const kv::entry* e = st.kv.get(key);
        if (!e || e->session != sid) continue;  // deleted or re-taken since
        if (b == keys_behavior::release)
            st.kv.release(key, e->value, e->flags, sid, index);
        else
            st.kv.remove(key, index);
        cs.kv_keys.push_back(key);
        if (delay > 0) st.sessions.set_lock_delay(key, now_ns + delay);
    }
    return true;
}

namespace {
bool broken(const state::snapshot& st, const session& s) {
    if (!st.catalog.get_node(s.node)) return true;
    for (auto& id : s.check_ids()) {
        const catalog::check* c = st.catalog.get_check(s.node, id);
        if (!c || c->status == "critical") return true;
    }
    return false;
}
}  // namespace

void invalidate_broken(state::snapshot& st, const std::vector<std::string>& nodes, uint64_t index, int64_t now_ns,
                       state::change_set& cs) {
    if (st.sessions.size() == 0) return;
    std::vector<std::string> doomed;
    std::vector<std::string> seen;
    for (auto& n : nodes) {
        if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
        seen.push_back(n);
        st.sessions.for_each_on_node(n, [&](const session& s) {
            if (broken(st, s)) doomed.push_back(s.id);
        });
    }
    for (auto& id : doomed) destroy(st, id, index, now_ns, cs);
}

lock_outcome lock(state::snapshot& st, std::string_view key, std::string value, uint64_t flags,
                  std::string_view session, uint64_t index, int64_t now_ns, bool respect_delay,
                  state::change_set& cs) {
    lock_outcome r;
    if (session.empty()) {
        r.error = "missing session";
        return r;
    }
    if (!st.sessions.get(session)) {
        r.error = "invalid session \"" + std::string(session) + "\"";
        return r;
    }
    if (int64_t until = st.sessions.lock_delay_until(key)) {
        if (respect_delay && now_ns < until) return r;  // Consul: false while the lock-delay runs
        if (now_ns >= until) st.sessions.set_lock_delay(key, 0);
    }
    const kv::entry* cur = st.kv.get(key);
    bool take = !cur || cur->session.empty();
    if (!st.kv.acquire(key, std::move(value), flags, session, index)) return r;
    if (take) st.sessions.add_held(session, key);
    cs.kv_keys.emplace_back(key);
    r.ok = true;
    return r;
}

lock_outcome unlock(state::snapshot& st, std::string_view key, std::string value, uint64_t flags,
                    std::string_view session, uint64_t index, state::change_set& cs) {
    lock_outcome r;
    if (session.empty()) {
        r.error = "missing session";
        return r;
    }
    if (!st.kv.release(key, std::move(value), flags, session, index)) return r;
    st.sessions.drop_held(session, key);
    cs.kv_keys.emplace_back(key);
    r.ok = true;
    return r;
}

}  // namespace pharos::session
