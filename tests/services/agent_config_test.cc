// agent::load: Consul's agent flags, JSON config files and directories, their
// merge order, warnings for unknown keys and errors for wrong types; the
// configs Consul's own test harness and python-consul2's harness start with.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "services/agent/config.hh"

using namespace pharos;
using agent::load;

namespace {

// A fresh temporary directory, removed (with its files) at the end of the test.
class temp_dir {
public:
    temp_dir() {
        char tmpl[] = "/tmp/pharos-agent-config-XXXXXX";
        char* p = ::mkdtemp(tmpl);
        if (!p) throw std::runtime_error("mkdtemp failed");
        path_ = p;
    }
    ~temp_dir() {
        for (auto& f : files_) ::unlink(f.c_str());
        for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) ::rmdir(it->c_str());
        ::rmdir(path_.c_str());
    }
    std::string write(const std::string& name, const std::string& text) {
        std::string p = path_ + "/" + name;
        std::ofstream(p) << text;
        files_.push_back(p);
        return p;
    }
    std::string mkdir(const std::string& name) {
        std::string p = path_ + "/" + name;
        ::mkdir(p.c_str(), 0700);
        dirs_.push_back(p);
        return p;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::vector<std::string> files_, dirs_;
};

std::string error_of(const std::vector<std::string>& args) {
    try {
        load(args);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

bool any_contains(const std::vector<std::string>& v, const std::string& part) {
    for (auto& s : v)
        if (contains(s, part)) return true;
    return false;
}

}  // namespace

TEST(agent_config, defaults_are_consuls) {
    auto r = load({"-data-dir", "/tmp/x", "-server"});
    const auto& c = r.cfg;
    EXPECT_FALSE(c.dev);
    EXPECT_TRUE(c.server);
    EXPECT_EQ(c.datacenter, "dc1");
    EXPECT_EQ(c.client_addr, "127.0.0.1");
    EXPECT_EQ(c.bind_addr, "0.0.0.0");
    EXPECT_EQ(c.ports.http, 8500);
    EXPECT_EQ(c.ports.dns, 8600);
    EXPECT_EQ(c.ports.serf_lan, 8301);
    EXPECT_EQ(c.ports.serf_wan, 8302);
    EXPECT_EQ(c.ports.server, 8300);
    EXPECT_EQ(c.ports.grpc, -1);
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.limits.http_max_conns_per_client, 200);
    EXPECT_EQ(c.limits.kv_max_value_size, 512u * 1024);
    EXPECT_EQ(c.limits.txn_max_req_len, 512u * 1024);
    EXPECT_EQ(c.session_ttl_min, std::chrono::seconds(10));
    EXPECT_EQ(c.shards, 0u);
    EXPECT_EQ(c.backend, engine::backend_kind::automatic);
    EXPECT_FALSE(c.node_name.empty());  // the host name
    ASSERT_EQ(c.node_id.size(), 36u);
    EXPECT_EQ(c.node_id[14], '4');  // UUID version 4
    EXPECT_EQ(c.primary_datacenter, "dc1");
    EXPECT_EQ(c.domain, "consul.");
    EXPECT_TRUE(c.skip_leave_on_interrupt.value());  // servers
    EXPECT_FALSE(c.leave_on_terminate.value());
    EXPECT_TRUE(r.warnings.empty());
}

TEST(agent_config, dev_is_an_in_memory_bootstrapped_server_on_loopback) {
    auto r = load({"-dev"});
    const auto& c = r.cfg;
    EXPECT_TRUE(c.dev);
    EXPECT_TRUE(c.server);
    EXPECT_TRUE(c.bootstrap);
    EXPECT_EQ(c.bind_addr, "127.0.0.1");
    EXPECT_EQ(c.client_addr, "127.0.0.1");
    EXPECT_TRUE(c.data_dir.empty());
    EXPECT_FALSE(c.node_name.empty());
    EXPECT_EQ(c.raft_multiplier, 1);
}

TEST(agent_config, random_node_ids_differ) { EXPECT_NE(load({"-dev"}).cfg.node_id, load({"-dev"}).cfg.node_id); }

TEST(agent_config, flags_take_every_consul_spelling) {
    auto r = load({"-dev",
                   "--node=n1",
                   "-node-id",
                   "0B1C2D3E-1111-2222-3333-444455556666",
                   "-datacenter=DC2",
                   "-client",
                   "127.0.0.2",
                   "-bind=127.0.0.3",
                   "-advertise",
                   "127.0.0.4",
                   "-http-port",
                   "18500",
                   "-dns-port=-1",
                   "-serf-lan-port",
                   "18301",
                   "-server-port",
                   "18300",
                   "-join",
                   "a",
                   "-join=b",
                   "-retry-join",
                   "c",
                   "-log-level",
                   "DEBUG",
                   "-encrypt",
                   "k3y",
                   "-node-meta",
                   "rack:r1",
                   "-node-meta=zone:z:1",
                   "-enable-script-checks",
                   "-enable-local-script-checks=true",
                   "-shards",
                   "2",
                   "-backend",
                   "epoll",
                   "-pid-file",
                   "/tmp/p.pid",
                   "-ui"});
    const auto& c = r.cfg;
    EXPECT_EQ(c.node_name, "n1");
    EXPECT_EQ(c.node_id, "0b1c2d3e-1111-2222-3333-444455556666");
    EXPECT_EQ(c.datacenter, "dc2");
    EXPECT_EQ(c.client_addr, "127.0.0.2");
    EXPECT_EQ(c.bind_addr, "127.0.0.3");
    EXPECT_EQ(c.advertise_addr, "127.0.0.4");
    EXPECT_EQ(c.ports.http, 18500);
    EXPECT_EQ(c.ports.dns, -1);
    EXPECT_EQ(c.ports.serf_lan, 18301);
    EXPECT_EQ(c.ports.server, 18300);
    EXPECT_EQ(c.start_join, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(c.retry_join, (std::vector<std::string>{"c"}));
    EXPECT_EQ(c.log_level, "debug");
    EXPECT_EQ(c.encrypt, "k3y");
    EXPECT_EQ(c.node_meta.at("rack"), "r1");
    EXPECT_EQ(c.node_meta.at("zone"), "z:1");
    EXPECT_TRUE(c.enable_script_checks);
    EXPECT_TRUE(c.enable_local_script_checks);
    EXPECT_EQ(c.shards, 2u);
    EXPECT_EQ(c.backend, engine::backend_kind::epoll);
    EXPECT_EQ(c.pid_file, "/tmp/p.pid");
    EXPECT_TRUE(c.ui);
}

TEST(agent_config, bool_flags_take_no_separate_value) {
    // As Go's flag package: "-server false" leaves "false" as a stray argument.
    EXPECT_TRUE(contains(error_of({"-dev", "-server", "false"}), "unexpected argument: false"));
    EXPECT_FALSE(load({"-dev", "-server=false", "-bootstrap=false"}).cfg.server);
    EXPECT_TRUE(contains(error_of({"-dev=maybe"}), "parse error"));
}

TEST(agent_config, unknown_flags_and_bad_values_fail) {
    EXPECT_EQ(error_of({"-dev", "-nope"}), "flag provided but not defined: -nope");
    EXPECT_EQ(error_of({"-dev", "--nope=1"}), "flag provided but not defined: -nope");
    EXPECT_EQ(error_of({"-dev", "-http-port"}), "flag needs an argument: -http-port");
    EXPECT_TRUE(contains(error_of({"-dev", "-http-port", "x"}), "-http-port"));
    EXPECT_TRUE(contains(error_of({"-dev", "-http-port", "70000"}), "out of range"));
    EXPECT_TRUE(contains(error_of({"-dev", "-backend", "kqueue"}), "-backend"));
    EXPECT_TRUE(contains(error_of({"-dev", "-node-meta", "novalue"}), "key:value"));
    EXPECT_TRUE(contains(error_of({"-dev", "-hcl", "x = 1"}), "-hcl"));
}

TEST(agent_config, consuls_validation_rules) {
    EXPECT_TRUE(contains(error_of({}), "data_dir cannot be empty"));
    EXPECT_TRUE(contains(error_of({"-data-dir", "/tmp/x", "-bootstrap"}), "requires 'server = true'"));
    EXPECT_TRUE(contains(error_of({"-data-dir", "/tmp/x", "-bootstrap-expect", "3"}), "requires 'server = true'"));
    EXPECT_TRUE(contains(error_of({"-dev", "-bootstrap-expect", "3"}), "not allowed in dev mode"));
    EXPECT_TRUE(contains(error_of({"-data-dir", "/tmp/x", "-server", "-bootstrap", "-bootstrap-expect", "3"}),
                         "mutually exclusive"));
    EXPECT_TRUE(contains(error_of({"-dev", "-datacenter", "dc 1"}), "datacenter cannot be"));
    EXPECT_TRUE(contains(error_of({"-dev", "-node-id", "not-a-uuid"}), "not a valid UUID"));
    EXPECT_TRUE(contains(error_of({"-dev", "-log-level", "loud"}), "Invalid log level"));
}

TEST(agent_config, bootstrap_expect_one_is_bootstrap) {
    auto r = load({"-data-dir", "/tmp/x", "-server", "-bootstrap-expect", "1"});
    EXPECT_TRUE(r.cfg.bootstrap);
    EXPECT_EQ(r.cfg.bootstrap_expect, 0);
    EXPECT_TRUE(any_contains(r.warnings, "BootstrapExpect is set to 1"));
    auto three = load({"-data-dir", "/tmp/x", "-server", "-bootstrap-expect=3"});
    EXPECT_FALSE(three.cfg.bootstrap);
    EXPECT_EQ(three.cfg.bootstrap_expect, 3);
}

TEST(agent_config, config_file_keys_are_consuls_snake_case) {
    temp_dir d;
    auto f = d.write("a.json", R"({
        "node_name": "n-file", "datacenter": "east", "primary_datacenter": "west", "server": true,
        "bootstrap_expect": 3, "data_dir": "/var/x", "bind_addr": "127.0.0.5", "client_addr": "127.0.0.6 127.0.0.7",
        "advertise_addr": "127.0.0.8", "ports": {"http": 1, "dns": -1, "serf_lan": 3, "serf_wan": 4, "server": 5,
        "grpc": 6, "grpc_tls": 7, "https": 8}, "addresses": {"http": "127.0.0.9", "dns": "127.0.0.10"},
        "limits": {"http_max_conns_per_client": 7, "kv_max_value_size": 1024, "txn_max_req_len": 2048},
        "performance": {"raft_multiplier": 2}, "session_ttl_min": "1m30s", "reconnect_timeout": "8h",
        "node_meta": {"a": "1"}, "retry_join": ["x", "y"], "start_join": "p,q", "encrypt": "E",
        "log_level": "WARN", "disable_update_check": true, "recursors": ["8.8.8.8"], "domain": "example",
        "dns_config": {"allow_stale": true, "node_ttl": "10s"}, "enable_script_checks": true,
        "default_query_time": "30s", "max_query_time": "60s", "skip_leave_on_interrupt": false,
        "service": {"name": "web", "port": 80}, "checks": [{"id": "c1", "ttl": "10s"}]
    })");
    auto r = load({"-config-file", f});
    const auto& c = r.cfg;
    EXPECT_EQ(c.node_name, "n-file");
    EXPECT_EQ(c.datacenter, "east");
    EXPECT_EQ(c.primary_datacenter, "west");
    EXPECT_TRUE(c.server);
    EXPECT_EQ(c.bootstrap_expect, 3);
    EXPECT_EQ(c.data_dir, "/var/x");
    EXPECT_EQ(c.bind_addr, "127.0.0.5");
    EXPECT_EQ(c.advertise_addr, "127.0.0.8");
    EXPECT_EQ(c.ports.http, 1);
    EXPECT_EQ(c.ports.dns, -1);
    EXPECT_EQ(c.ports.serf_lan, 3);
    EXPECT_EQ(c.ports.serf_wan, 4);
    EXPECT_EQ(c.ports.server, 5);
    EXPECT_EQ(c.ports.grpc, 6);
    EXPECT_EQ(c.ports.grpc_tls, 7);
    EXPECT_EQ(c.ports.https, 8);
    EXPECT_EQ(c.addresses.dns, "127.0.0.10");
    EXPECT_EQ(agent::http_addr(c), "127.0.0.9");
    EXPECT_EQ(c.limits.http_max_conns_per_client, 7);
    EXPECT_EQ(c.limits.kv_max_value_size, 1024u);
    EXPECT_EQ(c.limits.txn_max_req_len, 2048u);
    EXPECT_EQ(c.raft_multiplier, 2);
    EXPECT_EQ(c.session_ttl_min, std::chrono::seconds(90));
    EXPECT_EQ(c.reconnect_timeout, std::chrono::hours(8));
    EXPECT_EQ(c.node_meta.at("a"), "1");
    EXPECT_EQ(c.retry_join, (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(c.start_join, (std::vector<std::string>{"p", "q"}));  // a string splits on commas, as Consul
    EXPECT_EQ(c.encrypt, "E");
    EXPECT_EQ(c.log_level, "warn");
    EXPECT_TRUE(c.disable_update_check);
    EXPECT_EQ(c.recursors, (std::vector<std::string>{"8.8.8.8"}));
    EXPECT_EQ(c.domain, "example.");
    EXPECT_EQ(c.dns_config_json, R"({"allow_stale":true,"node_ttl":"10s"})");
    EXPECT_TRUE(c.enable_script_checks);
    EXPECT_EQ(c.default_query_time, std::chrono::seconds(30));
    EXPECT_EQ(c.max_query_time, std::chrono::seconds(60));
    EXPECT_FALSE(c.skip_leave_on_interrupt.value());
    ASSERT_EQ(c.service_definitions_json.size(), 1u);
    EXPECT_EQ(c.service_definitions_json[0], R"({"name":"web","port":80})");
    ASSERT_EQ(c.check_definitions_json.size(), 1u);
    EXPECT_EQ(c.config_files, (std::vector<std::string>{f}));
    EXPECT_TRUE(r.warnings.empty()) << r.warnings[0];
}

TEST(agent_config, files_merge_in_order_and_flags_win) {
    temp_dir d;
    auto a = d.write("a.json", R"({"node_name": "a", "datacenter": "dca", "retry_join": ["1"],
                                   "node_meta": {"k": "a", "only_a": "x"}, "ports": {"http": 1000, "dns": 1001}})");
    auto b = d.write("b.json", R"({"node_name": "b", "retry_join": ["2"], "node_meta": {"k": "b"},
                                   "ports": {"http": 2000}})");
    auto r = load({"-dev", "-config-file", a, "-config-file=" + b, "-node", "flag", "-retry-join", "3"});
    const auto& c = r.cfg;
    EXPECT_EQ(c.node_name, "flag");                                      // flags override files
    EXPECT_EQ(c.datacenter, "dca");                                      // set only by a
    EXPECT_EQ(c.ports.http, 2000);                                       // later file wins
    EXPECT_EQ(c.ports.dns, 1001);                                        // untouched by b
    EXPECT_EQ(c.retry_join, (std::vector<std::string>{"1", "2", "3"}));  // lists append
    EXPECT_EQ(c.node_meta.at("k"), "b");
    EXPECT_EQ(c.node_meta.at("only_a"), "x");
    auto swapped = load({"-dev", "-config-file", b, "-config-file", a});
    EXPECT_EQ(swapped.cfg.node_name, "a");
    EXPECT_EQ(swapped.cfg.ports.http, 1000);
}

TEST(agent_config, files_override_dev_defaults) {
    temp_dir d;
    auto f = d.write("c.json", R"({"client_addr": "127.0.0.9", "bind_addr": "127.0.0.8"})");
    auto c = load({"-dev", "-config-file", f}).cfg;
    EXPECT_EQ(c.client_addr, "127.0.0.9");
    EXPECT_EQ(c.bind_addr, "127.0.0.8");
}

TEST(agent_config, gossip_tuning_keys_and_dev_defaults) {
    using namespace std::chrono_literals;
    // -dev: Consul's dev source (100 ms gossip and probes, suspicion_mult 3) on both pools.
    auto dev = load({"-dev"}).cfg;
    EXPECT_EQ(dev.gossip_lan.probe_interval, 100ms);
    EXPECT_EQ(dev.gossip_lan.probe_timeout, 100ms);
    EXPECT_EQ(dev.gossip_lan.gossip_interval, 100ms);
    EXPECT_EQ(dev.gossip_lan.suspicion_mult, 3);
    EXPECT_EQ(dev.gossip_wan.suspicion_mult, 3);
    EXPECT_FALSE(dev.gossip_lan.gossip_nodes);
    EXPECT_TRUE(dev.disable_keyring_file);  // Consul's dev source
    EXPECT_FALSE(load({"-dev", "-disable-keyring-file=false"}).cfg.disable_keyring_file);
    // Not dev: nothing set, the memberlist profile decides.
    auto plain = load({"-data-dir", "/tmp/x", "-server"}).cfg;
    EXPECT_FALSE(plain.gossip_lan.probe_interval);
    EXPECT_TRUE(plain.encrypt_verify_incoming);
    EXPECT_FALSE(plain.disable_keyring_file);
    temp_dir d;
    auto f = d.write("g.json", R"({"gossip_lan": {"gossip_nodes": 4, "gossip_interval": "250ms", "probe_interval": "2s",
                                   "probe_timeout": "1s", "retransmit_mult": 5, "suspicion_mult": 6},
                                   "gossip_wan": {"probe_interval": "7s"},
                                   "encrypt_verify_incoming": false, "encrypt_verify_outgoing": false})");
    auto c = load({"-dev", "-config-file", f}).cfg;
    EXPECT_EQ(c.gossip_lan.gossip_nodes, 4);
    EXPECT_EQ(c.gossip_lan.gossip_interval, 250ms);
    EXPECT_EQ(c.gossip_lan.probe_interval, 2s);
    EXPECT_EQ(c.gossip_lan.probe_timeout, 1s);
    EXPECT_EQ(c.gossip_lan.retransmit_mult, 5);
    EXPECT_EQ(c.gossip_lan.suspicion_mult, 6);
    EXPECT_EQ(c.gossip_wan.probe_interval, 7s);
    EXPECT_EQ(c.gossip_wan.probe_timeout, 100ms);  // the dev value stays
    EXPECT_FALSE(c.encrypt_verify_incoming);
    EXPECT_FALSE(c.encrypt_verify_outgoing);
    auto bad = d.write("b.json", R"({"gossip_lan": {"probe_interval": "-1s"}})");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", bad}), "gossip_lan.probe_interval")) << error_of({"-dev", "-config-file", bad});
    auto unknown = d.write("u.json", R"({"gossip_lan": {"probe_intervals": "1s"}})");
    auto w = load({"-dev", "-config-file", unknown}).warnings;
    ASSERT_EQ(w.size(), 1u);
    EXPECT_TRUE(contains(w[0], "gossip_lan.probe_intervals")) << w[0];  // warned, as any unknown key
}

