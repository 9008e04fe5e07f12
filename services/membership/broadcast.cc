// Transmit-limited broadcast queue; see broadcast.hh.
#include "services/membership/broadcast.hh"

namespace pharos::membership {

broadcast_queue::~broadcast_queue() {
    for (auto* it : items_) delete it;
}

void broadcast_queue::clear() {
    auto all = std::move(items_);
    items_.clear();
    by_key_.clear();
    for (auto* it : all) finish(it);
}

void broadcast_queue::finish(item* it) {
    auto done = std::move(it->on_done);
    delete it;
    if (done) done();
}

void broadcast_queue::queue(std::string key, std::string msg, std::function<void()> on_done) {
    if (!key.empty()) {
        if (auto f = by_key_.find(key); f != by_key_.end()) {
            item* old = f->second;
            items_.erase(old);
            by_key_.erase(f);
            finish(old);
        }
    }
    size_t len = msg.size();
    auto* it = new item{key, std::move(msg), std::move(on_done), 0, ++next_id_, len};
    items_.insert(it);
    if (!key.empty()) by_key_[key] = it;
}

std::vector<std::string> broadcast_queue::get(size_t overhead, size_t budget, int limit) {
    // Tier by tier (fewest transmits first), the largest message that still fits, found by
    // lower_bound; taken messages leave the set until the end so none goes twice.
    std::vector<std::string> out;
    std::vector<item*> taken;
    if (items_.empty()) return out;
    size_t free = budget;
    int lo = (*items_.begin())->transmits, hi = (*items_.rbegin())->transmits;
    item probe;
    probe.id = UINT64_MAX;
    for (int t = lo; t <= hi && free > overhead; ++t) {
        while (free > overhead) {
            probe.transmits = t;
            probe.len = free - overhead;
            auto it = items_.lower_bound(&probe);
            if (it == items_.end() || (*it)->transmits != t) break;
            item* x = *it;
            items_.erase(it);
            free -= x->len + overhead;
            out.push_back(x->msg);
            taken.push_back(x);
        }
    }
    for (auto* it : taken) {
        if (++it->transmits >= limit) {
            if (!it->key.empty()) by_key_.erase(it->key);
            finish(it);
        } else {
            items_.insert(it);
        }
    }
    return out;
}

}  // namespace pharos::membership
