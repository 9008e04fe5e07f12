// epoll backend: the fallback where io_uring is refused. It emulates io_uring's
// completion model: ops wait on per-fd read/write lists, edge-triggered
// readiness retries them, and results are delivered from poll() only. Multishot
// accept and recv are loops until EAGAIN; provided buffers are a free list.
// File I/O (read_at, write_at, writev_at, fdatasync, fsync) runs synchronously
// here, at the start of the next poll(): regular files have no readiness.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "backend.hh"

namespace pharos::engine {
namespace {

enum side : int8_t { rd = 0, wr = 1 };

struct fd_state {
    bool registered = false;
    io_op* head[2] = {nullptr, nullptr};
    io_op* tail[2] = {nullptr, nullptr};
};

side side_of(op_kind k) {
    switch (k) {
    case op_kind::send:
    case op_kind::sendmsg:
    case op_kind::connect:
    case op_kind::poll_out: return wr;
    default: return rd;
    }
}

class epoll_backend final : public backend {
public:
    epoll_backend(completion_sink* sink, buffer_pool_config cfg) : sink_(sink), cfg_(cfg) {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = wake_fd_;
        epoll_ctl(ep_, EPOLL_CTL_ADD, wake_fd_, &ev);
        mem_ = static_cast<char*>(std::aligned_alloc(4096, size_t(cfg_.count) * cfg_.size));
        free_.reserve(cfg_.count);
        for (uint32_t i = cfg_.count; i-- > 0;) free_.push_back(uint16_t(i));
    }
    ~epoll_backend() override {
        close(ep_);
        close(wake_fd_);
        std::free(mem_);
    }

    const char* name() const noexcept override { return "epoll"; }
    bool wants_nonblocking() const noexcept override { return true; }

    void submit(io_op* op) override {
        // Everything is attempted from poll(), so completions never run inside submit().
        if (op->kind == op_kind::connect) {
            int r = ::connect(op->fd, reinterpret_cast<sockaddr*>(&op->addr), op->addrlen);
            if (r == 0 || errno != EINPROGRESS) {
                post(op, r == 0 ? 0 : -errno, 0);
                return;
            }
        }
        enqueue(op);
        retry_.push_back(op);
    }

    void cancel(io_op* op) override {
        if (op->wside < 0) return;  // already finished or about to be delivered
        unlink(op);
        post(op, -ECANCELED, 0);
    }

    int poll(int64_t timeout_ns) override {
        int done = 0;
        // Attempt newly submitted ops first (level-style check for fds already ready).
        while (!retry_.empty()) {
            std::vector<io_op*> batch;
            batch.swap(retry_);
            for (io_op* op : batch)
                if (op->wside >= 0) attempt(op);
        }
        done += drain_posted();
        epoll_event evs[256];
        int n;
        if (done > 0 || timeout_ns == 0) {
            n = epoll_wait(ep_, evs, 256, 0);
        } else if (timeout_ns < 0) {
            n = epoll_wait(ep_, evs, 256, -1);
        } else {
            // epoll_pwait2 takes nanoseconds (epoll_wait would round up to whole ms).
            timespec ts{time_t(timeout_ns / 1000000000), long(timeout_ns % 1000000000)};
            n = epoll_pwait2(ep_, evs, 256, &ts, nullptr);
            if (n < 0 && errno == ENOSYS) n = epoll_wait(ep_, evs, 256, int((timeout_ns + 999999) / 1000000));
        }
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == wake_fd_) {
                uint64_t v;
                [[maybe_unused]] auto r = read(wake_fd_, &v, sizeof v);
                continue;
            }
            if (size_t(fd) >= fds_.size()) continue;
            uint32_t e = evs[i].events;
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) run_side(fd, rd);
            if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) run_side(fd, wr);
        }
        done += drain_posted();
        return done;
    }

    void wake() noexcept override {
        uint64_t one = 1;
        [[maybe_unused]] auto r = write(wake_fd_, &one, sizeof one);
    }

    char* buffer_data(uint16_t bid) noexcept override { return mem_ + size_t(bid) * cfg_.size; }
    void recycle_buffer(uint16_t bid) noexcept override { free_.push_back(bid); }
    uint32_t buffer_size() const noexcept override { return cfg_.size; }

    void forget_fd(int fd) noexcept override {
        if (size_t(fd) < fds_.size()) {
            fd_state& s = fds_[fd];
            while (s.head[rd]) cancel(s.head[rd]);
            while (s.head[wr]) cancel(s.head[wr]);
            if (s.registered) epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
            s = fd_state{};
        }
    }