TEST(agent_config, config_dir_reads_json_files_in_lexical_order) {
    temp_dir d;
    auto dir = d.mkdir("conf.d");
    d.write("conf.d/20-b.json", R"({"node_name": "twenty", "retry_join": ["b"]})");
    d.write("conf.d/10-a.json", R"({"node_name": "ten", "retry_join": ["a"], "datacenter": "x1"})");
    d.write("conf.d/README", "not json");
    d.mkdir("conf.d/sub");
    auto r = load({"-dev", "-config-dir", dir});
    EXPECT_EQ(r.cfg.node_name, "twenty");
    EXPECT_EQ(r.cfg.datacenter, "x1");
    EXPECT_EQ(r.cfg.retry_join, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(any_contains(r.warnings, "README"));
    EXPECT_EQ(r.cfg.config_files.size(), 2u);
}

TEST(agent_config, config_file_and_dir_interleave_in_command_line_order) {
    temp_dir d;
    auto dir = d.mkdir("dir");
    d.write("dir/x.json", R"({"node_name": "from-dir"})");
    auto f = d.write("f.json", R"({"node_name": "from-file"})");
    EXPECT_EQ(load({"-dev", "-config-dir", dir, "-config-file", f}).cfg.node_name, "from-file");
    EXPECT_EQ(load({"-dev", "-config-file", f, "-config-dir", dir}).cfg.node_name, "from-dir");
}

TEST(agent_config, unknown_keys_warn_and_unsupported_keys_warn_once) {
    temp_dir d;
    auto f = d.write("w.json", R"({"no_such_key": 1, "ports": {"nope": 1}, "acl": {"enabled": true},
                                   "connect": {"enabled": true}, "telemetry": {}})");
    auto g = d.write("w2.json", R"({"acl": {}, "peering": {"enabled": true}})");
    auto r = load({"-dev", "-config-file", f, "-config-file", g});
    EXPECT_TRUE(any_contains(r.warnings, "\"no_such_key\""));
    EXPECT_TRUE(any_contains(r.warnings, "\"ports.nope\""));
    int unsupported_lines = 0;
    for (auto& w : r.warnings)
        if (contains(w, "not supported yet")) {
            ++unsupported_lines;
            EXPECT_TRUE(contains(w, "acl, connect, telemetry, peering")) << w;
        }
    EXPECT_EQ(unsupported_lines, 1);
}

