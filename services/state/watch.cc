#include "watch.hh"

namespace pharos::state {

struct watcher::list {
    watch_hub::table* owner = nullptr;
    std::string name;
    watcher* head = nullptr;
};

watcher::watcher(watch_hub& hub, topic t, std::string_view name) : hub_(hub) {
    auto& tab = hub.tables_[size_t(t)];
    auto it = tab.find(name);
    if (it == tab.end()) {
        auto* l = new list;
        l->owner = &tab;
        l->name = std::string(name);
        it = tab.emplace(l->name, l).first;
    }
    list_ = it->second;
    next_ = list_->head;
    if (next_) next_->prev_ = this;
    list_->head = this;
    ++hub.count_;
}

watcher::~watcher() {
    if (prev_)
        prev_->next_ = next_;
    else
        list_->head = next_;
    if (next_) next_->prev_ = prev_;
    --hub_.count_;
    if (!list_->head) {
        list_->owner->erase(list_->name);
        delete list_;
    }
}

watch_hub::~watch_hub() {
    // Watchers unlink themselves; any left (a bug) keep their lists.
}

void watch_hub::wake(topic t, std::string_view name) {
    auto& tab = tables_[size_t(t)];
    auto it = tab.find(name);
    if (it == tab.end()) return;
    for (watcher* w = it->second->head; w; w = w->next_) w->slot_.notify();
}

void watch_hub::notify(const change_set& cs) {
    if (count_ == 0) return;
    bool prefixes = !tables_[size_t(topic::kv_prefix)].empty();
    for (const auto& k : cs.kv_keys) {
        wake(topic::kv_key, k);
        if (prefixes)
            for (size_t l = 0; l <= k.size(); ++l) wake(topic::kv_prefix, std::string_view(k).substr(0, l));
    }
    for (const auto& s : cs.services) wake(topic::service, s);
    for (const auto& n : cs.nodes) wake(topic::node, n);
    if (cs.nodes_table) wake(topic::nodes_table, "");
    if (cs.services_table) wake(topic::services_table, "");
    if (cs.checks_table) wake(topic::checks_table, "");
    if (cs.sessions_table) wake(topic::sessions_table, "");
}

void watch_hub::notify_all() {
    for (auto& tab : tables_)
        for (auto& [name, l] : tab)
            for (watcher* w = l->head; w; w = w->next_) w->slot_.notify();
}

}  // namespace pharos::state
