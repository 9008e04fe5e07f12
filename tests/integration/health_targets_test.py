#!/usr/bin/python3
"""Real probes at scale: `pharos agent -dev` (2 shards) runs a few thousand HTTP
checks, TCP and script checks against `pharos-targets` on loopback; targets
turned failing, dead, slow or closed become critical in /v1/health within
Interval + Timeout + 100 ms, with Consul's output text, and recover.
Usage: health_targets_test.py path/to/pharos path/to/pharos-targets"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import unittest

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"
TARGETS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos-targets"
N_HTTP = 2000
INTERVAL = 1.0
TIMEOUT = 2.0  # generous: CI runs tests in parallel on 2 cores


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Api:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data)
                r = self.conn.getresponse()
                return r.status, r.read().decode()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        raise RuntimeError("agent unreachable")

    def get_json(self, path):
        st, body = self.call("GET", path)
        assert st == 200, (path, st, body)
        return json.loads(body)


def control(port, query):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/control/" + query)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200, body
    return body


class HealthAtScale(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.targets = subprocess.Popen([TARGETS, "-port", "0", "-ports", "8", "-n", str(N_HTTP)],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = cls.targets.stdout.readline().split()
        assert line and line[0] == "READY", line
        cls.ports = [int(cls.targets.stdout.readline().split()[1]) for _ in range(int(line[2]))]
        cls.port = free_port()
        cls.agent = subprocess.Popen([PHAROS, "agent", "-dev", "-client", "127.0.0.1", "-dns-port", "-1", "-serf-lan-port", "-1", "-http-port", str(cls.port),
                                      "-shards", "2", "-enable-script-checks"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.api = Api(cls.port)
        deadline = time.time() + 10
        while True:
            try:
                cls.api.call("GET", "/v1/status/leader")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        for i in range(N_HTTP):
            p = cls.ports[i % len(cls.ports)]
            st, body = cls.api.call("PUT", "/v1/agent/check/register", {
                "ID": "h%d" % i, "Name": "h%d" % i, "HTTP": "http://127.0.0.1:%d/t/%d" % (p, i),
                "Interval": "1s", "Timeout": "2s"})
            assert st == 200, body
        for j, p in enumerate(cls.ports[:2]):
            st, body = cls.api.call("PUT", "/v1/agent/check/register", {
                "ID": "tcp%d" % j, "Name": "tcp%d" % j, "TCP": "127.0.0.1:%d" % p, "Interval": "1s",
                "Timeout": "2s"})
            assert st == 200, body
        st, body = cls.api.call("PUT", "/v1/agent/service/register", {
            "Name": "scripted", "ID": "scripted1",
            "Check": {"Args": ["/bin/sh", "-c", "echo alive"], "Interval": "1s"}})
        assert st == 200, body

    @classmethod
    def tearDownClass(cls):
        for p in (cls.agent, cls.targets):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def statuses(self):
        checks = self.api.get_json("/v1/agent/checks")
        return {k: (v["Status"], v["Output"]) for k, v in checks.items()}

    def wait_until(self, pred, limit):
        start = time.time()
        while time.time() - start < limit:
            s = self.statuses()
            if pred(s):
                return s, time.time() - start
            time.sleep(0.02)
        return self.statuses(), None

    def test_1_all_pass_then_turned_targets_go_critical_in_time(self):
        s, took = self.wait_until(lambda s: all(v[0] == "passing" for k, v in s.items()), 15)
        self.assertIsNotNone(took, {k: v for k, v in s.items() if v[0] != "passing"})
        p0 = self.ports[0]
        self.assertEqual(s["h0"][1], "HTTP GET http://127.0.0.1:%d/t/0: 200 OK Output: ok" % p0)
        self.assertEqual(s["tcp0"][1], "TCP connect 127.0.0.1:%d: Success" % p0)
        self.assertEqual(s["service:scripted1"][1], "alive\n")

        # failing (503), dead (closed without an answer), slow (past the 2s Timeout)
        bad = {"failing": range(100, 150), "dead": range(200, 220), "slow": range(300, 310)}
        for mode, r in bad.items():
            extra = "&delay=5s" if mode == "slow" else ""
            control(self.ports[0], "set?targets=%d-%d&mode=%s%s" % (r.start, r.stop - 1, mode, extra))
        turned = time.time()
        want = {"h%d" % i for r in bad.values() for i in r}
        # Poll the small /v1/health/state/critical; the poll that first sees every
        # turned check started at most one polling step after they all were critical.
        seen_at = None
        while time.time() - turned < 15:
            t0 = time.time()
            crit = {c["CheckID"] for c in self.api.get_json("/v1/health/state/critical")}
            if want <= crit:
                seen_at = t0 - turned
                break
            time.sleep(0.02)
        self.assertIsNotNone(seen_at, "not critical in time: %s" % sorted(want - crit)[:10])
        self.assertLessEqual(seen_at, INTERVAL + TIMEOUT + 0.1)
        s = self.statuses()
        others = [k for k, v in s.items() if k not in want and v[0] != "passing"]
        self.assertEqual(others, [])
        u = "http://127.0.0.1:%d/t/" % self.ports[100 % 8]
        self.assertEqual(s["h100"][1], "HTTP GET %s100: 503 Service Unavailable Output: failing" % u)
        self.assertEqual(s["h200"][1], 'Get "http://127.0.0.1:%d/t/200": EOF' % self.ports[200 % 8])
        self.assertEqual(s["h300"][1], 'Get "http://127.0.0.1:%d/t/300": context deadline exceeded '
                         '(Client.Timeout exceeded while awaiting headers)' % self.ports[300 % 8])
        # /v1/health agrees; recovery follows.
        crit = self.api.get_json("/v1/health/state/critical")
        self.assertEqual({c["CheckID"] for c in crit}, want)
        control(self.ports[0], "set?targets=all&mode=healthy")
        s, took = self.wait_until(lambda s: all(v[0] == "passing" for v in s.values()), 10)
        self.assertIsNotNone(took)

    def test_2_closed_port_fails_tcp_checks(self):
        p = self.ports[1]
        control(self.ports[0], "port?port=%d&mode=dead" % p)
        s, took = self.wait_until(lambda s: s["tcp1"][0] == "critical", 5)
        self.assertIsNotNone(took)
        self.assertEqual(s["tcp1"][1], "dial tcp 127.0.0.1:%d: connect: connection refused" % p)
        self.assertEqual(s["tcp0"][0], "passing")
        control(self.ports[0], "port?port=%d&mode=healthy" % p)
        s, took = self.wait_until(lambda s: s["tcp1"][0] == "passing", 5)
        self.assertIsNotNone(took)

    def test_3_metrics_count_probes_and_batches(self):
        m = self.api.get_json("/v1/agent/metrics")
        counters = {c["Name"]: c["Count"] for c in m["Counters"]}
        gauges = {g["Name"]: g["Value"] for g in m["Gauges"]}
        self.assertEqual(gauges["pharos.health.checks"], N_HTTP + 3)
        self.assertGreater(counters["pharos.health.probes"], N_HTTP)
        self.assertLess(counters["pharos.health.batches"], counters["pharos.health.changes"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
