// build/pharos: the pharos command line.
//   pharos hello [-shards N] [-http-addr IP] [-http-port P] [-backend auto|io_uring|epoll]
//       the engine's demo HTTP responder (see hello.hh); -http true answers through protocols/http
//   pharos version
#include <signal.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/log.hh"
#include "engine/signals.hh"
#include "engine/smp.hh"
#include "hello.hh"
#include "protocols/http/client.hh"
#include "protocols/http/server.hh"
#include "protocols/json/writer.hh"
#include "services/api/http_api.hh"

using namespace pharos;
using namespace pharos::engine;

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: pharos <command> [flags]\n"
                 "  hello    serve a fixed HTTP 200 from the engine (-shards N -http-addr IP -http-port P -backend B)\n"
                 "  agent    run an agent: -dev (in-memory server) [-client IP -http-port P -shards N -backend B]\n"
                 "  kv       get|put|delete KEY [VALUE] against an agent (-http-addr, CONSUL_HTTP_ADDR)\n"
                 "  version  print the version\n");
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

backend_kind parse_backend(const std::string& v) {
    if (v == "auto") return backend_kind::automatic;
    if (v == "io_uring" || v == "uring") return backend_kind::io_uring;
    if (v == "epoll") return backend_kind::epoll;
    throw std::runtime_error("invalid -backend: " + v + " (auto, io_uring or epoll)");
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

// The agent in -dev mode: one in-memory server on 127.0.0.1. So far it serves
// the KV and status endpoints; the rest of the API comes with the agent issue.
task<int> agent_dev_main(http::server_config hc) {
    sharded<kv::service> kv;
    co_await kv.start();
    api::context ctx;
    ctx.kv = &kv;
    const api::context* cp = &ctx;
    http::handler h = [cp](http::request& r) { return api::handle(cp, r); };
    std::string what = "pharos agent -dev: HTTP API on http://" + hc.addr + ":" + std::to_string(hc.port) + "/";
    int rc = co_await serve_until_signal<http::server>(what, hc, h);
    co_await kv.stop();
    co_return rc;
}

int cmd_agent(int argc, char** argv) {
    smp_config cfg;
    http::server_config hc;
    bool dev = false;
    flags f{argc, argv, 2, {"dev"}};
    std::string name, value;
    while (f.next(name, value)) {
        if (name == "dev")
            dev = value != "false";
        else if (name == "shards")
            cfg.shards = parse_uint(name, value, 256);
        else if (name == "client")
            hc.addr = value;
        else if (name == "http-port")
            hc.port = uint16_t(parse_uint(name, value, 65535));
        else if (name == "backend")
            cfg.reactor.backend = parse_backend(value);
        else
            throw std::runtime_error("unknown flag -" + name);
    }
    if (!dev) throw std::runtime_error("only -dev is supported so far (no durable state or cluster yet)");
    cfg.take_signals = true;
    smp group(cfg);
    return group.run([hc] { return agent_dev_main(hc); });
}

// --- client commands: pharos kv get|put|delete, shaped like Consul's CLI ---

struct cli_result {
    int code = 0;
    std::string out, err;
};

// Splits "http://127.0.0.1:8500" or "127.0.0.1:8500" into an address.
socket_address http_addr_from(std::string a) {
    if (a.rfind("http://", 0) == 0) a = a.substr(7);
    auto colon = a.rfind(':');
    std::string host = colon == std::string::npos ? a : a.substr(0, colon);
    uint16_t port = colon == std::string::npos ? 8500 : uint16_t(std::stoul(a.substr(colon + 1)));
    if (host == "localhost") host = "127.0.0.1";
    auto r = socket_address::parse(host, port);
    if (!r) throw std::runtime_error("invalid -http-addr: " + a);
    return *r;
}

std::string url_escape_key(const std::string& k) {
    std::string out;
    for (unsigned char c : k) {
        if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
            out.push_back(char(c));
        else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

struct kv_cli {
    std::string verb, key, value, addr;
    bool recurse = false, keys = false, cas = false, value_given = false;
    uint64_t flags = 0, modify_index = 0;
};

task<cli_result> run_kv(kv_cli c) {
    cli_result res;
    socket_address to = http_addr_from(c.addr);
    std::string target = "/v1/kv/" + url_escape_key(c.key);
    std::string method = "GET", body;
    std::vector<std::string> q;
    if (c.verb == "get") {
        if (c.keys)
            q.push_back("keys&separator=/");  // Consul's CLI default separator
        else if (c.recurse)
            q.push_back("recurse");
        else
            q.push_back("raw");
    } else if (c.verb == "put") {
        method = "PUT";
        body = c.value;
        if (c.flags) q.push_back("flags=" + std::to_string(c.flags));
        if (c.cas) q.push_back("cas=" + std::to_string(c.modify_index));
    } else {
        method = "DELETE";
        if (c.recurse) q.push_back("recurse");
        if (c.cas) q.push_back("cas=" + std::to_string(c.modify_index));
    }
    for (size_t i = 0; i < q.size(); ++i) target += (i ? "&" : "?") + q[i];
    auto r = co_await http::fetch(to, method, target, body, {}, after(std::chrono::seconds(30)));
    if (!r) {
        res.code = 1;
        res.err = "Error! Failed to reach the agent at " + to.to_string() + ": " + r.error().message() + "\n";
        co_return res;
    }
    if (r->status == 404 && c.verb == "get") {
        res.code = 1;
        res.err = "Error! No key exists at: " + c.key + "\n";
        co_return res;
    }
    if (r->status != 200) {
        res.code = 1;
        res.err = "Error! Unexpected response code: " + std::to_string(r->status) + " (" + r->body + ")\n";
        co_return res;
    }
    if (c.verb == "get") {
        if (c.keys || c.recurse) {
            // Consul prints one key per line for -keys, and "key:value" for -recurse.
            simdjson::dom::parser p;
            simdjson::dom::element doc;
            if (p.parse(r->body).get(doc) || !doc.is_array()) {
                res.code = 1;
                res.err = "Error! Malformed response from the agent\n";
                co_return res;
            }
            for (auto item : doc.get_array()) {
                if (c.keys) {
                    std::string_view k;
                    if (!item.get_string().get(k)) res.out += std::string(k) + "\n";
                    continue;
                }
                std::string_view k, v64;
                if (item["Key"].get_string().get(k)) continue;
                std::string v;
                if (!item["Value"].get_string().get(v64)) json::base64_decode(v64, v);
                res.out += std::string(k) + ":" + v + "\n";
            }
        } else {
            res.out = r->body + "\n";
        }
    } else if (c.verb == "put") {
        if (r->body != "true") {
            res.code = 1;
            res.err = "Error! Did not write to " + c.key + ": CAS failed\n";
        } else {
            res.out = "Success! Data written to: " + c.key + "\n";
        }
    } else {
        if (r->body != "true") {
            res.code = 1;
            res.err = "Error! Did not delete key " + c.key + ": CAS failed\n";
        } else {
            res.out = c.recurse ? "Success! Deleted keys with prefix: " + c.key + "\n"
                                : "Success! Deleted key: " + c.key + "\n";
        }
    }
    co_return res;
}

int cmd_kv(int argc, char** argv) {
    if (argc < 3) throw std::runtime_error("usage: pharos kv get|put|delete [flags] KEY [VALUE]");
    kv_cli c;
    c.verb = argv[2];
    if (c.verb != "get" && c.verb != "put" && c.verb != "delete")
        throw std::runtime_error("unknown kv subcommand: " + c.verb);
    const char* env = std::getenv("CONSUL_HTTP_ADDR");
    c.addr = env && *env ? env : "127.0.0.1:8500";
    std::vector<std::string> args;
    for (int i = 3; i < argc; ++i) {
        std::string a = argv[i];
        if (a.size() > 1 && a[0] == '-' && args.empty()) {
            std::string name = a.substr(a[1] == '-' ? 2 : 1), value;
            auto eq = name.find('=');
            bool has_value = eq != std::string::npos;
            if (has_value) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            auto need = [&]() -> std::string {
                if (has_value) return value;
                if (i + 1 >= argc) throw std::runtime_error("flag -" + name + " needs a value");
                return argv[++i];
            };
            if (name == "recurse")
                c.recurse = !has_value || value != "false";
            else if (name == "keys")
                c.keys = !has_value || value != "false";
            else if (name == "cas")
                c.cas = !has_value || value != "false";
            else if (name == "flags")
                c.flags = std::stoull(need());
            else if (name == "modify-index")
                c.modify_index = std::stoull(need());
            else if (name == "http-addr")
                c.addr = need();
            else
                throw std::runtime_error("unknown flag -" + name);
            continue;
        }
        args.push_back(a);
    }
    if (args.empty() && !(c.verb == "get" && (c.recurse || c.keys))) throw std::runtime_error("missing KEY");
    if (!args.empty()) c.key = args[0];
    if (c.verb == "put") {
        if (args.size() > 1) c.value = args[1];
        if (c.value == "-") {
            std::string all;
            char buf[4096];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) all.append(buf, n);
            c.value = all;
        }
    }
    smp_config cfg;
    cfg.shards = 1;
    cfg.pin = false;
    cfg.stall_threshold_ms = 0;
    smp group(cfg);
    cli_result out;
    int rc = group.run([c, &out]() -> task<int> {
        return [](kv_cli c, cli_result* o) -> task<int> {
            *o = co_await run_kv(std::move(c));
            co_return o->code;
        }(c, &out);
    });
    std::fputs(out.out.c_str(), stdout);
    std::fputs(out.err.c_str(), stderr);
    return rc;
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
            cfg.reactor.backend = parse_backend(value);
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
        if (cmd == "kv") return cmd_kv(argc, argv);
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
