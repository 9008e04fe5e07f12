// pharos agent: the in-memory server. Starts the state (owner on shard 0), the
// agent's local state, and the HTTP API on every shard; stops them in reverse
// order on SIGINT/SIGTERM or PUT /v1/agent/leave.
#include "agent_main.hh"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/log.hh"
#include "engine/signals.hh"
#include "engine/smp.hh"
#include "protocols/http/server.hh"
#include "engine/snapshot.hh"
#include "services/agent/agent.hh"
#include "services/agent/gossip.hh"
#include "services/api/http_api.hh"
#include "services/session/ttl.hh"
#include "services/dns/server.hh"
#include "services/state/durable.hh"
#include "services/state/state.hh"
#include "services/storage/fs.hh"

namespace pharos::tools {
namespace {

using namespace pharos::engine;

struct agent_args {
    agent::config cfg;
    std::vector<std::string> args;  // the command line after `agent`, read again by a reload
    http::server_config hc;
    std::string server_addr;
    std::string what;
};

task<std::vector<api::metrics_sample>> http_metrics(sharded<http::server>* srv) {
    auto map = [](http::server& s) { return s.stats(); };
    auto reduce = [](http::server_stats a, http::server_stats b) {
        a.requests += b.requests;
        a.bad_requests += b.bad_requests;
        a.connections += b.connections;
        a.open_connections += b.open_connections;
        return a;
    };
    http::server_stats total = co_await srv->map_reduce(map, http::server_stats{}, reduce);
    std::vector<api::metrics_sample> out(4);
    out[0] = api::metrics_sample{"consul.http.requests", double(total.requests), true, "HTTP requests served"};
    out[1] = api::metrics_sample{"consul.http.bad_requests", double(total.bad_requests), true,
                                 "Malformed HTTP requests refused"};
    out[2] = api::metrics_sample{"consul.http.connections", double(total.connections), true,
                                 "HTTP connections accepted"};
    out[3] = api::metrics_sample{"consul.http.open_connections", double(total.open_connections), false,
                                 "HTTP connections open now"};
    co_return out;
}

// Services and checks from config files ("service", "services", "check",
// "checks"), registered as if through /v1/agent. Each is remembered by its ID
// with a hash of its text, so that a reload (PUT /v1/agent/reload, SIGHUP)
// registers only what is new, changed or no longer registered (a re-registered
// check keeps its status, as Consul's reload keeps check states), deregisters
// what the files no longer define, and leaves the rest and their probes alone. Services and checks
// registered through the API are not touched. A bad definition is logged and
// skipped. The texts are not kept (with 50,000 checks they would cost ~100 B each).
class config_definitions {
public:
    task<void> apply(agent::agent& ag, std::vector<std::string> service_texts, std::vector<std::string> check_texts);

private:
    using ids = std::vector<std::pair<std::string, uint64_t>>;  // (ID, hash of the text), sorted by ID
    static uint64_t text_hash(const std::string& t) { return std::hash<std::string_view>{}(t); }
    static const std::pair<std::string, uint64_t>* find(const ids& v, const std::string& id) {
        auto it = std::lower_bound(v.begin(), v.end(), id, [](const auto& e, const std::string& k) { return e.first < k; });
        return it != v.end() && it->first == id ? &*it : nullptr;
    }
    static bool has(const ids& v, const std::string& id, uint64_t h) {
        auto* e = find(v, id);
        return e && e->second == h;
    }
    static void sort_unique(ids& v) {  // a later definition of an ID wins, as it is registered last
        std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        ids out;
        for (auto& e : v) {
            if (!out.empty() && out.back().first == e.first) out.back() = std::move(e);
            else out.push_back(std::move(e));
        }
        v = std::move(out);
    }
    ids services_, checks_;
};

// Yields every 32 registrations: a replaced snapshot is freed only after the
// reactor's turn, and 50,000 writes in one turn would leave their garbage (the
// trees' path copies) spread over the heap for good.
task<void> config_definitions::apply(agent::agent& ag, std::vector<std::string> service_texts,
                                     std::vector<std::string> check_texts) {
    size_t registered = 0;
    ids services, checks;
    for (std::string& text : service_texts) {
        json::document doc;
        json::object o;
        std::optional<std::string> err = doc.parse(text);
        if (!err) err = doc.root_object(o);
        catalog::service s;
        std::vector<agent::check_definition> defs;
        if (!err) err = api::decode_service(o, s, defs);
        if (!err && s.name.empty()) err = "Missing service name";
        if (err) {
            log(log_level::error, "agent: service definition from config refused: %s", err->c_str());
            continue;
        }
        std::string id = s.id.empty() ? s.name : s.id;
        uint64_t h = text_hash(text);
        std::string().swap(text);
        services.emplace_back(id, h);
        if (has(services_, id, h) && ag.find_service(id)) continue;  // unchanged since the last load, and still there
        for (auto& c : defs) c.from_config = true;
        if (++registered % 32 == 0) co_await yield();
        auto out = co_await ag.register_service(std::move(s), std::move(defs), true);
        if (out) log(log_level::error, "agent: registering service %s from config: %s", id.c_str(), out->message.c_str());
    }
    for (std::string& text : check_texts) {
        json::document doc;
        json::object o;
        std::optional<std::string> err = doc.parse(text);
        if (!err) err = doc.root_object(o);
        agent::check_definition c;
        if (!err) err = api::decode_check(o, c);
        if (err) {
            log(log_level::error, "agent: check definition from config refused: %s", err->c_str());
            continue;
        }
        std::string id = c.row.check_id.empty() ? c.row.name : c.row.check_id;
        uint64_t h = text_hash(text);
        std::string().swap(text);
        checks.emplace_back(id, h);
        if (has(checks_, id, h) && ag.checks().count(id)) continue;
        c.from_config = true;
        if (++registered % 32 == 0) co_await yield();
        auto out = co_await ag.register_check(std::move(c));
        if (out) log(log_level::error, "agent: registering check %s from config: %s", id.c_str(), out->message.c_str());
    }
    sort_unique(services);
    sort_unique(checks);
    // What the files no longer define: checks first (a removed service takes its own checks).
    for (auto& [id, h] : checks_) {
        if (find(checks, id)) continue;
        auto out = co_await ag.deregister_check(id);
        if (out) log(log_level::warn, "agent: deregistering check %s removed from config: %s", id.c_str(), out->message.c_str());
    }
    for (auto& [id, h] : services_) {
        if (find(services, id)) continue;
        auto out = co_await ag.deregister_service(id);
        if (out)
            log(log_level::warn, "agent: deregistering service %s removed from config: %s", id.c_str(), out->message.c_str());
    }
    services_ = std::move(services);
    checks_ = std::move(checks);
}

log_level engine_level(const std::string& l) {
    if (l == "trace" || l == "debug") return log_level::debug;
    if (l == "warn") return log_level::warn;
    if (l == "err") return log_level::error;
    return log_level::info;
}

// Consul's reload: the same command line and files read again; the log level
// and the config files' services and checks follow them. Anything else a file
// changed needs a restart. Returns the error that stopped it (nothing applied).
task<std::optional<std::string>> reload_config(agent::agent* ag, config_definitions* defs,
                                               const std::vector<std::string>* args) {
    agent::load_result r;
    std::optional<std::string> err;
    try {
        r = agent::load(*args);
    } catch (const std::exception& e) {
        err = e.what();
    }
    if (err) {
        log(log_level::error, "agent: reload failed: %s", err->c_str());
        co_return err;
    }
    log(log_level::info, "agent: reloading the configuration");
    for (auto& w : r.warnings) log(log_level::warn, "%s", w.c_str());
    set_log_level(engine_level(r.cfg.log_level));
    co_await defs->apply(*ag, std::move(r.cfg.service_definitions_json), std::move(r.cfg.check_definitions_json));
    co_return std::nullopt;
}

// With -data-dir: <data_dir>/state holds the WAL and snapshots; recovery runs
// here, before anything is served. Returns an error text.
task<std::string> open_durable(const agent::config& cfg, std::unique_ptr<state::durable_log>& out) {
    if (::mkdir(cfg.data_dir.c_str(), 0750) < 0 && errno != EEXIST)
        co_return "cannot create data_dir " + cfg.data_dir + ": " + strerror(errno);
    std::unique_ptr<storage::fs> dir;
    try {
        dir = storage::make_disk_fs(cfg.data_dir + "/state");
    } catch (const std::exception& e) {
        co_return std::string(e.what());
    }
    // One agent per data dir (the kernel drops the lock when the process dies).
    std::string lock = cfg.data_dir + "/state/LOCK";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) < 0)
        co_return "data_dir " + cfg.data_dir + " is in use by another agent (cannot lock " + lock + ")";
    state::durable_options o;
    o.snapshot_every = uint64_t(std::max(1, cfg.raft_snapshot_threshold));
    co_return co_await state::durable_log::open(std::move(dir), o, out);  // fd stays open (and locked) until exit
}