TEST(agent_config, type_errors_name_the_key_and_the_file) {
    temp_dir d;
    auto f = d.write("bad.json", R"({"ports": {"http": "8500"}})");
    auto e = error_of({"-dev", "-config-file", f});
    EXPECT_TRUE(contains(e, f)) << e;
    EXPECT_TRUE(contains(e, "ports.http")) << e;
    EXPECT_TRUE(contains(e, "expected a number")) << e;

    auto g = d.write("bad2.json", R"({"server": "yes"})");
    e = error_of({"-dev", "-config-file", g});
    EXPECT_TRUE(contains(e, "\"server\"") && contains(e, "bool") && contains(e, g)) << e;

    auto h = d.write("bad3.json", R"({"retry_join": [1]})");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", h}), "retry_join")) << e;

    auto i = d.write("bad4.json", R"({"session_ttl_min": "ten seconds"})");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", i}), "invalid duration"));

    auto j = d.write("bad5.json", R"({"node_name": )");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", j}), "invalid JSON"));

    auto k = d.write("bad6.json", R"([1, 2])");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", k}), "object"));
}

TEST(agent_config, hcl_and_missing_files_are_clear_errors) {
    temp_dir d;
    auto f = d.write("a.hcl", "server = true\n");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", f}), "HCL"));
    auto dir = d.mkdir("hcl.d");
    d.write("hcl.d/a.hcl", "server = true\n");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-dir", dir}), "HCL"));
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", d.path() + "/missing.json"}), "missing.json"));
    auto t = d.write("conf.txt", "{}");
    EXPECT_TRUE(contains(error_of({"-dev", "-config-file", t}), "extension"));
    EXPECT_EQ(load({"-dev", "-config-format", "json", "-config-file", t}).cfg.config_files.size(), 1u);
}

