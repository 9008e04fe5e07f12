// Consul-compatible agent configuration: flags, JSON config files and the merge
// between them. See config.hh for the contract.
#include "services/agent/config.hh"

#include <dirent.h>
#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include "protocols/json/duration.hh"

namespace pharos::agent {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

std::string lower(std::string s) {
    for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// --- values from strings (flags) ---

// Go's strconv.ParseBool.
std::optional<bool> parse_bool(std::string_view v) {
    if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") return true;
    if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") return false;
    return std::nullopt;
}

std::optional<int64_t> parse_int(const std::string& v) {
    if (v.empty()) return std::nullopt;
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 0);
    if (errno || *end) return std::nullopt;
    return n;
}

int checked_port(int64_t v, const std::string& what) {
    if (v < -1 || v > 65535) fail(what + ": port " + std::to_string(v) + " out of range (-1 disables, up to 65535)");
    return int(v);
}

// Splits a Consul -node-meta "key:value".
std::pair<std::string, std::string> split_meta(const std::string& v) {
    auto colon = v.find(':');
    if (colon == std::string::npos) fail("invalid value \"" + v + "\" for flag -node-meta: expected key:value");
    return {v.substr(0, colon), v.substr(colon + 1)};
}

// --- values from JSON (files) ---

const char* type_name(element e) {
    switch (e.type()) {
        case element_type::ARRAY:
            return "array";
        case element_type::OBJECT:
            return "object";
        case element_type::STRING:
            return "string";
        case element_type::BOOL:
            return "bool";
        case element_type::NULL_VALUE:
            return "null";
        default:
            return "number";
    }
}

// Reads one source (a config file) into a config, collecting warnings.
struct file_reader {
    config& c;
    std::vector<std::string>& warnings;
    std::vector<std::string>& ignored;  // known-but-unsupported keys, distinct, in order of appearance
    std::string file;

    [[noreturn]] void type_error(const std::string& key, element e, const char* want) {
        fail("config file " + file + ": key \"" + key + "\": expected " + want + ", got " + type_name(e));
    }
    [[noreturn]] void value_error(const std::string& key, const std::string& what) {
        fail("config file " + file + ": key \"" + key + "\": " + what);
    }
    void unknown(const std::string& key) {
        warnings.push_back("config file " + file + ": unknown key \"" + key + "\" ignored");
    }
    void ignore(const std::string& key) {
        if (std::find(ignored.begin(), ignored.end(), key) == ignored.end()) ignored.push_back(key);
    }

    bool boolean(const std::string& key, element e) {
        bool b;
        if (e.get_bool().get(b)) type_error(key, e, "a bool");
        return b;
    }
    // Go decodes JSON numbers through float64 into ints: accept any number, truncate.
    int64_t integer(const std::string& key, element e) {
        int64_t i;
        uint64_t u;
        double d;
        if (!e.get_int64().get(i)) return i;
        if (!e.get_uint64().get(u)) value_error(key, "number out of range");
        if (!e.get_double().get(d)) return int64_t(d);
        type_error(key, e, "a number");
    }
    uint64_t size(const std::string& key, element e) {
        int64_t v = integer(key, e);
        if (v < 0) value_error(key, "must not be negative");
        return uint64_t(v);
    }
    int port(const std::string& key, element e) {
        return checked_port(integer(key, e), "config file " + file + ": key \"" + key + "\"");
    }
    std::string string(const std::string& key, element e) {
        std::string_view s;
        if (e.get_string().get(s)) type_error(key, e, "a string");
        return std::string(s);
    }
    // A list of strings; a single string is split on commas (Consul's StringToSlice hook).
    void append_list(const std::string& key, element e, std::vector<std::string>& out) {
        if (e.is_string()) {
            std::string s = string(key, e);
            size_t start = 0;
            while (start <= s.size()) {
                auto comma = s.find(',', start);
                if (comma == std::string::npos) comma = s.size();
                if (comma > start) out.push_back(s.substr(start, comma - start));
                start = comma + 1;
            }
            return;
        }
        simdjson::dom::array a;
        if (e.get_array().get(a)) type_error(key, e, "a list of strings");
        for (element item : a) out.push_back(string(key + "[]", item));
    }
    // Go duration text ("10s", "1h30m"); a bare number is nanoseconds (Go's time.Duration).
    std::chrono::nanoseconds duration(const std::string& key, element e) {
        if (e.is_string()) {
            auto d = json::parse_go_duration(string(key, e));
            if (!d) value_error(key, "invalid duration \"" + string(key, e) + "\"");
            return *d;
        }
        return std::chrono::nanoseconds(integer(key, e));
    }
    void merge_map(const std::string& key, element e, std::map<std::string, std::string>& out) {
        simdjson::dom::object o;
        if (e.get_object().get(o)) type_error(key, e, "an object");
        for (auto field : o) out[std::string(field.key)] = string(key + "." + std::string(field.key), field.value);
    }
    simdjson::dom::object object(const std::string& key, element e) {
        simdjson::dom::object o;
        if (e.get_object().get(o)) type_error(key, e, "an object");
        return o;
    }
    // Each element of an array (or the object itself) as raw JSON.
    void append_raw(const std::string& key, element e, std::vector<std::string>& out, bool many) {
        if (many) {
            simdjson::dom::array a;
            if (e.get_array().get(a)) type_error(key, e, "a list of objects");
            for (element item : a) {
                if (!item.is_object()) type_error(key + "[]", item, "an object");
                out.push_back(simdjson::to_string(item));
            }
        } else {
            if (!e.is_object()) type_error(key, e, "an object");
            out.push_back(simdjson::to_string(e));
        }
    }

