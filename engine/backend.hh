// The I/O backend interface: io_uring or epoll, chosen at reactor start.
// Everything the reactor does with the kernel goes through io_op records and
// this interface; both implementations pass the same test suite.
//
// Completions use io_uring's shape on both backends: a result (bytes or
// -errno) and flags, where op_more means a multishot operation stays armed and
// op_buffer means the upper 16 bits carry a provided-buffer id.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "buffer.hh"

namespace pharos::engine {

inline constexpr uint32_t op_buffer = 1u << 0;  // == IORING_CQE_F_BUFFER
inline constexpr uint32_t op_more = 1u << 1;    // == IORING_CQE_F_MORE
inline uint16_t buffer_id(uint32_t flags) { return uint16_t(flags >> 16); }

enum class op_kind : uint8_t {
    nop,
    accept_multi,  // multishot accept; res = new fd
    recv_multi,    // multishot recv into provided buffers; res = bytes, 0 = EOF
    recv,          // one recv into op->buf
    send,          // one send of op->buf (may be short)
    sendmsg,       // one sendmsg of op->msg (writev for sockets)
    connect,       // connect to op->addr
    poll_in,       // one-shot readiness for reading; res = revents
    poll_out,      // one-shot readiness for writing
    read_at,       // pread into op->buf at op->offset
    write_at,      // pwrite op->buf at op->offset
    fdatasync,
    writev_at,     // pwritev of op->iov (pointing into op->bufs) at op->offset
    fsync,         // full fsync (directories)
};

// Regular-file operations: the epoll backend runs them synchronously.
inline bool is_file_op(op_kind k) {
    return k == op_kind::read_at || k == op_kind::write_at || k == op_kind::fdatasync || k == op_kind::writev_at ||
           k == op_kind::fsync;
}

// One kernel operation. Owned by the reactor's op pool: it outlives the
// awaiter that started it and is recycled only after its final completion, so
// the kernel never writes into freed memory. The awaiter detaches on
// destruction by clearing `on_complete`.
struct io_op {
    op_kind kind = op_kind::nop;
    int fd = -1;
    bool in_flight = false;
    bool cancel_sent = false;

    // Arguments, and the memory the kernel may touch: kept here, not in the awaiter.
    buffer buf;
    uint64_t offset = 0;
    std::vector<buffer> bufs;
    std::vector<iovec> iov;
    msghdr msg{};
    sockaddr_storage addr{};
    socklen_t addrlen = 0;

    // Completion target; null means detached (the op is recycled silently).
    void (*on_complete)(io_op*, int res, uint32_t flags) = nullptr;
    void* owner = nullptr;

    // Backend-private links (epoll wait lists) and the reactor's in-flight list.
    io_op* wnext = nullptr;
    io_op* wprev = nullptr;
    int8_t wside = -1;
    bool fd_counted = false;  // io_uring: counted live on its fd (see forget_fd)
    uint32_t fd_gen = 0;
    io_op* anext = nullptr;
    io_op* aprev = nullptr;

    void reset() {
        kind = op_kind::nop;
        fd = -1;
        in_flight = cancel_sent = false;
        buf = buffer();
        offset = 0;
        bufs.clear();
        iov.clear();
        msg = msghdr{};
        addrlen = 0;
        on_complete = nullptr;
        owner = nullptr;
        wnext = wprev = nullptr;
        wside = -1;
        fd_counted = false;
        fd_gen = 0;
        anext = aprev = nullptr;
    }
};

// Where a backend delivers completions (the reactor).
struct completion_sink {
    virtual void deliver(io_op* op, int res, uint32_t flags) = 0;
    virtual ~completion_sink() = default;
};

// Receive buffers shared by all connections of a shard: io_uring's provided
// buffer ring, or a free list on epoll. Ids are 16-bit.
struct buffer_pool_config {
    uint32_t count = 2048;   // power of two
    uint32_t size = 4096;
};

class backend {
public:
    virtual ~backend() = default;
    virtual const char* name() const noexcept = 0;
    // Starts `op`. Never completes synchronously: the completion is delivered from poll().
    virtual void submit(io_op* op) = 0;
    // Asks for `op` to finish early. Its completion (-ECANCELED, or a real result
    // that raced the cancel) is still delivered from poll().
    virtual void cancel(io_op* op) = 0;
    // Flushes submissions, then reaps completions. Blocks at most `timeout_ns`
    // (-1: until something happens, 0: not at all). Returns completions handled.
    virtual int poll(int64_t timeout_ns) = 0;
    // Thread-safe: interrupts a blocking poll() from another thread.
    virtual void wake() noexcept = 0;
    // Provided receive buffers.
    virtual char* buffer_data(uint16_t bid) noexcept = 0;
    virtual void recycle_buffer(uint16_t bid) noexcept = 0;
    virtual uint32_t buffer_size() const noexcept = 0;
    // Called before the reactor closes `fd`; ops on it must already be finished or cancelled.
    virtual void forget_fd(int /*fd*/) noexcept {}
    // Whether listening/connecting sockets must be non-blocking for this backend.
    virtual bool wants_nonblocking() const noexcept = 0;
};

enum class backend_kind { automatic, io_uring, epoll };

// Creates the backend: io_uring if `kind` allows and the kernel supports every
// opcode we need, else epoll. `why_not_uring` receives the reason for a fallback.
std::unique_ptr<backend> make_backend(backend_kind kind, completion_sink* sink, buffer_pool_config cfg,
                                      std::string* why_not_uring);
std::unique_ptr<backend> make_uring_backend(completion_sink* sink, buffer_pool_config cfg, std::string* why_not);
std::unique_ptr<backend> make_epoll_backend(completion_sink* sink, buffer_pool_config cfg);

// "auto", "io_uring" (or "uring"), "epoll"; nullopt for anything else.
std::optional<backend_kind> parse_backend(std::string_view name);

// The backend named by PHAROS_BACKEND (as parse_backend; unset or unknown: automatic).
backend_kind backend_from_env();

}  // namespace pharos::engine
