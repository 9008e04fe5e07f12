#include "durable.hh"

#include <cinttypes>

#include "engine/log.hh"
#include "engine/reactor.hh"
#include "services/state/codec.hh"
#include "services/storage/snapshot_store.hh"

namespace pharos::state {
using namespace engine;

namespace {
constexpr uint8_t record_command = 1;
}

task<std::string> durable_log::open(std::unique_ptr<storage::fs> dir, durable_options opt,
                                    std::unique_ptr<durable_log>& out) {
    std::unique_ptr<durable_log> d(new durable_log());
    d->dir_ = std::move(dir);
    d->opt_ = opt;
    std::string err;
    auto snap = co_await storage::load_newest_snapshot(*d->dir_, &err);
    if (!err.empty()) co_return err;
    snapshot start;
    uint64_t after = start.index;  // 1: nothing applied yet
    if (snap) {
        if (auto e = decode_snapshot(snap->body, start))
            co_return "snapshot " + storage::snapshot_name(snap->index) + " in " + d->dir_->where() +
                   " cannot be decoded: " + *e + ": refusing to start";
        if (start.index != snap->index)
            co_return "snapshot " + storage::snapshot_name(snap->index) + " holds index " + std::to_string(start.index) +
                   ": refusing to start";
        after = snap->index;
        d->last_snapshot_ = snap->index;
    }
    auto m = std::make_unique<fsm>(std::move(start));
    uint64_t replayed = 0;
    fsm* mp = m.get();
    uint64_t* rp = &replayed;
    storage::wal::replay_fn replay = [mp, rp](const storage::wal_record& r) -> std::optional<std::string> {
        if (r.type != record_command) return "unknown record type " + std::to_string(r.type);
        std::optional<log_entry> e = decode_entry(r.payload);
        if (!e) return std::string("undecodable command");
        change_set cs;
        (void)mp->apply(e->c, r.index, cs, e->now_ns);
        ++*rp;
        return std::nullopt;
    };
    storage::wal_options wo;
    wo.segment_bytes = opt.segment_bytes;
    auto opened = co_await storage::wal::open(*d->dir_, wo, after, std::move(replay));
    if (!opened.log) co_return opened.error;
    d->log_ = std::move(opened.log);
    d->recovered_ = mp->tables();
    log(log_level::info, "state: recovered from %s: snapshot at index %" PRIu64 ", %" PRIu64 " log records replayed, "
        "last index %" PRIu64, d->dir_->where().c_str(), after, replayed, d->log_->last_index());
    d->log_->on_cut = [p = d.get()](uint64_t last) { p->on_cut(last); };
    d->log_->on_done = [p = d.get()](uint64_t last, bool ok) { p->on_done(last, ok); };
    out = std::move(d);
    co_return std::string();
}

durable_log::~durable_log() = default;

void durable_log::attach(const fsm* m, publish_fn publish) {
    fsm_ = m;
    publish_ = std::move(publish);
}

bool durable_log::append(uint64_t index, int64_t now_ns, const command& c, std::shared_ptr<const change_set> cs) {
    encoded_.clear();
    encode_entry(now_ns, c, encoded_);
    if (!log_->append(index, 0, record_command, encoded_)) return false;
    if (!cs->empty()) unflushed_.push_back(std::move(cs));
    return true;
}

void durable_log::on_cut(uint64_t last) {
    // Nothing runs between the last append and here: the fsm's tables are those at `last`.
    if (!unflushed_.empty()) batch_tables_ = std::make_unique<snapshot>(fsm_->tables());
    batch_changes_ = std::move(unflushed_);
    unflushed_.clear();
}

void durable_log::on_done(uint64_t last, bool ok) {
    if (!ok) {
        batch_tables_.reset();
        batch_changes_.clear();
        unflushed_.clear();
        return;
    }
    if (batch_tables_) {
        snapshot copy = *batch_tables_;  // O(1): persistent tables
        publish_(std::move(batch_tables_), std::move(batch_changes_));
        batch_changes_.clear();
        if (last - last_snapshot_ >= opt_.snapshot_every && !snapshotting_) {
            gate::holder g(snapshot_gate_);
            if (g) {
                snapshotting_ = true;
                log_->roll();  // later records go to a new segment, so the older ones can go after the save
                this_reactor().spawn(take_snapshot(std::move(g), std::move(copy)));
            }
        }
    }
}

task<void> durable_log::take_snapshot(gate::holder g, snapshot s) {
    std::string body;
    encode_snapshot(s, body);
    uint64_t index = s.index;
    s = snapshot();
    auto r = co_await storage::save_snapshot(*dir_, index, 0, std::move(body));
    if (!r) {
        log(log_level::error, "state: snapshot at index %" PRIu64 " failed: %s (the log still has everything)", index,
            r.error().message().c_str());
    } else {
        ++snapshots_;
        last_snapshot_ = index;
        auto rm = log_->remove_through(index);
        if (!rm) log(log_level::warn, "state: removing old WAL segments: %s", rm.error().message().c_str());
    }
    snapshotting_ = false;
}

task<engine::result<void>> durable_log::wait_durable(uint64_t index) { return log_->wait_durable(index, no_deadline); }

task<void> durable_log::stop() {
    co_await log_->close();
    auto r = co_await snapshot_gate_.close();
    (void)r;
}

}  // namespace pharos::state
