#include "net.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstring>

namespace pharos::engine {

// ---------- addresses ----------

result<socket_address> socket_address::parse(std::string_view ip, uint16_t port) {
    socket_address a;
    std::string s(ip);
    if (!s.empty() && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        a.len = sizeof(sockaddr_in);
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    return std::error_code(EINVAL, std::system_category());
}

socket_address socket_address::from(const sockaddr* sa, socklen_t len) {
    socket_address a;
    std::memcpy(&a.ss, sa, std::min<size_t>(len, sizeof a.ss));
    a.len = len;
    return a;
}

uint16_t socket_address::port() const noexcept {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

std::string socket_address::ip() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    return buf;
}

std::string socket_address::to_string() const {
    if (ss.ss_family == AF_INET6) return "[" + ip() + "]:" + std::to_string(port());
    return ip() + ":" + std::to_string(port());
}

bool socket_address::operator==(const socket_address& o) const noexcept {
    return len == o.len && std::memcmp(&ss, &o.ss, len) == 0;
}

namespace {
std::error_code last_error() { return {errno, std::system_category()}; }
void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
    return socket_address::from(reinterpret_cast<sockaddr*>(&ss), len).port();
}
}  // namespace

// ---------- tcp_stream ----------

tcp_stream::tcp_stream(int fd) : st_(std::make_unique<state>()) { st_->fd = fd; }

tcp_stream& tcp_stream::operator=(tcp_stream&& o) noexcept {
    if (this != &o) {
        close();
        st_ = std::move(o.st_);
    }
    return *this;
}

void tcp_stream::close() noexcept {
    if (!st_ || st_->fd < 0) return;
    reactor& r = this_reactor();
    if (st_->recv) {
        st_->recv->on_complete = nullptr;  // detach: the reactor recycles late buffers
        st_->recv->owner = nullptr;
        r.cancel(st_->recv);
        st_->recv = nullptr;
    }
    st_->rx.clear();
    r.close_fd(st_->fd);
    st_->fd = -1;
    st_->rx_error = -EBADF;
    st_->reader.notify();
}

void tcp_stream::on_recv(io_op* op, int res, uint32_t flags) {
    auto* st = static_cast<state*>(op->owner);
    if (!(flags & op_more)) st->recv = nullptr;
    if (res > 0) {
        st->rx.emplace_back(&this_reactor().io(), buffer_id(flags), size_t(res));
    } else if (flags & op_buffer) {
        this_reactor().io().recycle_buffer(buffer_id(flags));
    }
    if (res == 0) st->eof = true;
    else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) st->rx_error = res;
    st->reader.notify();
}

void tcp_stream::arm_recv() {
    reactor& r = this_reactor();
    io_op* op = r.alloc_op();
    op->kind = op_kind::recv_multi;
    op->fd = st_->fd;
    op->owner = st_.get();
    op->on_complete = &on_recv;
    st_->recv = op;
    r.submit(op);
}

task<result<rx_chunk>> tcp_stream::read(deadline dl) {
    if (!st_ || st_->fd < 0) co_return std::error_code(EBADF, std::system_category());
    bool armed_without_data = false;  // the multishot receive we armed ended before any data
    for (;;) {
        if (!st_->rx.empty()) {
            rx_chunk c = std::move(st_->rx.front());
            st_->rx.pop_front();
            co_return c;
        }
        if (st_->eof) co_return rx_chunk();
        if (st_->rx_error) co_return from_errno(st_->rx_error);
        if (!st_->recv) {
            if (armed_without_data) {
                // The shard's buffer pool is exhausted: read once into memory of our own.
                io_op* op = this_reactor().alloc_op();
                op->kind = op_kind::recv;
                op->fd = st_->fd;
                op->buf = buffer(16384);
                op_awaiter a(op, dl);
                int res = co_await a;
                if (res < 0) co_return from_errno(res);
                buffer b = a.take_buffer();
                b.resize(size_t(res));
                if (res == 0) st_->eof = true;
                co_return rx_chunk(std::move(b));
            }
            arm_recv();
            armed_without_data = true;
        }
        int w = co_await st_->reader.wait(dl);
        if (w < 0) co_return from_errno(w);
        if (!st_->rx.empty()) armed_without_data = false;
    }
}

task<result<void>> tcp_stream::write(buffer b, deadline dl) {
    size_t off = 0;
    while (off < b.size()) {
        if (!st_ || st_->fd < 0) co_return std::error_code(EBADF, std::system_category());
        io_op* op = this_reactor().alloc_op();
        op->kind = op_kind::send;
        op->fd = st_->fd;
        op->buf = std::move(b);
        op->offset = off;
        op_awaiter a(op, dl);
        int res = co_await a;
        b = a.take_buffer();
        if (res < 0) co_return from_errno(res);
        off += size_t(res);
    }
    co_return result<void>{};
}

