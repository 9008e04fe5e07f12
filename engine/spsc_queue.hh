// A bounded single-producer single-consumer ring of pointers. One exists for
// each ordered pair of shards; the producer batches pushes and the consumer
// drains in batches, so a cross-shard call costs two cache-line transfers
// amortised over the batch.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>

namespace pharos::engine {

template <class T>
class spsc_queue {
public:
    explicit spsc_queue(size_t capacity_pow2 = 1024) : cap_(capacity_pow2), mask_(capacity_pow2 - 1), slots_(new T*[capacity_pow2]) {}

    // Producer side. Returns false when full.
    bool push(T* v) noexcept {
        size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_cache_ == cap_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (t - head_cache_ == cap_) return false;
        }
        slots_[t & mask_] = v;
        tail_.store(t + 1, std::memory_order_release);
        return true;
    }
    // Consumer side. Returns null when empty.
    T* pop() noexcept {
        size_t h = head_.load(std::memory_order_relaxed);
        if (h == tail_cache_) {
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (h == tail_cache_) return nullptr;
        }
        T* v = slots_[h & mask_];
        head_.store(h + 1, std::memory_order_release);
        return v;
    }
    // Any thread: a racy emptiness check, exact when both sides are quiet.
    bool empty() const noexcept {
        return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
    }

private:
    const size_t cap_, mask_;
    std::unique_ptr<T*[]> slots_;
    alignas(64) std::atomic<size_t> head_{0};
    size_t tail_cache_ = 0;  // consumer's view of tail
    alignas(64) std::atomic<size_t> tail_{0};
    size_t head_cache_ = 0;  // producer's view of head
};

}  // namespace pharos::engine