    void ports(element e) {
        for (auto f : object("ports", e)) {
            std::string k(f.key), key = "ports." + k;
            if (f.value.is_null()) continue;
            if (k == "http")
                c.ports.http = port(key, f.value);
            else if (k == "https")
                c.ports.https = port(key, f.value);
            else if (k == "dns")
                c.ports.dns = port(key, f.value);
            else if (k == "serf_lan")
                c.ports.serf_lan = port(key, f.value);
            else if (k == "serf_wan")
                c.ports.serf_wan = port(key, f.value);
            else if (k == "server")
                c.ports.server = port(key, f.value);
            else if (k == "grpc")
                c.ports.grpc = port(key, f.value);
            else if (k == "grpc_tls")
                c.ports.grpc_tls = port(key, f.value);
            else if (k == "sidecar_min_port" || k == "sidecar_max_port" || k == "expose_min_port" ||
                     k == "expose_max_port")
                ignore(key);
            else
                unknown(key);
        }
    }

    void addresses(element e) {
        for (auto f : object("addresses", e)) {
            std::string k(f.key), key = "addresses." + k;
            if (f.value.is_null()) continue;
            if (k == "http")
                c.addresses.http = string(key, f.value);
            else if (k == "https")
                c.addresses.https = string(key, f.value);
            else if (k == "dns")
                c.addresses.dns = string(key, f.value);
            else if (k == "grpc")
                c.addresses.grpc = string(key, f.value);
            else if (k == "grpc_tls")
                c.addresses.grpc_tls = string(key, f.value);
            else
                unknown(key);
        }
    }

    void limits(element e) {
        for (auto f : object("limits", e)) {
            std::string k(f.key), key = "limits." + k;
            if (f.value.is_null()) continue;
            if (k == "http_max_conns_per_client")
                c.limits.http_max_conns_per_client = int(integer(key, f.value));
            else if (k == "rpc_max_conns_per_client")
                c.limits.rpc_max_conns_per_client = int(integer(key, f.value));
            else if (k == "kv_max_value_size")
                c.limits.kv_max_value_size = size(key, f.value);
            else if (k == "txn_max_req_len")
                c.limits.txn_max_req_len = size(key, f.value);
            else if (k == "https_handshake_timeout" || k == "rpc_handshake_timeout" || k == "rpc_client_timeout" ||
                     k == "rpc_rate" || k == "rpc_max_burst" || k == "request_limits" ||
                     k == "xds_server_max_delta_sessions" || k == "xds_server")
                ignore(key);
            else
                unknown(key);
        }
    }

    void gossip(const std::string& name, element e, gossip_tuning& t) {
        for (auto f : object(name, e)) {
            std::string k(f.key), key = name + "." + k;
            if (f.value.is_null()) continue;
            auto positive_int = [&] {
                int64_t n = integer(key, f.value);
                if (n < 1 || n > 1000) value_error(key, "must be between 1 and 1000");
                return int(n);
            };
            auto positive_duration = [&] {
                auto d = duration(key, f.value);
                if (d.count() <= 0) value_error(key, "must be positive");
                return d;
            };
            if (k == "gossip_nodes")
                t.gossip_nodes = positive_int();
            else if (k == "retransmit_mult")
                t.retransmit_mult = positive_int();
            else if (k == "suspicion_mult")
                t.suspicion_mult = positive_int();
            else if (k == "gossip_interval")
                t.gossip_interval = positive_duration();
            else if (k == "probe_interval")
                t.probe_interval = positive_duration();
            else if (k == "probe_timeout")
                t.probe_timeout = positive_duration();
            else
                unknown(key);
        }
    }

    void performance(element e) {
        for (auto f : object("performance", e)) {
            std::string k(f.key), key = "performance." + k;
            if (f.value.is_null()) continue;
            if (k == "raft_multiplier") {
                int64_t m = integer(key, f.value);
                if (m < 1 || m > 10) value_error(key, "must be between 1 and 10");
                c.raft_multiplier = int(m);
            } else if (k == "leave_drain_time" || k == "rpc_hold_timeout" || k == "grpc_keepalive_interval" ||
                       k == "grpc_keepalive_timeout")
                ignore(key);
            else
                unknown(key);
        }
    }

