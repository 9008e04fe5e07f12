// Sockets on the reactor: TCP listener and stream, UDP socket. Each object is
// owned by the shard that created it and must be used and destroyed there.
// Every awaitable takes an absolute deadline; the comments give cancel safety.
// close() may be called while another task waits in read()/accept()/recv_from()
// (the waiter wakes with EBADF), but destroy a socket only once no task waits on
// it: the waiter resumes into the socket's state.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "buffer.hh"
#include "fifo.hh"
#include "io.hh"
#include "reactor.hh"
#include "result.hh"
#include "task.hh"

namespace pharos::engine {

// An IPv4 or IPv6 socket address.
struct socket_address {
    sockaddr_storage ss{};
    socklen_t len = 0;

    // "127.0.0.1", "::1", "0.0.0.0"; fails on anything else (no name lookup).
    static result<socket_address> parse(std::string_view ip, uint16_t port);
    static socket_address from(const sockaddr* sa, socklen_t len);
    uint16_t port() const noexcept;
    std::string ip() const;
    std::string to_string() const;  // "ip:port", "[ip6]:port"
    int family() const noexcept { return ss.ss_family; }
    const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&ss); }
    bool operator==(const socket_address& o) const noexcept;
};

// Received bytes. Either a provided buffer (recycled to the shard's pool on
// destruction) or an owned buffer. Shard-local: never send it to another shard.
class rx_chunk {
public:
    rx_chunk() = default;
    rx_chunk(backend* pool, uint16_t bid, size_t len) : pool_(pool), bid_(bid), len_(len) {}
    explicit rx_chunk(buffer b) : owned_(std::move(b)), len_(owned_.size()) {}
    rx_chunk(rx_chunk&& o) noexcept
        : pool_(std::exchange(o.pool_, nullptr)), bid_(o.bid_), owned_(std::move(o.owned_)), len_(std::exchange(o.len_, 0)) {}
    rx_chunk& operator=(rx_chunk&& o) noexcept {
        if (this != &o) {
            release();
            pool_ = std::exchange(o.pool_, nullptr);
            bid_ = o.bid_;
            owned_ = std::move(o.owned_);
            len_ = std::exchange(o.len_, 0);
        }
        return *this;
    }
    ~rx_chunk() { release(); }
    const char* data() const noexcept { return pool_ ? pool_->buffer_data(bid_) : owned_.data(); }
    size_t size() const noexcept { return len_; }
    bool empty() const noexcept { return len_ == 0; }
    std::string_view view() const noexcept { return {data(), len_}; }

private:
    void release() noexcept {
        if (pool_) pool_->recycle_buffer(bid_);
        pool_ = nullptr;
    }
    backend* pool_ = nullptr;
    uint16_t bid_ = 0;
    buffer owned_;
    size_t len_ = 0;
};

class tcp_stream {
public:
    tcp_stream() = default;
    explicit tcp_stream(int fd);
    tcp_stream(tcp_stream&&) noexcept = default;
    tcp_stream& operator=(tcp_stream&& o) noexcept;
    ~tcp_stream() { close(); }

    // Connects to `to`, from source address `from` if given (its port 0: the port
    // is chosen at connect, so only the 4-tuple must be unique; load tools spread
    // many connections over 127.0.0.x this way). Cancel safety: on cancel or
    // deadline the socket is closed and nothing was exchanged.
    static task<result<tcp_stream>> connect(socket_address to, deadline dl = no_deadline,
                                            const socket_address* from = nullptr);

