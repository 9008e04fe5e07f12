// io_uring backend: batched submission (one io_uring_enter per reactor loop),
// multishot accept and recv, a provided-buffer ring for receives, multishot
// poll for readiness users (UDP, the wake-up eventfd), and ASYNC_CANCEL.
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "backend.hh"

namespace pharos::engine {
namespace {

constexpr uint64_t tag_ignore = 0;  // completions of cancel requests
constexpr uint64_t tag_wake = 1;    // the wake-up eventfd's multishot poll

class uring_backend final : public backend {
public:
    uring_backend(completion_sink* sink, buffer_pool_config cfg) : sink_(sink), cfg_(cfg) {}

    // Returns an empty string on success, else why io_uring cannot be used.
    std::string init() {
        io_uring_params p{};
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
                  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
        p.cq_entries = 16384;
        int r = io_uring_queue_init_params(2048, &ring_, &p);
        if (r == -EINVAL) {  // older kernel: no optional flags
            p = io_uring_params{};
            r = io_uring_queue_init_params(2048, &ring_, &p);
        }
        if (r < 0) return std::string("io_uring_setup: ") + strerror(-r);
        inited_ = true;

        io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
        if (!probe) return "io_uring probe failed";
        static const int needed[] = {IORING_OP_ACCEPT,  IORING_OP_RECV,         IORING_OP_SEND,  IORING_OP_SENDMSG,
                                     IORING_OP_CONNECT, IORING_OP_POLL_ADD,     IORING_OP_READ,  IORING_OP_WRITE, IORING_OP_WRITEV,
                                     IORING_OP_FSYNC,   IORING_OP_ASYNC_CANCEL, IORING_OP_NOP};
        for (int op : needed) {
            if (!io_uring_opcode_supported(probe, op)) {
                io_uring_free_probe(probe);
                return "io_uring lacks opcode " + std::to_string(op);
            }
        }
        io_uring_free_probe(probe);

        // Provided-buffer ring.
        size_t ring_bytes = cfg_.count * sizeof(io_uring_buf);
        if (posix_memalign(reinterpret_cast<void**>(&br_), 4096, ring_bytes)) return "out of memory";
        std::memset(br_, 0, ring_bytes);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<uint64_t>(br_);
        reg.ring_entries = cfg_.count;
        reg.bgid = 0;
        r = io_uring_register_buf_ring(&ring_, &reg, 0);
        if (r < 0) return std::string("provided buffer ring: ") + strerror(-r);
        io_uring_buf_ring_init(br_);
        mem_ = static_cast<char*>(std::aligned_alloc(4096, size_t(cfg_.count) * cfg_.size));
        mask_ = io_uring_buf_ring_mask(cfg_.count);
        for (uint32_t i = 0; i < cfg_.count; ++i)
            io_uring_buf_ring_add(br_, mem_ + size_t(i) * cfg_.size, cfg_.size, uint16_t(i), mask_, int(i));
        io_uring_buf_ring_advance(br_, int(cfg_.count));

        wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) return "eventfd failed";
        arm_wake();
        return {};
    }

    ~uring_backend() override {
        if (inited_) io_uring_queue_exit(&ring_);
        if (wake_fd_ >= 0) close(wake_fd_);
        std::free(br_);
        std::free(mem_);
    }

    const char* name() const noexcept override { return "io_uring"; }
    bool wants_nonblocking() const noexcept override { return false; }

    void submit(io_op* op) override {
        if (op->fd >= 0) {
            if (size_t(op->fd) >= fds_.size()) fds_.resize(size_t(op->fd) + 1024);
            fd_slot& slot = fds_[size_t(op->fd)];
            ++slot.live;
            op->fd_counted = true;
            op->fd_gen = slot.gen;
        }
        io_uring_sqe* sqe = get_sqe();
        auto* p = op->buf.data();
        switch (op->kind) {
        case op_kind::nop: io_uring_prep_nop(sqe); break;
        case op_kind::accept_multi:
            io_uring_prep_multishot_accept(sqe, op->fd, nullptr, nullptr, SOCK_CLOEXEC);
            break;
        case op_kind::recv_multi:
            io_uring_prep_recv_multishot(sqe, op->fd, nullptr, 0, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = 0;
            break;
        case op_kind::recv: io_uring_prep_recv(sqe, op->fd, p, op->buf.capacity(), 0); break;
        case op_kind::send: io_uring_prep_send(sqe, op->fd, p + op->offset, op->buf.size() - op->offset, MSG_NOSIGNAL); break;
        case op_kind::sendmsg: io_uring_prep_sendmsg(sqe, op->fd, &op->msg, MSG_NOSIGNAL); break;
        case op_kind::connect:
            io_uring_prep_connect(sqe, op->fd, reinterpret_cast<sockaddr*>(&op->addr), op->addrlen);
            break;
        case op_kind::poll_in: io_uring_prep_poll_add(sqe, op->fd, POLLIN); break;
        case op_kind::poll_out: io_uring_prep_poll_add(sqe, op->fd, POLLOUT); break;
        case op_kind::read_at: io_uring_prep_read(sqe, op->fd, p, unsigned(op->buf.capacity()), op->offset); break;
        case op_kind::write_at: io_uring_prep_write(sqe, op->fd, p, unsigned(op->buf.size()), op->offset); break;
        case op_kind::fdatasync: io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC); break;
        case op_kind::writev_at:
            io_uring_prep_writev(sqe, op->fd, op->iov.data(), unsigned(op->iov.size()), op->offset);
            break;
        case op_kind::fsync: io_uring_prep_fsync(sqe, op->fd, 0); break;
        }
        io_uring_sqe_set_data(sqe, op);
    }