TEST(agent_config, null_leaves_a_key_unset) {
    temp_dir d;
    auto f = d.write("n.json", R"({"segments": null, "node_name": null, "ports": {"http": null}})");
    auto r = load({"-dev", "-node", "n", "-config-file", f});
    EXPECT_EQ(r.cfg.node_name, "n");
    EXPECT_EQ(r.cfg.ports.http, 8500);
    EXPECT_TRUE(r.warnings.empty());
}

// sdk/testutil/server.go writes this (spec §5) and runs `consul agent -config-file X`.
TEST(agent_config, consuls_test_harness_config_parses) {
    temp_dir d;
    auto f = d.write("config.json", R"({
        "node_name": "node-1d1d1d1d-2222-3333-4444-555555555555",
        "node_id": "1d1d1d1d-2222-3333-4444-555555555555",
        "performance": {"raft_multiplier": 1},
        "bootstrap": true, "server": true, "data_dir": "/tmp/consul-test/data", "segments": null,
        "disable_update_check": true, "log_level": "debug", "bind_addr": "127.0.0.1", "addresses": {},
        "ports": {"dns": 20001, "http": 20002, "https": 20003, "serf_lan": 20004, "serf_wan": 20005,
                  "server": 20006, "grpc": 20007, "grpc_tls": 20008},
        "acl": {"tokens": {}},
        "connect": {"enabled": true, "ca_config": {"cluster_id": "11111111-2222-3333-4444-555555555555"}},
        "skip_leave_on_interrupt": true, "peering": {"enabled": true}
    })");
    auto r = load({"-config-file", f});
    const auto& c = r.cfg;
    EXPECT_FALSE(c.dev);
    EXPECT_TRUE(c.server);
    EXPECT_TRUE(c.bootstrap);
    EXPECT_EQ(c.node_id, "1d1d1d1d-2222-3333-4444-555555555555");
    EXPECT_EQ(c.ports.http, 20002);
    EXPECT_EQ(c.ports.dns, 20001);
    EXPECT_EQ(c.ports.grpc_tls, 20008);
    EXPECT_EQ(agent::http_addr(c), "127.0.0.1");
    EXPECT_EQ(c.log_level, "debug");
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_TRUE(contains(r.warnings[0], "acl, connect, peering")) << r.warnings[0];
}

