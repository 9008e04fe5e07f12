// when_all and when_any: structured concurrency over tasks on one shard.
// Both start every child at once and complete only when every child has
// finished, so no child outlives the frame that awaits them. when_any runs the
// children under a child cancel source and cancels the losers as soon as the
// first finishes; their in-flight operations end with errc::cancelled.
#pragma once
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "cancel.hh"
#include "task.hh"

namespace pharos::engine {
namespace detail {

struct join_state {
    size_t remaining = 0;
    std::coroutine_handle<> parent;
    cancel_source* token = nullptr;
    // when_any only
    cancel_source* cancel_on_first = nullptr;
    size_t first = SIZE_MAX;
};

// A child coroutine started by a join: no continuation, signals the join state.
struct fork {
    struct promise_type {
        join_state* st;
        size_t index;
        cancel_source* token;
        template <class... A>
        promise_type(join_state& s, size_t i, A&&...) : st(&s), index(i), token(s.token) {}
        fork get_return_object() { return fork{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        struct final_awaiter {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
                join_state* s = h.promise().st;
                if (s->first == SIZE_MAX) {
                    s->first = h.promise().index;
                    if (s->cancel_on_first) s->cancel_on_first->request_cancel();
                }
                if (--s->remaining == 0) return s->parent;
                return std::noop_coroutine();
            }
            void await_resume() const noexcept {}
        };
        final_awaiter final_suspend() const noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }  // children catch everything themselves
    };
    std::coroutine_handle<promise_type> h;
};

template <class T>
struct slot {
    std::optional<T> value;
    std::exception_ptr error;
    T take() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};
template <>
struct slot<void> {
    std::exception_ptr error;
    void take() {
        if (error) std::rethrow_exception(error);
    }
};

template <class T>
fork run_child(join_state&, size_t, task<T>& t, slot<T>& out) {
    try {
        if constexpr (std::is_void_v<T>) co_await std::move(t); else out.value.emplace(co_await std::move(t));
    } catch (...) {
        out.error = std::current_exception();
    }
}

// Awaits a set of forks: starts them all, resumes the parent when the last ends.
struct join_awaiter {
    join_state& st;
    std::vector<fork>& forks;
    bool await_ready() const noexcept { return forks.empty(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> parent) {
        st.parent = parent;
        st.remaining = forks.size() + 1;  // +1 so the parent is resumed only after starting all
        for (auto& f : forks) {
            f.h.resume();
        }
        return --st.remaining != 0;
    }
    void await_resume() const noexcept {}
};

inline void destroy_forks(std::vector<fork>& forks) {
    for (auto& f : forks) f.h.destroy();
}

}  // namespace detail

// Awaits every task and returns their results in order. The first exception (by
// position) is rethrown after all have finished.
template <class T>
task<std::vector<T>> when_all(std::vector<task<T>> tasks) {
    detail::join_state st;
    st.token = co_await current_cancel_source();
    std::vector<detail::slot<T>> slots(tasks.size());
    std::vector<detail::fork> forks;
    for (size_t i = 0; i < tasks.size(); ++i) forks.push_back(detail::run_child(st, i, tasks[i], slots[i]));
    co_await detail::join_awaiter{st, forks};
    detail::destroy_forks(forks);
    std::vector<T> out;
    out.reserve(slots.size());
    for (auto& s : slots) out.push_back(s.take());
    co_return out;
}

inline task<void> when_all(std::vector<task<void>> tasks) {
    detail::join_state st;
    st.token = co_await current_cancel_source();
    std::vector<detail::slot<void>> slots(tasks.size());
    std::vector<detail::fork> forks;
    for (size_t i = 0; i < tasks.size(); ++i) forks.push_back(detail::run_child(st, i, tasks[i], slots[i]));
    co_await detail::join_awaiter{st, forks};
    detail::destroy_forks(forks);
    for (auto& s : slots) s.take();
}

template <class T>
struct when_any_result {
    size_t index;  // which task finished first
    T value;       // its result
};
template <>
struct when_any_result<void> {
    size_t index;
};

// Awaits the first task to finish, cancels the others, waits for them to end,
// and returns the winner's index and result. A loser's exception is dropped; the
// winner's is rethrown.
template <class T>
task<when_any_result<T>> when_any(std::vector<task<T>> tasks) {
    detail::join_state st;
    cancel_source losers(co_await current_cancel_source());
    st.token = &losers;
    st.cancel_on_first = &losers;
    std::vector<detail::slot<T>> slots(tasks.size());
    std::vector<detail::fork> forks;
    for (size_t i = 0; i < tasks.size(); ++i) forks.push_back(detail::run_child(st, i, tasks[i], slots[i]));
    co_await detail::join_awaiter{st, forks};
    detail::destroy_forks(forks);
    if constexpr (std::is_void_v<T>) {
        slots[st.first].take();
        co_return when_any_result<void>{st.first};
    } else {
        co_return when_any_result<T>{st.first, slots[st.first].take()};
    }
}

template <class T, class... Ts>
auto when_any(task<T> first, Ts... rest) {
    std::vector<task<T>> v;
    v.push_back(std::move(first));
    (v.push_back(std::move(rest)), ...);
    return when_any(std::move(v));
}
template <class T, class... Ts>
auto when_all(task<T> first, Ts... rest) {
    std::vector<task<T>> v;
    v.push_back(std::move(first));
    (v.push_back(std::move(rest)), ...);
    return when_all(std::move(v));
}

}  // namespace pharos::engine
