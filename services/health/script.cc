// Script checks: posix_spawn (vfork-style, the reactor is not blocked beyond
// the exec), a pipe for stdout+stderr read through reactor readiness, and a
// pidfd for the exit, so no thread and no SIGCHLD handler is needed.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "engine/io.hh"
#include "protocols/json/duration.hh"
#include "services/health/probe.hh"

extern char** environ;

namespace pharos::health {
using namespace engine;

namespace {
int pidfd_open(pid_t pid) { return int(::syscall(SYS_pidfd_open, pid, 0)); }

// Waits until `fd` is readable or `dl`. 0, -ETIMEDOUT or -ECANCELED.
// Cancel safety: nothing is consumed.
task<int> readable(int fd, deadline dl) {
    io_op* op = this_reactor().alloc_op();
    op->kind = op_kind::poll_in;
    op->fd = fd;
    op_awaiter a(op, dl);
    int r = co_await a;
    co_return r < 0 ? r : 0;
}

std::string captured(const ring_capture& out) {
    std::string s = out.str();
    if (out.total() > s.size())
        s = "Captured " + std::to_string(s.size()) + " of " + std::to_string(out.total()) + " bytes\n...\n" + s;
    return s;
}
}  // namespace

task<probe_result> probe_script(std::vector<std::string> argv, size_t max_output, int64_t timeout_ns, deadline dl) {
    probe_result res;
    if (argv.empty()) {
        res.output = "exec: no command";
        co_return res;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        res.output = "pipe: " + errno_text(-errno);
        co_return res;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);  // reactor threads block the stop signals; the child must not
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);  // its own process group: a timeout kills the whole subtree
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_USEVFORK);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, cargv[0], &fa, &at, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    ::close(p[1]);
    reactor& r = this_reactor();
    if (rc != 0) {
        r.close_fd(p[0]);
        if (argv[0].find('/') == std::string::npos && rc == ENOENT)
            res.output = "exec: \"" + argv[0] + "\": executable file not found in $PATH";
        else
            res.output = "fork/exec " + argv[0] + ": " + errno_text(-rc);
        co_return res;
    }
    int pfd = pidfd_open(pid);
    ring_capture out(max_output ? max_output : 4096);
    bool timed_out = false, cancelled = false;
    char buf[4096];
    // Output until EOF (as Go's cmd.Wait waits for its copier), then the exit.
    for (;;) {
        ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n > 0) {
            out.append(std::string_view(buf, size_t(n)));
            continue;
        }
        if (n == 0) break;
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        int w = co_await readable(p[0], dl);
        if (w == -ETIMEDOUT) timed_out = true;
        if (w == -ECANCELED) cancelled = true;
        if (w < 0) break;
    }
    r.close_fd(p[0]);
    if (timed_out || cancelled) ::kill(-pid, SIGKILL);
    int wst = 0;
    if (cancelled) ::waitpid(pid, &wst, 0);  // SIGKILLed: reaped at once; a cancelled task cannot wait
    for (; !cancelled;) {
        pid_t got = ::waitpid(pid, &wst, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR)) break;
        if (pfd >= 0) {
            int w = co_await readable(pfd, timed_out || cancelled ? no_deadline : dl);
            if (w == -ETIMEDOUT && !timed_out) {
                timed_out = true;
                ::kill(-pid, SIGKILL);
            } else if (w == -ECANCELED) {
                cancelled = true;
                ::kill(-pid, SIGKILL);
                ::waitpid(pid, &wst, 0);
            }
        } else {
            co_await sleep_for(std::chrono::milliseconds(5));  // no pidfd (old kernel): poll the exit
            if (clock::now() >= dl && !timed_out) {
                timed_out = true;
                ::kill(-pid, SIGKILL);
            }
        }
    }
    if (pfd >= 0) r.close_fd(pfd);
    if (timed_out) {
        res.output = "Timed out (" + json::format_go_duration(std::chrono::nanoseconds(timeout_ns)) + ") running check";
        std::string o = captured(out);
        if (!o.empty()) res.output += "\n\n" + o;
        co_return res;
    }
    res.output = captured(out);
    if (WIFEXITED(wst) && WEXITSTATUS(wst) == 0) res.st = status::passing;
    else if (WIFEXITED(wst) && WEXITSTATUS(wst) == 1) res.st = status::warning;
    co_return res;
}

}  // namespace pharos::health
