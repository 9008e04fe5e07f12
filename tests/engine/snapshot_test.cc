// published<T>: consistent reads on every shard while the owner publishes, and
// quiescent-state reclamation of replaced versions (run under ASan to catch a
// version freed while a reader still uses it).
#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "engine/combinators.hh"
#include "engine/smp.hh"
#include "engine/snapshot.hh"
#include "tests/support/coro_test.hh"

using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

// One version: every element of `fill` and `check` equals `n`. Destruction
// poisons it, so a reader of a freed version sees a broken invariant even
// without ASan (unless the memory was reused for a valid one).
struct version {
    static inline std::atomic<int64_t> alive{0};
    static inline std::atomic<int64_t> destroyed{0};
    static inline std::atomic<int64_t> destroyed_off_owner{0};
    static inline std::atomic<int> owner{0};
    static void reset(unsigned owner_shard) {
        alive = 0;
        destroyed = 0;
        destroyed_off_owner = 0;
        owner = int(owner_shard);
    }

    uint64_t n;
    std::vector<uint64_t> fill;
    uint64_t check;

    explicit version(uint64_t v) : n(v), fill(32, v), check(v) { ++alive; }
    ~version() {
        reactor* r = reactor::current();
        if (!r || int(r->shard()) != owner.load()) ++destroyed_off_owner;
        n = ~0ull;
        std::fill(fill.begin(), fill.end(), ~1ull);
        check = ~2ull;
        ++destroyed;
        --alive;
    }
    bool consistent() const {
        if (check != n || fill.size() != 32) return false;
        for (auto x : fill)
            if (x != n) return false;
        return true;
    }
};

using pub_t = published<version>;

struct shared_flags {
    std::atomic<int> readers_started{0};
    std::atomic<bool> done{false};
};

struct report {
    unsigned shard = 99;
    uint64_t reads = 0;
    uint64_t broken = 0;      // versions whose invariant did not hold
    uint64_t regressions = 0;  // a version older than one already seen
    uint64_t distinct = 0;
    uint64_t last = 0;
};

void look(const version* v, report* r) {
    ++r->reads;
    if (!v || !v->consistent()) {
        ++r->broken;
        return;
    }
    if (v->n < r->last) ++r->regressions;
    if (v->n != r->last) ++r->distinct;
    r->last = v->n;
}

// Reads until the writer is done, yielding between reads and never holding the
// pointer across a suspension; the last read happens after `done` was seen.
task<report> reader(pub_t* pub, shared_flags* f) {
    report r;
    r.shard = this_shard();
    f->readers_started.fetch_add(1);
    for (;;) {
        bool finished = f->done.load();
        look(pub->read(), &r);
        if (finished) break;
        co_await yield();
    }
    co_return r;
}

// Publishes versions 1..count, one to three per turn, once both readers run.
task<report> writer(pub_t* pub, shared_flags* f, int count) {
    report r;
    r.shard = this_shard();
    while (f->readers_started.load() < 2) co_await yield();
    for (int v = 1; v <= count; ++v) {
        pub->publish(std::make_unique<const version>(uint64_t(v)));
        look(pub->read(), &r);  // the owner sees its own publication at once
        if (v % 3 != 1) co_await yield();
    }
    f->done.store(true);
    co_return r;
}

task<void> nothing() { co_return; }

// On the owner: turns until every retired version is freed, nudging the other
// shard now and then so it passes quiescent points too. Returns the count freed.
task<int64_t> settle(int64_t expect) {
    unsigned other = 1 - this_shard();
    for (int i = 0; i < 2000 && version::destroyed.load() < expect; ++i) {
        if (i % 10 == 0) co_await submit_to(other, [] { return nothing(); });
        co_await yield();
    }
    co_return version::destroyed.load();
}

task<std::unique_ptr<pub_t>> make_pub() {
    co_return std::make_unique<pub_t>(std::make_unique<const version>(0));
}

