// task<T>, cancellation, when_all / when_any, sleep and deadlines.
#include <sys/resource.h>

#include <stdexcept>

#include "engine/combinators.hh"
#include "engine/io.hh"
#include "tests/support/coro_test.hh"

using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

uintptr_t stack_low_water = UINTPTR_MAX;
void note_stack() {
    char here;
    stack_low_water = std::min(stack_low_water, reinterpret_cast<uintptr_t>(&here));
}

task<int> value_of(int v) { co_return v; }
task<int> probed_value_of(int v) {
    note_stack();
    co_return v;
}

task<int> counted(int* started) {
    ++*started;
    co_return 7;
}

task<void> thrower() {
    throw std::runtime_error("boom");
    co_return;
}

task<int> sync_chain(int n) {
    int sum = 0;
    for (int i = 0; i < n; ++i) {
        // (no ?: between two task temporaries in a co_await: GCC 12 destroys the wrong one)
        if (i % 1000 == 999) sum += co_await probed_value_of(1);
        else sum += co_await value_of(1);
    }
    co_return sum;
}

task<void> probe_stack() {
    note_stack();
    co_return;
}

task<int> sleeper_then(clock::duration d, int v) {
    auto r = co_await sleep_for(d);
    co_return r.ok() ? v : -1;
}

}  // namespace

PHAROS_CORO_TEST(task, task_does_not_start_until_awaited) {
    int started = 0;
    auto t = counted(&started);
    EXPECT_EQ(started, 0);
    int v = co_await std::move(t);
    EXPECT_EQ(started, 1);
    EXPECT_EQ(v, 7);
}

PHAROS_CORO_TEST(task, exceptions_reach_the_awaiter) {
    bool caught = false;
    try {
        co_await thrower();
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()) == "boom";
    }
    EXPECT_TRUE(caught);
}

PHAROS_CORO_TEST(task, a_million_synchronous_completions_do_not_grow_the_stack) {
    co_await probe_stack();
    uintptr_t before = stack_low_water;
    int sum = 0;
    for (int i = 0; i < 1000; ++i) {
        sum += co_await sync_chain(1000);
        co_await probe_stack();
    }
    EXPECT_EQ(sum, 1000000);
    // Every probe, including those at the end of each chain of a thousand, ran at
    // about the same depth: no completed frame stayed on the stack.
    EXPECT_LT(before - stack_low_water, 4096u);
}

PHAROS_CORO_TEST(task, when_all_returns_every_result_in_order) {
    std::vector<task<int>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(sleeper_then(std::chrono::milliseconds(5 - i), i));
    auto r = co_await when_all(std::move(ts));
    CO_ASSERT_EQ(r.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(r[i], i);
}

PHAROS_MANUAL_CLOCK_TEST(task, when_any_returns_the_first_and_cancels_the_losers) {
    auto start = clock::now();
    auto r = co_await when_any(sleeper_then(10s, 1), sleeper_then(1s, 2), sleeper_then(1h, 3));
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.value, 2);
    // The losers were cancelled, not waited for: manual time moved only to the winner.
    EXPECT_EQ(clock::now() - start, 1s);
    EXPECT_EQ(this_reactor().timer_count(), 0u);
}

PHAROS_MANUAL_CLOCK_TEST(task, sleep_follows_the_manual_clock_exactly) {
    auto start = clock::now();
    auto r = co_await sleep_for(90s);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(clock::now() - start, 90s);
    // Time runs on every shard alike.
    auto other = co_await submit_to(1, [] { return clock::now(); });
    EXPECT_EQ(other, clock::now());
}

PHAROS_MANUAL_CLOCK_TEST(task, cancelling_a_source_wakes_its_sleeping_tasks) {
    cancel_source src;
    auto waiter = [](cancel_source* s) -> task<bool> {
        (void)s;
        auto r = co_await sleep_for(1h);
        co_return is_cancelled(r.error());
    };
    auto canceller = [](cancel_source* s) -> task<bool> {
        co_await sleep_for(5s);
        s->request_cancel();
        co_return true;
    };
    auto start = clock::now();
    auto w = waiter(&src);
    auto c = canceller(&src);
    std::vector<task<bool>> v;
    v.push_back(std::move(w).with_cancel(&src));
    v.push_back(std::move(c));
    auto r = co_await when_all(std::move(v));
    EXPECT_TRUE(r[0]);
    EXPECT_EQ(clock::now() - start, 5s);
}

PHAROS_MANUAL_CLOCK_TEST(task, a_past_deadline_fails_at_once_without_waiting) {
    wait_slot slot;
    auto start = clock::now();
    int r = co_await slot.wait(clock::now() - 1s);
    EXPECT_EQ(r, -ETIMEDOUT);
    EXPECT_EQ(clock::now(), start);
    r = co_await slot.wait(clock::now() + 3s);
    EXPECT_EQ(r, -ETIMEDOUT);
    EXPECT_EQ(clock::now() - start, 3s);
}

PHAROS_CORO_TEST(task, an_already_cancelled_source_stops_operations_before_they_start) {
    cancel_source src;
    src.request_cancel();
    auto t = sleep_for(1h);
    auto inner = [](sleep_awaiter* s) -> task<result<void>> { co_return co_await *s; };
    auto r = co_await inner(&t).with_cancel(&src);
    EXPECT_TRUE(is_cancelled(r.error()));
}
