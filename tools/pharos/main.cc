// build/pharos: the pharos command line.
//   pharos agent [Consul's agent flags]   the agent (services/agent/config.hh, agent_main.hh)
//   pharos hello [-shards N] [-http-addr IP] [-http-port P] [-backend auto|io_uring|epoll]
//       the engine's demo HTTP responder (see hello.hh); -http true answers through protocols/http
//   pharos kv|members|catalog|services|join|force-leave|leave|reload|version   client commands (cli.hh)
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent_main.hh"
#include "cli.hh"
#include "engine/log.hh"
#include "engine/signals.hh"
#include "engine/smp.hh"
#include "hello.hh"
#include "protocols/http/server.hh"
#include "services/agent/config.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

int usage() {
    std::fprintf(
        stderr,
        "usage: pharos <command> [flags]\n"
        "  hello     serve a fixed HTTP 200 from the engine (-shards N -http-addr IP -http-port P -backend B)\n"
        "  agent     run an agent: Consul's flags and JSON config files (-dev: in-memory server;\n"
        "            also -shards N -backend auto|io_uring|epoll)\n"
        "  kv        get|put|delete KEY [VALUE] against an agent (-http-addr, CONSUL_HTTP_ADDR)\n"
        "  members   list the cluster's members\n"
        "  catalog   services | nodes\n"
        "  services  register | deregister\n"
        "  join      ADDR...: make the agent join a cluster (gossip)\n"
        "  force-leave [-prune] NODE: mark a failed member left\n"
        "  leave     make the agent leave the cluster and shut down\n"
        "  reload    make the agent read its config files again\n"
        "  version   print the version\n");
    return 2;
}

// Consul-style flags: -name value or -name=value (one or two dashes).
struct flags {
    int argc;
    char** argv;
    int i = 2;
    std::vector<std::string> bools = {};  // flags that take no value (Go's bool flags)
    bool next(std::string& name, std::string& value) {
        if (i >= argc) return false;
        std::string a = argv[i++];
        if (a.rfind("--", 0) == 0)
            a = a.substr(2);
        else if (a.rfind("-", 0) == 0)
            a = a.substr(1);
        else
            throw std::runtime_error("unexpected argument: " + a);
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            name = a.substr(0, eq);
            value = a.substr(eq + 1);
        } else if (std::find(bools.begin(), bools.end(), a) != bools.end()) {
            name = a;
            value = "true";
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

backend_kind backend_flag(const std::string& v) {
    auto k = engine::parse_backend(v);
    if (!k) throw std::runtime_error("invalid -backend: " + v + " (auto, io_uring or epoll)");
    return *k;
}

task<http::response> fixed_ok(http::request&) { co_return http::response::json("{\"ok\":true}"); }

// Starts a sharded S on every shard, serves until SIGINT or SIGTERM, then stops it.
template <class S, class... Args>
task<int> serve_until_signal(std::string what, Args... args) {
    sharded<S> srv;
    bool started = true;
    try {
        co_await srv.start(args...);
    } catch (const std::exception& e) {
        log(log_level::error, "%s", e.what());
        started = false;
    }
    if (!started) {
        co_await srv.stop();
        co_return 1;
    }
    log(log_level::info, "%s on %u shard(s), backend %s", what.c_str(), this_reactor().group().size(),
        this_reactor().backend_name());
    std::vector<int> stop_signals(1, SIGINT);
    stop_signals.push_back(SIGTERM);  // (no braced lists in coroutines: GCC 12 bug)
    auto sig = co_await wait_for_signal(stop_signals);
    log(log_level::info, "signal %d: stopping", sig ? *sig : 0);
    co_await srv.stop();
    co_return 0;
}

// `consul agent`'s flags and config files, then the agent. Configuration
// errors exit 1, as Consul.
int cmd_agent(int argc, char** argv) {
    agent::load_result r;
    try {
        r = agent::load(argc, argv, 2);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "==> %s\n", e.what());
        return 1;
    }
    return tools::run_agent(std::move(r.cfg), r.warnings, std::vector<std::string>(argv + 2, argv + argc));
}

int cmd_hello(int argc, char** argv) {
    smp_config cfg;
    std::string addr = "127.0.0.1";
    uint16_t port = 8500;
    flags f{argc, argv};
    std::string name, value;
    bool full_http = false;
    while (f.next(name, value)) {
        if (name == "shards")
            cfg.shards = parse_uint(name, value, 256);
        else if (name == "http-addr" || name == "client")
            addr = value;
        else if (name == "http-port")
            port = uint16_t(parse_uint(name, value, 65535));
        else if (name == "backend")
            cfg.reactor.backend = backend_flag(value);
        else if (name == "http")
            full_http = value == "true" || value == "1";
        else
            throw std::runtime_error("unknown flag -" + name);
    }
    cfg.take_signals = true;
    smp group(cfg);
    std::string what = "pharos hello: serving http://" + addr + ":" + std::to_string(port) + "/";
    if (full_http) {
        // The same fixed answer through the full HTTP server (Beast parser and
        // serializer): the ceiling for every API endpoint.
        http::server_config hc;
        hc.addr = addr;
        hc.port = port;
        http::handler h = &fixed_ok;
        return group.run([what, hc, h] { return serve_until_signal<http::server>(what + " (full HTTP)", hc, h); });
    }
    return group.run([what, addr, port] { return serve_until_signal<tools::hello_server>(what, addr, port); });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string cmd = argv[1];
    try {
        if (cmd == "hello") return cmd_hello(argc, argv);
        if (cmd == "agent") return cmd_agent(argc, argv);
        if (tools::is_cli_command(cmd)) return tools::run_cli(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pharos: %s\n", e.what());
        return 2;
    }
    return usage();
}