task<void> publish_storm(unsigned owner, int count) {
    version::reset(owner);
    auto make = [] { return make_pub(); };
    std::unique_ptr<pub_t> pub = co_await submit_to(owner, std::move(make));
    CO_ASSERT_TRUE(pub != nullptr);
    EXPECT_EQ(pub->owner(), owner);
    pub_t* p = pub.get();
    shared_flags flags;
    shared_flags* fp = &flags;

    std::vector<task<report>> parts;
    auto w = [p, fp, count] { return writer(p, fp, count); };
    parts.push_back(submit_to(owner, std::move(w)));
    auto r1 = [p, fp] { return reader(p, fp); };
    parts.push_back(submit_to(1, std::move(r1)));
    parts.push_back(reader(p, fp));
    auto reports = co_await when_all(std::move(parts));

    const report& wr = reports[0];
    EXPECT_EQ(wr.broken, 0u);
    EXPECT_EQ(wr.distinct, uint64_t(count));
    EXPECT_EQ(wr.regressions, 0u);
    for (size_t i = 1; i < reports.size(); ++i) {
        const report& r = reports[i];
        SCOPED_TRACE(testing::Message() << "reader on shard " << r.shard);
        EXPECT_EQ(r.broken, 0u);
        EXPECT_EQ(r.regressions, 0u);
        EXPECT_EQ(r.last, uint64_t(count));  // the read after `done` sees the final version
        EXPECT_GE(r.distinct, 2u);            // it read while versions changed
        EXPECT_GT(r.reads, 0u);
    }
    EXPECT_EQ(reports[1].shard, 1u);
    EXPECT_EQ(reports[2].shard, 0u);
    EXPECT_EQ(p->version(), uint64_t(count));

    // Readers are gone: every replaced version is freed, on the owner, and only the current one lives.
    auto s = [count] { return settle(count); };
    int64_t freed = co_await submit_to(owner, std::move(s));
    EXPECT_EQ(freed, count);
    EXPECT_EQ(version::alive.load(), 1);
    EXPECT_EQ(version::destroyed_off_owner.load(), 0);

    auto drop = [p] { delete p; };
    pub.release();
    co_await submit_to(owner, std::move(drop));
    EXPECT_EQ(version::alive.load(), 0);
    EXPECT_EQ(version::destroyed_off_owner.load(), 0);
}

// --- a reader in the middle of a turn pins the version it holds ---

struct pin_flags {
    std::atomic<bool> holding{false};
    std::atomic<bool> go_on{false};
};

// On shard 1: reads, then keeps the pointer without suspending (one long turn)
// until shard 0 has published and turned many times; the version must still be intact.
task<bool> hold_within_one_turn(pub_t* pub, pin_flags* f) {
    const version* v = pub->read();
    f->holding.store(true);
    auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!f->go_on.load() && std::chrono::steady_clock::now() < give_up) {
    }
    bool intact = v->consistent() && v->n == 0;
    co_return intact;
}

task<bool> publish_while_held(pub_t* pub, pin_flags* f, int64_t* freed_while_held) {
    while (!f->holding.load()) co_await yield();
    pub->publish(std::make_unique<const version>(1));
    for (int i = 0; i < 50; ++i) co_await yield();  // shard 0 reclaims each turn
    *freed_while_held = version::destroyed.load();
    f->go_on.store(true);
    co_return true;
}

}  // namespace

PHAROS_CORO_TEST(published, readers_on_both_shards_see_consistent_versions_while_shard_zero_publishes) {
    co_await publish_storm(0, 6000);
}

PHAROS_CORO_TEST(published, readers_on_both_shards_see_consistent_versions_while_shard_one_publishes) {
    co_await publish_storm(1, 6000);
}

PHAROS_CORO_TEST(published, a_version_held_within_a_readers_turn_is_not_freed) {
    version::reset(0);
    auto pub = std::make_unique<pub_t>(std::make_unique<const version>(0));
    pub_t* p = pub.get();
    pin_flags flags;
    pin_flags* fp = &flags;
    int64_t freed_while_held = -1;
    std::vector<task<bool>> parts;
    auto hold = [p, fp] { return hold_within_one_turn(p, fp); };
    parts.push_back(submit_to(1, std::move(hold)));
    parts.push_back(publish_while_held(p, fp, &freed_while_held));
    auto r = co_await when_all(std::move(parts));
    EXPECT_TRUE(r[0]) << "version 0 was freed or changed while shard 1 still held it";
    EXPECT_EQ(freed_while_held, 0);
    // Once shard 1 has finished that turn, version 0 goes.
    EXPECT_EQ(co_await settle(1), 1);
    EXPECT_EQ(version::alive.load(), 1);
    EXPECT_EQ(p->read()->n, 1u);
    pub.reset();
    EXPECT_EQ(version::alive.load(), 0);
}

PHAROS_CORO_TEST(published, replaced_versions_are_freed_while_the_other_shard_sleeps) {
    version::reset(0);
    reactor& one = pharos::test::current_group->shard(1);
    // Let shard 1 start and fall asleep (it has nothing to do).
    co_await submit_to(1, [] { return nothing(); });
    for (int i = 0; i < 100000 && !one.is_sleeping(); ++i) co_await yield();
    CO_ASSERT_TRUE(one.is_sleeping());
    const uint64_t turns_before = one.quiescent_count();
    {
        pub_t pub(std::make_unique<const version>(0));
        for (int v = 1; v <= 100; ++v) {
            pub.publish(std::make_unique<const version>(uint64_t(v)));
            co_await yield();
        }
        for (int i = 0; i < 1000 && version::destroyed.load() < 100; ++i) co_await yield();
        // Shard 1 slept throughout, passing no quiescent point, and held nothing back.
        EXPECT_EQ(one.quiescent_count(), turns_before);
        EXPECT_EQ(version::destroyed.load(), 100);
        EXPECT_EQ(version::alive.load(), 1);
        EXPECT_EQ(pub.read()->n, 100u);
        EXPECT_EQ(pub.version(), 100u);
    }
    EXPECT_EQ(version::alive.load(), 0);
    EXPECT_EQ(version::destroyed_off_owner.load(), 0);
}
