#!/usr/bin/python3
"""The DNS interface as dig (bind9-dnsutils) sees it, against `pharos agent -dev
-dns-port N` with services registered through the HTTP API and TTL checks
driven to passing and critical. Usage: dns_dig_test.py path/to/pharos"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"


def free_port():
    # A port free for both UDP and TCP.
    while True:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def http(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def wait_for_http(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            http(port, "GET", "/v1/status/leader")
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("agent did not answer on port %d" % port)


class Dig:
    def __init__(self, port):
        self.port = port

    def raw(self, *args):
        p = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), "+time=2", "+tries=1"] + list(args),
                           capture_output=True, text=True, timeout=20)
        return p.stdout

    def short(self, *args):
        return [l for l in self.raw("+short", *args).splitlines() if l and not l.startswith(";")]

    def full(self, *args):
        """(status, flags, answer rows, additional rows, authority rows, message size)"""
        out = self.raw("+noall", "+comments", "+answer", "+additional", "+authority", "+stats", *args)
        status = re.search(r"status: (\w+)", out).group(1)
        flags = re.search(r"flags: ([a-z ]*);", out).group(1).split()
        size = int(re.search(r"MSG SIZE\s+rcvd: (\d+)", out).group(1))
        sections = {"ANSWER": [], "ADDITIONAL": [], "AUTHORITY": []}
        cur = None
        for line in out.splitlines():
            m = re.match(r";; (\w+) SECTION:", line)
            if m:
                cur = m.group(1)
                continue
            if not line.strip() or line.startswith(";"):
                continue
            if cur in sections:
                sections[cur].append(line.split())
        return status, flags, sections["ANSWER"], sections["ADDITIONAL"], sections["AUTHORITY"], size


class DnsDig(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http_port = free_port()
        cls.dns_port = free_port()
        cls.tmp = tempfile.TemporaryDirectory()
        cfg = os.path.join(cls.tmp.name, "dns.json")
        with open(cfg, "w") as f:
            json.dump({"dns_config": {"udp_answer_limit": 8, "enable_truncate": True,
                                      "service_ttl": {"*": "5s"}, "node_ttl": "10s"},
                       "node_meta": {"rack": "r1"}}, f)
        cls.proc = subprocess.Popen([PHAROS, "agent", "-dev", "-client", "127.0.0.1", "-http-port",
                                     str(cls.http_port), "-dns-port", str(cls.dns_port), "-serf-lan-port", "-1", "-shards", "2",
                                     "-node", "dns-node", "-config-file", cfg],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_http(cls.http_port)
        cls.dig = Dig(cls.dns_port)
        # web1..web12 on 10.0.0.i, each with a TTL check, all passing.
        for i in range(1, 13):
            http(cls.http_port, "PUT", "/v1/agent/service/register",
                 {"Name": "web", "ID": "web%d" % i, "Address": "10.0.0.%d" % i, "Port": 8000 + i,
                  "Tags": ["prod"] if i % 2 else ["canary"], "Weights": {"Passing": 10, "Warning": 1},
                  "Check": {"TTL": "600s"}})
            http(cls.http_port, "PUT", "/v1/agent/check/pass/service:web%d" % i)
        # 40 "big" instances for the size limits.
        for i in range(1, 41):
            http(cls.http_port, "PUT", "/v1/agent/service/register",
                 {"Name": "big", "ID": "big%d" % i, "Address": "10.1.%d.%d" % (i // 200, i % 200 + 1),
                  "Port": 9000 + i})

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
            raise
        cls.tmp.cleanup()

    def web_addresses(self, *args):
        return set(self.dig.short("web.service.consul", "A", "+tcp", *args))

    def test_only_healthy_instances_answer_and_a_critical_check_removes_one(self):
        self.assertEqual(self.web_addresses(), {"10.0.0.%d" % i for i in range(1, 13)})
        http(self.http_port, "PUT", "/v1/agent/check/fail/service:web3")
        try:
            self.assertEqual(self.web_addresses(), {"10.0.0.%d" % i for i in range(1, 13) if i != 3})
            status, _, answer, additional, _, _ = self.dig.full("_web._tcp.service.consul", "SRV", "+tcp")
            self.assertEqual(status, "NOERROR")
            self.assertEqual(len(answer), 11)
            self.assertNotIn("0a000003.addr.dc1.consul.", [row[-1] for row in answer])
        finally:
            http(self.http_port, "PUT", "/v1/agent/check/pass/service:web3")
        self.assertIn("10.0.0.3", self.web_addresses())
        # Warning keeps the instance, with the warning weight.
        http(self.http_port, "PUT", "/v1/agent/check/warn/service:web5")
        try:
            _, _, answer, _, _, _ = self.dig.full("web.service.consul", "SRV", "+tcp")
            weights = {row[-1]: row[-3] for row in answer}
            self.assertEqual(weights["0a000005.addr.dc1.consul."], "1")
            self.assertEqual(weights["0a000001.addr.dc1.consul."], "10")
        finally:
            http(self.http_port, "PUT", "/v1/agent/check/pass/service:web5")

    def test_srv_answers_with_targets_and_additional_addresses(self):
        status, flags, answer, additional, _, _ = self.dig.full("_web._prod.service.consul", "SRV")
        self.assertEqual(status, "NOERROR")
        self.assertIn("aa", flags)
        self.assertEqual(len(answer), 6)  # odd web instances carry "prod"
        for row in answer:
            self.assertEqual(row[3], "SRV")
            self.assertEqual(row[1], "5")  # service_ttl "*"
            prio, weight, port, target = row[4:8]
            self.assertEqual((prio, weight), ("1", "10"))
            ip = "10.0.0.%d" % (int(port) - 8000)
            self.assertEqual(target, "0a0000%02x.addr.dc1.consul." % (int(port) - 8000))
            self.assertIn([target, "5", "IN", "A", ip], additional)

    def test_shuffling_is_observed(self):
        orders = set()
        for _ in range(20):
            orders.add(tuple(self.dig.short("web.service.consul", "A")))
        self.assertGreater(len(orders), 5)

    def test_udp_trimming_at_512_bytes_and_with_edns(self):
        # No EDNS: at most udp_answer_limit (8) answers, sized to fit 512 bytes, TC set (enable_truncate).
        status, flags, answer, additional, _, size = self.dig.full("big.service.consul", "SRV", "+noedns",
                                                                   "+ignore")
        self.assertEqual(status, "NOERROR")
        self.assertLessEqual(size, 512)
        self.assertGreaterEqual(len(answer), 1)
        self.assertLess(len(answer), 8)
        self.assertIn("tc", flags)
        targets = {row[-1] for row in answer}
        self.assertEqual(targets, {row[0] for row in additional if row[3] == "A"})
        # A records without EDNS: the first 8.
        status, flags, answer, _, _, size = self.dig.full("big.service.consul", "A", "+noedns", "+ignore")
        self.assertEqual(len(answer), 8)
        self.assertIn("tc", flags)
        # EDNS 1232: more than 8, still within 1232 bytes.
        status, flags, answer, _, _, size = self.dig.full("big.service.consul", "SRV", "+bufsize=1232", "+ignore")
        self.assertLessEqual(size, 1232)
        self.assertGreater(len(answer), 8)
        self.assertLess(len(answer), 40)
        self.assertIn("tc", flags)
        # EDNS 4096: all 40 A records fit.
        status, flags, answer, _, _, size = self.dig.full("big.service.consul", "A", "+bufsize=4096")
        self.assertEqual(len(answer), 40)
        self.assertNotIn("tc", flags)
        # TCP: everything.
        status, flags, answer, additional, _, size = self.dig.full("big.service.consul", "SRV", "+tcp")
        self.assertEqual(len(answer), 40)
        self.assertGreater(size, 1232)

    def test_nodes_addr_ptr_soa_and_nxdomain(self):
        self.assertEqual(self.dig.short("dns-node.node.consul", "A"), ["127.0.0.1"])
        self.assertIn('"rack=r1"', self.dig.short("dns-node.node.dc1.consul", "TXT"))
        self.assertEqual(self.dig.short("0a000007.addr.dc1.consul", "A"), ["10.0.0.7"])
        self.assertEqual(self.dig.short("-x", "127.0.0.1"), ["dns-node.node.dc1.consul."])
        status, _, answer, additional, _, _ = self.dig.full("consul", "NS")
        self.assertEqual([row[-1] for row in answer], ["dns-node.node.dc1.consul."])
        status, _, answer, _, authority, _ = self.dig.full("nothing.service.consul", "A")
        self.assertEqual(status, "NXDOMAIN")
        self.assertEqual(authority[0][3], "SOA")
        status, _, _, _, _, _ = self.dig.full("web.service.consul", "A", "+tcp")
        self.assertEqual(status, "NOERROR")
        # Outside the domain with no recursors: refused.
        status, _, _, _, _, _ = self.dig.full("example.com", "A")
        self.assertEqual(status, "REFUSED")

    def test_garbage_gets_formerr_or_silence_and_the_agent_keeps_answering(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1)
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", ("127.0.0.1",
                                                                                           self.dns_port))
        data, _ = s.recvfrom(512)
        self.assertEqual(data[:2], b"\x12\x34")
        self.assertEqual(data[3] & 0xF, 1)  # FORMERR
        s.sendto(b"\x01", ("127.0.0.1", self.dns_port))  # too short: dropped
        s.close()
        self.assertEqual(len(self.web_addresses()), 12)


if __name__ == "__main__":
    unittest.main(verbosity=2)