    void cancel(io_op* op) override {
        if (op->cancel_sent) return;
        op->cancel_sent = true;
        uncount(op);  // ended by this cancel: forget_fd need not look for it
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel(sqe, op, 0);
        io_uring_sqe_set_data64(sqe, tag_ignore);
    }

    // io_uring holds its own reference to the file: closing the fd does not end ops
    // on it. Cancel them all, and submit now, while the fd still names the file.
    // The kernel finds them by scanning every pending request, so closing N
    // connections that way costs O(N^2): it is skipped when every op on the fd has
    // already completed or been cancelled by pointer (the usual close: a stream
    // cancels its own receive first). Ops left counted on a closed fd belong to an
    // older generation and no longer count against a new file with the same number.
    void forget_fd(int fd) noexcept override {
        if (fd >= 0 && size_t(fd) < fds_.size()) {
            fd_slot& slot = fds_[size_t(fd)];
            if (slot.live == 0) return;
            slot.live = 0;
            ++slot.gen;
        }
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, tag_ignore);
        io_uring_submit(&ring_);
    }

    int poll(int64_t timeout_ns) override {
        if (timeout_ns == 0) {
            io_uring_submit(&ring_);
        } else {
            io_uring_cqe* cqe = nullptr;
            __kernel_timespec ts{};
            if (timeout_ns > 0) {
                ts.tv_sec = timeout_ns / 1000000000;
                ts.tv_nsec = timeout_ns % 1000000000;
            }
            if (io_uring_cq_ready(&ring_) == 0)
                io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout_ns > 0 ? &ts : nullptr, nullptr);
            else
                io_uring_submit(&ring_);
        }
        int total = 0;
        for (;;) {
            unsigned head, n = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++n;
                uint64_t ud = cqe->user_data;
                if (ud == tag_ignore) continue;
                if (ud == tag_wake) {
                    uint64_t v;
                    [[maybe_unused]] auto rr = read(wake_fd_, &v, sizeof v);
                    if (!(cqe->flags & IORING_CQE_F_MORE)) arm_wake();
                    continue;
                }
                auto* op = reinterpret_cast<io_op*>(ud);
                if (!(cqe->flags & IORING_CQE_F_MORE)) uncount(op);  // its final completion
                sink_->deliver(op, cqe->res, cqe->flags);
            }
            io_uring_cq_advance(&ring_, n);
            total += int(n);
            // Callbacks may have queued more work whose completions are already due.
            if (n == 0 || io_uring_cq_ready(&ring_) == 0) break;
        }
        return total;
    }

    void wake() noexcept override {
        uint64_t one = 1;
        [[maybe_unused]] auto r = write(wake_fd_, &one, sizeof one);
    }

    char* buffer_data(uint16_t bid) noexcept override { return mem_ + size_t(bid) * cfg_.size; }
    void recycle_buffer(uint16_t bid) noexcept override {
        io_uring_buf_ring_add(br_, buffer_data(bid), cfg_.size, bid, mask_, 0);
        io_uring_buf_ring_advance(br_, 1);
    }
    uint32_t buffer_size() const noexcept override { return cfg_.size; }

private:
    struct fd_slot {
        uint32_t live = 0;  // ops submitted on this fd, not yet finished or cancelled by pointer
        uint32_t gen = 0;   // bumped when forget_fd cancels by fd
    };
    std::vector<fd_slot> fds_;
    void uncount(io_op* op) noexcept {
        if (!op->fd_counted) return;
        op->fd_counted = false;
        fd_slot& slot = fds_[size_t(op->fd)];
        if (slot.gen == op->fd_gen && slot.live > 0) --slot.live;
    }

    io_uring_sqe* get_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        while (!sqe) {
            io_uring_submit(&ring_);
            sqe = io_uring_get_sqe(&ring_);
        }
        return sqe;
    }
    void arm_wake() {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_poll_multishot(sqe, wake_fd_, POLLIN);
        io_uring_sqe_set_data64(sqe, tag_wake);
    }

    completion_sink* sink_;
    buffer_pool_config cfg_;
    io_uring ring_{};
    bool inited_ = false;
    io_uring_buf_ring* br_ = nullptr;
    char* mem_ = nullptr;
    int mask_ = 0;
    int wake_fd_ = -1;
};

}  // namespace

std::unique_ptr<backend> make_uring_backend(completion_sink* sink, buffer_pool_config cfg, std::string* why_not) {
    auto b = std::make_unique<uring_backend>(sink, cfg);
    std::string err = b->init();
    if (!err.empty()) {
        if (why_not) *why_not = err;
        return nullptr;
    }
    return b;
}

}  // namespace pharos::engine
