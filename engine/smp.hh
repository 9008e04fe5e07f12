// smp: the group of shards, and the one primitive for crossing between them,
// submit_to(shard, fn). Each ordered pair of shards has a bounded SPSC queue;
// messages are pushed in batches at the end of a reactor turn and the target is
// woken by its eventfd only if it sleeps. sharded<S> builds on submit_to.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <thread>
#include <type_traits>
#include <vector>

#include "combinators.hh"
#include "reactor.hh"

namespace pharos::engine {

struct smp_config {
    unsigned shards = 0;          // 0: one per CPU in the affinity mask
    bool pin = true;              // pin shard i to the i-th allowed CPU
    reactor_config reactor{};
    int64_t stall_threshold_ms = 200;  // stall detector; 0 disables
    bool log_stalls = true;
    // Block SIGINT and SIGTERM in every shard so that wait_for_signal() can take them.
    // Off by default: then they keep their default action (tests rely on it).
    bool take_signals = false;
};

class smp {
public:
    explicit smp(smp_config cfg);
    ~smp();

    unsigned size() const noexcept { return n_; }
    reactor& shard(unsigned i) noexcept { return *reactors_[i]; }
    spsc_queue<smp_message>& queue(unsigned from, unsigned to) noexcept { return *queues_[from * n_ + to]; }

    // Runs `main` on shard 0 until it returns, then stops every shard and joins
    // them. Blocks the calling thread, which becomes shard 0.
    int run(std::function<task<int>()> main);

    // Number of stalls reported so far (any thread).
    uint64_t stalls() const noexcept { return stalls_.load(); }
    // The manual-clock idle protocol (test mode only): a shard reports whether it
    // is idle and its earliest timer; the last shard to go idle advances time.
    void manual_report(unsigned shard, bool idle, deadline next_timer);
    // Whether every shard has drained after stop, with no message in flight.
    bool all_drained() const noexcept;

private:
    void stall_watch();

    smp_config cfg_;
    unsigned n_;
    std::vector<std::unique_ptr<reactor>> reactors_;
    std::vector<std::unique_ptr<spsc_queue<smp_message>>> queues_;
    std::vector<int> cpus_;
    std::atomic<uint64_t> stalls_{0};
    std::atomic<bool> watch_stop_{false};

    struct manual_state;
    std::unique_ptr<manual_state> manual_;
};

namespace detail {

template <class R>
struct value_box {
    std::optional<R> v;
    void set(R&& r) { v.emplace(std::move(r)); }
    R take() { return std::move(*v); }
};
template <>
struct value_box<void> {
    void take() {}
};

template <class F>
using call_result_t = std::invoke_result_t<F&>;
template <class T>
struct unwrap_task { using type = T; static constexpr bool is_task = false; };
template <class T>
struct unwrap_task<task<T>> { using type = T; static constexpr bool is_task = true; };

// The message for one submit_to call. Allocated by the origin, moved to the
// target (which runs fn), and back (which resumes the awaiter).
template <class F>
struct call_message final : smp_message {
    using raw = call_result_t<F>;
    using R = typename unwrap_task<raw>::type;

    F fn;
    unsigned target;
    value_box<R> box;
    std::exception_ptr error;
    std::coroutine_handle<> waiter;

    call_message(F&& f, unsigned t) : fn(std::move(f)), target(t) {}

    void run(reactor& r) override {
        if constexpr (unwrap_task<raw>::is_task) {
            r.spawn(run_task(r));
        } else {
            try {
                if constexpr (std::is_void_v<R>) fn(); else box.set(fn());
            } catch (...) {
                error = std::current_exception();
            }
            reply(r);
        }
    }
    task<void> run_task(reactor& r) {
        try {
            if constexpr (std::is_void_v<R>) co_await fn(); else box.set(co_await fn());
        } catch (...) {
            error = std::current_exception();
        }
        reply(r);
    }
    void reply(reactor& r) {
        response = true;
        r.send_message(origin, this);
    }
    void finish() override { waiter.resume(); }
};

template <class F>
struct submit_awaiter {
    std::unique_ptr<call_message<F>> msg;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        msg->waiter = h;
        msg->origin = this_shard();
        this_reactor().send_message(msg->target, msg.get());
    }
    auto await_resume() {
        if (msg->error) std::rethrow_exception(msg->error);
        return msg->box.take();
    }
};

}  // namespace detail

