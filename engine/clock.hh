// engine::clock: the only way engine and service code reads time.
//
// Two modes, chosen per process before reactors start:
//  - real: std::chrono::steady_clock;
//  - manual: a global virtual time that only moves when every reactor is idle,
//    then jumps to the earliest pending timer (see reactor.cc). Tests use it
//    so that TTLs, probe intervals and deadlines run deterministically in ms.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>

namespace pharos::engine {

class clock {
public:
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<clock, duration>;
    static constexpr bool is_steady = true;

    static time_point now() noexcept {
        if (manual_.load(std::memory_order_relaxed)) [[unlikely]]
            return time_point(duration(manual_now_.load(std::memory_order_acquire)));
        return time_point(std::chrono::steady_clock::now().time_since_epoch());
    }

    static bool is_manual() noexcept { return manual_.load(std::memory_order_relaxed); }
    // Switches the process to manual time starting at `start`. Call before reactors run.
    static void use_manual(time_point start = time_point(std::chrono::hours(1))) noexcept {
        manual_now_.store(start.time_since_epoch().count(), std::memory_order_release);
        manual_.store(true, std::memory_order_release);
    }
    static void use_real() noexcept { manual_.store(false, std::memory_order_release); }
    // Moves manual time forward to `t` (never backwards). Reactors call this when all are idle;
    // tests may call it too.
    static void advance_to(time_point t) noexcept {
        auto v = t.time_since_epoch().count();
        auto cur = manual_now_.load(std::memory_order_acquire);
        while (cur < v && !manual_now_.compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {}
    }

private:
    static inline std::atomic<bool> manual_{false};
    static inline std::atomic<int64_t> manual_now_{0};
};

// An absolute point in engine time after which an operation gives up.
using deadline = clock::time_point;
inline constexpr deadline no_deadline = deadline::max();
// Convenience: now() + d.
inline deadline after(clock::duration d) { return clock::now() + d; }

}  // namespace pharos::engine