task<result<void>> tcp_stream::writev(std::vector<buffer> bufs, deadline dl) {
    size_t total = 0;
    for (auto& b : bufs) total += b.size();
    size_t sent = 0;
    while (sent < total) {
        if (!st_ || st_->fd < 0) co_return std::error_code(EBADF, std::system_category());
        io_op* op = this_reactor().alloc_op();
        op->kind = op_kind::sendmsg;
        op->fd = st_->fd;
        size_t skip = sent;
        for (auto& b : bufs) {
            if (op->iov.size() == IOV_MAX) break;  // the rest goes in the next sendmsg
            if (skip >= b.size()) { skip -= b.size(); continue; }
            op->iov.push_back(iovec{b.data() + skip, b.size() - skip});
            skip = 0;
        }
        op->bufs = std::move(bufs);
        op->msg.msg_iov = op->iov.data();
        op->msg.msg_iovlen = op->iov.size();
        op_awaiter a(op, dl);
        int res = co_await a;
        bufs = a.take_buffers();
        if (res < 0) co_return from_errno(res);
        sent += size_t(res);
    }
    co_return result<void>{};
}

result<void> tcp_stream::shutdown_write() {
    if (!st_ || st_->fd < 0) return std::error_code(EBADF, std::system_category());
    if (::shutdown(st_->fd, SHUT_WR) < 0) return last_error();
    return {};
}

result<socket_address> tcp_stream::peer() const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (!st_ || getpeername(st_->fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return last_error();
    return socket_address::from(reinterpret_cast<sockaddr*>(&ss), len);
}

result<void> tcp_stream::set_nodelay(bool on) {
    int v = on;
    if (setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0) return last_error();
    return {};
}

task<result<tcp_stream>> tcp_stream::connect(socket_address to, deadline dl, const socket_address* from) {
    reactor& r = this_reactor();
    int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) co_return last_error();
    if (from) {
        int one = 1;
        (void)::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&from->ss), from->len) < 0) {
            auto e = last_error();
            ::close(fd);
            co_return e;
        }
    }
    if (r.io().wants_nonblocking()) set_nonblocking(fd);
    io_op* op = r.alloc_op();
    op->kind = op_kind::connect;
    op->fd = fd;
    op->addr = to.ss;
    op->addrlen = to.len;
    op_awaiter a(op, dl);
    int res = co_await a;
    if (res < 0) {
        r.close_fd(fd);
        co_return from_errno(res);
    }
    co_return tcp_stream(fd);
}

// ---------- tcp_listener ----------

tcp_listener& tcp_listener::operator=(tcp_listener&& o) noexcept {
    if (this != &o) {
        close();
        st_ = std::move(o.st_);
    }
    return *this;
}

