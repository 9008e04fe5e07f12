// engine::fifo<T>: a first-in first-out queue that allocates nothing while
// empty. std::deque allocates a 512-byte node and its map on construction, which
// is most of an idle connection's memory; this keeps a vector and a head index
// instead, and rewinds the vector whenever it drains (the usual case for a
// socket's receive queue: one or two items, then empty again).
// Not thread-safe; owned by one shard like everything it holds.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace pharos::engine {

template <class T>
class fifo {
public:
    bool empty() const noexcept { return head_ == items_.size(); }
    size_t size() const noexcept { return items_.size() - head_; }
    T& front() noexcept { return items_[head_]; }

    template <class... A>
    T& emplace_back(A&&... args) {
        // Consumed slots are dropped before the vector would grow: a queue that
        // is read as fast as it is written stays at its high-water mark.
        if (head_ > 0 && items_.size() == items_.capacity()) compact();
        return items_.emplace_back(std::forward<A>(args)...);
    }
    void push_back(T v) { emplace_back(std::move(v)); }

    // Destroys the front item at once (a receive buffer goes back to its pool now).
    void pop_front() {
        items_[head_] = T();
        if (++head_ == items_.size()) clear();
    }
    void clear() noexcept {
        items_.clear();
        head_ = 0;
    }

private:
    void compact() {
        items_.erase(items_.begin(), items_.begin() + std::ptrdiff_t(head_));
        head_ = 0;
    }
    std::vector<T> items_;
    size_t head_ = 0;
};

}  // namespace pharos::engine
