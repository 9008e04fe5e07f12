#!/usr/bin/python3
"""pharos's client commands (members, catalog, services, leave, version) against
`pharos agent -dev`, checked against the output Consul's CLI prints; and the
agent started from a Consul-style config file. Usage: cli_test.py path/to/pharos"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import support

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"
NODE_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = support.Agent(PHAROS, "-node", "cli-node", "-node-id", NODE_ID).start()
        cls.port = cls.agent.port
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        cls.agent.stop()

    def run_cli(self, *args, env=None):
        e = dict(os.environ)
        e.pop("CONSUL_HTTP_ADDR", None)
        if env:
            e.update(env)
        words = 2 if args[0] in ("catalog", "services") else 1  # flags go after the (sub)command
        argv = [PHAROS] + list(args[:words])
        if env is None or "CONSUL_HTTP_ADDR" not in env:
            argv += ["-http-addr", "127.0.0.1:%d" % self.port]
        argv += list(args[words:])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=e)
        return p.returncode, p.stdout, p.stderr

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=10) as r:
            return json.loads(r.read())

    def write(self, name, obj):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    # --- version (no agent needed) ---

    def test_version(self):
        p = subprocess.run([PHAROS, "version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^Pharos v\d+\.\d+\.\d+")
        self.assertIn("Consul-compatible API", p.stdout)

    # --- members (waits for GET /v1/agent/members) ---

    def test_members_table_like_consul(self):
        code, out, err = self.run_cli("members")
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC",
                                            "Partition", "Segment"])
        self.assertEqual(len(lines), 2, out)
        cols = lines[1].split()
        self.assertEqual(cols[0], "cli-node")
        self.assertRegex(cols[1], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(cols[2:4], ["alive", "server"])
        self.assertRegex(cols[4], r"^\d+\.\d+\.\d+")  # Tags.build cut at ':'
        self.assertNotIn(":", cols[4])
        self.assertEqual(cols[5], "2")  # Tags.vsn
        self.assertEqual(cols[6:], ["dc1", "default", "<all>"])
        # columnize: every column starts where its header starts
        self.assertEqual(lines[0].index("Address"), lines[1].index("127.0.0.1"))

    def test_members_detailed_prints_sorted_tags(self):
        code, out, err = self.run_cli("members", "-detailed")
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["Node", "Address", "Status", "Tags"])
        tags = lines[1].split()[3].split(",")
        self.assertIn("role=consul", tags)
        self.assertIn("dc=dc1", tags)
        self.assertEqual(tags, sorted(tags))

    def test_members_status_filter_with_no_match_exits_2(self):
        code, out, err = self.run_cli("members", "-status", "^failed$")
        self.assertEqual(code, 2)
        self.assertEqual(out, "")

    # --- catalog (waits for GET /v1/catalog/nodes and /v1/catalog/services) ---

    def test_catalog_nodes_shortens_the_id(self):
        code, out, err = self.run_cli("catalog", "nodes")
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["Node", "ID", "Address", "DC"])
        self.assertEqual(lines[1].split(), ["cli-node", NODE_ID.split("-")[0], "127.0.0.1", "dc1"])

    def test_catalog_nodes_detailed_has_the_full_id(self):
        code, out, err = self.run_cli("catalog", "nodes", "-detailed")
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"])
        self.assertIn(NODE_ID, lines[1])

    def test_catalog_services_lists_consul_sorted(self):
        code, out, err = self.run_cli("catalog", "services")
        self.assertEqual(code, 0, err)
        names = out.splitlines()
        self.assertIn("consul", names)
        self.assertEqual(names, sorted(names))

    # --- services register / deregister (wait for PUT /v1/agent/service/register|deregister) ---

    def test_register_from_flags_then_deregister(self):
        code, out, err = self.run_cli("services", "register", "-name", "web", "-port", "8080", "-address",
                                      "127.0.0.7", "-tag", "b", "-tag", "a", "-meta", "team=x")
        self.assertEqual((code, out, err), (0, "Registered service: web\n", ""))
        svc = self.get("/v1/agent/service/web")
        self.assertEqual(svc["Service"], "web")
        self.assertEqual(svc["Port"], 8080)
        self.assertEqual(svc["Address"], "127.0.0.7")
        self.assertEqual(svc["Tags"], ["b", "a"])
        self.assertEqual(svc["Meta"], {"team": "x"})

        code, out, err = self.run_cli("catalog", "services", "-tags")
        self.assertEqual(code, 0, err)
        web = [l for l in out.splitlines() if l.startswith("web ")]
        self.assertEqual(len(web), 1, out)
        self.assertEqual(web[0].split(), ["web", "a,b"])  # tags sorted, comma-joined

        code, out, err = self.run_cli("services", "deregister", "-id", "web")
        self.assertEqual((code, out, err), (0, "Deregistered service: web\n", ""))
        self.assertNotIn("web", self.get("/v1/agent/services"))

    def test_register_and_deregister_from_a_file(self):
        path = self.write("api.json", {"service": {"name": "api", "id": "api-1", "port": 81, "tags": ["x"],
                                                   "meta": {"Mixed_Case": "v"},
                                                   "check": {"ttl": "30s", "deregister_critical_service_after": "90m"}}})
        code, out, err = self.run_cli("services", "register", path)
        self.assertEqual((code, out, err), (0, "Registered service: api\n", ""))
        services = self.get("/v1/agent/services")
        self.assertIn("api-1", services)
        self.assertEqual(services["api-1"]["Port"], 81)
        self.assertEqual(services["api-1"]["Meta"], {"Mixed_Case": "v"})  # meta keys are not rewritten
        checks = self.get("/v1/agent/checks")
        self.assertTrue(any(c["ServiceID"] == "api-1" for c in checks.values()), checks)

        code, out, err = self.run_cli("services", "deregister", path)
        self.assertEqual((code, out, err), (0, "Deregistered service: api-1\n", ""))
        self.assertNotIn("api-1", self.get("/v1/agent/services"))

    def test_register_file_with_capitalised_service_key(self):
        path = self.write("cap.json", {"Service": {"Name": "cap", "Port": 82}})
        code, out, err = self.run_cli("services", "register", path)
        self.assertEqual((code, out, err), (0, "Registered service: cap\n", ""))
        code, out, err = self.run_cli("services", "deregister", "-id", "cap")
        self.assertEqual(code, 0, err)

    def test_register_needs_a_name_or_a_file(self):
        code, out, err = self.run_cli("services", "register")
        self.assertEqual(code, 1)
        self.assertIn("Service registration requires at least one argument or flags.", err)

    def test_deregister_unknown_service_is_a_no_op(self):
        # The agent answers 200 for an unknown ID (spec §1.2: a no-op), so the CLI reports success.
        code, out, err = self.run_cli("services", "deregister", "-id", "never-registered")
        self.assertEqual(code, 0, err)
        self.assertIn("Deregistered service: never-registered", out)

    # --- client plumbing (no endpoint needed beyond one that answers) ---

    def test_consul_http_addr_is_honoured(self):
        code, out, err = self.run_cli("catalog", "services", env={"CONSUL_HTTP_ADDR": "127.0.0.1:%d" % self.port})
        self.assertEqual(code, 0, err)
        code, out, err = self.run_cli("catalog", "services",
                                      env={"CONSUL_HTTP_ADDR": "http://127.0.0.1:%d" % self.port})
        self.assertEqual(code, 0, err)

    def test_unreachable_agent_is_an_error(self):
        closed = support.free_port()
        p = subprocess.run([PHAROS, "members", "-http-addr", "127.0.0.1:%d" % closed], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("Error retrieving members: "), p.stderr)

    def test_unknown_flag_is_a_usage_error(self):
        code, out, err = self.run_cli("members", "-bogus")
        self.assertEqual(code, 1)
        self.assertIn("flag provided but not defined: -bogus", err)

    def test_extra_arguments_are_refused(self):
        code, out, err = self.run_cli("catalog", "nodes", "-detailed", "extra")
        self.assertEqual(code, 1)
        self.assertIn("Too many arguments (expected 0, got 1)", err)


class LeaveAndConfigFile(unittest.TestCase):
    """An agent started the way Consul's sdk/testutil starts one, then told to leave."""

    def test_config_file_agent_answers_then_leaves(self):
        with tempfile.TemporaryDirectory() as tmp:
            port = support.free_port()
            cfg = {
                "node_name": "node-" + NODE_ID, "node_id": NODE_ID, "performance": {"raft_multiplier": 1},
                "bootstrap": True, "server": True, "data_dir": os.path.join(tmp, "data"), "segments": None,
                "disable_update_check": True, "log_level": "debug", "bind_addr": "127.0.0.1", "addresses": {},
                "ports": {"dns": support.free_port(), "http": port, "https": support.free_port(), "serf_lan": support.free_port(),
                          "serf_wan": support.free_port(), "server": support.free_port(), "grpc": support.free_port(),
                          "grpc_tls": support.free_port()},
                "acl": {"tokens": {}},
                "connect": {"enabled": True, "ca_config": {"cluster_id": "11111111-2222-3333-4444-555555555555"}},
                "skip_leave_on_interrupt": True, "peering": {"enabled": True},
            }
            path = os.path.join(tmp, "config.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            agent = support.Agent(PHAROS, "-config-file", path, "-shards", "1", http_port=port, only_args=True)
            try:
                agent.start()
                p = subprocess.run([PHAROS, "members", "-http-addr", "127.0.0.1:%d" % port], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("node-" + NODE_ID, p.stdout)
                # SIGHUP (a service manager's reload) reloads; it does not stop the agent.
                agent.proc.send_signal(signal.SIGHUP)
                time.sleep(0.3)
                self.assertIsNone(agent.proc.poll())
                p = subprocess.run([PHAROS, "members", "-http-addr", "127.0.0.1:%d" % port], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)

                p = subprocess.run([PHAROS, "leave", "-http-addr", "127.0.0.1:%d" % port], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual((p.returncode, p.stdout), (0, "Graceful leave complete\n"), p.stderr)
                self.assertEqual(agent.proc.wait(timeout=10), 0)  # the agent shuts down after a leave
            finally:
                agent.stop()

    def test_reload_applies_the_config_files_services_and_checks(self):
        """PUT /v1/agent/reload and SIGHUP read the files again: new and changed definitions are
        registered, removed ones deregistered, unchanged ones (and their check states) and API
        registrations left alone; a broken file changes nothing and the reload answers 500."""
        with tempfile.TemporaryDirectory() as tmp:
            port = support.free_port()
            path = os.path.join(tmp, "config.json")

            def write(cfg):
                with open(path, "w") as f:
                    json.dump(cfg, f)

            def get(p):
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, p), timeout=10) as r:
                    return json.loads(r.read())

            def put(p, body=None):
                req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, p), method="PUT",
                                             data=None if body is None else json.dumps(body).encode())
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        return r.status, r.read().decode()
                except urllib.error.HTTPError as e:
                    return e.code, e.read().decode()

            base = {"ports": {"http": port}, "log_level": "info"}
            write(dict(base, services=[{"name": "a"}, {"name": "k", "port": 1}],
                       checks=[{"id": "t1", "name": "t1", "ttl": "60s"}, {"id": "t9", "name": "t9", "ttl": "60s"}]))
            agent = support.Agent(PHAROS, "-dev", "-config-file", path, "-shards", "1", http_port=port, only_args=True)
            try:
                agent.start()
                self.assertEqual(put("/v1/agent/check/pass/t1")[0], 200)
                self.assertEqual(put("/v1/agent/service/register", {"Name": "api-made"})[0], 200)
                # a removed, k changed, b new; t1 unchanged, t9 removed, t2 new.
                write(dict(base, services=[{"name": "k", "port": 2}, {"name": "b"}],
                           checks=[{"id": "t1", "name": "t1", "ttl": "60s"}, {"id": "t2", "name": "t2", "ttl": "60s"}]))
                p = subprocess.run([PHAROS, "reload", "-http-addr", "127.0.0.1:%d" % port], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual((p.returncode, p.stdout), (0, "Configuration reload triggered\n"), p.stderr)
                services = get("/v1/agent/services")
                self.assertEqual(sorted(services), ["api-made", "b", "k"])
                self.assertEqual(services["k"]["Port"], 2)
                checks = get("/v1/agent/checks")
                self.assertEqual(sorted(checks), ["t1", "t2"])
                self.assertEqual(checks["t1"]["Status"], "passing")  # unchanged: its state kept
                self.assertEqual(checks["t2"]["Status"], "critical")

                with open(path, "w") as f:
                    f.write('{"services": [')
                status, body = put("/v1/agent/reload")
                self.assertEqual(status, 500)
                self.assertIn("Failed to reload configs: ", body)
                p = subprocess.run([PHAROS, "reload", "-http-addr", "127.0.0.1:%d" % port], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(p.returncode, 1)
                self.assertIn("Error reloading: ", p.stderr)
                self.assertEqual(sorted(get("/v1/agent/services")), ["api-made", "b", "k"])

                # b, deregistered through the API, comes back: the files still define it.
                self.assertEqual(put("/v1/agent/service/deregister/b")[0], 200)
                write(dict(base, services=[{"name": "k", "port": 2}, {"name": "b"}, {"name": "c"}],
                           checks=[{"id": "t1", "name": "t1", "ttl": "60s"}]))
                agent.proc.send_signal(signal.SIGHUP)
                support.wait_until("the SIGHUP reload",
                                   lambda: "c" in get("/v1/agent/services") and "t2" not in get("/v1/agent/checks"),
                                   timeout=10)
                self.assertEqual(sorted(get("/v1/agent/services")), ["api-made", "b", "c", "k"])
                self.assertIsNone(agent.proc.poll())
            finally:
                agent.stop()

    def test_bad_config_exits_1(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                f.write('{"ports": {"http": "x"}}')
            p = subprocess.run([PHAROS, "agent", "-dev", "-config-file", path], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 1)
            self.assertIn("ports.http", p.stderr)
            p = subprocess.run([PHAROS, "agent", "-dev", "-no-such-flag"], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(p.returncode, 1)
            self.assertIn("flag provided but not defined: -no-such-flag", p.stderr)

    def test_servers_expecting_a_quorum_are_refused(self):
        # No Raft yet: a server that would wait for peers must not act as a leader of its own.
        with tempfile.TemporaryDirectory() as tmp:
            for extra in (["-bootstrap-expect", "3"], []):
                p = subprocess.run([PHAROS, "agent", "-server", "-data-dir", tmp, "-bind", "127.0.0.1",
                                    "-node-id", "0b5e4a6c-3c6e-4d38-9a5e-5d4f0f6d2a11"] + extra,
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("multi-server clusters (Raft) are not supported yet", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
