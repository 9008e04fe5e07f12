// The reactor: timer heap, spawn, shutdown with work in flight, the stall
// detector, maybe_yield, the manual clock, backend selection and gate.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/combinators.hh"
#include "engine/gate.hh"
#include "engine/io.hh"
#include "engine/smp.hh"
#include "engine/timer.hh"
#include "tests/support/coro_test.hh"

using namespace pharos::engine;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

clock::time_point at(int64_t ns) { return clock::time_point(clock::duration(ns)); }

std::vector<timer_node> nodes_with_random_deadlines(size_t n, uint32_t seed, int64_t range) {
    std::mt19937_64 rng(seed);
    std::vector<timer_node> v(n);
    for (auto& t : v) t.when = at(int64_t(rng() % uint64_t(range)));
    return v;
}

// Pops everything due by `now`, checking order; returns the nodes in pop order.
std::vector<timer_node*> drain(timer_heap& h, clock::time_point now) {
    std::vector<timer_node*> out;
    while (timer_node* t = h.pop_due(now)) out.push_back(t);
    return out;
}

bool sorted_by_deadline(const std::vector<timer_node*>& v) {
    for (size_t i = 1; i < v.size(); ++i)
        if (v[i]->when < v[i - 1]->when) return false;
    return true;
}

}  // namespace

// --- timer heap ---

TEST(timer_heap, pops_timers_in_deadline_order) {
    auto nodes = nodes_with_random_deadlines(5000, 1, 1000);  // many equal deadlines too
    timer_heap h;
    for (auto& t : nodes) h.insert(&t);
    EXPECT_EQ(h.size(), nodes.size());
    auto min = std::min_element(nodes.begin(), nodes.end(), [](auto& a, auto& b) { return a.when < b.when; });
    ASSERT_NE(h.top(), nullptr);
    EXPECT_EQ(h.top()->when, min->when);
    auto out = drain(h, clock::time_point::max());
    EXPECT_EQ(out.size(), nodes.size());
    EXPECT_TRUE(sorted_by_deadline(out));
    EXPECT_TRUE(h.empty());
    EXPECT_EQ(h.top(), nullptr);
    for (auto& t : nodes) EXPECT_FALSE(t.armed());
}

TEST(timer_heap, pop_due_returns_only_timers_due_by_now) {
    timer_node a, b, c;
    a.when = at(30);
    b.when = at(10);
    c.when = at(20);
    timer_heap h;
    h.insert(&a);
    h.insert(&b);
    h.insert(&c);
    EXPECT_EQ(h.pop_due(at(9)), nullptr);
    EXPECT_EQ(h.pop_due(at(15)), &b);
    EXPECT_EQ(h.pop_due(at(15)), nullptr);
    EXPECT_EQ(h.size(), 2u);
    EXPECT_EQ(h.pop_due(at(30)), &c);  // due exactly at its deadline
    EXPECT_EQ(h.pop_due(at(30)), &a);
    EXPECT_EQ(h.pop_due(at(1000)), nullptr);
}

TEST(timer_heap, erasing_from_the_middle_keeps_the_rest_in_order) {
    auto nodes = nodes_with_random_deadlines(10000, 2, 1'000'000);
    timer_heap h;
    for (auto& t : nodes) h.insert(&t);
    std::mt19937 rng(3);
    std::vector<bool> erased(nodes.size(), false);
    size_t left = nodes.size();
    // Erase a random third, in random order, from wherever they sit in the heap.
    for (size_t k = 0; k < nodes.size() / 3; ++k) {
        size_t i = rng() % nodes.size();
        if (erased[i]) continue;
        h.erase(&nodes[i]);
        erased[i] = true;
        --left;
        EXPECT_FALSE(nodes[i].armed());
    }
    EXPECT_EQ(h.size(), left);
    // Erasing an unarmed node is a no-op.
    for (size_t i = 0; i < nodes.size(); ++i)
        if (erased[i]) {
            h.erase(&nodes[i]);
            break;
        }
    EXPECT_EQ(h.size(), left);
    auto out = drain(h, clock::time_point::max());
    EXPECT_EQ(out.size(), left);
    EXPECT_TRUE(sorted_by_deadline(out));
    for (auto* t : out) EXPECT_FALSE(erased[size_t(t - nodes.data())]) << "an erased timer was popped";
}

