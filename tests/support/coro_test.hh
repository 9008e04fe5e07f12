// Coroutine tests on a real group of shards (2 by default, as every engine
// test runs). A test body is a task run on shard 0; it may use every engine
// primitive. GoogleTest's ASSERT_* macros return, which a coroutine cannot do,
// so use CO_ASSERT_* to stop a test body, and EXPECT_* freely.
//
//   PHAROS_CORO_TEST(smp, submit_to_runs_on_the_target_shard) {
//       auto where = co_await submit_to(1, [] { return this_shard(); });
//       CO_ASSERT_EQ(where, 1u);
//   }
//
// The backend comes from PHAROS_BACKEND (ctest runs every test binary once per
// backend). PHAROS_MANUAL_CLOCK_TEST runs the body on the manual clock.
#pragma once
#include <gtest/gtest.h>

#include "engine/smp.hh"

namespace pharos::test {

struct run_options {
    unsigned shards = 2;
    bool manual_clock = false;
    int64_t stall_threshold_ms = 0;
};

// Runs `body` on shard 0 of a fresh group and returns when every shard has stopped.
inline engine::smp* current_group = nullptr;
inline void run_on_shards(engine::task<void> (*body)(), run_options opt = {}) {
    using namespace engine;
    if (opt.manual_clock) clock::use_manual(); else clock::use_real();
    smp_config cfg;
    cfg.shards = opt.shards;
    cfg.pin = false;
    cfg.stall_threshold_ms = opt.stall_threshold_ms;
    cfg.log_stalls = false;
    smp group(cfg);
    current_group = &group;
    group.run([body]() -> task<int> {
        co_await body();
        co_return 0;
    });
    current_group = nullptr;
    clock::use_real();
}

}  // namespace pharos::test

#define PHAROS_CORO_TEST_IMPL(suite, name, opts)                                   \
    static ::pharos::engine::task<void> suite##_##name##_body();                   \
    TEST(suite, name) { ::pharos::test::run_on_shards(&suite##_##name##_body, opts); } \
    static ::pharos::engine::task<void> suite##_##name##_body()

#define PHAROS_CORO_TEST(suite, name) PHAROS_CORO_TEST_IMPL(suite, name, ::pharos::test::run_options{})
#define PHAROS_MANUAL_CLOCK_TEST(suite, name) \
    PHAROS_CORO_TEST_IMPL(suite, name, (::pharos::test::run_options{2, true, 0}))

#define CO_ASSERT_TRUE(c)                                     \
    do {                                                      \
        if (!(c)) {                                           \
            ADD_FAILURE() << "CO_ASSERT_TRUE(" #c ") failed"; \
            co_return;                                        \
        }                                                     \
    } while (0)
#define CO_ASSERT_EQ(a, b)                                                          \
    do {                                                                            \
        auto r_ = ::testing::internal::EqHelper::Compare(#a, #b, a, b);             \
        if (!r_) {                                                                  \
            ADD_FAILURE() << r_.message();                                          \
            co_return;                                                              \
        }                                                                           \
    } while (0)
