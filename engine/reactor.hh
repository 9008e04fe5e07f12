// reactor: one per shard thread. It owns that shard's I/O backend, timers,
// ready queue, op pool and the receiving ends of its cross-shard queues, and it
// runs every coroutine of the shard. Nothing in it is touched by another thread
// except the atomics marked "any thread".
#pragma once
#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "backend.hh"
#include "cancel.hh"
#include "clock.hh"
#include "result.hh"
#include "spsc_queue.hh"
#include "task.hh"
#include "timer.hh"

namespace pharos::engine {

class reactor;
class smp;

// A unit of cross-shard work; see smp.hh. `run` executes on the target shard,
// `finish` back on the origin shard.
struct smp_message {
    virtual ~smp_message() = default;
    virtual void run(reactor& target) = 0;
    virtual void finish() = 0;
    unsigned origin = 0;
    bool response = false;
};

// Objects retired from a published snapshot, freed on their owner shard once
// every shard has passed a quiescent point since retirement (see snapshot.hh).
struct retired_object {
    virtual ~retired_object() = default;
    std::vector<uint64_t> seen;  // each shard's quiescent counter at retirement
};

struct reactor_config {
    backend_kind backend = backend_kind::automatic;
    buffer_pool_config buffers{};
};

class reactor final : public completion_sink {
public:
    reactor(smp& group, unsigned shard, const reactor_config& cfg);
    ~reactor() override;
    reactor(const reactor&) = delete;

    unsigned shard() const noexcept { return shard_; }
    unsigned shard_count() const noexcept;
    smp& group() noexcept { return group_; }
    backend& io() noexcept { return *backend_; }
    const char* backend_name() const noexcept { return backend_->name(); }
    // Why io_uring was not used on this shard (empty if it was).
    const std::string& fallback_reason() const noexcept { return fallback_reason_; }

    // --- tasks ---
    // Queues a coroutine to resume in this reactor's next turn.
    void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }
    // Runs `t` detached on this shard under the reactor's root cancel source. Shutdown
    // cancels it and waits for it. An exception escaping it is logged.
    void spawn(task<void> t);
    size_t spawned_count() const noexcept { return spawned_; }

    // --- timers ---
    void add_timer(timer_node* t) { timers_.insert(t); }
    void cancel_timer(timer_node* t) noexcept { timers_.erase(t); }
    size_t timer_count() const noexcept { return timers_.size(); }

    // --- I/O ops ---
    io_op* alloc_op();
    // Returns an op that was never submitted.
    void discard_op(io_op* op) { free_op(op); }
    void submit(io_op* op);
    void cancel(io_op* op) { if (op->in_flight) backend_->cancel(op); }
    void deliver(io_op* op, int res, uint32_t flags) override;
    size_t ops_in_flight() const noexcept { return in_flight_; }
    // Closes `fd` after telling the backend to forget it.
    void close_fd(int fd) noexcept;

    // --- cross-shard ---
    void send_message(unsigned to, smp_message* m);
    // --- end-of-turn hooks (UDP send batching) ---
    struct flush_hook {
        virtual void flush() = 0;
        virtual ~flush_hook() = default;
        bool queued = false;
    };
    void request_flush(flush_hook* h) {
        if (!h->queued) { h->queued = true; flush_.push_back(h); }
    }
    void cancel_flush(flush_hook* h) noexcept;

    // --- snapshot reclamation ---
    void retire(retired_object* o);
    uint64_t quiescent_count() const noexcept { return quiescent_.load(std::memory_order_acquire); }
    bool is_sleeping() const noexcept { return sleeping_.load(std::memory_order_acquire); }
    bool is_drained() const noexcept { return drained_.load(std::memory_order_acquire); }

    // --- run loop ---
    // Runs until stop() and drains: cancels spawned tasks, waits for them and for
    // every in-flight op, then returns.
    void run();
    // Any thread: asks the loop to stop.
    void stop() noexcept;
    bool stopping() const noexcept { return stop_requested_.load(std::memory_order_acquire); }

