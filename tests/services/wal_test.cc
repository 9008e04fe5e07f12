// storage::wal and the snapshot store on the fault-injecting memory_fs (and once
// on a real directory): records come back in order after a restart; concurrent
// writers share one sync; a failed write or sync never acknowledges; a torn
// tail is dropped, damage in the middle refuses to open; segments roll and old
// ones are removed; snapshots survive damage to the newest by falling back.
#include "services/storage/wal.hh"

#include <fcntl.h>
#include <unistd.h>

#include "engine/combinators.hh"
#include "services/storage/snapshot_store.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using storage::fs;
using storage::memory_fs;
using storage::wal;
using storage::wal_record;
using storage::wal_options;
using storage::make_disk_fs;
using storage::encode_wal_record;
using storage::wal_segment_name;
using storage::wal_segment_header;
using storage::save_snapshot;
using storage::load_newest_snapshot;
using storage::snapshot_name;
using namespace std::chrono_literals;
using engine::result;
using engine::task;

#define CO_ASSERT_MSG(c, msg)                     \
    do {                                          \
        if (!(c)) {                               \
            ADD_FAILURE() << #c << ": " << (msg); \
            co_return;                            \
        }                                         \
    } while (0)

namespace {

std::string payload(uint64_t i) { return "record-" + std::to_string(i) + std::string(i % 50, 'p'); }

struct replayed {
    std::vector<uint64_t> indexes;
    bool payloads_ok = true;
};

wal::replay_fn collect(replayed* out) {
    return [out](const wal_record& r) -> std::optional<std::string> {
        out->indexes.push_back(r.index);
        if (r.payload != payload(r.index) || r.term != 1 || r.type != 7) out->payloads_ok = false;
        return std::nullopt;
    };
}

task<wal::opened> open_log(fs& dir, replayed* out, uint64_t after = 1, uint64_t segment_bytes = 64 << 20) {
    wal_options o;
    o.segment_bytes = segment_bytes;
    co_return co_await wal::open(dir, o, after, collect(out));
}

// Appends records from..to and waits for the last one.
task<result<void>> write_range(wal* w, uint64_t from, uint64_t to) {
    for (uint64_t i = from; i <= to; ++i)
        if (!w->append(i, 1, 7, payload(i))) co_return std::error_code(EIO, std::system_category());
    co_return co_await w->wait_durable(to, no_deadline);
}

task<void> one_writer(wal* w, uint64_t index, int* acked, int* failed) {
    auto r = co_await w->wait_durable(index, no_deadline);
    if (r) ++*acked; else ++*failed;
}

bool contiguous_from(const std::vector<uint64_t>& v, uint64_t first) {
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i] != first + i) return false;
    return true;
}

}  // namespace

PHAROS_CORO_TEST(wal, records_replay_in_order_after_a_restart) {
    memory_fs dir;
    replayed none;
    auto o = co_await open_log(dir, &none);
    CO_ASSERT_TRUE(o.log != nullptr);
    EXPECT_TRUE(none.indexes.empty());
    auto r = co_await write_range(o.log.get(), 2, 101);
    CO_ASSERT_TRUE(r.ok());
    co_await o.log->close();
    dir.crash(memory_fs::crash_mode::lose_unsynced);

    replayed got;
    auto again = co_await open_log(dir, &got);
    CO_ASSERT_TRUE(again.log != nullptr);
    EXPECT_EQ(got.indexes.size(), 100u);
    EXPECT_TRUE(contiguous_from(got.indexes, 2));
    EXPECT_TRUE(got.payloads_ok);
    EXPECT_EQ(again.log->last_index(), 101u);
    // Appending continues where it left off.
    auto more = co_await write_range(again.log.get(), 102, 110);
    EXPECT_TRUE(more.ok());
    co_await again.log->close();
}