result<tcp_listener> tcp_listener::listen(socket_address at, listen_options opt) {
    int fd = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return last_error();
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (opt.reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (::bind(fd, at.sa(), at.len) < 0 || ::listen(fd, opt.backlog) < 0) {
        auto ec = last_error();
        ::close(fd);
        return ec;
    }
    if (this_reactor().io().wants_nonblocking()) set_nonblocking(fd);
    tcp_listener l;
    l.st_ = std::make_unique<state>();
    l.st_->fd = fd;
    return l;
}

namespace {
result<void> port_free(socket_address at, int type) {
    int fd = ::socket(at.family(), type | SOCK_CLOEXEC, 0);
    if (fd < 0) return last_error();
    int one = 1;
    // TCP: TIME_WAIT leftovers do not count. (Not for UDP, where SO_REUSEADDR would share the port.)
    if (type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = ::bind(fd, at.sa(), at.len);
    auto ec = rc < 0 ? last_error() : std::error_code();
    ::close(fd);
    if (ec) return ec;
    return {};
}
}  // namespace

result<void> tcp_listener::check_free(socket_address at) { return port_free(at, SOCK_STREAM); }
result<void> tcp_listener::check_free_udp(socket_address at) { return port_free(at, SOCK_DGRAM); }

uint16_t tcp_listener::port() const { return st_ ? local_port(st_->fd) : 0; }

void tcp_listener::on_accept(io_op* op, int res, uint32_t flags) {
    auto* st = static_cast<state*>(op->owner);
    if (!(flags & op_more)) st->op = nullptr;
    if (res >= 0) st->ready.push_back(res);
    else if (res != -ECANCELED && res != -ECONNABORTED && !(flags & op_more)) st->error = res;
    st->waiter.notify();
}

task<result<tcp_stream>> tcp_listener::accept(deadline dl) {
    for (;;) {
        if (!st_ || st_->fd < 0) co_return std::error_code(EBADF, std::system_category());
        if (!st_->ready.empty()) {
            int fd = st_->ready.front();
            st_->ready.pop_front();
            co_return tcp_stream(fd);
        }
        if (st_->error) co_return from_errno(std::exchange(st_->error, 0));
        if (!st_->op) {
            reactor& r = this_reactor();
            io_op* op = r.alloc_op();
            op->kind = op_kind::accept_multi;
            op->fd = st_->fd;
            op->owner = st_.get();
            op->on_complete = &on_accept;
            st_->op = op;
            r.submit(op);
        }
        int w = co_await st_->waiter.wait(dl);
        if (w < 0) co_return from_errno(w);
    }
}

void tcp_listener::close() noexcept {
    if (!st_ || st_->fd < 0) return;
    reactor& r = this_reactor();
    if (st_->op) {
        st_->op->on_complete = nullptr;  // detach: late accepted fds are closed by the reactor
        st_->op->owner = nullptr;
        r.cancel(st_->op);
        st_->op = nullptr;
    }
    for (int fd : st_->ready) ::close(fd);
    st_->ready.clear();
    r.close_fd(st_->fd);
    st_->fd = -1;
    st_->waiter.notify();
}

// ---------- udp_socket ----------

udp_socket& udp_socket::operator=(udp_socket&& o) noexcept {
    if (this != &o) {
        close();
        st_ = std::move(o.st_);
    }
    return *this;
}

result<udp_socket> udp_socket::bind(socket_address at, bool reuse_port) {
    int fd = ::socket(at.family(), SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return last_error();
    int one = 1;
    if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (::bind(fd, at.sa(), at.len) < 0) {
        auto ec = last_error();
        ::close(fd);
        return ec;
    }
    udp_socket u;
    u.st_ = std::make_unique<state>();
    u.st_->fd = fd;
    return u;
}

uint16_t udp_socket::port() const { return st_ ? local_port(st_->fd) : 0; }

int udp_socket::state::fill() {
    constexpr int batch = 32;
    constexpr size_t max_dgram = 65536;
    // One contiguous area for the batch; each datagram is then copied to its exact size.
    static thread_local std::unique_ptr<char[]> area(new char[batch * max_dgram]);
    mmsghdr msgs[batch];
    iovec iov[batch];
    sockaddr_storage from[batch];
    for (int i = 0; i < batch; ++i) {
        iov[i] = {area.get() + size_t(i) * max_dgram, max_dgram};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = ::recvmmsg(fd, msgs, batch, MSG_DONTWAIT, nullptr);
    if (n < 0) return -errno;
    for (int i = 0; i < n; ++i) {
        datagram d;
        d.data = buffer::copy_of({static_cast<char*>(iov[i].iov_base), msgs[i].msg_len});
        d.from = socket_address::from(reinterpret_cast<sockaddr*>(&from[i]), msgs[i].msg_hdr.msg_namelen);
        rx.push_back(std::move(d));
    }
    return n;
}

void udp_socket::on_ready(io_op* op, int, uint32_t) {
    auto* st = static_cast<state*>(op->owner);
    st->poll = nullptr;
    st->reader.notify();
}

task<result<datagram>> udp_socket::recv_from(deadline dl) {
    for (;;) {
        if (!st_ || st_->fd < 0) co_return std::error_code(EBADF, std::system_category());
        if (st_->rx.empty()) {
            int n = st_->fill();
            if (n < 0 && n != -EAGAIN && n != -EWOULDBLOCK && n != -ECONNREFUSED) co_return from_errno(n);
        }
        if (!st_->rx.empty()) {
            datagram d = std::move(st_->rx.front());
            st_->rx.pop_front();
            co_return d;
        }
        if (!st_->poll) {
            reactor& r = this_reactor();
            io_op* op = r.alloc_op();
            op->kind = op_kind::poll_in;
            op->fd = st_->fd;
            op->owner = st_.get();
            op->on_complete = &on_ready;
            st_->poll = op;
            r.submit(op);
        }
        int w = co_await st_->reader.wait(dl);
        if (w < 0) co_return from_errno(w);
    }
}

result<void> udp_socket::send_to(std::string_view payload, const socket_address& to) {
    if (!st_ || st_->fd < 0) return std::error_code(EBADF, std::system_category());
    if (st_->tx.size() >= 4096) return errc::queue_full;
    st_->tx.push_back(datagram{buffer::copy_of(payload), to});
    this_reactor().request_flush(st_.get());
    return {};
}

void udp_socket::state::flush() {
    size_t done = 0;
    while (done < tx.size() && fd >= 0) {
        constexpr size_t batch = 64;
        mmsghdr msgs[batch];
        iovec iov[batch];
        size_t k = 0;
        for (; k < batch && done + k < tx.size(); ++k) {
            datagram& d = tx[done + k];
            iov[k] = {d.data.data(), d.data.size()};
            msgs[k] = {};
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_name = &d.from.ss;
            msgs[k].msg_hdr.msg_namelen = d.from.len;
        }
        int n = ::sendmmsg(fd, msgs, unsigned(k), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;  // retry next turn
            ++send_errors;  // this datagram cannot be sent: drop it, keep the rest
            ++done;
            continue;
        }
        done += size_t(n);
    }
    tx.erase(tx.begin(), tx.begin() + long(done));
    if (!tx.empty() && fd >= 0) this_reactor().request_flush(this);
}

void udp_socket::close() noexcept {
    if (!st_ || st_->fd < 0) return;
    reactor& r = this_reactor();
    r.cancel_flush(st_.get());
    if (st_->poll) {
        st_->poll->on_complete = nullptr;
        st_->poll->owner = nullptr;
        r.cancel(st_->poll);
        st_->poll = nullptr;
    }
    r.close_fd(st_->fd);
    st_->fd = -1;
    st_->reader.notify();
}

}  // namespace pharos::engine
