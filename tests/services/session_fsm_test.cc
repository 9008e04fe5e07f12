// Sessions and locks in the state machine (no shards, no clock: time is the
// log entry's now_ns): creation rules, contention, lock-delay, the release and
// delete behaviours, invalidation by a critical or deregistered check and by
// node deregistration, and determinism.
#include <gtest/gtest.h>

#include "services/session/rules.hh"
#include "services/state/state.hh"

using namespace pharos;
using state::change_set;

namespace {

constexpr int64_t sec = 1'000'000'000;

struct machine {
    state::fsm f;
    uint64_t index = 2;
    int64_t now = 1000 * sec;

    state::result apply(state::command c) {
        change_set cs;
        return f.apply(c, index++, cs, now);
    }
    const state::snapshot& s() const { return f.tables(); }

    void node(const std::string& name, const std::string& check = "serfHealth", const std::string& status = "passing") {
        catalog::register_request r;
        r.n.name = name;
        r.n.address = "10.0.0.1";
        catalog::check c;
        c.check_id = check;
        c.name = check;
        c.status = status;
        r.checks.push_back(c);
        EXPECT_TRUE(apply(r).error.empty());
    }
    state::result create(const std::string& id, const std::string& node = "n1",
                         session::keys_behavior b = session::keys_behavior::release, int64_t delay = 15 * sec,
                         std::vector<std::string> checks = {"serfHealth"}) {
        state::session_create c;
        c.s.id = id;
        c.s.node = node;
        c.s.behavior = b;
        c.s.lock_delay_ns = delay;
        c.s.node_checks = checks;
        return apply(c);
    }
    state::result kv(state::kv_verb verb, const std::string& key, const std::string& session,
                     const std::string& value = "v") {
        state::kv_op op;
        op.verb = verb;
        op.key = key;
        op.value = value;
        op.session = session;
        return apply(op);
    }
    state::result check(const std::string& node, const std::string& id, const std::string& status) {
        state::check_update u;
        u.node = node;
        u.check_id = id;
        u.status = status;
        return apply(u);
    }
};

}  // namespace

TEST(session_fsm, create_needs_the_node_and_healthy_checks) {
    machine m;
    EXPECT_EQ(m.create("s1").error, "Missing node registration");
    m.node("n1");
    EXPECT_EQ(m.create("s1", "n1", session::keys_behavior::release, 0, {"nope"}).error,
              "Missing check 'nope' registration");
    m.check("n1", "serfHealth", "critical");
    EXPECT_EQ(m.create("s1").error, "Check 'serfHealth' is in critical state");
    m.check("n1", "serfHealth", "passing");
    auto r = m.create("s1");
    EXPECT_TRUE(r.ok) << r.error;
    const session::session* s = m.s().sessions.get("s1");
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->create_index, r.index);
    EXPECT_EQ(m.s().sessions.index(), r.index);
    EXPECT_EQ(m.create("s1").error, "failed inserting session: duplicate session ID");
    // A session with no checks at all is allowed.
    EXPECT_TRUE(m.create("s2", "n1", session::keys_behavior::release, 0, {}).ok);
}

TEST(session_fsm, two_sessions_contend_for_one_key) {
    machine m;
    m.node("n1");
    m.create("a");
    m.create("b");
    EXPECT_EQ(m.kv(state::kv_verb::lock, "lead", "nosuch").error, "invalid session \"nosuch\"");
    EXPECT_EQ(m.kv(state::kv_verb::lock, "lead", "").error, "missing session");
    EXPECT_TRUE(m.kv(state::kv_verb::lock, "lead", "a", "A").ok);
    EXPECT_FALSE(m.kv(state::kv_verb::lock, "lead", "b", "B").ok);
    const kv::entry* e = m.s().kv.get("lead");
    EXPECT_EQ(e->session, "a");
    EXPECT_EQ(e->value, "A");
    EXPECT_EQ(e->lock_index, 1u);
    // The holder re-acquires (updates the value) without a LockIndex bump.
    EXPECT_TRUE(m.kv(state::kv_verb::lock, "lead", "a", "A2").ok);
    EXPECT_EQ(m.s().kv.get("lead")->lock_index, 1u);
    // Only the holder releases.
    EXPECT_FALSE(m.kv(state::kv_verb::unlock, "lead", "b").ok);
    EXPECT_TRUE(m.kv(state::kv_verb::unlock, "lead", "a", "A3").ok);
    e = m.s().kv.get("lead");
    EXPECT_EQ(e->session, "");
    EXPECT_EQ(e->lock_index, 1u);
    EXPECT_TRUE(m.kv(state::kv_verb::lock, "lead", "b", "B").ok);
    EXPECT_EQ(m.s().kv.get("lead")->lock_index, 2u);
    EXPECT_EQ(m.s().kv.get("lead")->session, "b");
}

