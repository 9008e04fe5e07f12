// storage::memory_fs models a disk the way the WAL's correctness depends on:
// unsynced bytes and directory entries may vanish in a crash, synced ones never;
// a kill -9 keeps everything written; handles from before a crash fail. And
// disk_fs does the same operations on a real directory.
#include "services/storage/fs.hh"

#include <stdlib.h>

#include "services/storage/crc32c.hh"
#include "tests/support/coro_test.hh"

using namespace pharos;
using namespace pharos::engine;
using storage::memory_fs;

namespace {
task<bool> append(storage::file& f, std::string s) {
    std::vector<buffer> b;
    b.push_back(buffer::copy_of(s));
    auto r = co_await f.append(std::move(b), no_deadline);
    co_return r.ok();
}
}  // namespace

TEST(crc32c, matches_the_castagnoli_check_value) {
    EXPECT_EQ(storage::crc32c("123456789"), 0xE3069283u);
    EXPECT_EQ(storage::crc32c("6789", storage::crc32c("12345")), 0xE3069283u);
    EXPECT_EQ(storage::crc32c(""), 0u);
}

PHAROS_CORO_TEST(memory_fs, a_power_loss_keeps_only_synced_bytes_and_entries) {
    memory_fs m;
    auto f = m.open("a", true);
    CO_ASSERT_TRUE(f.ok());
    CO_ASSERT_TRUE(co_await append(**f, "synced"));
    CO_ASSERT_TRUE((co_await (*f)->sync(no_deadline)).ok());
    CO_ASSERT_TRUE((co_await m.sync_dir(no_deadline)).ok());
    CO_ASSERT_TRUE(co_await append(**f, "+unsynced"));
    auto g = m.open("b", true);  // never dir-synced
    CO_ASSERT_TRUE(g.ok());
    CO_ASSERT_TRUE(co_await append(**g, "data"));
    CO_ASSERT_TRUE((co_await (*g)->sync(no_deadline)).ok());
    m.crash(memory_fs::crash_mode::lose_unsynced);
    EXPECT_EQ(m.contents("a"), "synced");
    auto names = m.list();
    CO_ASSERT_TRUE(names.ok());
    EXPECT_EQ(names->size(), 1u);
    // Old handles are dead.
    EXPECT_FALSE(co_await append(**f, "x"));
}

PHAROS_CORO_TEST(memory_fs, a_killed_process_keeps_everything_written_and_half_keeps_half) {
    memory_fs m;
    auto f = m.open("a", true);
    CO_ASSERT_TRUE(f.ok());
    CO_ASSERT_TRUE(co_await append(**f, "0123"));
    CO_ASSERT_TRUE((co_await (*f)->sync(no_deadline)).ok());
    CO_ASSERT_TRUE(co_await append(**f, "45678901"));
    m.crash(memory_fs::crash_mode::keep_unsynced);
    EXPECT_EQ(m.contents("a"), "012345678901");
    EXPECT_EQ(m.list()->size(), 1u);

    auto g = m.open("a", false);
    CO_ASSERT_TRUE(g.ok());
    CO_ASSERT_TRUE(co_await append(**g, "abcd"));
    CO_ASSERT_TRUE((co_await m.sync_dir(no_deadline)).ok());
    m.crash(memory_fs::crash_mode::keep_half);
    EXPECT_EQ(m.contents("a"), "012345678901ab");
}

PHAROS_CORO_TEST(memory_fs, injected_faults_fail_one_operation_each) {
    memory_fs m;
    auto f = m.open("a", true);
    CO_ASSERT_TRUE(f.ok());
    m.fail_next_append(28, 3);  // torn: 3 bytes land, then ENOSPC
    std::vector<buffer> b;
    b.push_back(buffer::copy_of("abcdef"));
    auto w = co_await (*f)->append(std::move(b), no_deadline);
    EXPECT_EQ(w.error().value(), 28);
    EXPECT_EQ(m.contents("a"), "abc");
    m.fail_next_sync();
    auto s = co_await (*f)->sync(no_deadline);
    EXPECT_FALSE(s.ok());
    m.crash(memory_fs::crash_mode::lose_unsynced);
    EXPECT_EQ(m.contents("a"), "");  // the failed sync made nothing durable
    auto again = m.open("a", false);
    EXPECT_FALSE(again.ok());  // and the entry was never dir-synced
}

PHAROS_CORO_TEST(disk_fs, files_append_sync_read_rename_truncate_and_list) {
    char tmpl[] = "/tmp/pharos-fs-test-XXXXXX";
    std::string path = mkdtemp(tmpl);
    auto fs = storage::make_disk_fs(path + "/sub");
    auto f = fs->open("x.tmp", true);
    CO_ASSERT_TRUE(f.ok());
    CO_ASSERT_TRUE(co_await append(**f, "hello "));
    CO_ASSERT_TRUE(co_await append(**f, "world"));
    CO_ASSERT_TRUE((co_await (*f)->sync(no_deadline)).ok());
    EXPECT_EQ((*f)->size(), 11u);
    auto r = co_await (*f)->read(6, 100, no_deadline);
    CO_ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, "world");
    CO_ASSERT_TRUE((*f)->truncate(5).ok());
    f->reset();
    CO_ASSERT_TRUE(fs->rename("x.tmp", "x").ok());
    CO_ASSERT_TRUE((co_await fs->sync_dir(no_deadline)).ok());
    auto names = fs->list();
    CO_ASSERT_TRUE(names.ok());
    CO_ASSERT_EQ(names->size(), 1u);
    EXPECT_EQ((*names)[0], "x");
    auto g = fs->open("x", false);
    CO_ASSERT_TRUE(g.ok());
    auto all = co_await (*g)->read(0, 100, no_deadline);
    CO_ASSERT_TRUE(all.ok());
    EXPECT_EQ(*all, "hello");
    CO_ASSERT_TRUE(fs->remove("x").ok());
    EXPECT_FALSE(fs->open("x", false).ok());
    std::string rm = "rm -rf " + path;
    EXPECT_EQ(::system(rm.c_str()), 0);
}
