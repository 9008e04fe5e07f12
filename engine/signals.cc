#include "signals.hh"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "io.hh"

namespace pharos::engine {

task<result<int>> wait_for_signal(std::vector<int> signals, deadline dl) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals) sigaddset(&set, s);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) co_return std::error_code(errno, std::system_category());
    reactor& r = this_reactor();
    for (;;) {
        signalfd_siginfo si;
        if (::read(fd, &si, sizeof si) == ssize_t(sizeof si)) {
            r.close_fd(fd);
            co_return int(si.ssi_signo);
        }
        io_op* op = r.alloc_op();
        op->kind = op_kind::poll_in;
        op->fd = fd;
        op_awaiter a(op, dl);
        int res = co_await a;
        if (res < 0) {
            r.close_fd(fd);
            co_return from_errno(res);
        }
    }
}

}  // namespace pharos::engine
