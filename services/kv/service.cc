#include "service.hh"

namespace pharos::kv {
using namespace engine;

uint64_t service::index_of(const query& q) const {
    uint64_t i = q.mode == read_mode::single ? store_.key_index(q.key) : store_.prefix_index(q.key);
    return i ? i : 1;  // X-Consul-Index is never 0
}

read_result service::answer(const query& q) const {
    read_result r;
    r.index = index_of(q);
    switch (q.mode) {
        case read_mode::single: {
            const entry* e = store_.get(q.key);
            r.found = e != nullptr;
            if (!e) break;
            if (q.raw)
                r.body = e->value;
            else
                r.body = to_json(std::vector<const entry*>{e});
            break;
        }
        case read_mode::recurse: {
            auto l = store_.list(q.key);
            r.found = !l.empty();
            if (r.found) r.body = to_json(l);
            break;
        }
        case read_mode::keys: {
            json::writer w;
            w.begin_array();
            for (auto& k : store_.keys(q.key, q.separator)) w.string(k);
            w.end_array();
            r.found = true;  // ?keys never answers 404
            r.body = w.take();
            break;
        }
    }
    return r;
}

task<read_result> service::read(query q, deadline dl) {
    if (q.min_index > 0) {
        auto& w = waiters_.emplace_back();
        w.key = q.key;
        w.prefix = q.mode != read_mode::single;
        auto it = std::prev(waiters_.end());
        while (!stopping_ && index_of(q) <= q.min_index) {
            int r = co_await w.slot.wait(dl);
            if (r < 0) break;  // deadline or cancel: answer with what we have
        }
        waiters_.erase(it);
    }
    co_return answer(q);
}

void service::wake(std::string_view key, bool tree) {
    for (auto& w : waiters_) {
        bool hit = w.prefix ? key.substr(0, w.key.size()) == w.key ||
                                  (tree && std::string_view(w.key).substr(0, key.size()) == key)
                            : (tree ? std::string_view(w.key).substr(0, key.size()) == key : w.key == key);
        if (hit) w.slot.notify();
    }
}

write_result service::write(write_op op) {
    write_result r;
    uint64_t idx = index_ + 1;
    switch (op.kind) {
        case write_kind::set:
            store_.set(op.key, std::move(op.value), op.flags, idx);
            r.ok = true;
            break;
        case write_kind::cas:
            r.ok = store_.set_cas(op.key, std::move(op.value), op.flags, op.cas, idx);
            break;
        case write_kind::acquire:
        case write_kind::release:
            // No session store yet (sessions come with their issue): every session is unknown.
            r.error = "invalid session \"" + op.session + "\"";
            return r;
        case write_kind::remove:
            r.ok = store_.remove(op.key, idx);
            break;
        case write_kind::remove_cas:
            r.ok = store_.remove_cas(op.key, op.cas, idx);
            break;
        case write_kind::remove_tree:
            store_.remove_tree(op.key, idx);
            r.ok = true;
            break;
    }
    if (store_.table_index() == idx) {  // something was written
        index_ = idx;
        wake(op.key, op.kind == write_kind::remove_tree);
    }
    r.index = index_;
    return r;
}

task<void> service::stop() {
    stopping_ = true;
    for (auto& w : waiters_) w.slot.notify();  // blocked readers answer now
    co_return;
}

}  // namespace pharos::kv
