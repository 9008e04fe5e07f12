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

class op_awaiter {
public:
    op_awaiter(io_op* op, deadline dl) : op_(op), dl_(dl) {}
    op_awaiter(const op_awaiter&) = delete;
    ~op_awaiter() {
        if (timer_.armed()) this_reactor().cancel_timer(&timer_);
        if (op_ && op_->in_flight) {  // frame destroyed mid-flight: detach
            op_->on_complete = nullptr;
            op_->owner = nullptr;
            this_reactor().cancel(op_);
        } else if (op_ && !submitted_) {
            this_reactor().discard_op(op_);  // never reached the kernel
        }
    }
    bool await_ready() noexcept {
        if (dl_ != no_deadline && dl_ <= clock::now()) {
            res_ = -ETIMEDOUT;
            return true;
        }
        return false;
    }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        cancel_source* src = token_of(h);
        if (src && src->requested()) {
            res_ = -ECANCELED;
            return false;
        }
        h_ = h;
        reactor& r = this_reactor();
        op_->owner = this;
        op_->on_complete = &on_done;
        r.submit(op_);
        submitted_ = true;
        if (dl_ != no_deadline) {
            timer_.when = dl_;
            timer_.ctx = this;
            timer_.fire = [](timer_node* n) {
                auto* self = static_cast<op_awaiter*>(n->ctx);
                self->timed_out_ = true;
                this_reactor().cancel(self->op_);
            };
            r.add_timer(&timer_);
        }
        cb_.arm(src, [](void* p) { this_reactor().cancel(static_cast<op_awaiter*>(p)->op_); }, this);
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
        self->cb_.reset();
        if (self->timer_.armed()) this_reactor().cancel_timer(&self->timer_);
        this_reactor().schedule(self->h_);
    }

    io_op* op_;
    deadline dl_;
    int res_ = 0;
    bool timed_out_ = false;
    bool submitted_ = false;
    buffer buf_;
    std::vector<buffer> bufs_;
    timer_node timer_{};
    cancel_callback cb_;
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
        bool await_ready() noexcept {
            if (dl != no_deadline && dl <= clock::now()) {
                s.outcome_ = -ETIMEDOUT;
                return true;
            }
            return false;
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            cancel_source* src = token_of(h);
            if (src && src->requested()) {
                s.outcome_ = -ECANCELED;
                return false;
            }
            s.h_ = h;
            if (dl != no_deadline) {
                s.timer_.when = dl;
                s.timer_.ctx = &s;
                s.timer_.fire = [](timer_node* n) { static_cast<wait_slot*>(n->ctx)->fail(-ETIMEDOUT); };
                this_reactor().add_timer(&s.timer_);
            }
            s.cb_.arm(src, [](void* p) { static_cast<wait_slot*>(p)->fail(-ECANCELED); }, &s);
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
        cb_.reset();
        if (timer_.armed()) this_reactor().cancel_timer(&timer_);
    }
    std::coroutine_handle<> h_;
    timer_node timer_{};
    cancel_callback cb_;
    int outcome_ = 0;
};

}  // namespace pharos::engine
