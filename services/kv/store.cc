#include "store.hh"

#include "protocols/json/writer.hh"

namespace pharos::kv {

namespace {
bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
}  // namespace

const entry* store::get(std::string_view key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
}

std::vector<const entry*> store::list(std::string_view prefix) const {
    std::vector<const entry*> out;
    for (auto it = entries_.lower_bound(prefix); it != entries_.end() && has_prefix(it->first, prefix); ++it)
        out.push_back(&it->second);
    return out;
}

std::vector<std::string> store::keys(std::string_view prefix, std::string_view separator) const {
    std::vector<std::string> out;
    for (auto it = entries_.lower_bound(prefix); it != entries_.end() && has_prefix(it->first, prefix); ++it) {
        std::string_view k = it->first;
        if (!separator.empty()) {
            auto at = k.find(separator, prefix.size());
            if (at != std::string_view::npos) k = k.substr(0, at + separator.size());
        }
        if (out.empty() || out.back() != k) out.emplace_back(k);
    }
    return out;
}

uint64_t store::key_index(std::string_view key) const {
    if (const entry* e = get(key)) return e->modify_index;
    return table_index_;
}

uint64_t store::prefix_index(std::string_view prefix) const {
    if (prefix.empty()) return table_index_;
    uint64_t best = 0;
    for (auto it = entries_.lower_bound(prefix); it != entries_.end() && has_prefix(it->first, prefix); ++it)
        best = std::max(best, it->second.modify_index);
    for (auto it = tombstones_.lower_bound(prefix); it != tombstones_.end() && has_prefix(it->first, prefix); ++it)
        best = std::max(best, it->second);
    return best;
}

entry& store::upsert(std::string_view key, uint64_t index) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
        it = entries_.emplace(std::string(key), entry{}).first;
        it->second.key = it->first;
        it->second.create_index = index;
        tombstones_.erase(it->first);
    }
    it->second.modify_index = index;
    bump(index);
    return it->second;
}

void store::set(std::string_view key, std::string value, uint64_t flags, uint64_t index) {
    entry& e = upsert(key, index);
    e.value = std::move(value);
    e.flags = flags;
}

bool store::set_cas(std::string_view key, std::string value, uint64_t flags, uint64_t cas, uint64_t index) {
    const entry* e = get(key);
    if (cas == 0 ? e != nullptr : (!e || e->modify_index != cas)) return false;
    set(key, std::move(value), flags, index);
    return true;
}

void store::tombstone(const std::string& key, uint64_t index) {
    tombstones_[key] = index;
    bump(index);
}

bool store::remove(std::string_view key, uint64_t index) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return true;
    tombstone(it->first, index);
    entries_.erase(it);
    return true;
}

bool store::remove_cas(std::string_view key, uint64_t cas, uint64_t index) {
    const entry* e = get(key);
    if (cas == 0 || !e || e->modify_index != cas) return false;
    return remove(key, index);
}

size_t store::remove_tree(std::string_view prefix, uint64_t index) {
    size_t n = 0;
    auto it = entries_.lower_bound(prefix);
    while (it != entries_.end() && has_prefix(it->first, prefix)) {
        tombstone(it->first, index);
        it = entries_.erase(it);
        ++n;
    }
    return n;
}

bool store::acquire(std::string_view key, std::string value, uint64_t flags, std::string_view session, uint64_t index) {
    const entry* cur = get(key);
    if (cur && !cur->session.empty() && cur->session != session) return false;
    bool take = !cur || cur->session.empty();
    entry& e = upsert(key, index);
    e.value = std::move(value);
    e.flags = flags;
    if (take) {
        ++e.lock_index;
        e.session = std::string(session);
    }
    return true;
}

bool store::release(std::string_view key, std::string value, uint64_t flags, std::string_view session, uint64_t index) {
    const entry* cur = get(key);
    if (!cur || cur->session != session || session.empty()) return false;
    entry& e = upsert(key, index);
    e.value = std::move(value);
    e.flags = flags;
    e.session.clear();
    return true;
}

size_t store::reap_tombstones(uint64_t index) {
    size_t n = 0;
    for (auto it = tombstones_.begin(); it != tombstones_.end();) {
        if (it->second <= index) {
            it = tombstones_.erase(it);
            ++n;
        } else {
            ++it;
        }
    }
    return n;
}

std::string to_json(const std::vector<const entry*>& entries) {
    json::writer w;
    w.begin_array();
    for (const entry* e : entries) {
        w.begin_object();
        w.key("LockIndex").number(e->lock_index);
        w.key("Key").string(e->key);
        w.key("Flags").number(e->flags);
        w.key("Value");
        if (e->value.empty())
            w.null();
        else
            w.bytes_base64(e->value);
        if (!e->session.empty()) w.key("Session").string(e->session);
        w.key("CreateIndex").number(e->create_index);
        w.key("ModifyIndex").number(e->modify_index);
        w.end_object();
    }
    w.end_array();
    return w.take();
}

}  // namespace pharos::kv