    void dns_config(element e) {
        auto secs = [&](const std::string& key, element v) {
            auto d = duration(key, v);
            if (d.count() < 0) value_error(key, "must not be negative");
            return int64_t(std::chrono::duration_cast<std::chrono::seconds>(d).count());
        };
        for (auto f : object("dns_config", e)) {
            std::string k(f.key), key = "dns_config." + k;
            if (f.value.is_null()) continue;
            dns_settings& d = c.dns;
            if (k == "allow_stale")
                d.allow_stale = boolean(key, f.value);
            else if (k == "node_ttl")
                d.node_ttl_s = secs(key, f.value);
            else if (k == "service_ttl") {
                for (auto s : object(key, f.value)) {
                    std::string name(s.key);
                    d.service_ttl_s[name] = secs(key + "." + name, s.value);
                }
            } else if (k == "only_passing")
                d.only_passing = boolean(key, f.value);
            else if (k == "udp_answer_limit") {
                int64_t n = integer(key, f.value);
                if (n < 0) value_error(key, "must not be negative");
                d.udp_answer_limit = int(n);
            } else if (k == "a_record_limit") {
                int64_t n = integer(key, f.value);
                if (n < 0) value_error(key, "must not be negative");
                d.a_record_limit = int(n);
            } else if (k == "enable_truncate")
                d.enable_truncate = boolean(key, f.value);
            else if (k == "enable_additional_node_meta_txt")
                d.enable_additional_node_meta_txt = boolean(key, f.value);
            else if (k == "disable_compression")
                d.disable_compression = boolean(key, f.value);
            else if (k == "recursor_timeout")
                d.recursor_timeout = duration(key, f.value);
            else if (k == "soa") {
                for (auto s : object(key, f.value)) {
                    std::string sk(s.key), skey = key + "." + sk;
                    uint32_t v = uint32_t(size(skey, s.value));
                    if (sk == "refresh")
                        d.soa_refresh = v;
                    else if (sk == "retry")
                        d.soa_retry = v;
                    else if (sk == "expire")
                        d.soa_expire = v;
                    else if (sk == "min_ttl")
                        d.soa_min_ttl = v;
                    else
                        unknown(skey);
                }
            } else if (k == "max_stale" || k == "use_cache" || k == "cache_max_age" || k == "recursor_strategy" ||
                       k == "enable_truncate_udp" || k == "prefer_namespace")
                ignore(key);
            else
                unknown(key);
        }
    }

    void ui_config(element e) {
        for (auto f : object("ui_config", e)) {
            std::string k(f.key), key = "ui_config." + k;
            if (f.value.is_null()) continue;
            if (k == "enabled")
                c.ui = boolean(key, f.value);
            else
                ignore(key);
        }
    }

