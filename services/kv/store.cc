#include "store.hh"

#include "protocols/json/writer.hh"

namespace pharos::kv {

namespace {
bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
}  // namespace

const entry* store::get(std::string_view key) const {
    auto* p = entries_.find(key);
    return p ? p->get() : nullptr;
}

std::vector<const entry*> store::list(std::string_view prefix) const {
    std::vector<const entry*> out;
    entries_.for_each_prefix(prefix, [&](const std::string&, const std::shared_ptr<const entry>& e) {
        out.push_back(e.get());
    });
    return out;
}

std::vector<std::string> store::keys(std::string_view prefix, std::string_view separator) const {
    std::vector<std::string> out;
    entries_.for_each_prefix(prefix, [&](const std::string& key, const std::shared_ptr<const entry>&) {
        std::string_view k = key;
        if (!separator.empty()) {
            auto at = k.find(separator, prefix.size());
            if (at != std::string_view::npos) k = k.substr(0, at + separator.size());
        }
        if (out.empty() || out.back() != k) out.emplace_back(k);
    });
    return out;
}

uint64_t store::key_index(std::string_view key) const {
    if (const entry* e = get(key)) return e->modify_index;
    return table_index_;
}

uint64_t store::prefix_index(std::string_view prefix) const {
    if (prefix.empty()) return table_index_;
    uint64_t best = 0;
    entries_.for_each_prefix(prefix, [&](const std::string&, const std::shared_ptr<const entry>& e) {
        best = std::max(best, e->modify_index);
    });
    tombstones_.for_each_prefix(prefix, [&](const std::string&, uint64_t i) { best = std::max(best, i); });
    return best;
}

entry store::fresh(std::string_view key, uint64_t index) const {
    entry e;
    if (const entry* cur = get(key)) {
        e = *cur;
    } else {
        e.key = std::string(key);
        e.create_index = index;
    }
    e.modify_index = index;
    return e;
}

void store::put(entry e) {
    bump(e.modify_index);
    if (e.create_index == e.modify_index) tombstones_.erase(e.key);
    std::string key = e.key;
    entries_.set(key, std::make_shared<const entry>(std::move(e)));
}

void store::set(std::string_view key, std::string value, uint64_t flags, uint64_t index) {
    entry e = fresh(key, index);
    e.value = std::move(value);
    e.flags = flags;
    put(std::move(e));
}

bool store::set_cas(std::string_view key, std::string value, uint64_t flags, uint64_t cas, uint64_t index) {
    const entry* e = get(key);
    if (cas == 0 ? e != nullptr : (!e || e->modify_index != cas)) return false;
    set(key, std::move(value), flags, index);
    return true;
}

void store::tombstone(std::string_view key, uint64_t index) {
    tombstones_.set(key, index);
    bump(index);
}

bool store::remove(std::string_view key, uint64_t index) {
    if (entries_.erase(key)) tombstone(key, index);
    return true;
}

bool store::remove_cas(std::string_view key, uint64_t cas, uint64_t index) {
    const entry* e = get(key);
    if (cas == 0 || !e || e->modify_index != cas) return false;
    return remove(key, index);
}

size_t store::remove_tree(std::string_view prefix, uint64_t index, std::vector<std::string>* removed) {
    std::vector<std::string> keys;
    size_t n = entries_.erase_prefix(prefix, &keys);
    for (auto& k : keys) tombstone(k, index);
    if (removed) removed->insert(removed->end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
    return n;
}

bool store::acquire(std::string_view key, std::string value, uint64_t flags, std::string_view session, uint64_t index) {
    const entry* cur = get(key);
    if (cur && !cur->session.empty() && cur->session != session) return false;
    bool take = !cur || cur->session.empty();
    entry e = fresh(key, index);
    e.value = std::move(value);
    e.flags = flags;
    if (take) {
        ++e.lock_index;
        e.session = std::string(session);
    }
    put(std::move(e));
    return true;
}

bool store::release(std::string_view key, std::string value, uint64_t flags, std::string_view session, uint64_t index) {
    const entry* cur = get(key);
    if (!cur || cur->session != session || session.empty()) return false;
    entry e = fresh(key, index);
    e.value = std::move(value);
    e.flags = flags;
    e.session.clear();
    put(std::move(e));
    return true;
}

size_t store::reap_tombstones(uint64_t index) {
    std::vector<std::string> dead;
    for (auto it = tombstones_.begin(); it != tombstones_.end(); ++it)
        if (it.value() <= index) dead.push_back(it.key());
    for (auto& k : dead) tombstones_.erase(k);
    return dead.size();
}
void write_entry(json::writer& w, const entry& e) {
    w.begin_object();
    w.key("LockIndex").number(e.lock_index);
    w.key("Key").string(e.key);
    w.key("Flags").number(e.flags);
    w.key("Value");
    if (e.value.empty())
        w.null();
    else
        w.bytes_base64(e.value);
    if (!e.session.empty()) w.key("Session").string(e.session);
    w.key("CreateIndex").number(e.create_index);
    w.key("ModifyIndex").number(e.modify_index);
    w.end_object();
}

std::string to_json(const std::vector<const entry*>& entries) {
    json::writer w;
    w.begin_array();
    for (const entry* e : entries) write_entry(w, *e);
    w.end_array();
    return w.take();
}

}  // namespace pharos::kv
