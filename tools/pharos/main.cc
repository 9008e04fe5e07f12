// build/pharos: the pharos command line.
//   pharos hello [-shards N] [-http-addr IP] [-http-port P] [-backend auto|io_uring|epoll]
//       the engine's demo HTTP responder (see hello.hh)
//   pharos version
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/log.hh"
#include "engine/signals.hh"
#include "engine/smp.hh"
#include "hello.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

int usage() {
    std::fprintf(stderr,
             "usage: pharos <command> [flags]\n"
             "  hello    serve a fixed HTTP 200 from the engine (-shards N -http-addr IP -http-port P -backend B)\n"
             "  version  print the version\n");
    return 2;
}

// Consul-style flags: -name value or -name=value (one or two dashes).
struct flags {
    int argc;
    char** argv;
    int i = 2;
    bool next(std::string& name, std::string& value) {
    if (i >= argc) return false;
    std::string a = argv[i++];
    if (a.rfind("--", 0) == 0) a = a.substr(2);
    else if (a.rfind("-", 0) == 0) a = a.substr(1);
    else throw std::runtime_error("unexpected argument: " + a);
    auto eq = a.find('=');
    if (eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
    } else {
        name = a;
        if (i >= argc) throw std::runtime_error("flag -" + a + " needs a value");
        value = argv[i++];
    }
    return true;
    }
};

unsigned parse_uint(const std::string& name, const std::string& v, unsigned max) {
    char* end = nullptr;
    unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end || n > max) throw std::runtime_error("invalid value for -" + name + ": " + v);
    return unsigned(n);
}

backend_kind parse_backend(const std::string& v) {
    if (v == "auto") return backend_kind::automatic;
    if (v == "io_uring" || v == "uring") return backend_kind::io_uring;
    if (v == "epoll") return backend_kind::epoll;
    throw std::runtime_error("invalid -backend: " + v + " (auto, io_uring or epoll)");
}

task<int> hello_main(std::string addr, uint16_t port) {
    sharded<tools::hello_server> srv;
    bool started = true;
    try {
        co_await srv.start(addr, port);
    } catch (const std::exception& e) {
        log(log_level::error, "%s", e.what());
        started = false;
    }
    if (!started) {
        co_await srv.stop();
        co_return 1;
    }
    log(log_level::info, "pharos hello: serving http://%s:%u/ on %u shard(s), backend %s", addr.c_str(), port,
        this_reactor().group().size(), this_reactor().backend_name());
    std::vector<int> stop_signals(1, SIGINT);
    stop_signals.push_back(SIGTERM);  // (no braced lists in coroutines: GCC 12 bug)
    auto sig = co_await wait_for_signal(stop_signals);
    log(log_level::info, "signal %d: stopping", sig ? *sig : 0);
    co_await srv.stop();
    co_return 0;
}

int cmd_hello(int argc, char** argv) {
    smp_config cfg;
    std::string addr = "127.0.0.1";
    uint16_t port = 8500;
    flags f{argc, argv};
    std::string name, value;
    while (f.next(name, value)) {
    if (name == "shards") cfg.shards = parse_uint(name, value, 256);
    else if (name == "http-addr" || name == "client") addr = value;
    else if (name == "http-port") port = uint16_t(parse_uint(name, value, 65535));
    else if (name == "backend") cfg.reactor.backend = parse_backend(value);
    else throw std::runtime_error("unknown flag -" + name);
    }
    cfg.take_signals = true;
    smp group(cfg);
    return group.run([addr, port] { return hello_main(addr, port); });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string cmd = argv[1];
    try {
    if (cmd == "hello") return cmd_hello(argc, argv);
    if (cmd == "version" || cmd == "-version" || cmd == "--version") {
        std::printf("Pharos v0.1.0\n");
        return 0;
    }
    } catch (const std::exception& e) {
    std::fprintf(stderr, "pharos: %s\n", e.what());
    return 2;
    }
    return usage();
}