    void top(const std::string& k, element v);
    void read(element root) {
        simdjson::dom::object o;
        if (root.get_object().get(o)) fail("config file " + file + ": expected a JSON object at the top level");
        for (auto f : o) {
            if (f.value.is_null()) continue;  // Go: a nil pointer leaves the key unset
            top(std::string(f.key), f.value);
        }
    }
};

// Keys Consul accepts that pharos does not implement yet: accepted, named in one warning.
constexpr std::string_view unsupported_keys[] = {
    "acl",
    "acl_datacenter",
    "acl_default_policy",
    "acl_down_policy",
    "acl_master_token",
    "acl_agent_token",
    "acl_agent_master_token",
    "acl_token",
    "acl_ttl",
    "acl_enforce_version_8",
    "acl_replication_token",
    "advertise_addrs",
    "advertise_reconnect_timeout",
    "audit",
    "auto_config",
    "auto_encrypt",
    "auto_reload_config",
    "autopilot",
    "bind_addrs",
    "ca_file",
    "ca_path",
    "cert_file",
    "key_file",
    "tls",
    "verify_incoming",
    "verify_incoming_rpc",
    "verify_incoming_https",
    "verify_outgoing",
    "verify_server_hostname",
    "tls_min_version",
    "tls_cipher_suites",
    "tls_prefer_server_cipher_suites",
    "cache",
    "config_entries",
    "connect",
    "disable_anonymous_signature",
    "disable_host_node_id",
    "disable_coordinates",
    "discard_check_output",
    "discovery_max_stale",
    "enable_acl_replication",
    "enable_agent_tls_for_checks",
    "enable_central_service_config",
    "enable_debug",
    "enable_syslog",
    "experiments",
    "http_config",
    "license_path",
    "locality",
    "log_file",
    "log_json",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "non_voting_server",
    "read_replica",
    "partition",
    "peering",
    "primary_gateways",
    "primary_gateways_interval",
    "protocol",
    "raft_boltdb",
    "raft_logstore",
    "raft_snapshot_interval",
    "raft_trailing_logs",
    "reporting",
    "retry_interval_wan",
    "retry_max_wan",
    "rpc",
    "segment",
    "segments",
    "serf_lan_allowed_cidrs",
    "serf_wan_allowed_cidrs",
    "server_name",
    "server_rejoin_age_max",
    "syslog_facility",
    "tagged_addresses",
    "telemetry",
    "translate_wan_addrs",
    "ui_content_path",
    "ui_dir",
    "unix_sockets",
    "use_streaming_backend",
    "watches",
    "xds",
    "cloud",
    "limits_request",
    "check_update_interval",
    "ae_interval",
    "sync_coordinate_rate_target",
    "sync_coordinate_interval_min",
    "dns_recursor_strategy",
    "default_intention_policy",
};

void file_reader::top(const std::string& k, element v) {
    if (k == "server")
        c.server = boolean(k, v);
    else if (k == "bootstrap")
        c.bootstrap = boolean(k, v);
    else if (k == "bootstrap_expect")
        c.bootstrap_expect = int(integer(k, v));
    else if (k == "ui")
        c.ui = boolean(k, v);
    else if (k == "ui_config")
        ui_config(v);
    else if (k == "node_name")
        c.node_name = string(k, v);
    else if (k == "node_id")
        c.node_id = string(k, v);
    else if (k == "datacenter")
        c.datacenter = string(k, v);
    else if (k == "primary_datacenter")
        c.primary_datacenter = string(k, v);
    else if (k == "domain")
        c.domain = string(k, v);
    else if (k == "alt_domain")
        c.alt_domain = string(k, v);
    else if (k == "node_meta")
        merge_map(k, v, c.node_meta);
    else if (k == "bind_addr")
        c.bind_addr = string(k, v);
    else if (k == "client_addr")
        c.client_addr = string(k, v);
    else if (k == "advertise_addr")
        c.advertise_addr = string(k, v);
    else if (k == "advertise_addr_wan")
        c.advertise_addr_wan = string(k, v);
    else if (k == "serf_lan")
        c.serf_lan_bind = string(k, v);
    else if (k == "serf_wan")
        c.serf_wan_bind = string(k, v);
    else if (k == "ports")
        ports(v);
    else if (k == "addresses")
        addresses(v);
    else if (k == "data_dir")
        c.data_dir = string(k, v);
    else if (k == "pid_file")
        c.pid_file = string(k, v);
    else if (k == "start_join")
        append_list(k, v, c.start_join);
    else if (k == "retry_join")
        append_list(k, v, c.retry_join);
    else if (k == "start_join_wan")
        append_list(k, v, c.start_join_wan);
    else if (k == "retry_join_wan")
        append_list(k, v, c.retry_join_wan);
    else if (k == "retry_interval")
        c.retry_interval = duration(k, v);
    else if (k == "retry_max")
        c.retry_max = int(integer(k, v));
    else if (k == "rejoin_after_leave")
        c.rejoin_after_leave = boolean(k, v);
    else if (k == "reconnect_timeout")
        c.reconnect_timeout = duration(k, v);
    else if (k == "reconnect_timeout_wan")
        ignore(k);
    else if (k == "leave_on_terminate")
        c.leave_on_terminate = boolean(k, v);
    else if (k == "skip_leave_on_interrupt")
        c.skip_leave_on_interrupt = boolean(k, v);
    else if (k == "encrypt")
        c.encrypt = string(k, v);
    else if (k == "disable_keyring_file")
        c.disable_keyring_file = boolean(k, v);
    else if (k == "encrypt_verify_incoming")
        c.encrypt_verify_incoming = boolean(k, v);
    else if (k == "encrypt_verify_outgoing")
        c.encrypt_verify_outgoing = boolean(k, v);
    else if (k == "gossip_lan")
        gossip(k, v, c.gossip_lan);
    else if (k == "gossip_wan")
        gossip(k, v, c.gossip_wan);
    else if (k == "performance")
        performance(v);
    else if (k == "raft_protocol")
        c.raft_protocol = int(integer(k, v));
    else if (k == "raft_snapshot_threshold")
        c.raft_snapshot_threshold = int(integer(k, v));
    else if (k == "default_query_time")
        c.default_query_time = duration(k, v);
    else if (k == "max_query_time")
        c.max_query_time = duration(k, v);
    else if (k == "session_ttl_min")
        c.session_ttl_min = duration(k, v);
    else if (k == "limits")
        limits(v);
    else if (k == "enable_script_checks")
        c.enable_script_checks = boolean(k, v);
    else if (k == "enable_local_script_checks")
        c.enable_local_script_checks = boolean(k, v);
    else if (k == "check_output_max_size")
        c.check_output_max_size = int(integer(k, v));
    else if (k == "disable_update_check")
        c.disable_update_check = boolean(k, v);
    else if (k == "disable_remote_exec")
        c.disable_remote_exec = boolean(k, v);
    else if (k == "recursors")
        append_list(k, v, c.recursors);
    else if (k == "dns_config") {
        dns_config(v);
        c.dns_config_json = simdjson::to_string(v);
    } else if (k == "service")
        append_raw(k, v, c.service_definitions_json, false);
    else if (k == "services")
        append_raw(k, v, c.service_definitions_json, true);
    else if (k == "check")
        append_raw(k, v, c.check_definitions_json, false);
    else if (k == "checks")
        append_raw(k, v, c.check_definitions_json, true);
    else if (k == "log_level")
        c.log_level = string(k, v);
    else if (std::find(std::begin(unsupported_keys), std::end(unsupported_keys), k) != std::end(unsupported_keys))
        ignore(k);
    else
        unknown(k);
}

std::string read_whole_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail("config file " + path + ": cannot open: " + std::strerror(errno));
    std::string all;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
    bool bad = std::ferror(f);
    std::fclose(f);
    if (bad) fail("config file " + path + ": read error");
    return all;
}

