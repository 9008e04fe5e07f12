// The transmit-limited broadcast queue (memberlist's TransmitLimitedQueue):
// messages about a node replace older ones about the same node; get() fills a
// byte budget preferring messages sent fewer times, then larger ones, and drops
// a message once it has gone out `limit` times, calling its on_done. Lives on
// the membership shard inside one `memberlist`; not thread-safe.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace pharos::membership {

class broadcast_queue {
public:
    ~broadcast_queue();
    // `key` names the node the message is about; "" never invalidates anything.
    void queue(std::string key, std::string msg, std::function<void()> on_done = {});
    // Messages whose sizes plus `overhead` each fit in `budget` bytes together.
    std::vector<std::string> get(size_t overhead, size_t budget, int limit);
    size_t size() const { return items_.size(); }
    void clear();

private:
    struct item {
        std::string key, msg;
        std::function<void()> on_done;
        int transmits = 0;
        uint64_t id = 0;
        size_t len = 0;
    };
    struct order {
        bool operator()(const item* a, const item* b) const {
            if (a->transmits != b->transmits) return a->transmits < b->transmits;
            if (a->len != b->len) return a->len > b->len;
            return a->id > b->id;
        }
    };
    void finish(item* it);
    std::set<item*, order> items_;
    std::unordered_map<std::string, item*> by_key_;
    uint64_t next_id_ = 0;
};

}  // namespace pharos::membership