    // The next bytes received, in order; an empty chunk means the peer closed its
    // side. Receives run ahead of read() (multishot), so data is never lost:
    // cancel safety: a cancelled read consumes nothing.
    task<result<rx_chunk>> read(deadline dl = no_deadline);
    // Writes all of `b`. Cancel safety: on cancel or deadline, an unknown prefix may
    // have been sent; the stream should then be closed.
    task<result<void>> write(buffer b, deadline dl = no_deadline);
    // Writes all buffers in order with one sendmsg where possible. Same cancel safety.
    task<result<void>> writev(std::vector<buffer> bufs, deadline dl = no_deadline);
    // Half-close: the peer reads EOF; reading continues.
    result<void> shutdown_write();
    void close() noexcept;
    bool is_open() const noexcept { return st_ && st_->fd >= 0; }
    int fd() const noexcept { return st_ ? st_->fd : -1; }
    result<socket_address> peer() const;
    result<void> set_nodelay(bool on);

private:
    struct state {
        int fd = -1;
        io_op* recv = nullptr;  // armed multishot receive
        fifo<rx_chunk> rx;
        int rx_error = 0;        // sticky -errno
        bool eof = false;
        wait_slot reader;
    };
    static void on_recv(io_op* op, int res, uint32_t flags);
    void arm_recv();
    std::unique_ptr<state> st_;
};

struct listen_options {
    int backlog = 4096;
    bool reuse_port = true;  // one listener per shard on the same port
};

class tcp_listener {
public:
    tcp_listener() = default;
    tcp_listener(tcp_listener&&) noexcept = default;
    tcp_listener& operator=(tcp_listener&&) noexcept;
    ~tcp_listener() { close(); }

    static result<tcp_listener> listen(socket_address at, listen_options opt = {});
    // Fails with EADDRINUSE if another socket listens on `at`, even one that set
    // SO_REUSEPORT (which would otherwise let a second process share the port and
    // steal part of its connections). Call before the first shard listens.
    static result<void> check_free(socket_address at);
    // The same for a UDP port.
    static result<void> check_free_udp(socket_address at);
    // The next accepted connection. Cancel safety: a cancelled accept loses no
    // connection; it stays queued for the next call.
    task<result<tcp_stream>> accept(deadline dl = no_deadline);
    void close() noexcept;
    uint16_t port() const;
    bool is_open() const noexcept { return st_ && st_->fd >= 0; }

private:
    struct state {
        int fd = -1;
        io_op* op = nullptr;
        std::deque<int> ready;
        int error = 0;
        wait_slot waiter;
    };
    static void on_accept(io_op* op, int res, uint32_t flags);
    std::unique_ptr<state> st_;
};

struct datagram {
    buffer data;
    socket_address from;
};

// A UDP socket. Receives drain the socket with recvmmsg on readiness; sends are
// queued and leave in one sendmmsg per socket at the end of the reactor turn.
class udp_socket {
public:
    udp_socket() = default;
    udp_socket(udp_socket&&) noexcept = default;
    udp_socket& operator=(udp_socket&&) noexcept;
    ~udp_socket() { close(); }

    static result<udp_socket> bind(socket_address at, bool reuse_port = false);
    // The next datagram. Cancel safety: a cancelled receive loses no datagram.
    task<result<datagram>> recv_from(deadline dl = no_deadline);
    // Queues a datagram; it is sent at the end of this reactor turn, batched with
    // the others. Fails with errc::queue_full past 4096 queued datagrams. Send
    // errors after queueing are counted in send_errors().
    result<void> send_to(std::string_view payload, const socket_address& to);
    void close() noexcept;
    uint16_t port() const;
    uint64_t send_errors() const noexcept { return st_ ? st_->send_errors : 0; }
    // Datagrams already read from the kernel and waiting for recv_from(). A
    // server that answers in a loop yields when this reaches 0, so that the
    // turn ends and its queued answers leave before it reads the next batch.
    size_t buffered() const noexcept { return st_ ? st_->rx.size() : 0; }

private:
    struct state : reactor::flush_hook {
        int fd = -1;
        io_op* poll = nullptr;
        std::deque<datagram> rx;
        std::vector<datagram> tx;
        uint64_t send_errors = 0;
        int error = 0;
        wait_slot reader;
        void flush() override;
        int fill();  // recvmmsg into rx; returns count or -errno
    };
    static void on_ready(io_op* op, int res, uint32_t flags);
    std::unique_ptr<state> st_;
};

}  // namespace pharos::engine