struct loader {
    config& c;
    std::vector<std::string>& warnings;
    std::vector<std::string> ignored;
    std::string format;  // -config-format: "" or "json"

    void load_file(const std::string& path) {
        if (format.empty()) {
            if (ends_with(path, ".hcl"))
                fail("config file " + path + ": HCL config files are not supported by pharos; write it as JSON");
            if (!ends_with(path, ".json"))
                fail("config file " + path + ": unsupported extension, must be .json (or pass -config-format json)");
        }
        simdjson::padded_string text(read_whole_file(path));
        simdjson::dom::parser parser;
        element root;
        if (auto err = parser.parse(text).get(root))
            fail("config file " + path + ": invalid JSON: " + simdjson::error_message(err));
        file_reader r{c, warnings, ignored, path};
        r.read(root);
        c.config_files.push_back(path);
    }

    void load_dir(const std::string& dir) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) fail("config dir " + dir + ": cannot open: " + std::strerror(errno));
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
        ::closedir(d);
        std::sort(names.begin(), names.end());
        for (auto& n : names) {
            std::string path = dir + (ends_with(dir, "/") ? "" : "/") + n;
            struct stat st;
            if (n == "." || n == ".." || ::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
            if (format.empty() && !ends_with(n, ".json") && !ends_with(n, ".hcl")) {
                warnings.push_back("skipping file " + path + ", extension must be .json");
                continue;
            }
            load_file(path);
        }
    }

    void load_path(const std::string& path) {
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) fail("config file " + path + ": " + std::strerror(errno));
        if (S_ISDIR(st.st_mode))
            load_dir(path);
        else
            load_file(path);
    }
};

// --- flags ---

enum class flag_kind { boolean, string, integer, port, list, meta, duration, shards, backend, config_path, hcl };

struct flag_def {
    std::string_view name;
    flag_kind kind;
};

constexpr flag_def flag_defs[] = {
    {"advertise", flag_kind::string},
    {"advertise-wan", flag_kind::string},
    {"alt-domain", flag_kind::string},
    {"bind", flag_kind::string},
    {"bootstrap", flag_kind::boolean},
    {"bootstrap-expect", flag_kind::integer},
    {"check_output_max_size", flag_kind::integer},
    {"client", flag_kind::string},
    {"config-dir", flag_kind::config_path},
    {"config-file", flag_kind::config_path},
    {"config-format", flag_kind::string},
    {"data-dir", flag_kind::string},
    {"datacenter", flag_kind::string},
    {"default-query-time", flag_kind::duration},
    {"dev", flag_kind::boolean},
    {"disable-host-node-id", flag_kind::boolean},
    {"disable-keyring-file", flag_kind::boolean},
    {"dns-port", flag_kind::port},
    {"domain", flag_kind::string},
    {"enable-local-script-checks", flag_kind::boolean},
    {"enable-script-checks", flag_kind::boolean},
    {"encrypt", flag_kind::string},
    {"grpc-port", flag_kind::port},
    {"grpc-tls-port", flag_kind::port},
    {"hcl", flag_kind::hcl},
    {"http-port", flag_kind::port},
    {"https-port", flag_kind::port},
    {"join", flag_kind::list},
    {"join-wan", flag_kind::list},
    {"log-file", flag_kind::string},
    {"log-json", flag_kind::boolean},
    {"log-level", flag_kind::string},
    {"log-rotate-bytes", flag_kind::integer},
    {"log-rotate-duration", flag_kind::duration},
    {"log-rotate-max-files", flag_kind::integer},
    {"max-query-time", flag_kind::duration},
    {"node", flag_kind::string},
    {"node-id", flag_kind::string},
    {"node-meta", flag_kind::meta},
    {"non-voting-server", flag_kind::boolean},
    {"pid-file", flag_kind::string},
    {"protocol", flag_kind::integer},
    {"raft-protocol", flag_kind::integer},
    {"read-replica", flag_kind::boolean},
    {"recursor", flag_kind::list},
    {"rejoin", flag_kind::boolean},
    {"retry-interval", flag_kind::duration},
    {"retry-interval-wan", flag_kind::duration},
    {"retry-join", flag_kind::list},
    {"retry-join-wan", flag_kind::list},
    {"retry-max", flag_kind::integer},
    {"retry-max-wan", flag_kind::integer},
    {"segment", flag_kind::string},
    {"serf-lan-bind", flag_kind::string},
    {"serf-lan-port", flag_kind::port},
    {"serf-wan-bind", flag_kind::string},
    {"serf-wan-port", flag_kind::port},
    {"server", flag_kind::boolean},
    {"server-port", flag_kind::port},
    {"syslog", flag_kind::boolean},
    {"ui", flag_kind::boolean},
    {"ui-content-path", flag_kind::string},
    {"ui-dir", flag_kind::string},
    // pharos's own
    {"shards", flag_kind::shards},
    {"backend", flag_kind::backend},
};

