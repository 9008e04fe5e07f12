// agent::config: the agent's settings, read the way `consul agent` reads them.
// Sources, applied in this order (Consul's merge rules: later wins for scalars,
// lists are appended, maps merge key by key):
//   built-in defaults → -dev defaults → config files, in the order given on the
//   command line (-config-file X, or every *.json in -config-dir D in lexical
//   order) → command-line flags.
// Config files are JSON with Consul's snake_case keys; HCL is refused with a
// clear error. A JSON null leaves a key unset. An unknown key is a warning, not
// a failure. Keys Consul knows but pharos does not implement yet (acl, connect,
// peering, telemetry, tls, ...) are accepted and named together in ONE warning
// line ("accepted but not supported yet, ignored: acl, connect, ..."); service
// and check definitions are kept as raw JSON for the agent to register later.
// A wrong type (a string for ports.http, ...) or a value Consul refuses
// (bootstrap without server, bad node_id, ...) fails with a message that names
// the key and the file.
// Plain data; read once by `pharos agent` before the shards start.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend.hh"

namespace pharos::agent {

struct ports_config {
    int http = 8500;      // -1 disables
    int https = -1;       // stored only
    int dns = 8600;       // -1 disables
    int serf_lan = 8301;  //
    int serf_wan = 8302;  // -1 disables the WAN pool
    int server = 8300;    // server RPC
    int grpc = -1;        // -dev: 8502
    int grpc_tls = -1;    // -dev: 8503
};

// Per-listener address overrides ("addresses" in Consul); empty means client_addr.
struct addresses_config {
    std::string http, https, dns, grpc, grpc_tls;
};

// "dns_config" (Consul's names and defaults). TTLs in whole seconds as Consul
// sends them; service_ttl keys may end in '*' (longest prefix wins, "*" matches all).
struct dns_settings {
    bool allow_stale = true;  // stored: reads are always local here
    int64_t node_ttl_s = 0;
    std::map<std::string, int64_t> service_ttl_s;
    bool only_passing = false;
    int udp_answer_limit = 3;
    int a_record_limit = 0;  // 0: no limit
    bool enable_truncate = false;
    bool enable_additional_node_meta_txt = true;
    bool disable_compression = false;
    std::chrono::nanoseconds recursor_timeout = std::chrono::seconds(2);
    uint32_t soa_refresh = 3600, soa_retry = 600, soa_expire = 86400, soa_min_ttl = 0;
};

struct limits_config {
    int http_max_conns_per_client = 200;
    int rpc_max_conns_per_client = 100;
    uint64_t kv_max_value_size = 512 * 1024;  // limits.kv_max_value_size (bytes)
    uint64_t txn_max_req_len = 512 * 1024;    // limits.txn_max_req_len (bytes)
};

// Consul's gossip_lan / gossip_wan keys: memberlist settings over the pool's
// profile (LAN: memberlist's DefaultLANConfig). Unset keeps the profile's value.
struct gossip_tuning {
    std::optional<int> gossip_nodes, retransmit_mult, suspicion_mult;
    std::optional<std::chrono::nanoseconds> gossip_interval, probe_interval, probe_timeout;
};

struct config {
    // Modes.
    bool dev = false;          // -dev: in-memory server, see load()
    bool server = false;       // -server / "server"
    bool bootstrap = false;    // -bootstrap; bootstrap_expect 1 becomes bootstrap (as Consul)
    int bootstrap_expect = 0;  // -bootstrap-expect; > 0 needs server, refused with -dev or bootstrap
    bool ui = false;           // -ui / "ui" / ui_config.enabled (stored; -dev: true)

    // Identity.
    std::string node_name;           // -node; default: the host name
    std::string node_id;             // -node-id; lower case; default: <data_dir>/node-id (see persist_node_id)
    bool node_id_generated = false;  // node_id was not configured: finish() made a random UUID v4
    std::string datacenter = "dc1";  // lower-cased, [a-z0-9_-]+ as Consul
    std::string primary_datacenter;  // empty: the same as datacenter
    std::string domain = "consul.";  // -domain / "domain"
    std::string alt_domain;
    std::map<std::string, std::string> node_meta;  // -node-meta key:value (repeatable) / "node_meta"

    // Addresses.
    std::string bind_addr = "0.0.0.0";      // -bind; -dev: 127.0.0.1
    std::string client_addr = "127.0.0.1";  // -client; Consul allows a space-separated list: see http_addr()
    std::string advertise_addr;             // -advertise; empty: derived from bind_addr later
    std::string advertise_addr_wan;         // -advertise-wan
    std::string serf_lan_bind, serf_wan_bind;
    ports_config ports;
    addresses_config addresses;

