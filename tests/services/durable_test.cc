// state::service with a durable_log on the fault-injecting memory_fs: a write
// is neither visible nor acknowledged before its sync; a failed sync fails the
// write, keeps readers on the durable tables and refuses later writes;
// snapshots bound the log and a restart recovers exactly the durable tables.
#include "services/state/durable.hh"

#include "engine/combinators.hh"
#include "engine/snapshot.hh"
#include "services/state/codec.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

// The test keeps the memory_fs across "restarts"; the log borrows it.
struct borrowed_fs final : storage::fs {
    storage::memory_fs* m;
    explicit borrowed_fs(storage::memory_fs* f) : m(f) {}
    result<std::unique_ptr<storage::file>> open(std::string_view n, bool c) override { return m->open(n, c); }
    result<std::vector<std::string>> list() override { return m->list(); }
    result<void> remove(std::string_view n) override { return m->remove(n); }
    result<void> rename(std::string_view a, std::string_view b) override { return m->rename(a, b); }
    task<result<void>> sync_dir(deadline dl) override { return m->sync_dir(dl); }
    std::string where() const override { return "memory"; }
};

task<std::unique_ptr<state::durable_log>> open_on(storage::memory_fs* m, uint64_t snapshot_every = 16384) {
    state::durable_options o;
    o.snapshot_every = snapshot_every;
    o.segment_bytes = 4096;
    std::unique_ptr<state::durable_log> d;
    std::string err = co_await state::durable_log::open(std::make_unique<borrowed_fs>(m), o, d);
    EXPECT_EQ(err, "");
    co_return d;
}

state::command put(const std::string& key, const std::string& value) {
    state::kv_op op;
    op.verb = state::kv_verb::set;
    op.key = key;
    op.value = value;
    return op;
}

task<void> write_and_flag(sharded<state::service>* st, state::command c, state::result* out, bool* done) {
    *out = co_await st->local().write(std::move(c));
    *done = true;
}

std::string value_of(const state::snapshot& s, const std::string& key) {
    const kv::entry* e = s.kv.get(key);
    return e ? e->value : "<absent>";
}

}  // namespace

PHAROS_MANUAL_CLOCK_TEST(durable_state, a_write_is_visible_and_acknowledged_only_after_its_sync) {
    storage::memory_fs m;
    auto d = co_await open_on(&m);
    CO_ASSERT_TRUE(d != nullptr);
    published<state::snapshot> pub(std::make_unique<state::snapshot>(d->recovered()));
    sharded<state::service> st;
    co_await st.start(&st, &pub, d.get());

    m.set_sync_delay(10ms);
    state::result r;
    bool done = false;
    this_reactor().spawn(write_and_flag(&st, put("k", "v"), &r, &done));
    co_await sleep_for(5ms);  // applied and written; the sync is in flight
    EXPECT_FALSE(done);
    EXPECT_EQ(value_of(st.local().read(), "k"), "<absent>");
    auto other = [](sharded<state::service>* g) { return value_of(g->local().read(), "k"); };
    sharded<state::service>* g = &st;
    auto on1 = [g, other]() { return other(g); };
    EXPECT_EQ(co_await submit_to(1, on1), "<absent>");
    co_await sleep_for(10ms);
    EXPECT_TRUE(done);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(value_of(st.local().read(), "k"), "v");
    EXPECT_EQ(co_await submit_to(1, on1), "v");
    co_await st.stop();

    m.crash(storage::memory_fs::crash_mode::lose_unsynced);
    auto again = co_await open_on(&m);
    CO_ASSERT_TRUE(again != nullptr);
    EXPECT_EQ(value_of(again->recovered(), "k"), "v");
    EXPECT_EQ(again->last_index(), r.index);
    co_await again->stop();
}

PHAROS_MANUAL_CLOCK_TEST(durable_state, a_failed_sync_fails_the_write_and_readers_keep_the_durable_tables) {
    storage::memory_fs m;
    auto d = co_await open_on(&m);
    CO_ASSERT_TRUE(d != nullptr);
    published<state::snapshot> pub(std::make_unique<state::snapshot>(d->recovered()));
    sharded<state::service> st;
    co_await st.start(&st, &pub, d.get());

    auto ok = co_await st.local().write(put("k", "v1"));
    EXPECT_TRUE(ok.ok);
    m.fail_next_sync();
    auto bad = co_await st.local().write(put("k", "v2"));
    EXPECT_FALSE(bad.ok);
    EXPECT_NE(bad.error.find("storage failed"), std::string::npos) << bad.error;
    EXPECT_EQ(value_of(st.local().read(), "k"), "v1");
    auto later = co_await st.local().write(put("other", "x"));
    EXPECT_FALSE(later.ok);
    EXPECT_NE(later.error.find("refused"), std::string::npos) << later.error;
    EXPECT_EQ(value_of(st.local().read(), "other"), "<absent>");
    co_await st.stop();

    m.crash(storage::memory_fs::crash_mode::lose_unsynced);
    auto again = co_await open_on(&m);
    CO_ASSERT_TRUE(again != nullptr);
    EXPECT_EQ(value_of(again->recovered(), "k"), "v1");
    co_await again->stop();
}

namespace {
task<void> writes_from_here(sharded<state::service>* st, int from, int to) {
    for (int i = from; i < to; ++i) {
        auto r = co_await st->local().write(put("key/" + std::to_string(i % 17), std::to_string(i)));
        EXPECT_TRUE(r.ok) << r.error;
    }
}
}  // namespace

PHAROS_CORO_TEST(durable_state, snapshots_bound_the_log_and_a_restart_recovers_the_same_tables) {
    storage::memory_fs m;
    auto d = co_await open_on(&m, 10);
    CO_ASSERT_TRUE(d != nullptr);
    published<state::snapshot> pub(std::make_unique<state::snapshot>(d->recovered()));
    sharded<state::service> st;
    co_await st.start(&st, &pub, d.get());
    sharded<state::service>* g = &st;
    auto remote = [g]() { return writes_from_here(g, 100, 160); };
    std::vector<task<void>> both;
    both.push_back(writes_from_here(g, 0, 60));
    both.push_back(submit_to(1, remote));
    co_await when_all(std::move(both));
    catalog::deregister_request dr;
    dr.node = "nobody";
    (void)co_await st.local().write(state::command(dr));  // a failing command is logged too
    std::string before;
    state::encode_snapshot(st.local().read(), before);
    uint64_t published_index = st.local().read().index;  // the refused command published nothing
    uint64_t taken = d->snapshots_taken();
    co_await st.stop();
    EXPECT_GE(taken, 3u);
    size_t snaps = 0, segs = 0;
    auto names = m.list();
    for (auto& n : *names) {
        if (n.rfind("snapshot-", 0) == 0) ++snaps;
        if (n.rfind("wal-", 0) == 0) ++segs;
    }
    EXPECT_EQ(snaps, 2u);  // the newest two
    EXPECT_LE(segs, 4u);

    m.crash(storage::memory_fs::crash_mode::lose_unsynced);
    auto again = co_await open_on(&m, 10);
    CO_ASSERT_TRUE(again != nullptr);
    EXPECT_EQ(again->last_index(), published_index + 1);
    state::snapshot rec = again->recovered();
    rec.index = published_index;
    std::string after;
    state::encode_snapshot(rec, after);
    EXPECT_EQ(after, before);
    co_await again->stop();
}