struct parsed_flag {
    std::string name, value;
    flag_kind kind;
};

// Go's flag package: -name, --name, -name=value, -name value (not for bools);
// parsing stops at "--" or the first non-flag argument.
std::vector<parsed_flag> parse_flags(const std::vector<std::string>& args) {
    std::vector<parsed_flag> out;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--") {
            if (i + 1 < args.size()) fail("unexpected argument: " + args[i + 1]);
            break;
        }
        if (a.size() < 2 || a[0] != '-') fail("unexpected argument: " + a);
        std::string name = a.substr(a[1] == '-' ? 2 : 1), value;
        if (name.empty() || name[0] == '-' || name[0] == '=') fail("bad flag syntax: " + a);
        auto eq = name.find('=');
        bool has_value = eq != std::string::npos;
        if (has_value) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        auto def =
            std::find_if(std::begin(flag_defs), std::end(flag_defs), [&](const flag_def& d) { return d.name == name; });
        if (def == std::end(flag_defs)) fail("flag provided but not defined: -" + name);
        if (def->kind == flag_kind::boolean) {
            if (!has_value) value = "true";
        } else if (!has_value) {
            if (i + 1 >= args.size()) fail("flag needs an argument: -" + name);
            value = args[++i];
        }
        out.push_back(parsed_flag{name, value, def->kind});
    }
    return out;
}

void apply_flag(config& c, const parsed_flag& f) {
    const std::string& n = f.name;
    const std::string& v = f.value;
    auto bad = [&](const std::string& why) -> void { fail("invalid value \"" + v + "\" for flag -" + n + ": " + why); };
    bool b = false;
    int64_t i = 0;
    std::chrono::nanoseconds d{};
    switch (f.kind) {
        case flag_kind::boolean: {
            auto p = parse_bool(v);
            if (!p) bad("parse error");
            b = *p;
            break;
        }
        case flag_kind::integer:
        case flag_kind::port: {
            auto p = parse_int(v);
            if (!p) bad("parse error");
            i = *p;
            if (f.kind == flag_kind::port) i = checked_port(i, "flag -" + n);
            break;
        }
        case flag_kind::duration: {
            auto p = json::parse_go_duration(v);
            if (!p) bad("invalid duration");
            d = *p;
            break;
        }
        default:
            break;
    }
    if (n == "advertise")
        c.advertise_addr = v;
    else if (n == "advertise-wan")
        c.advertise_addr_wan = v;
    else if (n == "alt-domain")
        c.alt_domain = v;
    else if (n == "bind")
        c.bind_addr = v;
    else if (n == "bootstrap")
        c.bootstrap = b;
    else if (n == "bootstrap-expect")
        c.bootstrap_expect = int(i);
    else if (n == "check_output_max_size")
        c.check_output_max_size = int(i);
    else if (n == "client")
        c.client_addr = v;
    else if (n == "data-dir")
        c.data_dir = v;
    else if (n == "datacenter")
        c.datacenter = v;
    else if (n == "default-query-time")
        c.default_query_time = d;
    else if (n == "dns-port")
        c.ports.dns = int(i);
    else if (n == "domain")
        c.domain = v;
    else if (n == "enable-local-script-checks")
        c.enable_local_script_checks = b;
    else if (n == "enable-script-checks")
        c.enable_script_checks = b;
    else if (n == "encrypt")
        c.encrypt = v;
    else if (n == "grpc-port")
        c.ports.grpc = int(i);
    else if (n == "grpc-tls-port")
        c.ports.grpc_tls = int(i);
    else if (n == "http-port")
        c.ports.http = int(i);
    else if (n == "https-port")
        c.ports.https = int(i);
    else if (n == "join")
        c.start_join.push_back(v);
    else if (n == "join-wan")
        c.start_join_wan.push_back(v);
    else if (n == "log-level")
        c.log_level = v;
    else if (n == "max-query-time")
        c.max_query_time = d;
    else if (n == "node")
        c.node_name = v;
    else if (n == "node-id")
        c.node_id = v;
    else if (n == "node-meta") {
        auto kv = split_meta(v);
        c.node_meta[kv.first] = kv.second;
    } else if (n == "pid-file")
        c.pid_file = v;
    else if (n == "raft-protocol")
        c.raft_protocol = int(i);
    else if (n == "recursor")
        c.recursors.push_back(v);
    else if (n == "rejoin")
        c.rejoin_after_leave = b;
    else if (n == "retry-interval")
        c.retry_interval = d;
    else if (n == "retry-join")
        c.retry_join.push_back(v);
    else if (n == "retry-join-wan")
        c.retry_join_wan.push_back(v);
    else if (n == "retry-max")
        c.retry_max = int(i);
    else if (n == "serf-lan-bind")
        c.serf_lan_bind = v;
    else if (n == "serf-lan-port")
        c.ports.serf_lan = int(i);
    else if (n == "serf-wan-bind")
        c.serf_wan_bind = v;
    else if (n == "serf-wan-port")
        c.ports.serf_wan = int(i);
    else if (n == "server")
        c.server = b;
    else if (n == "disable-keyring-file")
        c.disable_keyring_file = b;
    else if (n == "server-port")
        c.ports.server = int(i);
    else if (n == "ui")
        c.ui = b;
    else if (n == "shards") {
        auto p = parse_int(v);
        if (!p || *p < 0 || *p > 256) bad("expected 0 (one per core) to 256");
        c.shards = unsigned(*p);
    } else if (n == "backend") {
        auto k = engine::parse_backend(v);
        if (!k) bad("expected auto, io_uring or epoll");
        c.backend = *k;
    }
    // Anything else is accepted and has no effect yet (log-file, syslog, segment, ...).
}