task<int> agent_main(agent_args a) {
    std::unique_ptr<state::durable_log> durable;
    if (!a.cfg.dev) {
        std::string err = co_await open_durable(a.cfg, durable);
        if (!err.empty()) {
            log(log_level::error, "%s", err.c_str());
            co_return 1;
        }
    }
    auto first = std::make_unique<state::snapshot>();
    if (durable) *first = durable->recovered();
    published<state::snapshot> pub(std::move(first));
    sharded<state::service> st;
    co_await st.start(&st, &pub, durable.get());
    // The definitions' texts leave the config before the agent copies it.
    std::vector<std::string> service_definitions = std::move(a.cfg.service_definitions_json);
    std::vector<std::string> check_definitions = std::move(a.cfg.check_definitions_json);
    a.cfg.service_definitions_json.clear();
    a.cfg.check_definitions_json.clear();
    agent::agent ag(a.cfg, &st);
    co_await ag.start();
    config_definitions defs;
    co_await defs.apply(ag, std::move(service_definitions), std::move(check_definitions));
    session::ttl_timers timers(&st);  // on the state owner (this shard)
    timers.start();

    // Gossip on this shard (the state owner's and the agent's): ports.serf_lan <= 0 disables it.
    bool started = true;
    agent::lan_gossip lan(a.cfg, &st);
    bool gossiping = false;
    bool retry_exhausted = false;
    if (a.cfg.ports.serf_lan > 0) {
        try {
            co_await lan.start();
            gossiping = true;
            ag.set_gossip(&lan);
        } catch (const std::exception& e) {
            log(log_level::error, "%s", e.what());
            started = false;
        }
    }
    if (started && gossiping && !a.cfg.start_join.empty()) {
        std::string err;
        std::vector<std::string> addrs = a.cfg.start_join;
        deadline jdl = clock::now() + std::chrono::seconds(30);
        int n = co_await lan.join(std::move(addrs), jdl, &err);
        if (n == 0) {
            log(log_level::error, "agent: error joining the LAN pool: %s", err.c_str());
            started = false;
        } else {
            log(log_level::info, "agent: joined the LAN pool: %d node(s) contacted", n);
        }
    }
    if (started && gossiping) {
        bool* flag = &retry_exhausted;
        lan.start_retry_join([flag] {
            *flag = true;
            ::kill(::getpid(), SIGTERM);
        });
    }

    sharded<http::server> srv;
    api::context ctx;
    ctx.state = &st;
    ctx.agent = &ag;
    ctx.agent_shard = this_shard();
    ctx.session_timers = &timers;
    ctx.datacenter = a.cfg.datacenter;
    ctx.server_addr = a.server_addr;
    ctx.kv_max_value_size = size_t(a.cfg.limits.kv_max_value_size);
    ctx.txn_max_req_len = size_t(a.cfg.limits.txn_max_req_len);
    ctx.default_query_time = a.cfg.default_query_time;
    ctx.max_query_time = a.cfg.max_query_time;
    sharded<http::server>* sp = &srv;
    ctx.extra_metrics = [sp] { return http_metrics(sp); };
    ctx.shutdown = [] { ::kill(::getpid(), SIGTERM); };  // the signal wait below stops the agent gracefully
    // One reload at a time: a second one asked for meanwhile is refused.
    bool reloading = false;
    agent::agent* agp = &ag;
    config_definitions* defsp = &defs;
    const std::vector<std::string>* argsp = &a.args;
    ctx.reload = [agp, defsp, argsp, flag = &reloading]() -> task<std::optional<std::string>> {
        return [](agent::agent* ag, config_definitions* d, const std::vector<std::string>* args,
                  bool* busy) -> task<std::optional<std::string>> {
            if (*busy) co_return std::string("a reload is already running");
            *busy = true;
            std::optional<std::string> err = co_await reload_config(ag, d, args);
            *busy = false;
            co_return err;
        }(agp, defsp, argsp, flag);
    };
    const api::context* cp = &ctx;
    http::handler h = [cp](http::request& r) { return api::handle(cp, r); };

    if (started) {
        try {
            co_await srv.start(a.hc, h);
        } catch (const std::exception& e) {
            log(log_level::error, "%s", e.what());
            started = false;
        }
    }
    // DNS on every shard (ports.dns <= 0 disables it).
    sharded<dns::server> dns_srv;
    if (started && a.cfg.ports.dns > 0) {
        dns::server_config dc;
        dc.addr = agent::dns_addr(a.cfg);
        dc.port = uint16_t(a.cfg.ports.dns);
        dc.recursors = a.cfg.recursors;
        try {
            co_await dns_srv.start(dc, dns::resolver_config_from(a.cfg), &st);
            log(log_level::info, "DNS on %s:%d (udp, tcp)", dc.addr.c_str(), a.cfg.ports.dns);
        } catch (const std::exception& e) {
            log(log_level::error, "%s", e.what());
            started = false;
        }
    }
    int rc = 1;
    if (started) {
        log(log_level::info, "%s on %u shard(s), backend %s", a.what.c_str(), this_reactor().group().size(),
            this_reactor().backend_name());
        std::vector<int> stop_signals(1, SIGINT);
        stop_signals.push_back(SIGTERM);  // (no braced lists in coroutines: GCC 12 bug)
        stop_signals.push_back(SIGHUP);
        auto sig = co_await wait_for_signal(stop_signals);
        // SIGHUP: Consul's reload (as PUT /v1/agent/reload); a service manager's reload must not stop the agent.
        while (sig && *sig == SIGHUP) {  // Consul's reload
            task<std::optional<std::string>> reload = ctx.reload();
            co_await std::move(reload);
            sig = co_await wait_for_signal(stop_signals);
        }
        log(log_level::info, "signal %d: stopping", sig ? *sig : 0);
        rc = retry_exhausted ? 1 : 0;
        // Consul: a signal leaves the pool gracefully when leave_on_terminate (SIGTERM) or
        // !skip_leave_on_interrupt (SIGINT) says so; /v1/agent/leave has left already.
        bool leave = sig && ((*sig == SIGTERM && *a.cfg.leave_on_terminate) ||
                             (*sig == SIGINT && !*a.cfg.skip_leave_on_interrupt));
        if (leave && gossiping && !ag.left() && !retry_exhausted) {
            log(log_level::info, "gossip: leaving the LAN pool");
            co_await ag.leave(clock::now() + std::chrono::seconds(5));
        }
    }
    // Blocked queries (state and agent) answer now; then requests drain.
    co_await st.invoke_on_all([](state::service& s) { s.begin_stop(); });
    ag.set_gossip(nullptr);
    co_await lan.stop();
    co_await ag.stop();
    co_await dns_srv.stop();
    co_await srv.stop();
    co_await timers.stop();
    co_await st.stop();
    co_return rc;
}

