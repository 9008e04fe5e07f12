// gate: counts work in flight on one shard so that stop() can refuse new work
// and wait for the rest to finish (Seastar's gate).
#pragma once
#include <cstddef>

#include "io.hh"

namespace pharos::engine {

class gate {
public:
    // False once closing: the caller must not start the work.
    bool try_enter() noexcept {
        if (closing_) return false;
        ++count_;
        return true;
    }
    void leave() {
        if (--count_ == 0 && closing_) done_.notify();
    }
    size_t count() const noexcept { return count_; }
    bool closing() const noexcept { return closing_; }
    // Stops new entries and waits until every holder has left, or the deadline.
    // Cancel safety: the gate stays closed.
    task<result<void>> close(deadline dl = no_deadline) {
        closing_ = true;
        while (count_ > 0) {
            int r = co_await done_.wait(dl);
            if (r < 0) co_return from_errno(r);
        }
        co_return result<void>{};
    }

    // RAII holder.
    class holder {
    public:
        explicit holder(gate& g) : g_(g.try_enter() ? &g : nullptr) {}
        holder(holder&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
        ~holder() { if (g_) g_->leave(); }
        explicit operator bool() const noexcept { return g_ != nullptr; }
    private:
        gate* g_;
    };

private:
    size_t count_ = 0;
    bool closing_ = false;
    wait_slot done_;
};

}  // namespace pharos::engine