    // State.
    std::string data_dir;  // -data-dir; required unless -dev: the WAL and snapshots live in <data_dir>/state
    std::string pid_file;  // -pid-file: written at start, removed on clean exit

    // Cluster.
    std::vector<std::string> start_join;      // -join / "start_join"
    std::vector<std::string> retry_join;      // -retry-join / "retry_join"
    std::vector<std::string> start_join_wan;  // -join-wan / "start_join_wan"
    std::vector<std::string> retry_join_wan;  // -retry-join-wan / "retry_join_wan"
    std::chrono::nanoseconds retry_interval = std::chrono::seconds(30);
    int retry_max = 0;  // 0: forever
    bool rejoin_after_leave = false;
    std::chrono::nanoseconds reconnect_timeout = std::chrono::hours(72);  // >= 8h (Consul); -dev: any > 0
    std::optional<bool> leave_on_terminate;       // unset: Consul's default (false for servers, true for clients)
    std::optional<bool> skip_leave_on_interrupt;  // unset: Consul's default (true for servers, false for clients)
    std::string encrypt;                          // gossip key (base64), stored for the gossip layer
    bool disable_keyring_file = false;            // true: no <data_dir>/serf/local.keyring (-dev: true)
    bool encrypt_verify_incoming = true;          // false: accept plaintext gossip too (key rollout)
    bool encrypt_verify_outgoing = true;          // false: send plaintext gossip (key rollout)
    gossip_tuning gossip_lan, gossip_wan;         // "gossip_lan" / "gossip_wan"; -dev: Consul's 100 ms values
    int raft_multiplier = 5;                      // performance.raft_multiplier; -dev: 1
    int raft_protocol = 3;
    int raft_snapshot_threshold = 16384;  // commands between state snapshots (with -data-dir)

    // API behaviour.
    std::chrono::nanoseconds default_query_time = std::chrono::seconds(300);  // blocking query default wait
    std::chrono::nanoseconds max_query_time = std::chrono::seconds(600);      // blocking query cap
    std::chrono::nanoseconds session_ttl_min = std::chrono::seconds(10);      // "session_ttl_min"
    limits_config limits;
    bool enable_script_checks = false;
    bool enable_local_script_checks = false;
    int check_output_max_size = 4096;
    bool disable_update_check = false;
    bool disable_remote_exec = true;

    // DNS.
    std::vector<std::string> recursors;  // -recursor / "recursors"
    std::string dns_config_json;         // the raw "dns_config" object (JSON text; empty if absent); the
                                         // last file that sets it wins
    dns_settings dns;                    // "dns_config", parsed (keys merge across files)

    // Service and check definitions from config files ("service", "services",
    // "check", "checks"): each element as raw JSON text, in file order.
    std::vector<std::string> service_definitions_json;
    std::vector<std::string> check_definitions_json;

    // Logging: trace, debug, info, warn or err (lower case; "error"/"warning" accepted).
    std::string log_level = "info";  // Consul -dev uses DEBUG; pharos keeps info to keep logs quiet

    // pharos's own.
    unsigned shards = 0;                                             // -shards: 0 = one per core
    engine::backend_kind backend = engine::backend_kind::automatic;  // -backend auto|io_uring|epoll

    std::vector<std::string> config_files;  // every file read, in order (for the start-up log)
};

struct load_result {
    config cfg;
    std::vector<std::string> warnings;
};

// Parses `consul agent` flags from argv[first_arg..argc) and the config files
// they name. Throws std::runtime_error with a message that names the flag, key
// or file on any error (unknown flag: "flag provided but not defined: -x").
load_result load(int argc, char** argv, int first_arg);

// The same from an argument list (for tests).
load_result load(const std::vector<std::string>& args);

// The address HTTP listens on: addresses.http if set, else the first entry of
// client_addr.
std::string http_addr(const config& c);
// The same for DNS (addresses.dns).
std::string dns_addr(const config& c);

// Writes the process id (decimal, no newline, as Consul) to `path`; throws
// std::runtime_error on failure. remove_pid_file ignores a missing file.
void write_pid_file(const std::string& path);
void remove_pid_file(const std::string& path);

// A random RFC 4122 version 4 UUID, lower case.
std::string random_uuid_v4();

// Consul's node ID persistence: the ID in <data_dir>/node-id if that file
// exists (lower-cased; a file that is not a UUID fails start), else `fresh`,
// written there first (temp file, fsync, rename, fsync of the directory), so a
// restarted agent keeps its ID. Creates data_dir if missing. Blocking file I/O:
// call before the reactors start. Throws std::runtime_error.
std::string persist_node_id(const std::string& data_dir, const std::string& fresh);

}  // namespace pharos::agent
