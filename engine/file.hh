// file: a regular file read and written through the shard's backend —
// io_uring (READ, WRITE, WRITEV, FSYNC with IORING_FSYNC_DATASYNC) or, on the
// epoll fallback, the same syscalls run synchronously at the start of the
// reactor's next turn (regular files have no readiness to wait for).
//
// Owned by the shard that opened it. open/truncate/size/close are synchronous
// syscalls (metadata, off the data path). Data operations are awaitables with
// an absolute deadline.
//
// Cancel safety (every data operation): an operation the kernel has started
// runs to completion even if its awaiter is cancelled, times out or goes away
// (the reactor owns the buffers until then); only one that had not started
// yet is dropped and reports cancelled/timed_out with nothing written. So
// after a write reports an error, the bytes at its range are unknown: callers
// that need to know (the WAL) treat any error as fatal for the file.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "buffer.hh"
#include "clock.hh"
#include "result.hh"
#include "task.hh"

namespace pharos::engine {

class file {
public:
    file() = default;
    file(file&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    file& operator=(file&& o) noexcept {
        if (this != &o) {
            close();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~file() { close(); }

    // open(2) with O_CLOEXEC added. Errors: the errno.
    static result<file> open(const std::string& path, int flags, mode_t mode = 0644);

    // Writes all of `b` at `offset` (continues after short writes).
    task<result<void>> write_at(uint64_t offset, buffer b, deadline dl = no_deadline);
    // Writes the concatenation of `bufs` at `offset`: one pwritev per IOV_MAX buffers.
    task<result<void>> writev_at(uint64_t offset, std::vector<buffer> bufs, deadline dl = no_deadline);
    // Reads up to `n` bytes at `offset`; fewer only at end of file.
    task<result<buffer>> read_at(uint64_t offset, size_t n, deadline dl = no_deadline);
    // fdatasync(2): the data written so far (and the size) is durable.
    task<result<void>> datasync(deadline dl = no_deadline);
    // fsync(2): data and metadata; also what makes a directory's entries durable.
    task<result<void>> sync(deadline dl = no_deadline);

    result<uint64_t> size() const;
    result<void> truncate(uint64_t n);
    // Closes now; the caller's operations on it must have finished.
    void close() noexcept;
    int fd() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }

private:
    explicit file(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace pharos::engine
