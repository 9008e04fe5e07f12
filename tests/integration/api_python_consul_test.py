#!/usr/bin/python3
"""python3-consul2 (Debian, module `consul`) against `pharos agent -dev -shards 2`:
Consul's seed scenario (register my-service with a TTL check and tags, find it
through the catalog and health, KV put/get, a blocking watch) and the agent,
catalog, health, event, status and KV calls a real client makes.

Each test starts its own agent on a free 127.0.0.1 port and stops it in its
cleanup, whether the test passed or not. Usage: api_python_consul_test.py path/to/pharos"""
import base64
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import consul  # python3-consul2

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"
SERVICE_CHECK = "service:my-service-1"  # Consul's ID for a service's single embedded check


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class AgentApiWithPythonConsul(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PHAROS, "agent", "-dev", "-client", "127.0.0.1", "-dns-port", "-1", "-serf-lan-port", "-1", "-http-port", str(self.port),
                                      "-shards", "2"], stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_agent)
        # Ready as Consul's own harness judges it: /v1/status/leader answers.
        deadline = time.time() + 10
        while True:
            self.assertIsNone(self.proc.poll(), "pharos exited at start:\n" + self.agent_log())
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v1/status/leader" % self.port, timeout=1) as r:
                    if r.read().strip(b'"'):
                        break
            except OSError:
                pass
            self.assertLess(time.time(), deadline, "pharos did not answer /v1/status/leader in 10 s")
            time.sleep(0.05)
        self.c = consul.Consul(host="127.0.0.1", port=self.port, timeout=30)
        self.node = self.c.agent.self()["Config"]["NodeName"]

    def stop_agent(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("pharos did not stop on SIGTERM within 10 s")
        finally:
            self.log.close()

    def agent_log(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def register_my_service(self):
        self.assertTrue(self.c.agent.service.register("my-service", service_id="my-service-1", address="127.0.0.1",
                                                      port=8080, tags=["primary", "v1"], meta={"version": "1.0"},
                                                      check=consul.Check.ttl("30s")))

    # --- the seed scenario ---

    def test_seed_register_discover_configure_and_watch(self):
        self.register_my_service()

        _, instances = self.c.catalog.service("my-service")
        self.assertEqual(len(instances), 1)
        i = instances[0]
        self.assertEqual((i["ServiceID"], i["ServiceName"], i["ServicePort"], i["ServiceAddress"]),
                         ("my-service-1", "my-service", 8080, "127.0.0.1"))
        self.assertEqual(i["ServiceTags"], ["primary", "v1"])
        self.assertEqual(i["ServiceMeta"], {"version": "1.0"})
        self.assertEqual(i["Node"], self.node)
        _, tagged = self.c.catalog.service("my-service", tag="primary")
        self.assertEqual(len(tagged), 1)
        self.assertEqual(self.c.catalog.service("my-service", tag="nope")[1], [])

        # A new TTL check is critical: not passing until the service reports in.
        _, all_instances = self.c.health.service("my-service")
        self.assertEqual(len(all_instances), 1)
        checks = {c["CheckID"]: c for c in all_instances[0]["Checks"]}
        self.assertEqual(set(checks), {"serfHealth", SERVICE_CHECK})
        self.assertEqual(checks[SERVICE_CHECK]["Status"], "critical")
        self.assertEqual(self.c.health.service("my-service", passing=True)[1], [])

        self.assertTrue(self.c.agent.check.ttl_pass(SERVICE_CHECK, "ready"))
        _, passing = self.c.health.service("my-service", passing=True)
        self.assertEqual(len(passing), 1)
        self.assertEqual(passing[0]["Service"]["ID"], "my-service-1")
        self.assertEqual(passing[0]["Service"]["Tags"], ["primary", "v1"])
        self.assertEqual(passing[0]["Node"]["Node"], self.node)
        svc_check = [c for c in passing[0]["Checks"] if c["CheckID"] == SERVICE_CHECK][0]
        self.assertEqual((svc_check["Status"], svc_check["Output"]), ("passing", "ready"))

        self.assertTrue(self.c.kv.put("config/my-service/max_conns", "100"))
        index, item = self.c.kv.get("config/my-service/max_conns")
        self.assertEqual(item["Value"], b"100")

        # A blocking watch on the key sees the new value within a second of the write.
        seen = {}

        def watch():
            w = consul.Consul(host="127.0.0.1", port=self.port, timeout=30)  # requests sessions are per thread
            new_index, data = w.kv.get("config/my-service/max_conns", index=index, wait="20s")
            seen["at"] = time.time()
            seen["index"], seen["value"] = new_index, data["Value"] if data else None

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        time.sleep(0.3)  # let the watch reach the agent and block
        self.assertNotIn("at", seen, "the watch returned before anything changed")
        written = time.time()
        self.assertTrue(self.c.kv.put("config/my-service/max_conns", "200"))
        t.join(timeout=5)
        self.assertFalse(t.is_alive(), "the blocking watch did not return within 5 s of the write")
        self.assertEqual(seen["value"], b"200")
        self.assertGreater(int(seen["index"]), int(index))
        self.assertLess(seen["at"] - written, 1.0)

    # --- agent ---

    def test_agent_self_and_members(self):
        me = self.c.agent.self()
        self.assertEqual(me["Config"]["Datacenter"], "dc1")
        self.assertTrue(me["Config"]["Server"])
        self.assertTrue(me["Config"]["NodeName"])
        self.assertEqual(me["Member"]["Name"], me["Config"]["NodeName"])
        self.assertEqual(me["Member"]["Addr"], "127.0.0.1")
        members = self.c.agent.members()
        self.assertEqual(len(members), 1)
        m = members[0]
        self.assertEqual((m["Name"], m["Addr"], m["Status"]), (self.node, "127.0.0.1", 1))
        self.assertEqual(m["Tags"]["role"], "consul")
        self.assertEqual(m["Tags"]["dc"], "dc1")

    def test_agent_services_and_checks(self):
        self.register_my_service()
        self.assertTrue(self.c.agent.check.register("disk", consul.Check.ttl("1m"), check_id="disk-1",
                                                    notes="the data disk"))
        self.assertTrue(self.c.agent.check.register("my-service alive", consul.Check.ttl("1m"),
                                                    check_id="alive-1", service_id="my-service-1"))
        services = self.c.agent.services()
        self.assertEqual(set(services), {"my-service-1"})
        s = services["my-service-1"]
        self.assertEqual((s["ID"], s["Service"], s["Port"], s["Address"]), ("my-service-1", "my-service", 8080,
                                                                            "127.0.0.1"))
        self.assertEqual(s["Tags"], ["primary", "v1"])
        self.assertEqual(s["Meta"], {"version": "1.0"})

        checks = self.c.agent.checks()
        self.assertEqual(set(checks), {SERVICE_CHECK, "disk-1", "alive-1"})
        self.assertEqual(checks[SERVICE_CHECK]["ServiceID"], "my-service-1")
        self.assertEqual(checks[SERVICE_CHECK]["ServiceName"], "my-service")
        self.assertEqual(checks[SERVICE_CHECK]["Status"], "critical")
        self.assertEqual(checks["disk-1"]["ServiceID"], "")
        self.assertEqual(checks["disk-1"]["Notes"], "the data disk")
        self.assertEqual(checks["alive-1"]["ServiceName"], "my-service")
        self.assertEqual(checks["alive-1"]["Node"], self.node)

        self.assertTrue(self.c.agent.check.deregister("disk-1"))
        self.assertNotIn("disk-1", self.c.agent.checks())
        self.assertTrue(self.c.agent.service.deregister("my-service-1"))
        self.assertEqual(self.c.agent.services(), {})
        self.assertEqual(self.c.agent.checks(), {})  # the service's checks go with it
        self.assertEqual(self.c.catalog.service("my-service")[1], [])

    def test_agent_check_pass_warn_fail(self):
        self.assertTrue(self.c.agent.check.register("ttl", consul.Check.ttl("1m"), check_id="ttl-1"))
        for call, status in ((self.c.agent.check.ttl_pass, "passing"), (self.c.agent.check.ttl_warn, "warning"),
                             (self.c.agent.check.ttl_fail, "critical")):
            self.assertTrue(call("ttl-1", "now " + status))
            c = self.c.agent.checks()["ttl-1"]
            self.assertEqual((c["Status"], c["Output"]), (status, "now " + status))
            _, in_state = self.c.health.state(status)
            self.assertIn("ttl-1", [x["CheckID"] for x in in_state])
        # Consul answers 404 "Unknown check ID ..."; the client turns a 404 into False.
        self.assertFalse(self.c.agent.check.ttl_pass("no-such-check"))

    def test_agent_service_maintenance(self):
        self.register_my_service()
        self.c.agent.check.ttl_pass(SERVICE_CHECK)
        self.assertEqual(len(self.c.health.service("my-service", passing=True)[1]), 1)

        self.assertTrue(self.c.agent.service.maintenance("my-service-1", True, "upgrading"))
        maint = self.c.agent.checks()["_service_maintenance:my-service-1"]
        self.assertEqual((maint["Status"], maint["Notes"], maint["ServiceID"]),
                         ("critical", "upgrading", "my-service-1"))
        self.assertEqual(self.c.health.service("my-service", passing=True)[1], [])

        self.assertTrue(self.c.agent.service.maintenance("my-service-1", False))
        self.assertNotIn("_service_maintenance:my-service-1", self.c.agent.checks())
        self.assertEqual(len(self.c.health.service("my-service", passing=True)[1]), 1)

    def test_agent_node_maintenance(self):
        self.assertTrue(self.c.agent.maintenance(True))
        maint = self.c.agent.checks()["_node_maintenance"]
        self.assertEqual(maint["Status"], "critical")
        self.assertTrue(maint["Notes"].startswith("Maintenance mode is enabled for this node"))
        self.assertIn("_node_maintenance", [c["CheckID"] for c in self.c.health.node(self.node)[1]])
        self.assertTrue(self.c.agent.maintenance(False))
        self.assertNotIn("_node_maintenance", self.c.agent.checks())

    # --- catalog and health ---

    def test_catalog_register_and_deregister_an_external_node(self):
        service = {"Service": "redis", "ID": "redis-1", "Tags": ["master"], "Port": 6379}
        check = {"Node": "ext-1", "CheckID": "service:redis-1", "Name": "Redis health check", "Status": "passing",
                 "ServiceID": "redis-1"}
        self.assertTrue(self.c.catalog.register("ext-1", "127.0.0.2", service=service, check=check,
                                                node_meta={"rack": "r1"}))

        _, nodes = self.c.catalog.nodes()
        by_name = {n["Node"]: n for n in nodes}
        self.assertEqual(set(by_name), {self.node, "ext-1"})
        self.assertEqual(by_name["ext-1"]["Address"], "127.0.0.2")
        self.assertEqual(by_name["ext-1"]["Meta"], {"rack": "r1"})
        self.assertEqual(by_name["ext-1"]["Datacenter"], "dc1")
        _, only_rack = self.c.catalog.nodes(node_meta={"rack": "r1"})
        self.assertEqual([n["Node"] for n in only_rack], ["ext-1"])

        _, services = self.c.catalog.services()
        self.assertEqual(services, {"consul": [], "redis": ["master"]})
        _, redis = self.c.catalog.service("redis")
        self.assertEqual([(r["Node"], r["Address"], r["ServicePort"]) for r in redis], [("ext-1", "127.0.0.2", 6379)])
        _, node = self.c.catalog.node("ext-1")
        self.assertEqual(list(node["Services"]), ["redis-1"])

        _, node_checks = self.c.health.node("ext-1")
        self.assertEqual([(c["CheckID"], c["Status"], c["ServiceName"]) for c in node_checks],
                         [("service:redis-1", "passing", "redis")])
        self.assertEqual(len(self.c.health.service("redis", passing=True)[1]), 1)

        self.assertTrue(self.c.catalog.deregister("ext-1", service_id="redis-1"))
        self.assertEqual(self.c.catalog.service("redis")[1], [])
        self.assertNotIn("redis", self.c.catalog.services()[1])
        self.assertIn("ext-1", [n["Node"] for n in self.c.catalog.nodes()[1]])
        self.assertTrue(self.c.catalog.deregister("ext-1"))
        self.assertEqual([n["Node"] for n in self.c.catalog.nodes()[1]], [self.node])
        self.assertIsNone(self.c.catalog.node("ext-1")[1])

    def test_health_state_and_node(self):
        self.register_my_service()
        _, any_state = self.c.health.state("any")
        self.assertEqual(sorted(c["CheckID"] for c in any_state), ["serfHealth", SERVICE_CHECK])
        _, critical = self.c.health.state("critical")
        self.assertEqual([c["CheckID"] for c in critical], [SERVICE_CHECK])
        _, passing = self.c.health.state("passing")
        self.assertEqual([c["CheckID"] for c in passing], ["serfHealth"])

        index, node_checks = self.c.health.node(self.node)
        self.assertGreater(int(index), 0)
        serf = [c for c in node_checks if c["CheckID"] == "serfHealth"][0]
        self.assertEqual((serf["Name"], serf["Status"], serf["ServiceID"]),
                         ("Serf Health Status", "passing", ""))
        svc = [c for c in node_checks if c["CheckID"] == SERVICE_CHECK][0]
        self.assertEqual((svc["ServiceID"], svc["ServiceName"], svc["ServiceTags"]),
                         ("my-service-1", "my-service", ["primary", "v1"]))
        self.assertEqual(self.c.health.node("no-such-node")[1], [])

    # --- events and status ---

    def test_event_fire_and_list(self):
        fired = self.c.event.fire("deploy", "v1.2.3")
        self.assertEqual(fired["Name"], "deploy")
        self.assertTrue(fired["ID"])
        self.c.event.fire("other")
        _, events = self.c.event.list(name="deploy")
        # Payload is base64 on the wire; python3-consul2 means to decode it but asks for the key True, so it does not.
        self.assertEqual([(e["ID"], e["Name"], base64.b64decode(e["Payload"])) for e in events],
                         [(fired["ID"], "deploy", b"v1.2.3")])
        index, everything = self.c.event.list()
        self.assertEqual([e["Name"] for e in everything], ["deploy", "other"])
        self.assertTrue(index)

    def test_status_leader_and_peers(self):
        self.assertEqual(self.c.status.leader(), "127.0.0.1:8300")
        self.assertEqual(self.c.status.peers(), ["127.0.0.1:8300"])

    # --- kv ---

    def test_kv_recurse_keys_delete_recurse_and_cas(self):
        for k, v in (("app/a", "1"), ("app/b/c", "2"), ("app/b/d", "3"), ("other", "x")):
            self.assertTrue(self.c.kv.put(k, v))
        _, items = self.c.kv.get("app/", recurse=True)
        self.assertEqual([(i["Key"], i["Value"]) for i in items], [("app/a", b"1"), ("app/b/c", b"2"),
                                                                   ("app/b/d", b"3")])
        self.assertEqual(self.c.kv.get("app/", keys=True)[1], ["app/a", "app/b/c", "app/b/d"])
        self.assertEqual(self.c.kv.get("app/", keys=True, separator="/")[1], ["app/a", "app/b/"])
        # Consul answers 404 for ?keys under a prefix with no keys ([] only for the root); the client says None.
        self.assertIsNone(self.c.kv.get("nothing/", keys=True)[1])

        _, a = self.c.kv.get("app/a")
        self.assertFalse(self.c.kv.put("app/a", "lost", cas=a["ModifyIndex"] + 1000))
        self.assertTrue(self.c.kv.put("app/a", "won", cas=a["ModifyIndex"]))
        self.assertFalse(self.c.kv.put("app/a", "again", cas=0))  # 0: create only
        self.assertEqual(self.c.kv.get("app/a")[1]["Value"], b"won")
        _, a = self.c.kv.get("app/a")
        self.assertFalse(self.c.kv.delete("app/a", cas=a["ModifyIndex"] - 1))
        self.assertTrue(self.c.kv.delete("app/a", cas=a["ModifyIndex"]))
        self.assertIsNone(self.c.kv.get("app/a")[1])

        self.assertTrue(self.c.kv.delete("app/", recurse=True))
        self.assertIsNone(self.c.kv.get("app/", recurse=True)[1])
        self.assertEqual(self.c.kv.get("other")[1]["Value"], b"x")
        self.assertTrue(self.c.kv.put("dir/", None))  # a "directory" key with a null value
        self.assertIsNone(self.c.kv.get("dir/")[1]["Value"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
