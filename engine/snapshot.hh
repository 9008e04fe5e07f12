// published<T>: one writer shard publishes immutable versions of a T; tasks on
// every shard read the current version without locks or reference counts.
//
// Reclamation is quiescent-state based: a replaced version is retired on the
// owner shard and freed there once every shard has finished a reactor turn (or
// was asleep) since the replacement. Hence the reader's contract: a pointer
// from read() is valid until the reading task next suspends (co_await). To keep
// data across a suspension, copy what you need.
#pragma once
#include <atomic>
#include <memory>

#include "reactor.hh"

namespace pharos::engine {

template <class T>
class published {
public:
    // Must be constructed on the owner shard.
    explicit published(std::unique_ptr<const T> initial)
        : owner_(this_shard()), cur_(initial.release()) {}
    published(const published&) = delete;
    // Destroy on the owner shard, after readers are gone (e.g. in a sharded stop()).
    ~published() { delete cur_.load(std::memory_order_acquire); }

    unsigned owner() const noexcept { return owner_; }

    // Any shard: the current version (never null if constructed with a value).
    const T* read() const noexcept { return cur_.load(std::memory_order_acquire); }

    // Owner shard only: makes `next` current and retires the old version.
    void publish(std::unique_ptr<const T> next) {
        const T* old = cur_.exchange(next.release(), std::memory_order_acq_rel);
        if (old) this_reactor().retire(new holder(old));
        ++version_;
    }
    uint64_t version() const noexcept { return version_; }

private:
    struct holder final : retired_object {
        explicit holder(const T* p) : ptr(p) {}
        ~holder() override { delete ptr; }
        const T* ptr;
    };
    unsigned owner_;
    std::atomic<const T*> cur_;
    uint64_t version_ = 0;
};

}  // namespace pharos::engine
