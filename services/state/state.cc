#include "state.hh"

#include "engine/gate.hh"
#include "services/session/rules.hh"
#include "services/state/durable.hh"

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

service::service(sharded<service>* group, published<snapshot>* pub, durable_log* durable)
    : group_(group), pub_(pub), durable_(durable) {
    if (this_shard() != pub_->owner()) return;
    if (!durable_) {
        fsm_ = std::make_unique<fsm>();
        return;
    }
    fsm_ = std::make_unique<fsm>(durable_->recovered());
    next_index_ = durable_->last_index() + 1;
    durable_->attach(fsm_.get(), [this](std::unique_ptr<snapshot> s, std::vector<std::shared_ptr<const change_set>> cs) {
        publish(std::move(s), std::move(cs));
    });
}

task<void> service::stop() {
    stopping_ = true;
    hub_.notify_all();
    // The owner stops first (sharded::stop goes in shard order): the batch in
    // flight is published before the deliveries close.
    if (durable_ && this_shard() == owner()) co_await durable_->stop();
    co_await deliveries_.close();
}

namespace {
task<void> deliver_to(gate::holder g, sharded<service>* group, unsigned shard, std::shared_ptr<const change_set> cs) {
    auto fn = [group, cs]() { group->local().hub().notify(*cs); };
    co_await submit_to(shard, std::move(fn));
}
}  // namespace

void service::deliver(std::shared_ptr<const change_set> shared) {
    for (unsigned i = 0; i < group_->size(); ++i) {
        if (i == this_shard())
            hub_.notify(*shared);
        else if (gate::holder g(deliveries_); g)
            this_reactor().spawn(deliver_to(std::move(g), group_, i, shared));
    }
}

void service::publish(std::unique_ptr<snapshot> s, std::vector<std::shared_ptr<const change_set>> changes) {
    pub_->publish(std::move(s));
    for (auto& cs : changes) deliver(std::move(cs));
}

result service::apply_on_owner(command c) {
    uint64_t index = next_index_++;
    auto cs = std::make_shared<change_set>();
    result r = fsm_->apply(c, index, *cs, clock::now().time_since_epoch().count());
    // A write that changed nothing (a failed CAS, an unchanged check) leaves the
    // published tables as they are: no new version, nobody to wake.
    if (!cs->empty()) {
        pub_->publish(std::make_unique<snapshot>(fsm_->tables()));
        deliver(std::move(cs));
    }
    return r;
}

// Every command is logged, even one that changed nothing: its answer (a failed
// CAS) may depend on writes not yet durable, and replay must give the same indexes.
task<result> service::write_durable(command c) {
    result r;
    if (durable_->failed()) {
        r.error = "storage failed: writes are refused until the agent restarts (" + durable_->wal().failure() + ")";
        co_return r;
    }
    uint64_t index = next_index_++;
    auto cs = std::make_shared<change_set>();
    const int64_t now_ns = clock::now().time_since_epoch().count();  // logged with the command: replay sees it too
    r = fsm_->apply(c, index, *cs, now_ns);
    if (!durable_->append(index, now_ns, c, std::move(cs))) {
        result f;
        f.error = "storage failed: writes are refused until the agent restarts";
        co_return f;
    }
    auto d = co_await durable_->wait_durable(index);
    if (!d) {
        result f;
        f.index = index;
        if (durable_->failed())
            f.error = "storage failed: the write was not made durable (" + durable_->wal().failure() + ")";
        else  // cancelled while waiting: the write stays logged and may still become durable
            f.error = "the wait for durability was cancelled: " + d.error().message();
        co_return f;
    }
    co_return r;
}

task<result> service::write(command c) {
    if (durable_) {
        if (this_shard() == owner()) co_return co_await write_durable(std::move(c));
        sharded<service>* g = group_;
        auto fn = [g, c = std::move(c)]() mutable { return g->local().write_durable(std::move(c)); };
        co_return co_await submit_to(owner(), std::move(fn));
    }
    if (this_shard() == owner()) co_return apply_on_owner(std::move(c));
    sharded<service>* g = group_;
    auto fn = [g, c = std::move(c)]() mutable { return g->local().apply_on_owner(std::move(c)); };
    co_return co_await submit_to(owner(), std::move(fn));
}

}  // namespace pharos::state
