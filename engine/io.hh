// Awaitables over io_op records, shared by sockets and files.
//
// op_awaiter: one one-shot op, with an absolute deadline and the task's cancel
// source. On deadline or cancel it asks the backend to cancel and still waits
// for the completion, so it never returns while the kernel uses its memory. If
// its frame is destroyed first, the op is detached and the reactor frees it
// (and any buffer it holds) when the completion arrives.
//
// wait_slot: where one coroutine waits for an event on a shard-owned object
// (a listener's accept queue, a stream's receive queue), with the same
// deadline and cancel handling.
#pragma once
#include <cerrno>
#include <coroutine>

#include "reactor.hh"

namespace pharos::engine {

// What every awaitable here checks before suspending: 0 to go ahead, else
// -ETIMEDOUT (the deadline has passed) or -ECANCELED (the task's source fired).
inline int interrupted_already(deadline dl, cancel_source* src) noexcept {
    if (dl != no_deadline && dl <= clock::now()) return -ETIMEDOUT;
    if (src && src->requested()) return -ECANCELED;
    return 0;
}

// Ends a wait early: calls fn(ctx, why) once, with -ETIMEDOUT when the deadline
// passes or -ECANCELED when the cancel source fires, unless disarmed first.
class interrupter {
public:
    using fn_t = void (*)(void* ctx, int why);
    interrupter() = default;
    interrupter(const interrupter&) = delete;
    ~interrupter() { disarm(); }

    void arm(deadline dl, cancel_source* src, fn_t fn, void* ctx) {
        fn_ = fn;
        ctx_ = ctx;
        if (dl != no_deadline) {
            timer_.when = dl;
            timer_.ctx = this;
            timer_.fire = [](timer_node* n) { static_cast<interrupter*>(n->ctx)->fire(-ETIMEDOUT); };
            this_reactor().add_timer(&timer_);
        }
        cb_.arm(
            src, [](void* p) { static_cast<interrupter*>(p)->fire(-ECANCELED); }, this);
    }
    void disarm() noexcept {
        cb_.reset();
        if (timer_.armed()) this_reactor().cancel_timer(&timer_);
    }

private:
    void fire(int why) {
        disarm();
        fn_(ctx_, why);
    }
    timer_node timer_{};
    cancel_callback cb_;
    fn_t fn_ = nullptr;
    void* ctx_ = nullptr;
};

class op_awaiter {
public:
    op_awaiter(io_op* op, deadline dl) : op_(op), dl_(dl) {}
    op_awaiter(const op_awaiter&) = delete;
    ~op_awaiter() {
        stop_.disarm();
        if (op_ && op_->in_flight) {  // frame destroyed mid-flight: detach
            op_->on_complete = nullptr;
            op_->owner = nullptr;
            this_reactor().cancel(op_);
        } else if (op_ && !submitted_) {
            this_reactor().discard_op(op_);  // never reached the kernel
        }
    }
    bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        cancel_source* src = token_of(h);
        if ((res_ = interrupted_already(dl_, src)) != 0) return false;  // never submitted
        h_ = h;
        op_->owner = this;
        op_->on_complete = &on_done;
        this_reactor().submit(op_);
        submitted_ = true;
        // Interrupted: ask the kernel to stop, and still wait for the completion.
        stop_.arm(
            dl_, src,
            [](void* p, int why) {
                auto* self = static_cast<op_awaiter*>(p);
                if (why == -ETIMEDOUT) self->timed_out_ = true;
                this_reactor().cancel(self->op_);
            },
            this);
        return true;
    }
    // The raw result: bytes or -errno; -ETIMEDOUT if the deadline cancelled it.
    int await_resume() noexcept {
        if (timed_out_ && res_ == -ECANCELED) return -ETIMEDOUT;
        return res_;
    }
    // The op's buffer, handed back after completion.
    buffer take_buffer() noexcept { return std::move(buf_); }
    std::vector<buffer> take_buffers() noexcept { return std::move(bufs_); }

private:
    static void on_done(io_op* op, int res, uint32_t) {
        auto* self = static_cast<op_awaiter*>(op->owner);
        self->res_ = res;
        self->buf_ = std::move(op->buf);
        self->bufs_ = std::move(op->bufs);
        self->op_ = nullptr;
        self->stop_.disarm();
        this_reactor().schedule(self->h_);
    }

    io_op* op_;
    deadline dl_;
    int res_ = 0;
    bool timed_out_ = false;
    bool submitted_ = false;
    buffer buf_;
    std::vector<buffer> bufs_;
    interrupter stop_;
    std::coroutine_handle<> h_;
};

class wait_slot {
public:
    wait_slot() = default;
    wait_slot(const wait_slot&) = delete;
    ~wait_slot() { disarm(); }

    bool waiting() const noexcept { return bool(h_); }
    // Resumes the waiter (in the reactor's next turn), if there is one.
    void notify() {
        if (!h_) return;
        outcome_ = 0;
        auto h = h_;
        disarm();
        this_reactor().schedule(h);
    }

    struct awaiter {
        wait_slot& s;
        deadline dl;
        bool await_ready() noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            cancel_source* src = token_of(h);
            if ((s.outcome_ = interrupted_already(dl, src)) != 0) return false;
            s.h_ = h;
            s.stop_.arm(
                dl, src, [](void* p, int why) { static_cast<wait_slot*>(p)->fail(why); }, &s);
            return true;
        }
        // 0 when notified, else -ETIMEDOUT or -ECANCELED.
        int await_resume() noexcept { return s.outcome_; }
    };
    // Cancel safety: nothing is consumed by waiting; the event stays queued.
    awaiter wait(deadline dl) { return awaiter{*this, dl}; }

private:
    void fail(int why) {
        if (!h_) return;
        outcome_ = why;
        auto h = h_;
        disarm();
        this_reactor().schedule(h);
    }
    void disarm() noexcept {
        h_ = {};
        stop_.disarm();
    }
    std::coroutine_handle<> h_;
    interrupter stop_;
    int outcome_ = 0;
};

}  // namespace pharos::engine
