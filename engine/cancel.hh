// Cancellation: a cancel_source owned by whoever may cancel (a parent task,
// when_any, a reactor at shutdown) and cancel_callback nodes registered by the
// operations that want to hear about it. Single-shard: a source and all its
// callbacks live on one reactor, so nothing here is atomic.
//
// Tasks carry an ambient source: a task awaited by another inherits the
// awaiting task's source, so cancelling a parent reaches every operation its
// children are suspended in.
#pragma once
#include <utility>

namespace pharos::engine {

class cancel_source;

// An intrusive registration: runs `fn` once when the source is cancelled, unless
// destroyed first. Must not outlive its source.
class cancel_callback {
public:
    cancel_callback() = default;
    cancel_callback(const cancel_callback&) = delete;
    cancel_callback& operator=(const cancel_callback&) = delete;
    ~cancel_callback() { reset(); }

    using fn_t = void (*)(void* ctx);
    // Registers on `src` (may be null: then never fires). If the source is already
    // cancelled, runs `fn(ctx)` at once. No allocation.
    void arm(cancel_source* src, fn_t fn, void* ctx);
    void reset() noexcept;
    bool armed() const noexcept { return src_ != nullptr; }

private:
    friend class cancel_source;
    cancel_source* src_ = nullptr;
    cancel_callback* prev_ = nullptr;
    cancel_callback* next_ = nullptr;
    fn_t fn_ = nullptr;
    void* ctx_ = nullptr;
};

class cancel_source {
public:
    cancel_source() = default;
    // A child source: cancelled whenever `parent` is.
    explicit cancel_source(cancel_source* parent) {
        if (parent) link_.arm(parent, [](void* self) { static_cast<cancel_source*>(self)->request_cancel(); }, this);
    }
    cancel_source(const cancel_source&) = delete;
    cancel_source& operator=(const cancel_source&) = delete;
    ~cancel_source() {
        // Callbacks still registered simply stop being reachable.
        while (head_) head_->reset();
    }

    bool requested() const noexcept { return requested_; }

    // Runs every registered callback once, in registration order. Idempotent.
    void request_cancel() {
        if (requested_) return;
        requested_ = true;
        while (head_) {
            cancel_callback* cb = head_;
            auto fn = cb->fn_;
            void* ctx = cb->ctx_;
            cb->reset();
            if (fn) fn(ctx);
        }
    }

private:
    friend class cancel_callback;
    void add(cancel_callback* cb) noexcept {
        cb->prev_ = tail_;
        cb->next_ = nullptr;
        if (tail_) tail_->next_ = cb; else head_ = cb;
        tail_ = cb;
    }
    void remove(cancel_callback* cb) noexcept {
        if (cb->prev_) cb->prev_->next_ = cb->next_; else head_ = cb->next_;
        if (cb->next_) cb->next_->prev_ = cb->prev_; else tail_ = cb->prev_;
        cb->prev_ = cb->next_ = nullptr;
    }
    bool requested_ = false;
    cancel_callback* head_ = nullptr;
    cancel_callback* tail_ = nullptr;
    cancel_callback link_;
};

inline void cancel_callback::arm(cancel_source* src, fn_t fn, void* ctx) {
    reset();
    if (!src) return;
    if (src->requested()) {
        fn(ctx);
        return;
    }
    fn_ = fn;
    ctx_ = ctx;
    src_ = src;
    src->add(this);
}

inline void cancel_callback::reset() noexcept {
    if (src_) {
        src_->remove(this);
        src_ = nullptr;
    }
    fn_ = nullptr;
}

}  // namespace pharos::engine