PHAROS_MANUAL_CLOCK_TEST(wal, concurrent_writers_share_one_sync) {
    memory_fs dir;
    dir.set_sync_delay(1ms);
    replayed none;
    auto o = co_await open_log(dir, &none);
    CO_ASSERT_TRUE(o.log != nullptr);
    int acked = 0, failed = 0;
    std::vector<task<void>> writers;
    for (uint64_t i = 2; i < 202; ++i) {
        EXPECT_TRUE(o.log->append(i, 1, 7, payload(i)));
        writers.push_back(one_writer(o.log.get(), i, &acked, &failed));
    }
    co_await when_all(std::move(writers));
    EXPECT_EQ(acked, 200);
    EXPECT_EQ(failed, 0);
    // The first record starts a batch alone; the other 199 share the next sync.
    EXPECT_LE(dir.syncs(), 3u);
    EXPECT_LE(o.log->batches(), 2u);
    co_await o.log->close();
}

PHAROS_MANUAL_CLOCK_TEST(wal, a_failed_sync_fails_every_pending_write_and_the_log_refuses_more) {
    memory_fs dir;
    dir.set_sync_delay(1ms);
    replayed none;
    auto o = co_await open_log(dir, &none);
    CO_ASSERT_TRUE(o.log != nullptr);
    auto ok = co_await write_range(o.log.get(), 2, 11);
    CO_ASSERT_TRUE(ok.ok());
    dir.fail_next_sync();
    int acked = 0, failed = 0;
    std::vector<task<void>> writers;
    for (uint64_t i = 12; i < 42; ++i) {
        EXPECT_TRUE(o.log->append(i, 1, 7, payload(i)));
        writers.push_back(one_writer(o.log.get(), i, &acked, &failed));
    }
    co_await when_all(std::move(writers));
    EXPECT_EQ(acked, 0);
    EXPECT_EQ(failed, 30);
    EXPECT_TRUE(o.log->failed());
    EXPECT_FALSE(o.log->append(42, 1, 7, payload(42)));
    EXPECT_EQ(o.log->durable_index(), 11u);
    co_await o.log->close();

    // Power loss: what survives is exactly what was acknowledged.
    dir.crash(memory_fs::crash_mode::lose_unsynced);
    replayed got;
    auto again = co_await open_log(dir, &got);
    CO_ASSERT_TRUE(again.log != nullptr);
    EXPECT_EQ(got.indexes.size(), 10u);
    EXPECT_TRUE(contiguous_from(got.indexes, 2));
    co_await again.log->close();
}

PHAROS_CORO_TEST(wal, a_failed_write_is_never_acknowledged) {
    memory_fs dir;
    replayed none;
    auto o = co_await open_log(dir, &none);
    CO_ASSERT_TRUE(o.log != nullptr);
    auto ok = co_await write_range(o.log.get(), 2, 5);
    CO_ASSERT_TRUE(ok.ok());
    dir.fail_next_append(28 /*ENOSPC*/);
    auto bad = co_await write_range(o.log.get(), 6, 9);
    EXPECT_FALSE(bad.ok());
    EXPECT_TRUE(o.log->failed());
    co_await o.log->close();
}

PHAROS_CORO_TEST(wal, a_torn_write_then_a_crash_keeps_only_whole_records) {
    memory_fs dir;
    replayed none;
    auto o = co_await open_log(dir, &none);
    CO_ASSERT_TRUE(o.log != nullptr);
    auto ok = co_await write_range(o.log.get(), 2, 11);
    CO_ASSERT_TRUE(ok.ok());
    // The next batch (10 records of ~40 bytes) lands only partly: 150 bytes.
    dir.fail_next_append(5, 150);
    auto bad = co_await write_range(o.log.get(), 12, 21);
    EXPECT_FALSE(bad.ok());
    co_await o.log->close();
    dir.crash(memory_fs::crash_mode::keep_unsynced);

    replayed got;
    auto again = co_await open_log(dir, &got);
    CO_ASSERT_MSG(again.log != nullptr, again.error);
    EXPECT_TRUE(got.payloads_ok);
    EXPECT_TRUE(contiguous_from(got.indexes, 2));
    EXPECT_GE(got.indexes.size(), 10u);  // the acknowledged ones
    EXPECT_LT(got.indexes.size(), 20u);  // the torn record and what followed it are gone
    uint64_t last = again.log->last_index();
    auto more = co_await write_range(again.log.get(), last + 1, last + 3);
    EXPECT_TRUE(more.ok());
    co_await again.log->close();
    replayed third;
    auto o3 = co_await open_log(dir, &third);
    CO_ASSERT_MSG(o3.log != nullptr, o3.error);
    EXPECT_TRUE(contiguous_from(third.indexes, 2));
    EXPECT_EQ(third.indexes.back(), last + 3);
    co_await o3.log->close();
}

