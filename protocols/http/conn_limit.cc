#include "conn_limit.hh"

#include <functional>
#include <unordered_map>

#include "engine/smp.hh"

namespace pharos::http {
using namespace engine;

namespace {

// Each shard's counts for the IPs it is home to, keyed "endpoint ip". Touched
// only by its own shard's thread.
thread_local std::unordered_map<std::string, size_t> counts;

std::string key_of(const std::string& endpoint, const std::string& ip) { return endpoint + " " + ip; }

bool take(const std::string& key, size_t max) {
    size_t& n = counts[key];
    if (n >= max) {
        if (n == 0) counts.erase(key);
        return false;
    }
    ++n;
    return true;
}

void give_back(const std::string& key) {
    auto it = counts.find(key);
    if (it == counts.end()) return;  // never taken: nothing to give back
    if (--it->second == 0) counts.erase(it);
}

size_t read(const std::string& key) {
    auto it = counts.find(key);
    return it == counts.end() ? 0 : it->second;
}

}  // namespace

unsigned conn_limit::home_shard(std::string_view ip) {
    return unsigned(std::hash<std::string_view>{}(ip) % this_reactor().shard_count());
}

size_t conn_limit::tracked_here() noexcept { return counts.size(); }

task<bool> conn_limit::acquire(std::string ip) const {
    if (max_ == 0) co_return true;
    unsigned home = home_shard(ip);
    auto fn = [key = key_of(endpoint_, ip), max = max_]() { return take(key, max); };
    co_return co_await submit_to(home, std::move(fn));
}

task<void> conn_limit::release(std::string ip) const {
    if (max_ == 0) co_return;
    unsigned home = home_shard(ip);
    auto fn = [key = key_of(endpoint_, ip)]() { give_back(key); };
    co_await submit_to(home, std::move(fn));
}

task<size_t> conn_limit::count(std::string ip) const {
    unsigned home = home_shard(ip);
    auto fn = [key = key_of(endpoint_, ip)]() { return read(key); };
    co_return co_await submit_to(home, std::move(fn));
}

}  // namespace pharos::http