// python3-consul2's harness: `agent -dev -bind=127.0.0.1 -config-dir=. -bootstrap-expect 1
// -config-file=encrypt.json` with ports.dns -1 in the directory's config.
TEST(agent_config, python_consul_harness_command_line_parses) {
    temp_dir d;
    d.write("config.json", R"({"ports": {"http": 20100, "dns": -1, "serf_lan": 20101, "serf_wan": 20102,
                                          "server": 20103}, "log_level": "err"})");
    auto enc = d.write("encrypt.json", R"({"encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="})");
    auto r =
        load({"-dev", "-bind=127.0.0.1", "-config-dir=" + d.path(), "-bootstrap-expect", "1", "-config-file=" + enc});
    const auto& c = r.cfg;
    EXPECT_TRUE(c.dev);
    EXPECT_TRUE(c.bootstrap);
    EXPECT_EQ(c.bootstrap_expect, 0);
    EXPECT_EQ(c.ports.http, 20100);
    EXPECT_EQ(c.ports.dns, -1);
    EXPECT_EQ(c.encrypt, "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=");
    EXPECT_EQ(c.log_level, "err");
    EXPECT_TRUE(any_contains(r.warnings, "BootstrapExpect is set to 1"));
}

TEST(agent_config, pid_file_is_written_and_removed) {
    temp_dir d;
    std::string p = d.path() + "/agent.pid";
    agent::write_pid_file(p);
    std::ifstream in(p);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, std::to_string(::getpid()));
    agent::remove_pid_file(p);
    EXPECT_NE(::access(p.c_str(), F_OK), 0);
    agent::remove_pid_file(p);  // a missing file is fine
    EXPECT_THROW(agent::write_pid_file(d.path() + "/no/such/dir/pid"), std::runtime_error);
}