private:
    struct posted {
        io_op* op;
        int res;
        uint32_t flags;
    };

    fd_state& state(int fd) {
        if (size_t(fd) >= fds_.size()) fds_.resize(size_t(fd) * 2 + 64);
        return fds_[fd];
    }

    void enqueue(io_op* op) {
        fd_state& s = state(op->fd);
        side sd = side_of(op->kind);
        op->wside = sd;
        op->wnext = nullptr;
        op->wprev = s.tail[sd];
        if (s.tail[sd]) s.tail[sd]->wnext = op; else s.head[sd] = op;
        s.tail[sd] = op;
        if (!s.registered && !is_file_op(op->kind)) {
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            ev.data.fd = op->fd;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, op->fd, &ev) == 0 || errno == EEXIST) s.registered = true;
        }
    }

    void unlink(io_op* op) {
        fd_state& s = fds_[op->fd];
        int sd = op->wside;
        if (op->wprev) op->wprev->wnext = op->wnext; else s.head[sd] = op->wnext;
        if (op->wnext) op->wnext->wprev = op->wprev; else s.tail[sd] = op->wprev;
        op->wnext = op->wprev = nullptr;
        op->wside = -1;
    }

    void run_side(int fd, side sd) {
        io_op* op = fds_[fd].head[sd];
        while (op) {
            io_op* next = op->wnext;
            if (!attempt(op)) break;  // still blocked: the rest of this side waits too
            op = next;
        }
    }

    void post(io_op* op, int res, uint32_t flags) { posted_.push_back({op, res, flags}); }

    int drain_posted() {
        int n = 0;
        while (!posted_.empty()) {
            std::vector<posted> batch;
            batch.swap(posted_);
            for (auto& p : batch) sink_->deliver(p.op, p.res, p.flags);
            n += int(batch.size());
        }
        return n;
    }

    // Tries the op once (a loop for multishot kinds). Returns false if it is still
    // waiting for readiness.
    bool attempt(io_op* op) {
        auto finish = [&](int res, uint32_t flags = 0) {
            unlink(op);
            post(op, res, flags);
            return true;
        };
        auto err_or_wait = [&](int e) -> int { return (e == EAGAIN || e == EWOULDBLOCK) ? 0 : -e; };
        char* p = op->buf.data();
        switch (op->kind) {
        case op_kind::nop: return finish(0);
        case op_kind::accept_multi:
            for (;;) {
                int c = accept4(op->fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c >= 0) { post(op, c, op_more); continue; }
                int e = err_or_wait(errno);
                if (e == 0) return false;
                if (errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) { post(op, -errno, op_more); return false; }
                return finish(e);
            }
        case op_kind::recv_multi:
            for (;;) {
                if (free_.empty()) return finish(-ENOBUFS);
                uint16_t bid = free_.back();
                ssize_t r = ::recv(op->fd, buffer_data(bid), cfg_.size, MSG_DONTWAIT);
                if (r > 0) {
                    free_.pop_back();
                    post(op, int(r), op_more | op_buffer | (uint32_t(bid) << 16));
                    continue;
                }
                if (r == 0) return finish(0);
                int e = err_or_wait(errno);
                if (e == 0) return false;
                return finish(e);
            }
        case op_kind::recv: {
            ssize_t r = ::recv(op->fd, p, op->buf.capacity(), MSG_DONTWAIT);
            if (r >= 0) return finish(int(r));
            int e = err_or_wait(errno);
            return e ? finish(e) : false;
        }
        case op_kind::send: {
            ssize_t r = ::send(op->fd, p + op->offset, op->buf.size() - op->offset, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r >= 0) return finish(int(r));
            int e = err_or_wait(errno);
            return e ? finish(e) : false;
        }
        case op_kind::sendmsg: {
            ssize_t r = ::sendmsg(op->fd, &op->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r >= 0) return finish(int(r));
            int e = err_or_wait(errno);
            return e ? finish(e) : false;
        }
        case op_kind::connect: {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            if (err == EINPROGRESS || err == EALREADY) return false;
            if (err == 0) {
                // Writable without error after EINPROGRESS: connected, unless still pending.
                sockaddr_storage ss;
                socklen_t sl = sizeof ss;
                if (getpeername(op->fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0 && errno == ENOTCONN) return false;
            }
            return finish(-err);
        }
        case op_kind::poll_in:
        case op_kind::poll_out: {
            pollfd p{op->fd, short(op->kind == op_kind::poll_in ? POLLIN : POLLOUT), 0};
            if (::poll(&p, 1, 0) <= 0) return false;
            return finish(p.revents);
        }
        case op_kind::read_at: {
            ssize_t r = ::pread(op->fd, p, op->buf.capacity(), off_t(op->offset));
            return finish(r >= 0 ? int(r) : -errno);
        }
        case op_kind::write_at: {
            ssize_t r = ::pwrite(op->fd, p, op->buf.size(), off_t(op->offset));
            return finish(r >= 0 ? int(r) : -errno);
        }
        case op_kind::fdatasync: return finish(::fdatasync(op->fd) == 0 ? 0 : -errno);
        case op_kind::writev_at: {
            ssize_t r = ::pwritev(op->fd, op->iov.data(), int(op->iov.size()), off_t(op->offset));
            return finish(r >= 0 ? int(r) : -errno);
        }
        case op_kind::fsync: return finish(::fsync(op->fd) == 0 ? 0 : -errno);
        }
        return finish(-EINVAL);
    }


    completion_sink* sink_;
    buffer_pool_config cfg_;
    int ep_ = -1;
    int wake_fd_ = -1;
    char* mem_ = nullptr;
    std::vector<uint16_t> free_;
    std::vector<fd_state> fds_;
    std::vector<io_op*> retry_;
    std::vector<posted> posted_;
};

}  // namespace

std::unique_ptr<backend> make_epoll_backend(completion_sink* sink, buffer_pool_config cfg) {
    return std::make_unique<epoll_backend>(sink, cfg);
}

}  // namespace pharos::engine