bool is_uuid(const std::string& s) {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < s.size(); ++i) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    }
    return true;
}

std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return {};
    return buf;
}

// Consul's builder: derived values and the checks it refuses to start without.
void finish(config& c, std::vector<std::string>& warnings) {
    c.datacenter = lower(c.datacenter);
    if (c.datacenter.empty()) fail("datacenter cannot be empty");
    for (char ch : c.datacenter)
        if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) ||
              ch == '_' || ch == '-'))
            fail("datacenter cannot be \"" + c.datacenter + "\". Please use only [a-z0-9-_]");
    if (c.primary_datacenter.empty()) c.primary_datacenter = c.datacenter;
    c.primary_datacenter = lower(c.primary_datacenter);
    if (!c.dev && c.data_dir.empty()) fail("data_dir cannot be empty (pass -data-dir, or -dev for an in-memory agent)");
    if (c.node_name.empty()) c.node_name = host_name();
    if (c.node_name.empty()) fail("node_name cannot be empty");
    if (c.node_id.empty()) {
        c.node_id = random_uuid_v4();
        c.node_id_generated = true;
    }
    c.node_id = lower(c.node_id);
    if (!is_uuid(c.node_id)) fail("node_id \"" + c.node_id + "\" is not a valid UUID");
    if (c.domain.empty()) c.domain = "consul.";
    if (c.domain.back() != '.') c.domain += '.';

    c.log_level = lower(c.log_level);
    if (c.log_level == "warning") c.log_level = "warn";
    if (c.log_level == "error") c.log_level = "err";
    if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "err")
        fail("Invalid log level: " + c.log_level + ". Valid log levels are: [TRACE DEBUG INFO WARN ERR]");

    if (c.bootstrap_expect == 1) {
        c.bootstrap = true;
        c.bootstrap_expect = 0;
        warnings.push_back("BootstrapExpect is set to 1; this is the same as Bootstrap mode.");
    }
    if (c.bootstrap && !c.server) fail("'bootstrap = true' requires 'server = true'");
    if (c.bootstrap_expect < 0)
        fail("bootstrap_expect cannot be " + std::to_string(c.bootstrap_expect) +
             ". Must be greater than or equal to zero");
    if (c.bootstrap_expect > 0 && !c.server) fail("'bootstrap_expect > 0' requires 'server = true'");
    if (c.bootstrap_expect > 0 && c.dev) fail("'bootstrap_expect > 0' not allowed in dev mode");
    if (c.bootstrap_expect > 0 && c.bootstrap)
        fail("'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive");
    if (c.limits.http_max_conns_per_client < 0) fail("limits.http_max_conns_per_client cannot be negative");
    if (c.max_query_time.count() <= 0 || c.default_query_time.count() <= 0)
        fail("default_query_time and max_query_time must be positive");
    // Consul refuses reconnect_timeout < 8h; pharos accepts shorter ones in -dev (tests reap in seconds).
    if (c.reconnect_timeout < std::chrono::hours(8) && !c.dev) fail("reconnect_timeout must be >= 8h");
    if (c.reconnect_timeout.count() <= 0) fail("reconnect_timeout must be positive");
    if (!c.leave_on_terminate) c.leave_on_terminate = !c.server;
    if (!c.skip_leave_on_interrupt) c.skip_leave_on_interrupt = c.server;
}