TEST(agent_config, dns_config_keys_are_parsed_with_consul_defaults) {
    temp_dir d;
    auto f = d.write("dns.json", R"({"dns_config": {"node_ttl": "10s", "service_ttl": {"*": "5s", "web": "1m"},
        "only_passing": true, "udp_answer_limit": 8, "a_record_limit": 2, "enable_truncate": true,
        "recursor_timeout": "500ms", "soa": {"min_ttl": 30}, "enable_additional_node_meta_txt": false,
        "no_such_key": 1}, "addresses": {"dns": "127.0.0.3"}})");
    auto r = load({"-dev", "-config-file", f, "-dns-port", "8653"});
    const agent::dns_settings& s = r.cfg.dns;
    EXPECT_EQ(s.node_ttl_s, 10);
    EXPECT_EQ(s.service_ttl_s.at("*"), 5);
    EXPECT_EQ(s.service_ttl_s.at("web"), 60);
    EXPECT_TRUE(s.only_passing);
    EXPECT_EQ(s.udp_answer_limit, 8);
    EXPECT_EQ(s.a_record_limit, 2);
    EXPECT_TRUE(s.enable_truncate);
    EXPECT_FALSE(s.enable_additional_node_meta_txt);
    EXPECT_EQ(s.recursor_timeout, std::chrono::milliseconds(500));
    EXPECT_EQ(s.soa_min_ttl, 30u);
    EXPECT_EQ(s.soa_refresh, 3600u);
    EXPECT_EQ(r.cfg.ports.dns, 8653);
    EXPECT_EQ(agent::dns_addr(r.cfg), "127.0.0.3");
    bool warned = false;
    for (auto& w : r.warnings) warned = warned || w.find("dns_config.no_such_key") != std::string::npos;
    EXPECT_TRUE(warned);

    agent::config defaults;
    EXPECT_EQ(defaults.dns.udp_answer_limit, 3);
    EXPECT_FALSE(defaults.dns.enable_truncate);
    EXPECT_FALSE(defaults.dns.only_passing);
    EXPECT_EQ(defaults.ports.dns, 8600);
}

