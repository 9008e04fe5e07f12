// probe-floor: the kernel's cost of one HTTP health probe on this machine, with
// nothing else around it. It runs the system calls a pharos HTTP probe makes
// (non-blocking socket, connect, the request sent at once, receives until the
// target's EOF, close with RST after that EOF), one probe after another with a
// blocking wait (poll) in between, and prints the CPU (user + system) per probe.
// bench/health/checks runs it on the agent's CPU against the same farm, so that
// pharos's CPU per probe can be set against the floor the kernel imposes.
//
// Usage: probe-floor -addr 127.0.0.1:PORT [-path /t/0] [-n 50000]
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>

#include "tools/common/flags.hh"

namespace {
double cpu_seconds() {
    rusage r{};
    getrusage(RUSAGE_SELF, &r);
    return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, 5000) == 1;
}
}  // namespace

int main(int argc, char** argv) {
    std::string addr = "127.0.0.1:8080", path = "/t/0";
    int64_t n = 50000;
    pharos::tools::flag_set fs("probe-floor", "The kernel's CPU per HTTP probe: pharos's probe system calls, one probe at a time.");
    fs.string("addr", addr, "the target's ip:port");
    fs.string("path", path, "the request's path");
    fs.number("n", n, "probes to run", int64_t(1));
    fs.parse(argc, argv);
    auto to = pharos::tools::parse_ip_port(addr);
    if (!to) fs.fail("bad -addr " + addr);
    // The request pharos sends for an HTTP check without headers of its own.
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + addr +
                      "\r\nUser-Agent: Consul Health Check\r\nAccept: text/plain, text/*, */*\r\nConnection: close\r\n\r\n";
    char buf[16384];
    int64_t failed = 0;
    double c0 = cpu_seconds();
    auto w0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i) {
        int fd = ::socket(to->family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return 1;
        bool ok = ::connect(fd, to->sa(), to->len) == 0 || errno == EINPROGRESS;
        ssize_t sent = ok ? ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) : -1;
        if (sent < 0 && ok && errno == EAGAIN && wait_for(fd, POLLOUT))
            sent = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
        bool eof = false;
        while (sent == ssize_t(req.size())) {
            ssize_t k = ::recv(fd, buf, sizeof buf, 0);
            if (k > 0) continue;
            if (k == 0) eof = true;
            else if (errno == EAGAIN && wait_for(fd, POLLIN)) continue;
            break;
        }
        if (eof) {
            linger l{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        } else {
            ++failed;
        }
        ::close(fd);
    }
    double cpu = cpu_seconds() - c0;
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    std::printf("probes=%lld failed=%lld cpu_us_per_probe=%.2f wall_us_per_probe=%.2f\n", (long long)n,
                (long long)failed, cpu / double(n) * 1e6, wall / double(n) * 1e6);
    return failed ? 1 : 0;
}
