// engine::file on both backends: positioned writes and writev land where they
// were asked, survive datasync and read back whole; reads stop at end of file.
#include "engine/file.hh"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/support/coro_test.hh"

using namespace pharos::engine;

namespace {
std::string temp_path() {
    char tmpl[] = "/tmp/pharos-file-test-XXXXXX";
    int fd = mkstemp(tmpl);
    ::close(fd);
    return tmpl;
}
}  // namespace

PHAROS_CORO_TEST(file, writes_at_offsets_are_durable_and_read_back_whole) {
    std::string path = temp_path();
    auto f = file::open(path, O_RDWR | O_TRUNC);
    CO_ASSERT_TRUE(f.ok());
    auto w = co_await f->write_at(0, buffer::copy_of("hello "), after(std::chrono::seconds(10)));
    CO_ASSERT_TRUE(w.ok());
    std::vector<buffer> parts;
    parts.push_back(buffer::copy_of("wor"));
    parts.push_back(buffer::copy_of("ld"));
    parts.push_back(buffer::copy_of(std::string(100000, 'x')));
    auto wv = co_await f->writev_at(6, std::move(parts), after(std::chrono::seconds(10)));
    CO_ASSERT_TRUE(wv.ok());
    auto s = co_await f->datasync(after(std::chrono::seconds(10)));
    CO_ASSERT_TRUE(s.ok());
    auto sz = f->size();
    CO_ASSERT_TRUE(sz.ok());
    EXPECT_EQ(*sz, 11u + 100000u);
    auto r = co_await f->read_at(0, 11, after(std::chrono::seconds(10)));
    CO_ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->view(), "hello world");
    auto tail = co_await f->read_at(11 + 99990, 100, after(std::chrono::seconds(10)));
    CO_ASSERT_TRUE(tail.ok());
    EXPECT_EQ(tail->view(), std::string(10, 'x'));  // short at end of file
    CO_ASSERT_TRUE(f->truncate(5).ok());
    auto again = co_await f->read_at(0, 100, after(std::chrono::seconds(10)));
    CO_ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->view(), "hello");
    f->close();
    ::unlink(path.c_str());
}

PHAROS_CORO_TEST(file, a_directory_can_be_fsynced) {
    auto d = file::open("/tmp", O_RDONLY | O_DIRECTORY);
    CO_ASSERT_TRUE(d.ok());
    auto s = co_await d->sync(after(std::chrono::seconds(10)));
    EXPECT_TRUE(s.ok()) << s.error().message();
}

PHAROS_CORO_TEST(file, operations_on_a_closed_file_fail_with_ebadf) {
    file f;
    auto s = co_await f.datasync(no_deadline);
    EXPECT_EQ(s.error().value(), EBADF);
}