PHAROS_MANUAL_CLOCK_TEST(wal, a_crash_between_write_and_sync_loses_only_unacknowledged_records) {
    for (auto mode : {memory_fs::crash_mode::lose_unsynced, memory_fs::crash_mode::keep_half,
                      memory_fs::crash_mode::keep_unsynced}) {
        memory_fs dir;
        replayed none;
        auto o = co_await open_log(dir, &none);
        CO_ASSERT_TRUE(o.log != nullptr);
        auto ok = co_await write_range(o.log.get(), 2, 21);
        CO_ASSERT_TRUE(ok.ok());
        dir.set_sync_delay(10ms);
        int acked = 0, failed = 0;
        std::vector<task<void>> writers;
        for (uint64_t i = 22; i < 42; ++i) {
            EXPECT_TRUE(o.log->append(i, 1, 7, payload(i)));
            writers.push_back(one_writer(o.log.get(), i, &acked, &failed));
        }
        co_await sleep_for(5ms);  // the batch is written, its sync is in flight
        dir.crash(mode);
        co_await when_all(std::move(writers));
        EXPECT_EQ(acked, 0);
        co_await o.log->close();
        dir.set_sync_delay(0ms);

        replayed got;
        auto again = co_await open_log(dir, &got);
        CO_ASSERT_MSG(again.log != nullptr, again.error);
        EXPECT_TRUE(got.payloads_ok);
        EXPECT_TRUE(contiguous_from(got.indexes, 2));
        EXPECT_GE(got.indexes.size(), 20u);
        if (mode == memory_fs::crash_mode::lose_unsynced) EXPECT_EQ(got.indexes.size(), 20u);
        if (mode == memory_fs::crash_mode::keep_unsynced) EXPECT_EQ(got.indexes.size(), 40u);
        co_await again.log->close();
    }
}

PHAROS_CORO_TEST(wal, corruption_in_the_middle_refuses_to_open) {
    memory_fs dir;
    replayed none;
    auto o = co_await open_log(dir, &none);
    CO_ASSERT_TRUE(o.log != nullptr);
    auto ok = co_await write_range(o.log.get(), 2, 41);
    CO_ASSERT_TRUE(ok.ok());
    co_await o.log->close();
    std::string name = wal_segment_name(2);
    std::string bytes = dir.contents(name);
    bytes[wal_segment_header + 200] ^= 0x20;  // inside an early record
    dir.set_contents(name, bytes);

    replayed got;
    auto again = co_await open_log(dir, &got);
    EXPECT_TRUE(again.log == nullptr);
    EXPECT_NE(again.error.find("refusing to start"), std::string::npos) << again.error;
    EXPECT_NE(again.error.find("followed by a valid record"), std::string::npos) << again.error;
}

PHAROS_CORO_TEST(wal, segments_roll_and_old_ones_are_removed) {
    memory_fs dir;
    replayed none;
    auto o = co_await open_log(dir, &none, 1, 300);
    CO_ASSERT_TRUE(o.log != nullptr);
    for (uint64_t i = 2; i < 60; i += 4) {
        auto r = co_await write_range(o.log.get(), i, i + 3);
        CO_ASSERT_TRUE(r.ok());
    }
    size_t before = o.log->segment_count();
    EXPECT_GT(before, 3u);
    CO_ASSERT_TRUE(o.log->remove_through(40).ok());
    EXPECT_LT(o.log->segment_count(), before);
    co_await o.log->close();

    // Damage in a segment that is not the last refuses.
    auto names = dir.list();
    CO_ASSERT_TRUE(names.ok());
    replayed got;
    auto again = co_await open_log(dir, &got, 40, 300);
    CO_ASSERT_MSG(again.log != nullptr, again.error);
    EXPECT_TRUE(contiguous_from(got.indexes, 41));
    EXPECT_EQ(got.indexes.back(), 61u);
    co_await again.log->close();
    std::string first = (*names)[0];
    std::string b = dir.contents(first);
    b.resize(b.size() - 3);
    dir.set_contents(first, b);
    replayed got2;
    auto bad = co_await open_log(dir, &got2, 40, 300);
    EXPECT_TRUE(bad.log == nullptr);
    EXPECT_NE(bad.error.find("not the last"), std::string::npos) << bad.error;

    // A log that starts after the snapshot leaves a gap: refused.
    replayed got3;
    auto gap = co_await open_log(dir, &got3, 1, 300);
    EXPECT_TRUE(gap.log == nullptr);
}