void apply_dev_defaults(config& c) {
    c.dev = true;
    c.server = true;
    c.bootstrap = true;
    c.ui = true;
    c.bind_addr = "127.0.0.1";
    c.client_addr = "127.0.0.1";
    c.raft_multiplier = 1;
    c.ports.grpc = 8502;
    c.ports.grpc_tls = 8503;
    c.disable_remote_exec = true;
    c.disable_keyring_file = true;
    // Consul's dev source: fast gossip on both pools.
    for (gossip_tuning* t : {&c.gossip_lan, &c.gossip_wan}) {
        t->gossip_interval = std::chrono::milliseconds(100);
        t->probe_interval = std::chrono::milliseconds(100);
        t->probe_timeout = std::chrono::milliseconds(100);
        t->suspicion_mult = 3;
    }
}

}  // namespace

load_result load(const std::vector<std::string>& args) {
    load_result r;
    config& c = r.cfg;
    auto flags = parse_flags(args);

    loader l{c, r.warnings, {}, {}};
    for (auto& f : flags)
        if (f.kind == flag_kind::boolean && !parse_bool(f.value))
            fail("invalid boolean value \"" + f.value + "\" for -" + f.name + ": parse error");
    bool dev = false;
    for (auto& f : flags) {
        if (f.kind == flag_kind::hcl) fail("-hcl is not supported by pharos: pass a JSON config file instead");
        if (f.name == "dev") dev = *parse_bool(f.value);
        if (f.name == "config-format") {
            if (f.value != "json")
                fail("invalid value \"" + f.value + "\" for flag -config-format: pharos reads only json");
            l.format = f.value;
        }
    }
    if (dev) apply_dev_defaults(c);

    for (auto& f : flags)
        if (f.kind == flag_kind::config_path) l.load_path(f.value);
    if (!l.ignored.empty()) {
        std::string list;
        for (auto& k : l.ignored) list += (list.empty() ? "" : ", ") + k;
        r.warnings.push_back("config keys accepted but not supported yet, ignored: " + list);
    }
    for (auto& f : flags)
        if (f.kind != flag_kind::config_path && f.name != "dev" && f.name != "config-format") apply_flag(c, f);
    c.dev = dev;
    finish(c, r.warnings);
    return r;
}

load_result load(int argc, char** argv, int first_arg) {
    std::vector<std::string> args;
    for (int i = first_arg; i < argc; ++i) args.emplace_back(argv[i]);
    return load(args);
}

namespace {
std::string first_addr(const std::string& a) {
    auto start = a.find_first_not_of(" \t");
    if (start == std::string::npos) return {};
    auto end = a.find_first_of(" \t", start);
    return a.substr(start, end == std::string::npos ? std::string::npos : end - start);
}
}  // namespace

std::string http_addr(const config& c) { return first_addr(c.addresses.http.empty() ? c.client_addr : c.addresses.http); }
std::string dns_addr(const config& c) { return first_addr(c.addresses.dns.empty() ? c.client_addr : c.addresses.dns); }

void write_pid_file(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("could not write pid file " + path + ": " + std::strerror(errno));
    std::fprintf(f, "%d", int(::getpid()));
    if (std::fclose(f) != 0) throw std::runtime_error("could not write pid file " + path + ": " + std::strerror(errno));
}

void remove_pid_file(const std::string& path) {
    if (!path.empty()) ::unlink(path.c_str());
}

std::string persist_node_id(const std::string& data_dir, const std::string& fresh) {
    auto err = [](const std::string& what, const std::string& path) {
        return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
    };
    if (::mkdir(data_dir.c_str(), 0750) < 0 && errno != EEXIST) throw err("cannot create data_dir", data_dir);
    const std::string path = data_dir + "/node-id";
    if (FILE* f = std::fopen(path.c_str(), "r")) {
        char buf[128] = {};
        size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        std::fclose(f);
        std::string id = lower(std::string(buf, n));
        while (!id.empty() && std::isspace(static_cast<unsigned char>(id.back()))) id.pop_back();
        while (!id.empty() && std::isspace(static_cast<unsigned char>(id.front()))) id.erase(0, 1);
        if (!is_uuid(id)) throw std::runtime_error("loaded node ID is not a valid UUID (" + path + "): \"" + id + "\"");
        return id;
    }
    if (errno != ENOENT) throw err("cannot read", path);
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) throw err("cannot write", tmp);
    bool ok = ::write(fd, fresh.data(), fresh.size()) == ssize_t(fresh.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) throw err("cannot write", path);
    int dfd = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return fresh;
}

std::string random_uuid_v4() {
    std::random_device rd;
    unsigned char b[16];
    for (int i = 0; i < 16; i += 4) {
        uint32_t v = rd();
        std::memcpy(b + i, &v, 4);
    }
    b[6] = (b[6] & 0x0f) | 0x40;  // version 4
    b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
    char out[37];
    std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                  b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return out;
}

}  // namespace pharos::agent
