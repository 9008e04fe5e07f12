// task<T>: the one coroutine type. Lazy (starts when awaited), [[nodiscard]].
//
// Stack discipline: awaiting a task resumes it inline; if it finishes before
// suspending, the awaiter simply continues (await_suspend returns false), so a
// loop of a million synchronous completions runs in constant stack on every
// build, including -O0 and ASan where GCC 12 does not turn symmetric transfer
// into a tail call. A task that finishes after suspending resumes its awaiter
// by symmetric transfer from final_suspend.
//
// Ownership: the task object owns the coroutine frame and destroys it. A task
// destroyed while suspended destroys its frame; every awaitable in the engine
// detaches cleanly from its in-flight operation when that happens.
//
// Cancellation: each frame carries an ambient cancel_source pointer, inherited
// from the task that awaits it (see cancel.hh).
#pragma once
#include <cassert>
#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "cancel.hh"

namespace pharos::engine {

struct promise_base {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    bool inline_start = false;     // the awaiter is inside its resume() of this task
    bool finished_inline = false;  // ...and the task finished before it returned
    cancel_source* token = nullptr;
    bool token_fixed = false;  // set by with_cancel(): do not inherit the awaiter's
    std::exception_ptr error;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
            auto& p = h.promise();
            if (p.inline_start) {
                p.finished_inline = true;  // the awaiter continues when resume() returns
                return std::noop_coroutine();
            }
            return p.continuation;
        }
        void await_resume() const noexcept {}
    };
    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }
};

// The cancel source of the coroutine that awaits `h`, if it has one.
template <class P>
cancel_source* token_of(std::coroutine_handle<P> h) noexcept {
    if constexpr (requires { h.promise().token; }) return h.promise().token;
    else return nullptr;
}

template <class T = void>
class task;

namespace detail {
template <class T>
struct task_promise : promise_base {
    std::optional<T> value;
    task<T> get_return_object() noexcept;
    template <class U>
    void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
    T take() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};
template <>
struct task_promise<void> : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() {
        if (error) std::rethrow_exception(error);
    }
};
}  // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using handle = std::coroutine_handle<promise_type>;
    using value_type = T;

    task() = default;
    explicit task(handle h) noexcept : h_(h) {}
    task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    ~task() {
        if (h_) h_.destroy();
    }

    bool valid() const noexcept { return bool(h_); }
    bool done() const noexcept { return h_ && h_.done(); }

    // Runs this task under `src` instead of inheriting the awaiter's source.
    task&& with_cancel(cancel_source* src) && noexcept {
        h_.promise().token = src;
        h_.promise().token_fixed = true;
        return std::move(*this);
    }

    struct awaiter {
        handle h;
        bool await_ready() const noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> awaiting) noexcept {
            auto& p = h.promise();
            p.continuation = awaiting;
            if (!p.token_fixed) p.token = token_of(awaiting);
            p.inline_start = true;
            h.resume();
            p.inline_start = false;
            return !p.finished_inline;  // false: it is done, continue the awaiter now
        }
        T await_resume() { return h.promise().take(); }
    };
    awaiter operator co_await() && noexcept {
        assert(h_ && !h_.done());
        return awaiter{h_};
    }

    // For the reactor's detached spawning: give up ownership of the frame.
    handle release() noexcept { return std::exchange(h_, {}); }
    handle raw() const noexcept { return h_; }

private:
    handle h_{};
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}
}  // namespace detail

// co_await current_cancel_source(): the ambient source of the running task (may be null).
struct current_cancel_source {
    cancel_source* src = nullptr;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        src = token_of(h);
        return false;  // never actually suspends
    }
    cancel_source* await_resume() const noexcept { return src; }
};

}  // namespace pharos::engine