PHAROS_CORO_TEST(wal, works_on_a_real_directory_and_drops_a_hand_torn_tail) {
    char tmpl[] = "/tmp/pharos-wal-test-XXXXXX";
    std::string path = mkdtemp(tmpl);
    {
        auto dir = make_disk_fs(path);
        replayed none;
        auto o = co_await open_log(*dir, &none);
        CO_ASSERT_TRUE(o.log != nullptr);
        auto r = co_await write_range(o.log.get(), 2, 51);
        CO_ASSERT_TRUE(r.ok());
        co_await o.log->close();
    }
    // Half a record by hand at the end.
    std::string seg = path + "/" + wal_segment_name(2);
    std::string rec;
    encode_wal_record(rec, 52, 1, 7, payload(52));
    int fd = ::open(seg.c_str(), O_WRONLY | O_APPEND);
    CO_ASSERT_TRUE(fd >= 0);
    CO_ASSERT_TRUE(::write(fd, rec.data(), rec.size() / 2) > 0);
    ::close(fd);
    {
        auto dir = make_disk_fs(path);
        replayed got;
        auto o = co_await open_log(*dir, &got);
        CO_ASSERT_MSG(o.log != nullptr, o.error);
        EXPECT_EQ(got.indexes.size(), 50u);
        auto r = co_await write_range(o.log.get(), 52, 52);
        EXPECT_TRUE(r.ok());
        co_await o.log->close();
        replayed got2;
        auto o2 = co_await open_log(*dir, &got2);
        CO_ASSERT_MSG(o2.log != nullptr, o2.error);
        EXPECT_EQ(got2.indexes.back(), 52u);
        co_await o2.log->close();
    }
    std::string rm = "rm -rf " + path;
    EXPECT_EQ(::system(rm.c_str()), 0);
}

PHAROS_CORO_TEST(snapshot_store, the_newest_valid_snapshot_loads_and_damaged_ones_are_skipped) {
    memory_fs dir;
    std::string err;
    auto none = co_await load_newest_snapshot(dir, &err);
    EXPECT_FALSE(none.has_value());
    for (uint64_t i : {10u, 20u, 30u}) {
        auto r = co_await save_snapshot(dir, i, 1, "body-" + std::to_string(i));
        CO_ASSERT_TRUE(r.ok());
    }
    EXPECT_TRUE(dir.contents(snapshot_name(10)).empty());  // only the newest two are kept
    auto got = co_await load_newest_snapshot(dir, &err);
    CO_ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->index, 30u);
    EXPECT_EQ(got->body, "body-30");

    std::string b = dir.contents(snapshot_name(30));
    b.back() ^= 1;
    dir.set_contents(snapshot_name(30), b);
    dir.set_contents(snapshot_name(40) + ".tmp", "half");
    auto older = co_await load_newest_snapshot(dir, &err);
    CO_ASSERT_TRUE(older.has_value());
    EXPECT_EQ(older->index, 20u);
    EXPECT_TRUE(dir.contents(snapshot_name(40) + ".tmp").empty());
}

PHAROS_CORO_TEST(snapshot_store, a_crash_before_the_directory_sync_keeps_the_old_set) {
    memory_fs dir;
    auto r = co_await save_snapshot(dir, 10, 1, "ten");
    CO_ASSERT_TRUE(r.ok());
    dir.fail_next_sync();
    auto bad = co_await save_snapshot(dir, 20, 1, "twenty");
    EXPECT_FALSE(bad.ok());
    dir.crash(memory_fs::crash_mode::lose_unsynced);
    std::string err;
    auto got = co_await load_newest_snapshot(dir, &err);
    CO_ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->index, 10u);
}
