// Timers: intrusive nodes in a 4-ary min-heap owned by one reactor.
// Insert and cancel are O(log4 n) with no allocation (the node lives in the
// awaiter or the owning object), so a million pending timers cost ~16 MB of
// heap slots and nothing per tick. The earliest deadline is O(1), which the
// manual clock needs to jump to the next timer.
#pragma once
#include <cstdint>
#include <vector>

#include "clock.hh"

namespace pharos::engine {

struct timer_node {
    static constexpr uint32_t npos = UINT32_MAX;
    clock::time_point when{};
    uint32_t index = npos;  // position in the heap, npos when not armed
    void (*fire)(timer_node*) = nullptr;
    void* ctx = nullptr;  // for `fire`
    bool armed() const noexcept { return index != npos; }
};

class timer_heap {
public:
    void reserve(size_t n) { h_.reserve(n); }
    size_t size() const noexcept { return h_.size(); }
    bool empty() const noexcept { return h_.empty(); }
    timer_node* top() const noexcept { return h_.empty() ? nullptr : h_[0].node; }

    void insert(timer_node* t) {
        t->index = uint32_t(h_.size());
        h_.push_back(slot{t->when, t});
        up(t->index);
    }
    void erase(timer_node* t) noexcept {
        uint32_t i = t->index;
        if (i == timer_node::npos) return;
        t->index = timer_node::npos;
        slot last = h_.back();
        h_.pop_back();
        if (last.node == t) return;
        h_[i] = last;
        last.node->index = i;
        if (i > 0 && last.when < h_[(i - 1) / 4].when) up(i); else down(i);
    }
    // Removes and returns the earliest node if it is due at `now`.
    timer_node* pop_due(clock::time_point now) noexcept {
        if (h_.empty() || h_[0].when > now) return nullptr;
        timer_node* t = h_[0].node;
        erase(t);
        return t;
    }

private:
    // The deadline is kept next to the pointer, so sifting compares contiguous
    // memory instead of chasing one node (in some coroutine frame) per comparison.
    struct slot {
        clock::time_point when;
        timer_node* node;
    };
    void up(uint32_t i) noexcept {
        slot t = h_[i];
        while (i > 0) {
            uint32_t p = (i - 1) / 4;
            if (!(t.when < h_[p].when)) break;
            h_[i] = h_[p];
            h_[i].node->index = i;
            i = p;
        }
        h_[i] = t;
        t.node->index = i;
    }
    void down(uint32_t i) noexcept {
        slot t = h_[i];
        const uint32_t n = uint32_t(h_.size());
        for (;;) {
            uint32_t c = 4 * i + 1;
            if (c >= n) break;
            uint32_t best = c;
            uint32_t end = c + 4 < n ? c + 4 : n;
            for (uint32_t k = c + 1; k < end; ++k)
                if (h_[k].when < h_[best].when) best = k;
            if (!(h_[best].when < t.when)) break;
            h_[i] = h_[best];
            h_[i].node->index = i;
            i = best;
        }
        h_[i] = t;
        t.node->index = i;
    }
    std::vector<slot> h_;
};

}  // namespace pharos::engine