namespace detail {
template <class F>
using submit_result_t = typename unwrap_task<call_result_t<F>>::type;

// These coroutines take the callable behind a pointer: GCC 12 miscompiles a
// closure passed by value to a coroutine from inside a co_await expression.
template <class F>
task<submit_result_t<F>> run_local(std::unique_ptr<F> fn) {
    if constexpr (unwrap_task<call_result_t<F>>::is_task) co_return co_await (*fn)();
    else co_return (*fn)();
}
template <class F>
task<submit_result_t<F>> run_remote(std::unique_ptr<call_message<F>> msg) {
    submit_awaiter<F> aw{std::move(msg)};  // named: see above
    co_return co_await aw;
}
}  // namespace detail

// Runs fn() on `shard` and returns its result (fn may return a task). On the
// current shard it is called directly. fn and its result are moved between
// shards; fn must not capture references to shard-owned memory of the caller.
// Cancel safety: not cancellable once sent; the call always completes.
template <class F>
task<detail::submit_result_t<F>> submit_to(unsigned shard, F fn) {
    if (shard == this_shard()) return detail::run_local(std::make_unique<F>(std::move(fn)));
    return detail::run_remote(std::make_unique<detail::call_message<F>>(std::move(fn), shard));
}

// sharded<S>: one S per shard, each constructed, used and destroyed on its own
// shard. S may have `task<void> start()` and must have `task<void> stop()`
// if it holds work in flight; stop() runs on every shard before destruction.
template <class S>
class sharded {
public:
    sharded() = default;
    sharded(const sharded&) = delete;

    // Constructs S(args...) on every shard (args are copied to each), then awaits
    // S::start() if it exists.
    template <class... Args>
    task<void> start(Args... args) {
        unsigned n = this_reactor().group().size();
        inst_.assign(n, nullptr);
        for (unsigned i = 0; i < n; ++i) {
            // GCC 12 mis-relocates closures built inside a co_await expression: name them first.
            auto fn = [this, i, a = std::make_tuple(args...)]() { return start_one(i, a); };
            co_await submit_to(i, std::move(fn));
        }
    }
    // Awaits S::stop() on every shard, then destroys each instance on its shard.
    task<void> stop() {
        for (unsigned i = 0; i < inst_.size(); ++i)
            if (inst_[i]) {
                auto fn = [this, i]() { return stop_one(i); };
                co_await submit_to(i, std::move(fn));
            }
        inst_.clear();
    }
    S& local() noexcept { return *inst_[this_shard()]; }
    unsigned size() const noexcept { return unsigned(inst_.size()); }

    // Runs fn(S&) on `shard`.
    template <class F>
    auto invoke_on(unsigned shard, F fn) {
        return submit_to(shard, [this, shard, fn = std::move(fn)]() mutable { return fn(*inst_[shard]); });
    }
    // Runs fn(S&) on every shard, concurrently, and waits for all.
    template <class F>
    task<void> invoke_on_all(F fn) {
        std::vector<task<void>> calls;
        for (unsigned i = 0; i < inst_.size(); ++i) calls.push_back(as_void(invoke_on(i, fn)));
        co_await when_all(std::move(calls));
    }
    // Maps fn(S&) over every shard and folds the results with reduce, starting from init.
    template <class Map, class T, class Reduce>
    task<T> map_reduce(Map map, T init, Reduce reduce) {
        for (unsigned i = 0; i < inst_.size(); ++i) init = reduce(std::move(init), co_await invoke_on(i, map));
        co_return init;
    }

private:
    template <class Tuple>
    task<void> start_one(unsigned i, Tuple args) {
        inst_[i] = std::apply([](auto&... a) { return new S(a...); }, args);
        if constexpr (requires(S & s) { s.start(); }) co_await inst_[i]->start();
    }
    task<void> stop_one(unsigned i) {
        if constexpr (requires(S & s) { s.stop(); }) co_await inst_[i]->stop();
        delete inst_[i];
        inst_[i] = nullptr;
    }
    template <class T>
    static task<void> as_void(task<T> t) { co_await std::move(t); }
    std::vector<S*> inst_;
};

}  // namespace pharos::engine
