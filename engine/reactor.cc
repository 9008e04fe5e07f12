#include "reactor.hh"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "log.hh"
#include "smp.hh"

namespace pharos::engine {



namespace {

int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The coroutine that owns a spawned task. Its promise carries the reactor's root
// cancel source, so the task and everything it awaits can be cancelled at shutdown.
struct detached {
    struct promise_type {
        cancel_source* token;
        size_t* count;
        promise_type(reactor&, cancel_source* src, size_t* cnt, task<void>&) : token(src), count(cnt) { ++*count; }
        ~promise_type() { --*count; }
        detached get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept {}
    };
    std::coroutine_handle<promise_type> h;
};

detached run_detached(reactor& r, cancel_source*, size_t*, task<void> t) {
    try {
        co_await std::move(t);
    } catch (const std::exception& e) {
        log(log_level::error, "shard %u: spawned task failed: %s", r.shard(), e.what());
    } catch (...) {
        log(log_level::error, "shard %u: spawned task failed with an unknown exception", r.shard());
    }
}

}  // namespace

bool maybe_yield_awaiter::await_ready() const noexcept {
    return uint64_t(steady_ns()) < this_reactor().budget_expired_ns;
}

reactor::reactor(smp& group, unsigned shard, const reactor_config& cfg) : group_(group), shard_(shard) {
    backend_kind kind = cfg.backend == backend_kind::automatic ? backend_from_env() : cfg.backend;
    backend_ = make_backend(kind, this, cfg.buffers, &fallback_reason_);
    pending_out_.resize(group.size());
    timers_.reserve(1024);
}

reactor::~reactor() {
    for (auto* r : retired_) delete r;
}

unsigned reactor::shard_count() const noexcept { return group_.size(); }

void reactor::spawn(task<void> t) {
    detached d = run_detached(*this, &root_cancel_, &spawned_, std::move(t));
    schedule(d.h);
}

io_op* reactor::alloc_op() {
    if (op_free_.empty()) {
        constexpr size_t chunk = 256;
        op_chunks_.emplace_back(new io_op[chunk]);
        for (size_t i = chunk; i-- > 0;) op_free_.push_back(&op_chunks_.back()[i]);
    }
    io_op* op = op_free_.back();
    op_free_.pop_back();
    return op;
}

void reactor::free_op(io_op* op) {
    op->reset();
    op_free_.push_back(op);
}

void reactor::submit(io_op* op) {
    op->in_flight = true;
    op->aprev = nullptr;
    op->anext = in_flight_head_;
    if (in_flight_head_) in_flight_head_->aprev = op;
    in_flight_head_ = op;
    ++in_flight_;
    backend_->submit(op);
}

void reactor::deliver(io_op* op, int res, uint32_t flags) {
    const bool final = !(flags & op_more);
    if (final) {
        if (op->aprev) op->aprev->anext = op->anext; else in_flight_head_ = op->anext;
        if (op->anext) op->anext->aprev = op->aprev;
        --in_flight_;
        op->in_flight = false;
    }
    if (op->on_complete) {
        op->on_complete(op, res, flags);
    } else {
        // Detached: give back what the kernel handed us.
        if (flags & op_buffer) backend_->recycle_buffer(buffer_id(flags));
        if (op->kind == op_kind::accept_multi && res >= 0) ::close(res);
    }
    if (final) free_op(op);
}

void reactor::close_fd(int fd) noexcept {
    if (fd < 0) return;
    backend_->forget_fd(fd);
    ::close(fd);
}

void reactor::send_message(unsigned to, smp_message* m) { pending_out_[to].push_back(m); }

void reactor::cancel_flush(flush_hook* h) noexcept {
    if (!h->queued) return;
    for (auto& p : flush_)
        if (p == h) p = nullptr;
    h->queued = false;
}

void reactor::retire(retired_object* o) {
    unsigned n = group_.size();
    o->seen.resize(n);
    for (unsigned i = 0; i < n; ++i) o->seen[i] = group_.shard(i).quiescent_count();
    retired_.push_back(o);
}

void reactor::reclaim() {
    if (retired_.empty()) return;
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the publish exchange
    unsigned n = group_.size();
    size_t keep = 0;
    for (size_t k = 0; k < retired_.size(); ++k) {
        retired_object* o = retired_[k];
        bool safe = true;
        for (unsigned i = 0; i < n && safe; ++i) {
            reactor& r = group_.shard(i);
            safe = r.quiescent_count() != o->seen[i] || r.is_sleeping();
        }
        if (safe) delete o; else retired_[keep++] = o;
    }
    retired_.resize(keep);
}

bool reactor::incoming_pending() const noexcept {
    for (unsigned i = 0; i < group_.size(); ++i)
        if (i != shard_ && !group_.queue(i, shard_).empty()) return true;
    return false;
}

bool reactor::drain_incoming() {
    bool any = false;
    for (unsigned i = 0; i < group_.size(); ++i) {
        if (i == shard_) continue;
        auto& q = group_.queue(i, shard_);
        while (smp_message* m = q.pop()) {
            any = true;
            if (m->response) m->finish(); else m->run(*this);
        }
    }
    // Messages a shard sends to itself (submit_to never does, but sharded may).
    auto& self = pending_out_[shard_];
    while (!self.empty()) {
        any = true;
        std::vector<smp_message*> batch;
        batch.swap(self);
        for (auto* m : batch) if (m->response) m->finish(); else m->run(*this);
    }
    return any;
}

void reactor::flush_outgoing() {
    for (unsigned to = 0; to < pending_out_.size(); ++to) {
        if (to == shard_) continue;
        auto& out = pending_out_[to];
        if (out.empty()) continue;
        auto& q = group_.queue(shard_, to);
        size_t i = 0;
        while (i < out.size() && q.push(out[i])) ++i;
        out.erase(out.begin(), out.begin() + long(i));
        if (i == 0) continue;
        std::atomic_thread_fence(std::memory_order_seq_cst);
        reactor& t = group_.shard(to);
        if (t.sleeping_.load(std::memory_order_seq_cst) && !t.wake_sent_.exchange(true)) t.backend_->wake();
    }
}

void reactor::fire_timers() {
    if (timers_.empty()) return;
    auto now = clock::now();
    while (timer_node* t = timers_.pop_due(now)) t->fire(t);
}

void reactor::run_ready() {
    size_t n = ready_.size();
    while (n-- > 0 && !ready_.empty()) {
        auto h = ready_.front();
        ready_.pop_front();
        h.resume();
    }
}

int64_t reactor::next_timeout_ns() {
    timer_node* t = timers_.top();
    if (!t) return -1;
    auto d = (t->when - clock::now()).count();
    return d < 0 ? 0 : d;
}

void reactor::turn(bool may_block) {
    int64_t start = steady_ns();
    turn_started_ns.store(start, std::memory_order_relaxed);
    budget_expired_ns = uint64_t(start) + 500000;  // 0.5 ms before maybe_yield gives way
    turns.fetch_add(1, std::memory_order_relaxed);

    if (reported_idle_ && (io_arrived_ || !ready_.empty() || incoming_pending())) {
        // Declare this shard busy before touching any work, so that no other shard
        // moves manual time while this turn runs (see smp::manual_report).
        group_.manual_report(shard_, false, no_deadline);
        reported_idle_ = false;
    }
    io_arrived_ = false;
    bool worked = !ready_.empty();
    run_ready();
    worked |= drain_incoming();
    size_t timers_before = timers_.size();
    fire_timers();
    worked |= timers_.size() != timers_before;
    if (!flush_.empty()) {
        std::vector<flush_hook*> hooks;
        hooks.swap(flush_);
        for (auto* h : hooks)
            if (h) { h->queued = false; h->flush(); }
        worked = true;
    }
    flush_outgoing();
    quiescent_.fetch_add(1, std::memory_order_release);
    reclaim();

    int64_t timeout = 0;
    bool blocking = false;
    if (ready_.empty() && may_block) {
        if (clock::is_manual()) {
            idle_rounds_ = worked ? 0 : idle_rounds_ + 1;
            reported_idle_ = idle_rounds_ >= 2;
            group_.manual_report(shard_, reported_idle_, timers_.top() ? timers_.top()->when : no_deadline);
            timeout = 1000000;  // real 1 ms: re-check the idle protocol
        } else {
            timeout = next_timeout_ns();
        }
        if ((stopping() || !flush_.empty()) && (timeout < 0 || timeout > 1000000)) timeout = 1000000;
        // Messages that did not fit in a full queue: retry soon; the target drains it
        // without telling us.
        for (auto& o : pending_out_)
            if (!o.empty() && (timeout < 0 || timeout > 20000)) timeout = 20000;
        if (timeout != 0) {
            sleeping_.store(true, std::memory_order_seq_cst);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (incoming_pending()) timeout = 0;
            blocking = true;
            turn_started_ns.store(0, std::memory_order_relaxed);
        }
    }
    int got = backend_->poll(timeout);
    if (blocking) {
        // seq_cst: a shard that sees us awake must also see every read we make next
        // (snapshot reclamation relies on it).
        sleeping_.store(false, std::memory_order_seq_cst);
        wake_sent_.store(false, std::memory_order_relaxed);
    }
    if (got > 0 && clock::is_manual()) {
        idle_rounds_ = 0;
        io_arrived_ = true;
    }
}

void reactor::stop() noexcept {
    stop_requested_.store(true, std::memory_order_release);
    backend_->wake();
}

void reactor::run() {
    current_ = this;
    bool cancelled = false;
    int64_t drain_started = 0;
    for (;;) {
        turn(true);
        if (!stopping()) continue;
        if (!cancelled) {
            cancelled = true;
            drain_started = steady_ns();
            root_cancel_.request_cancel();
            // Ops whose awaiters are gone, or that belong to no task (listeners), end now.
            for (io_op* op = in_flight_head_; op; op = op->anext) backend_->cancel(op);
        }
        bool out_empty = true;
        for (auto& o : pending_out_) out_empty &= o.empty();
        bool drained = spawned_ == 0 && in_flight_ == 0 && ready_.empty() && out_empty;
        drained_.store(drained, std::memory_order_release);
        if (drained && group_.all_drained()) break;
        if (steady_ns() - drain_started > 5'000'000'000LL) {
            log(log_level::warn, "shard %u: shutdown gave up draining: %zu tasks, %zu ops in flight", shard_, spawned_,
                in_flight_);
            drained_.store(true, std::memory_order_release);
            break;
        }
        if (!drained) {
            // Late cancellation: ops submitted after the first pass.
            for (io_op* op = in_flight_head_; op; op = op->anext) backend_->cancel(op);
        }
    }
    current_ = nullptr;
}

std::unique_ptr<backend> make_backend(backend_kind kind, completion_sink* sink, buffer_pool_config cfg,
                                      std::string* why_not_uring) {
    if (kind != backend_kind::epoll) {
        std::string why;
        if (auto b = make_uring_backend(sink, cfg, &why)) return b;
        if (why_not_uring) *why_not_uring = why;
    } else if (why_not_uring) {
        *why_not_uring = "epoll requested";
    }
    return make_epoll_backend(sink, cfg);
}

std::optional<backend_kind> parse_backend(std::string_view name) {
    if (name == "auto") return backend_kind::automatic;
    if (name == "io_uring" || name == "uring") return backend_kind::io_uring;
    if (name == "epoll") return backend_kind::epoll;
    return std::nullopt;
}

backend_kind backend_from_env() {
    const char* v = std::getenv("PHAROS_BACKEND");
    return v ? parse_backend(v).value_or(backend_kind::automatic) : backend_kind::automatic;
}

}  // namespace pharos::engine