// Every connection and blocked query holds a descriptor: lift the soft limit to
// the hard one, as Go's runtime does for Consul.
void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

int run_agent(agent::config config, const std::vector<std::string>& warnings, std::vector<std::string> command_line) {
    // One copy of the configuration: `cfg` reads it, agent_main takes it.
    auto args = std::make_shared<agent_args>();
    args->cfg = std::move(config);
    args->args = std::move(command_line);
    const agent::config& cfg = args->cfg;
    set_log_level(engine_level(cfg.log_level));
    for (auto& w : warnings) log(log_level::warn, "%s", w.c_str());
    if (!cfg.dev && !cfg.server) {
        log(log_level::error, "client mode is not supported yet: run with -dev or -server");
        return 1;
    }
    // Without Raft each server is its own leader: servers meant to form one
    // cluster would each accept writes (two Patroni nodes could both hold the
    // leader key). Refuse the configurations that expect a quorum.
    if (cfg.server && !cfg.dev && !cfg.bootstrap) {
        log(log_level::error,
            "multi-server clusters (Raft) are not supported yet: run one server with -bootstrap (or "
            "-bootstrap-expect 1) or -dev; bootstrap_expect = %d",
            cfg.bootstrap_expect);
        return 1;
    }
    if ((!cfg.start_join.empty() || !cfg.retry_join.empty()) && cfg.ports.serf_lan <= 0)
        log(log_level::warn, "gossip is disabled (ports.serf_lan = %d): -join and -retry-join are ignored",
            cfg.ports.serf_lan);
    if (cfg.ports.http <= 0) {
        log(log_level::error, "the HTTP API cannot be disabled yet (ports.http = %d)", cfg.ports.http);
        return 1;
    }
    if (cfg.node_id_generated && !cfg.dev) {
        try {
            args->cfg.node_id = agent::persist_node_id(cfg.data_dir, cfg.node_id);
        } catch (const std::exception& e) {
            log(log_level::error, "%s", e.what());
            return 1;
        }
    }
    agent_args& a = *args;
    a.hc.addr = agent::http_addr(cfg);
    a.hc.port = uint16_t(cfg.ports.http);
    a.hc.max_conns_per_client = size_t(std::max(0, cfg.limits.http_max_conns_per_client));
    a.hc.max_body_bytes = std::max<size_t>(a.hc.max_body_bytes, size_t(cfg.limits.kv_max_value_size) + 1);
    raise_fd_limit();
    a.server_addr = agent::advertise_address(cfg) + ":" + std::to_string(cfg.ports.server);
    a.what = std::string("pharos agent") + (cfg.dev ? " -dev" : "") + ": node " + cfg.node_name + " (" + cfg.node_id +
             "), datacenter " + cfg.datacenter + ", HTTP API on http://" + a.hc.addr + ":" + std::to_string(a.hc.port) +
             "/";
    if (a.hc.addr.rfind("unix://", 0) == 0) {
        log(log_level::error, "unix socket addresses are not supported yet: %s", a.hc.addr.c_str());
        return 1;
    }

    smp_config sc;
    sc.shards = cfg.shards;
    sc.reactor.backend = cfg.backend;
    sc.take_signals = true;
    if (!cfg.pid_file.empty()) {
        try {
            agent::write_pid_file(cfg.pid_file);
        } catch (const std::exception& e) {
            log(log_level::error, "%s", e.what());
            return 1;
        }
    }
    std::string pid_file = cfg.pid_file;
    int rc;
    {
        // SIGHUP is taken by agent_main like SIGINT and SIGTERM (smp blocks those two in
        // every shard; the shards' threads inherit this mask).
        sigset_t hup;
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &hup, nullptr);
        smp group(sc);
        rc = group.run([args] { return agent_main(std::move(*args)); });  // runs once
    }
    agent::remove_pid_file(pid_file);
    return rc;
}

}  // namespace pharos::tools