    // Read by the stall detector (any thread): when the current turn began
    // (steady ns, 0 while sleeping) and how many turns have run.
    std::atomic<int64_t> turn_started_ns{0};
    std::atomic<uint64_t> turns{0};
    uint64_t budget_expired_ns = 0;  // maybe_yield threshold for this turn (steady ns)

    static reactor* current() noexcept { return current_; }

private:
    friend class smp;
    void turn(bool may_block);
    bool drain_incoming();
    void flush_outgoing();
    void fire_timers();
    void reclaim();
    bool incoming_pending() const noexcept;
    int64_t next_timeout_ns();
    void manual_idle_wait();
    void run_ready();
    void free_op(io_op* op);

    // Defined here, constant-initialized: no TLS wrapper, local-exec access in every TU.
    static inline constinit thread_local reactor* current_ = nullptr;

    smp& group_;
    unsigned shard_;
    std::unique_ptr<backend> backend_;
    std::string fallback_reason_;
    std::deque<std::coroutine_handle<>> ready_;
    timer_heap timers_;
    cancel_source root_cancel_;
    size_t spawned_ = 0;

    std::vector<io_op*> op_free_;
    std::vector<std::unique_ptr<io_op[]>> op_chunks_;
    io_op* in_flight_head_ = nullptr;
    size_t in_flight_ = 0;

    std::vector<std::vector<smp_message*>> pending_out_;  // per target, when its queue is full
    std::vector<flush_hook*> flush_;
    std::vector<retired_object*> retired_;

    std::atomic<bool> sleeping_{false};
    std::atomic<bool> wake_sent_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> drained_{false};
    std::atomic<uint64_t> quiescent_{0};
    uint64_t idle_rounds_ = 0;
    bool reported_idle_ = false;  // manual clock: our last report said idle
    bool io_arrived_ = false;
};

inline reactor& this_reactor() noexcept { return *reactor::current(); }
inline unsigned this_shard() noexcept { return reactor::current()->shard(); }

// --- basic awaitables ---

// Suspends until `when` (engine time). Returns errc::cancelled if the task's
// cancel source fires first. Cancel safety: nothing is lost.
struct sleep_awaiter {
    deadline when;
    timer_node node{};
    cancel_callback cb;
    std::coroutine_handle<> h;
    bool cancelled = false;

    explicit sleep_awaiter(deadline w) : when(w) {}
    sleep_awaiter(sleep_awaiter&&) = delete;
    ~sleep_awaiter() { if (node.armed()) this_reactor().cancel_timer(&node); }
    bool await_ready() const noexcept { return when <= clock::now(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> awaiting) {
        cancel_source* src = token_of(awaiting);
        if (src && src->requested()) { cancelled = true; return false; }
        h = awaiting;
        node.when = when;
        node.ctx = this;
        node.fire = [](timer_node* n) {
            auto* self = static_cast<sleep_awaiter*>(n->ctx);
            self->cb.reset();
            self->h.resume();
        };
        this_reactor().add_timer(&node);
        cb.arm(src, [](void* p) {
            auto* self = static_cast<sleep_awaiter*>(p);
            self->cancelled = true;
            this_reactor().cancel_timer(&self->node);
            this_reactor().schedule(self->h);
        }, this);
        return true;
    }
    result<void> await_resume() const noexcept {
        if (cancelled) return errc::cancelled;
        return {};
    }
};

inline sleep_awaiter sleep_until(deadline d) { return sleep_awaiter(d); }
inline sleep_awaiter sleep_for(clock::duration d) { return sleep_awaiter(clock::now() + d); }

// Gives other tasks on this shard a turn.
struct yield_awaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { this_reactor().schedule(h); }
    void await_resume() const noexcept {}
};
inline yield_awaiter yield() { return {}; }

// Yields only if this turn has run longer than its budget (for long loops).
struct maybe_yield_awaiter {
    bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> h) { this_reactor().schedule(h); }
    void await_resume() const noexcept {}
};
inline maybe_yield_awaiter maybe_yield() { return {}; }

}  // namespace pharos::engine
