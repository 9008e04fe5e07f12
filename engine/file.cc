#include "file.hh"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.hh"

namespace pharos::engine {

namespace {
std::error_code errno_code() { return {errno, std::system_category()}; }

task<result<void>> sync_op(int fd, op_kind kind, deadline dl) {
    if (fd < 0) co_return std::error_code(EBADF, std::system_category());
    io_op* op = this_reactor().alloc_op();
    op->kind = kind;
    op->fd = fd;
    op_awaiter a(op, dl);
    int res = co_await a;
    if (res < 0) co_return from_errno(res);
    co_return result<void>{};
}
}  // namespace

result<file> file::open(const std::string& path, int flags, mode_t mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return errno_code();
    return file(fd);
}

task<result<void>> file::write_at(uint64_t offset, buffer b, deadline dl) {
    size_t done = 0;
    while (done < b.size()) {
        if (fd_ < 0) co_return std::error_code(EBADF, std::system_category());
        io_op* op = this_reactor().alloc_op();
        op->kind = op_kind::writev_at;
        op->fd = fd_;
        op->offset = offset + done;
        op->iov.push_back(iovec{b.data() + done, b.size() - done});
        op->bufs.push_back(std::move(b));
        op_awaiter a(op, dl);
        int res = co_await a;
        std::vector<buffer> back = a.take_buffers();
        if (res < 0) co_return from_errno(res);
        if (res == 0) co_return std::error_code(EIO, std::system_category());
        b = std::move(back.at(0));
        done += size_t(res);
    }
    co_return result<void>{};
}

task<result<void>> file::writev_at(uint64_t offset, std::vector<buffer> bufs, deadline dl) {
    size_t total = 0;
    for (auto& b : bufs) total += b.size();
    size_t done = 0;
    while (done < total) {
        if (fd_ < 0) co_return std::error_code(EBADF, std::system_category());
        io_op* op = this_reactor().alloc_op();
        op->kind = op_kind::writev_at;
        op->fd = fd_;
        op->offset = offset + done;
        size_t skip = done;
        for (auto& b : bufs) {
            if (op->iov.size() == IOV_MAX) break;  // the rest goes in the next pwritev
            if (skip >= b.size()) {
                skip -= b.size();
                continue;
            }
            op->iov.push_back(iovec{b.data() + skip, b.size() - skip});
            skip = 0;
        }
        op->bufs = std::move(bufs);
        op_awaiter a(op, dl);
        int res = co_await a;
        bufs = a.take_buffers();
        if (res < 0) co_return from_errno(res);
        if (res == 0) co_return std::error_code(EIO, std::system_category());
        done += size_t(res);
    }
    co_return result<void>{};
}

task<result<buffer>> file::read_at(uint64_t offset, size_t n, deadline dl) {
    buffer out(n);
    size_t got = 0;
    while (got < n) {
        if (fd_ < 0) co_return std::error_code(EBADF, std::system_category());
        io_op* op = this_reactor().alloc_op();
        op->kind = op_kind::read_at;
        op->fd = fd_;
        op->offset = offset + got;
        op->buf = buffer(n - got);
        op_awaiter a(op, dl);
        int res = co_await a;
        buffer part = a.take_buffer();
        if (res < 0) co_return from_errno(res);
        if (res == 0) break;  // end of file
        std::memcpy(out.data() + got, part.data(), size_t(res));
        got += size_t(res);
        out.resize(got);
    }
    out.resize(got);
    co_return out;
}

task<result<void>> file::datasync(deadline dl) { return sync_op(fd_, op_kind::fdatasync, dl); }
task<result<void>> file::sync(deadline dl) { return sync_op(fd_, op_kind::fsync, dl); }

result<uint64_t> file::size() const {
    struct stat st{};
    if (::fstat(fd_, &st) < 0) return errno_code();
    return uint64_t(st.st_size);
}

result<void> file::truncate(uint64_t n) {
    if (::ftruncate(fd_, off_t(n)) < 0) return errno_code();
    return {};
}

void file::close() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

}  // namespace pharos::engine