TEST(session_fsm, destroy_releases_keys_and_lock_delay_holds_them_off) {
    machine m;
    m.node("n1");
    m.create("a", "n1", session::keys_behavior::release, 15 * sec);
    m.create("b");
    m.kv(state::kv_verb::lock, "lead", "a", "A");
    uint64_t before = m.s().kv.get("lead")->modify_index;
    state::session_destroy d;
    d.id = "a";
    auto r = m.apply(d);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(m.s().sessions.get("a"), nullptr);
    const kv::entry* e = m.s().kv.get("lead");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->session, "");  // released: value kept, ModifyIndex moved
    EXPECT_EQ(e->value, "A");
    EXPECT_GT(e->modify_index, before);
    EXPECT_EQ(e->modify_index, r.index);
    // Within the lock-delay the other session is refused (false, not an error)...
    m.now += 14 * sec;
    auto refused = m.kv(state::kv_verb::lock, "lead", "b");
    EXPECT_FALSE(refused.ok);
    EXPECT_TRUE(refused.error.empty());
    // ...and after it, it gets the lock.
    m.now += 1 * sec;
    EXPECT_TRUE(m.kv(state::kv_verb::lock, "lead", "b").ok);
    // Destroying an unknown session is a no-op.
    d.id = "a";
    EXPECT_TRUE(m.apply(d).ok);
}

TEST(session_fsm, delete_behaviour_removes_held_keys_and_lock_delay_is_capped_at_60s) {
    machine m;
    m.node("n1");
    m.create("a", "n1", session::keys_behavior::remove, 3600 * sec);
    m.create("b");
    m.kv(state::kv_verb::lock, "x/1", "a");
    m.kv(state::kv_verb::lock, "x/2", "a");
    m.kv(state::kv_verb::set, "x/3", "");
    state::session_destroy d;
    d.id = "a";
    m.apply(d);
    EXPECT_EQ(m.s().kv.get("x/1"), nullptr);
    EXPECT_EQ(m.s().kv.get("x/2"), nullptr);
    EXPECT_NE(m.s().kv.get("x/3"), nullptr);
    EXPECT_EQ(m.s().sessions.lock_delay_until("x/1"), m.now + 60 * sec);
    m.now += 61 * sec;
    EXPECT_TRUE(m.kv(state::kv_verb::lock, "x/1", "b").ok);
}

TEST(session_fsm, a_check_going_critical_invalidates_its_sessions_in_the_same_entry) {
    machine m;
    m.node("n1");
    m.node("n2");
    catalog::register_request r;
    r.n.name = "n1";
    r.n.address = "10.0.0.1";
    catalog::check c;
    c.check_id = "db";
    c.name = "db";
    c.status = "passing";
    r.checks.push_back(c);
    m.apply(r);
    m.create("a", "n1", session::keys_behavior::release, 0, {"serfHealth", "db"});
    m.create("other", "n2");
    m.kv(state::kv_verb::lock, "lead", "a");
    auto w = m.check("n1", "db", "warning");  // not critical: nothing happens
    EXPECT_NE(m.s().sessions.get("a"), nullptr);
    change_set cs;
    state::check_update u;
    u.node = "n1";
    u.check_id = "db";
    u.status = "critical";
    auto res = m.f.apply(u, m.index++, cs, m.now);
    EXPECT_TRUE(res.ok);
    EXPECT_EQ(m.s().sessions.get("a"), nullptr);
    EXPECT_NE(m.s().sessions.get("other"), nullptr);
    EXPECT_EQ(m.s().kv.get("lead")->session, "");
    EXPECT_TRUE(cs.sessions_table);
    EXPECT_NE(std::find(cs.kv_keys.begin(), cs.kv_keys.end(), "lead"), cs.kv_keys.end());
    EXPECT_EQ(m.s().sessions.lock_delay_until("lead"), 0);  // LockDelay 0: none
    (void)w;
}

TEST(session_fsm, deregistering_a_check_or_the_node_invalidates_sessions) {
    machine m;
    m.node("n1");
    m.create("a");
    m.create("b", "n1", session::keys_behavior::release, 0, {});
    catalog::deregister_request d;
    d.node = "n1";
    d.check_id = "serfHealth";
    m.apply(d);
    EXPECT_EQ(m.s().sessions.get("a"), nullptr);
    EXPECT_NE(m.s().sessions.get("b"), nullptr);  // no checks: only the node matters
    d.check_id.clear();
    m.apply(d);
    EXPECT_EQ(m.s().sessions.get("b"), nullptr);
    EXPECT_EQ(m.s().sessions.size(), 0u);
}

TEST(session_fsm, the_same_entries_give_the_same_tables) {
    auto run = [](machine& m) {
        m.node("n1");
        m.create("a", "n1", session::keys_behavior::release, 5 * sec);
        m.create("b", "n1", session::keys_behavior::remove, 5 * sec);
        m.kv(state::kv_verb::lock, "k1", "a");
        m.kv(state::kv_verb::lock, "k2", "b");
        m.now += sec;
        m.check("n1", "serfHealth", "critical");
        m.kv(state::kv_verb::lock, "k1", "b");
    };
    machine m1, m2;
    run(m1);
    run(m2);
    EXPECT_EQ(kv::to_json(m1.s().kv.list("")), kv::to_json(m2.s().kv.list("")));
    EXPECT_EQ(m1.s().sessions.size(), 0u);
    EXPECT_EQ(m1.s().sessions.lock_delay_until("k1"), m2.s().sessions.lock_delay_until("k1"));
    EXPECT_EQ(m1.s().kv.get("k2"), nullptr);
}