TEST(agent_config, reconnect_timeout_under_8h_is_refused_except_in_dev) {
    temp_dir d;
    auto f = d.write("rt.json", R"({"reconnect_timeout": "10s", "server": true})");
    EXPECT_TRUE(contains(error_of({"-data-dir", "/tmp/x", "-config-file", f}), "reconnect_timeout must be >= 8h"));
    auto r = load({"-dev", "-config-file", f});
    EXPECT_EQ(r.cfg.reconnect_timeout, std::chrono::seconds(10));
    EXPECT_EQ(load({"-dev", "-serf-lan-port", "-1"}).cfg.ports.serf_lan, -1);
}

TEST(agent_config, node_id_persists_in_data_dir) {
    char tmpl[] = "/tmp/pharos-nodeid-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    std::string dir = std::string(tmpl) + "/data";  // created by persist_node_id
    auto first = agent::random_uuid_v4();
    EXPECT_EQ(agent::persist_node_id(dir, first), first);
    EXPECT_EQ(agent::persist_node_id(dir, agent::random_uuid_v4()), first);  // a restart keeps it
    {
        FILE* f = std::fopen((dir + "/node-id").c_str(), "w");
        std::fputs("  0B1C2D3E-1111-2222-3333-444455556666\n", f);
        std::fclose(f);
    }
    EXPECT_EQ(agent::persist_node_id(dir, first), "0b1c2d3e-1111-2222-3333-444455556666");
    {
        FILE* f = std::fopen((dir + "/node-id").c_str(), "w");
        std::fputs("not-a-uuid", f);
        std::fclose(f);
    }
    EXPECT_THROW(agent::persist_node_id(dir, first), std::runtime_error);
    std::filesystem::remove_all(tmpl);
    // A configured ID is not marked generated; a missing one is.
    EXPECT_FALSE(load({"-dev", "-node-id", "0b1c2d3e-1111-2222-3333-444455556666"}).cfg.node_id_generated);
    EXPECT_TRUE(load({"-dev"}).cfg.node_id_generated);
}