TEST(timer_heap, erasing_the_top_and_the_last_node_works) {
    timer_node n[5];
    for (int i = 0; i < 5; ++i) n[i].when = at(10 * (i + 1));
    timer_heap h;
    for (auto& t : n) h.insert(&t);
    h.erase(&n[0]);  // the top
    EXPECT_EQ(h.top(), &n[1]);
    h.erase(&n[4]);  // the last slot (largest deadline, inserted last)
    EXPECT_EQ(h.size(), 3u);
    auto out = drain(h, clock::time_point::max());
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0], &n[1]);
    EXPECT_EQ(out[1], &n[2]);
    EXPECT_EQ(out[2], &n[3]);
}

TEST(timer_heap, a_million_pending_timers_inserted_and_cancelled_leave_it_empty) {
    const size_t n = 1'000'000;
    auto nodes = nodes_with_random_deadlines(n, 4, 1'000'000'000'000LL);
    timer_heap h;
    for (auto& t : nodes) h.insert(&t);
    EXPECT_EQ(h.size(), n);
    // Cancel half in random order, checking that the earliest stays on top.
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937(5));
    for (size_t k = 0; k < n / 2; ++k) h.erase(&nodes[order[k]]);
    EXPECT_EQ(h.size(), n - n / 2);
    clock::time_point min = clock::time_point::max();
    for (size_t k = n / 2; k < n; ++k) min = std::min(min, nodes[order[k]].when);
    ASSERT_NE(h.top(), nullptr);
    EXPECT_EQ(h.top()->when, min);
    // Pop a tenth in order, then cancel the rest.
    auto early = drain(h, h.top()->when + clock::duration(100'000'000'000LL));
    EXPECT_TRUE(sorted_by_deadline(early));
    EXPECT_GT(early.size(), 0u);
    for (size_t k = n / 2; k < n; ++k) h.erase(&nodes[order[k]]);
    EXPECT_TRUE(h.empty());
    size_t armed = 0;
    for (auto& t : nodes) armed += t.armed();
    EXPECT_EQ(armed, 0u);
}

// --- spawn ---

namespace {
std::atomic<int> spawned_ran_on{-1};
std::atomic<bool> spawned_done{false};

task<void> detached_work() {
    co_await yield();
    co_await yield();
    spawned_ran_on = int(this_shard());
    spawned_done = true;
}

task<void> detached_failure() {
    co_await yield();
    throw std::runtime_error("spawned task failure (expected by the test)");
}

task<void> spawn_here_then_report() {
    this_reactor().spawn(detached_work());
    co_return;
}

task<bool> wait_for_flag(std::atomic<bool>* flag) {
    for (int i = 0; i < 100000 && !flag->load(); ++i) co_await yield();
    co_return flag->load();
}
}  // namespace

PHAROS_CORO_TEST(reactor, spawn_runs_a_detached_task_while_the_spawner_goes_on) {
    spawned_done = false;
    spawned_ran_on = -1;
    size_t before = this_reactor().spawned_count();
    this_reactor().spawn(detached_work());
    // Nothing ran yet: spawn only queues it.
    EXPECT_FALSE(spawned_done.load());
    EXPECT_EQ(this_reactor().spawned_count(), before + 1);
    bool done = co_await wait_for_flag(&spawned_done);
    EXPECT_TRUE(done);
    EXPECT_EQ(spawned_ran_on.load(), 0);
    co_await yield();
    EXPECT_EQ(this_reactor().spawned_count(), before);
}

PHAROS_CORO_TEST(reactor, spawn_on_another_shard_runs_the_task_there) {
    spawned_done = false;
    spawned_ran_on = -1;
    co_await submit_to(1, [] { return spawn_here_then_report(); });
    // submit_to returned before the detached task finished; wait for it.
    for (int i = 0; i < 1000 && !spawned_done.load(); ++i) co_await submit_to(1, [] {});
    EXPECT_TRUE(spawned_done.load());
    EXPECT_EQ(spawned_ran_on.load(), 1);
}

PHAROS_CORO_TEST(reactor, an_exception_escaping_a_spawned_task_does_not_stop_the_shard) {
    size_t before = this_reactor().spawned_count();
    this_reactor().spawn(detached_failure());
    for (int i = 0; i < 10; ++i) co_await yield();
    EXPECT_EQ(this_reactor().spawned_count(), before);
    unsigned r = co_await submit_to(1, [] { return this_shard(); });
    EXPECT_EQ(r, 1u);
}

// --- shutdown with work in flight ---

namespace {
std::atomic<int> sleeper_outcome{0};  // 1 cancelled, 2 woke normally
std::atomic<int> waiter_outcome{0};   // the wait_slot result
std::atomic<int> parked_started{0};
std::atomic<int> parked_finished{0};

task<void> sleep_an_hour() {
    parked_started.fetch_add(1);
    auto r = co_await sleep_for(1h);
    sleeper_outcome = r.ok() ? 2 : (is_cancelled(r.error()) ? 1 : 3);
    parked_finished.fetch_add(1);
}

task<void> wait_forever() {
    wait_slot slot;  // nobody will notify it
    parked_started.fetch_add(1);
    int r = co_await slot.wait(no_deadline);
    waiter_outcome = r;
    parked_finished.fetch_add(1);
}

std::atomic<int> cross_outcome{0};  // what a call parked on shard 1 returned to shard 0

task<int> wait_forever_result() {
    wait_slot slot;
    parked_started.fetch_add(1);
    int r = co_await slot.wait(no_deadline);
    co_return r;
}

// On shard 0: a cross-shard call whose remote half waits forever on shard 1.
task<void> call_parked_on_shard_one() {
    int r = co_await submit_to(1, [] { return wait_forever_result(); });
    cross_outcome = r;
    parked_finished.fetch_add(1);
}

task<void> park_work_here() {
    this_reactor().spawn(sleep_an_hour());
    this_reactor().spawn(wait_forever());
    co_return;
}

task<void> body_leaving_work_in_flight() {
    co_await park_work_here();
    co_await submit_to(1, [] { return park_work_here(); });
    this_reactor().spawn(call_parked_on_shard_one());
    while (parked_started.load() < 5) co_await yield();
    // Returning now: the group must cancel and drain the parked tasks, and the
    // cross-shard call must come back with the cancellation of its remote half.
}

void stalling_turn(std::chrono::milliseconds d) {
    auto until = steady::now() + d;
    while (steady::now() < until) {
    }
}

task<void> body_with_a_stall() {
    auto* g = pharos::test::current_group;
    // Let shard 1 start; short turns only so far.
    co_await submit_to(1, [] {});
    for (int i = 0; i < 10; ++i) co_await yield();
    EXPECT_EQ(g->stalls(), 0u);
    stalling_turn(300ms);
    // The watcher samples every threshold/4; give it a moment to look again.
    for (int i = 0; i < 50 && g->stalls() == 0; ++i) co_await sleep_for(5ms);
    uint64_t s = g->stalls();
    EXPECT_GE(s, 1u);
    EXPECT_LT(s, 4u) << "one long turn is reported once, not on every sample";
}
}  // namespace

TEST(reactor, shutdown_cancels_and_drains_sleeping_and_waiting_tasks_promptly) {
    sleeper_outcome = 0;
    waiter_outcome = 0;
    cross_outcome = 0;
    parked_started = 0;
    parked_finished = 0;
    auto t0 = steady::now();
    pharos::test::run_on_shards(&body_leaving_work_in_flight);
    auto took = steady::now() - t0;
    EXPECT_EQ(parked_started.load(), 5);
    EXPECT_EQ(parked_finished.load(), 5) << "a parked task was not resumed at shutdown";
    EXPECT_EQ(sleeper_outcome.load(), 1);
    EXPECT_EQ(waiter_outcome.load(), -ECANCELED);
    EXPECT_EQ(cross_outcome.load(), -ECANCELED);
    // The drain gives up after 5 s; a prompt shutdown takes milliseconds.
    EXPECT_LT(took, 2s);
}

TEST(reactor, the_stall_detector_reports_a_turn_that_busy_loops_past_the_threshold) {
    pharos::test::run_on_shards(&body_with_a_stall, pharos::test::run_options{2, false, 50});
}

// --- maybe_yield ---

namespace {
std::atomic<bool> other_ran{false};

task<bool> long_loop_with_maybe_yield(bool use_maybe_yield) {
    auto limit = steady::now() + 200ms;
    while (!other_ran.load() && steady::now() < limit) {
        auto slice = steady::now() + 20us;
        while (steady::now() < slice) {
        }
        if (use_maybe_yield) co_await maybe_yield();
    }
    co_return other_ran.load();
}

task<bool> set_other_ran() {
    other_ran = true;
    co_return true;
}

task<bool> race_loop_against_other(bool use_maybe_yield) {
    other_ran = false;
    std::vector<task<bool>> v;
    v.push_back(long_loop_with_maybe_yield(use_maybe_yield));
    v.push_back(set_other_ran());
    auto r = co_await when_all(std::move(v));
    co_return r[0];
}
}  // namespace

PHAROS_CORO_TEST(reactor, maybe_yield_lets_another_task_run_during_a_long_loop) {
    auto t0 = steady::now();
    bool saw_other = co_await race_loop_against_other(true);
    EXPECT_TRUE(saw_other);
    EXPECT_LT(steady::now() - t0, 150ms);
    // Control: without maybe_yield the other task cannot run until the loop gives up.
    bool saw_without = co_await race_loop_against_other(false);
    EXPECT_FALSE(saw_without);
}

PHAROS_CORO_TEST(reactor, maybe_yield_does_not_yield_while_the_turn_has_budget_left) {
    co_await yield();  // a fresh turn
    uint64_t turns_before = this_reactor().turns.load();
    for (int i = 0; i < 200; ++i) co_await maybe_yield();
    EXPECT_LE(this_reactor().turns.load() - turns_before, 1u);
}

// --- the manual clock ---

namespace {
constexpr int n_sleepers = 12;
std::atomic<int> fire_seq{0};
std::atomic<int> fired_rank[n_sleepers];
std::atomic<int64_t> fired_at[n_sleepers];
std::atomic<int> fired_shard[n_sleepers];

task<void> sleeper(int id, int64_t when_ns) {
    co_await sleep_until(at(when_ns));
    fired_rank[id] = fire_seq.fetch_add(1);
    fired_at[id] = clock::now().time_since_epoch().count();
    fired_shard[id] = int(this_shard());
}

// Sleeper k fires at base + (k + 1) s; shard_of(k) picks its shard, unordered.
unsigned shard_of(int k) { return (k * 7 + k / 3) % 2; }

task<void> sleepers_on_this_shard(int64_t base_ns) {
    std::vector<task<void>> v;
    for (int k = n_sleepers - 1; k >= 0; --k)  // armed latest first
        if (shard_of(k) == this_shard()) v.push_back(sleeper(k, base_ns + (k + 1) * 1'000'000'000LL));
    co_await when_all(std::move(v));
}

std::atomic<int64_t> busy_seen_before{0};
std::atomic<int64_t> busy_seen_after{0};

unsigned busy_for_real_time() {
    busy_seen_before = clock::now().time_since_epoch().count();
    stalling_turn(50ms);
    busy_seen_after = clock::now().time_since_epoch().count();
    return this_shard();
}

task<bool> sleep_hour_ok() {
    auto r = co_await sleep_for(1h);
    co_return r.ok();
}

task<bool> busy_on_shard_one() {
    unsigned s = co_await submit_to(1, [] { return busy_for_real_time(); });
    co_return s == 1;
}
}  // namespace

PHAROS_MANUAL_CLOCK_TEST(reactor, a_one_hour_sleep_on_the_manual_clock_takes_no_real_time) {
    CO_ASSERT_TRUE(clock::is_manual());
    auto start = clock::now();
    auto real0 = steady::now();
    auto r = co_await sleep_for(1h);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(clock::now() - start, 1h);
    EXPECT_LT(steady::now() - real0, 1s);
    // Twice more, so the advance is exact each time and not merely "at least".
    co_await sleep_for(1h);
    co_await sleep_for(1ns);
    EXPECT_EQ(clock::now() - start, 2h + 1ns);
}

PHAROS_MANUAL_CLOCK_TEST(reactor, timers_on_both_shards_fire_in_deadline_order_across_shards) {
    fire_seq = 0;
    for (int k = 0; k < n_sleepers; ++k) {
        fired_rank[k] = -1;
        fired_at[k] = -1;
        fired_shard[k] = -1;
    }
    int64_t base = clock::now().time_since_epoch().count();
    std::vector<task<void>> both;
    both.push_back(sleepers_on_this_shard(base));
    auto remote = [base] { return sleepers_on_this_shard(base); };
    both.push_back(submit_to(1, std::move(remote)));
    co_await when_all(std::move(both));
    for (int k = 0; k < n_sleepers; ++k) {
        SCOPED_TRACE(testing::Message() << "sleeper " << k);
        EXPECT_EQ(fired_rank[k].load(), k);
        EXPECT_EQ(fired_at[k].load(), base + (k + 1) * 1'000'000'000LL);  // at its deadline exactly
        EXPECT_EQ(fired_shard[k].load(), int(shard_of(k)));
    }
    EXPECT_EQ(clock::now().time_since_epoch().count(), base + n_sleepers * 1'000'000'000LL);
}

// Time may jump only while every shard is idle. Here shard 1 is busy for 50 ms of
// real time in one call while shard 0 has an hour-long timer and nothing else to do.
// Regression: a shard used to clear its idle flag only at the end of a turn, so
// after shard 1 popped the call (queues empty) shard 0 jumped time by an hour in
// the middle of shard 1's turn. reactor::turn() now reports busy before it works.
PHAROS_MANUAL_CLOCK_TEST(reactor, manual_time_does_not_move_while_another_shard_is_busy) {
    co_await sleep_for(1s);  // both shards up and through one advance
    stalling_turn(10ms);     // shard 1 reports itself idle meanwhile
    std::vector<task<bool>> v;
    v.push_back(sleep_hour_ok());
    v.push_back(busy_on_shard_one());
    auto r = co_await when_all(std::move(v));
    EXPECT_TRUE(r[0]);
    EXPECT_TRUE(r[1]);
    EXPECT_EQ(busy_seen_after.load() - busy_seen_before.load(), 0)
        << "manual time jumped by " << (busy_seen_after.load() - busy_seen_before.load()) / 1'000'000'000LL
        << " s in the middle of shard 1's turn";
}

// --- backend selection ---

PHAROS_CORO_TEST(reactor, the_backend_follows_PHAROS_BACKEND) {
    const char* env = std::getenv("PHAROS_BACKEND");
    const bool want_epoll = env && std::strcmp(env, "epoll") == 0;
    std::string expect = want_epoll ? "epoll" : "io_uring";
    EXPECT_EQ(std::string(this_reactor().backend_name()), expect);
    std::string other = co_await submit_to(1, [] { return std::string(this_reactor().backend_name()); });
    EXPECT_EQ(other, expect);
    if (!want_epoll) {
        EXPECT_EQ(this_reactor().fallback_reason(), "");
    }
}

// --- gate ---

namespace {
task<int> hold_gate(gate* g, clock::duration d, int id) {
    gate::holder h(*g);
    if (!h) co_return -1;
    co_await sleep_for(d);
    co_return id;
}

task<int> close_gate(gate* g, clock::time_point* closed_at, deadline dl) {
    co_await yield();  // the holders have entered
    auto r = co_await g->close(dl);
    *closed_at = clock::now();
    co_return r.ok() ? 0 : (is_timed_out(r.error()) ? 1 : 2);
}
}  // namespace

PHAROS_MANUAL_CLOCK_TEST(reactor, gate_close_waits_for_every_holder_to_leave) {
    gate g;
    auto start = clock::now();
    clock::time_point closed_at{};
    std::vector<task<int>> v;
    v.push_back(hold_gate(&g, 3s, 1));
    v.push_back(hold_gate(&g, 7s, 2));
    v.push_back(close_gate(&g, &closed_at, no_deadline));
    auto r = co_await when_all(std::move(v));
    EXPECT_EQ(r[0], 1);
    EXPECT_EQ(r[1], 2);
    EXPECT_EQ(r[2], 0);
    EXPECT_EQ(closed_at - start, 7s);  // not before the last holder left
    EXPECT_EQ(g.count(), 0u);
    EXPECT_TRUE(g.closing());
    // Closed: no new holders.
    EXPECT_FALSE(g.try_enter());
    gate::holder late(g);
    EXPECT_FALSE(bool(late));
    EXPECT_EQ(g.count(), 0u);
}

PHAROS_MANUAL_CLOCK_TEST(reactor, gate_close_with_a_deadline_gives_up_and_stays_closed) {
    gate g;
    auto start = clock::now();
    clock::time_point closed_at{};
    std::vector<task<int>> v;
    v.push_back(hold_gate(&g, 10s, 1));
    v.push_back(close_gate(&g, &closed_at, start + 2s));
    auto r = co_await when_all(std::move(v));
    EXPECT_EQ(r[1], 1);  // timed out
    EXPECT_EQ(closed_at - start, 2s);
    EXPECT_EQ(r[0], 1);  // the holder finished normally later
    EXPECT_TRUE(g.closing());
    EXPECT_FALSE(g.try_enter());
}

PHAROS_CORO_TEST(reactor, gate_close_with_no_holders_returns_at_once) {
    gate g;
    {
        gate::holder h(g);
        EXPECT_TRUE(bool(h));
        EXPECT_EQ(g.count(), 1u);
    }
    EXPECT_EQ(g.count(), 0u);
    auto r = co_await g.close();
    EXPECT_TRUE(r.ok());
}

// --- regression: UBSan and inlined thread_local reads in a coroutine ---
//
// Before reactor::current_ became constinit (local-exec TLS), GCC 12 at -O2 with
// -fsanitize=undefined aborted this body with "load of null pointer of type
// 'struct reactor *'": two inlined reads of current_ (this_shard() here and the
// one inside submit_to) between the same two suspension points. Meaningful in
// the PHAROS_SANITIZE build.
PHAROS_CORO_TEST(reactor, reading_the_shard_twice_in_one_coroutine_segment_passes_ubsan) {
    CO_ASSERT_EQ(this_shard(), 0u);
    unsigned where = co_await submit_to(1, [] { return this_shard(); });
    EXPECT_EQ(where, 1u);
    EXPECT_EQ(&this_reactor(), &pharos::test::current_group->shard(0));
}
