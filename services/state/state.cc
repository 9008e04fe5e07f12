#include "state.hh"

#include "engine/gate.hh"
#include "services/session/rules.hh"

namespace pharos::state {
using namespace engine;

namespace {
template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

void add_touched(change_set& cs, catalog::touched& t) {
    cs.services.insert(cs.services.end(), std::make_move_iterator(t.services.begin()),
                       std::make_move_iterator(t.services.end()));
    cs.nodes.insert(cs.nodes.end(), std::make_move_iterator(t.nodes.begin()), std::make_move_iterator(t.nodes.end()));
    cs.nodes_table |= t.nodes_table;
    cs.services_table |= t.services_table;
    cs.checks_table |= t.checks_table;
}
}  // namespace

result fsm::apply_kv(const kv_op& op, uint64_t index, int64_t now_ns, change_set& cs) {
    result r;
    r.index = index;
    kv::store& kv = s_.kv;
    uint64_t before = kv.table_index();
    switch (op.verb) {
        case kv_verb::set:
            kv.set(op.key, op.value, op.flags, index);
            r.ok = true;
            break;
        case kv_verb::cas:
            r.ok = kv.set_cas(op.key, op.value, op.flags, op.cas, index);
            break;
        case kv_verb::lock:
        case kv_verb::unlock: {
            auto out = op.verb == kv_verb::lock
                           ? session::lock(s_, op.key, op.value, op.flags, op.session, index, now_ns, true, cs)
                           : session::unlock(s_, op.key, op.value, op.flags, op.session, index, cs);
            r.ok = out.ok;
            r.error = std::move(out.error);
            return r;
        }
        case kv_verb::remove:
            r.ok = kv.remove(op.key, index);
            break;
        case kv_verb::remove_cas:
            r.ok = kv.remove_cas(op.key, op.cas, index);
            break;
        case kv_verb::remove_tree:
            kv.remove_tree(op.key, index, &cs.kv_keys);
            r.ok = true;
            return r;
    }
    if (kv.table_index() != before) cs.kv_keys.push_back(op.key);
    return r;
}

result fsm::apply(const command& c, uint64_t index, change_set& cs, int64_t now_ns) {
    cs.index = index;
    auto visitor = overloaded{
        [&](const kv_op& op) { return apply_kv(op, index, now_ns, cs); },
        [&](const catalog::register_request& req) {
            result r;
            r.index = index;
            catalog::touched t;
            if (auto err = s_.catalog.register_(req, index, &t))
                r.error = std::move(*err);
            else
                r.ok = true;
            add_touched(cs, t);
            return r;
        },
        [&](const catalog::deregister_request& req) {
            result r;
            r.index = index;
            catalog::touched t;
            if (auto err = s_.catalog.deregister(req, index, &t))
                r.error = std::move(*err);
            else
                r.ok = true;
            add_touched(cs, t);
            return r;
        },
        [&](const check_update& u) {
            result r;
            r.index = index;
            catalog::touched t;
            if (auto err = s_.catalog.update_check(u.node, u.check_id, u.status, u.output, index, &t))
                r.error = std::move(*err);
            else
                r.ok = true;
            add_touched(cs, t);
            return r;
        },
        [&](const session_create& sc) {
            result r;
            r.index = index;
            if (auto err = session::create(s_, sc.s, index, cs))
                r.error = std::move(*err);
            else
                r.ok = true;
            return r;
        },
        [&](const session_destroy& sd) {
            result r;
            r.index = index;
            r.ok = true;
            session::destroy(s_, sd.id, index, now_ns, cs);
            return r;
        },
        [&](const txn::request& req) {
            result r;
            r.index = index;
            snapshot scratch = s_;  // O(1); kept only if every op succeeds
            change_set tcs;
            auto resp = std::make_shared<txn::response>(txn::apply(scratch, req, index, now_ns, tcs));
            r.ok = resp->errors.empty();
            if (r.ok) {
                s_ = std::move(scratch);
                cs = std::move(tcs);
                cs.index = index;
            }
            r.txn = std::move(resp);
            return r;
        },
        [&](const check_updates& b) {
            result r;
            r.index = index;
            r.ok = true;
            catalog::touched t;
            for (const check_update& u : b.updates)
                s_.catalog.update_check(u.node, u.check_id, u.status, u.output, index, &t);  // gone: skipped
            add_touched(cs, t);
            return r;
        },
    };
    result r = std::visit(visitor, c);
    // A catalog write can break sessions on the nodes it touched (node or check
    // gone, check critical): they are destroyed in the same entry, as Consul does.
    if (!cs.nodes.empty() && !std::holds_alternative<txn::request>(c))
        session::invalidate_broken(s_, cs.nodes, index, now_ns, cs);
    s_.index = index;
    return r;
}

service::service(sharded<service>* group, published<snapshot>* pub) : group_(group), pub_(pub) {
    if (this_shard() == pub_->owner()) fsm_ = std::make_unique<fsm>();
}

task<void> service::stop() {
    stopping_ = true;
    hub_.notify_all();
    co_await deliveries_.close();  // the owner stops first (sharded::stop goes in shard order)
}

namespace {
task<void> deliver(gate::holder g, sharded<service>* group, unsigned shard, std::shared_ptr<const change_set> cs) {
    auto fn = [group, cs]() { group->local().hub().notify(*cs); };
    co_await submit_to(shard, std::move(fn));
}
}  // namespace

result service::apply_on_owner(command c) {
    uint64_t index = next_index_++;
    auto cs = std::make_shared<change_set>();
    result r = fsm_->apply(c, index, *cs, clock::now().time_since_epoch().count());
    // A write that changed nothing (a failed CAS, an unchanged check) leaves the
    // published tables as they are: no new version, nobody to wake.
    if (!cs->empty()) {
        pub_->publish(std::make_unique<snapshot>(fsm_->tables()));
        std::shared_ptr<const change_set> shared = std::move(cs);
        for (unsigned i = 0; i < group_->size(); ++i) {
            if (i == this_shard())
                hub_.notify(*shared);
            else if (gate::holder g(deliveries_); g)
                this_reactor().spawn(deliver(std::move(g), group_, i, shared));
        }
    }
    return r;
}

task<result> service::write(command c) {
    if (this_shard() == owner()) co_return apply_on_owner(std::move(c));
    sharded<service>* g = group_;
    auto fn = [g, c = std::move(c)]() mutable { return g->local().apply_on_owner(std::move(c)); };
    co_return co_await submit_to(owner(), std::move(fn));
}

}  // namespace pharos::state
