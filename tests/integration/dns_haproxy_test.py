#!/usr/bin/python3
"""haproxy's resolver as a real DNS consumer of pharos: a backend filled by
`server-template` from the SRV name _web._tcp.service.consul. haproxy must see
the registered instances (address and port from the SRV answer and its
Additional records) and follow changes: a check going critical takes an
instance out, a new instance comes in. Checked through haproxy's stats socket
(`show servers state`). Usage: dns_haproxy_test.py path/to/pharos"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"
HAPROXY = "/usr/sbin/haproxy"


def free_port():
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


def wait_for(what, fn, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class HaproxyResolver(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.http_port = free_port()
        cls.dns_port = free_port()
        cls.agent = subprocess.Popen([PHAROS, "agent", "-dev", "-client", "127.0.0.1", "-http-port",
                                      str(cls.http_port), "-dns-port", str(cls.dns_port), "-serf-lan-port", "-1", "-shards", "2"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                http(cls.http_port, "GET", "/v1/status/leader")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        for i in (1, 2, 3):
            cls.register(i)
        cls.sock = os.path.join(cls.tmp.name, "haproxy.sock")
        cfg = os.path.join(cls.tmp.name, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("""global
    stats socket %(sock)s mode 600 level admin
    maxconn 64
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
resolvers pharos
    nameserver pharos 127.0.0.1:%(dns)d
    accepted_payload_size 4096
    resolve_retries 3
    timeout resolve 200ms
    timeout retry 200ms
    hold valid 200ms
    hold obsolete 0s
backend web
    server-template web 5 _web._tcp.service.consul resolvers pharos resolve-prefer ipv4 init-addr none
listen front
    bind 127.0.0.1:%(front)d
    use_backend web
""" % {"sock": cls.sock, "dns": cls.dns_port, "front": free_port()})
        cls.log = open(os.path.join(cls.tmp.name, "haproxy.log"), "w")
        cls.haproxy = subprocess.Popen([HAPROXY, "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=cls.log)

    @classmethod
    def register(cls, i):
        http(cls.http_port, "PUT", "/v1/agent/service/register",
             {"Name": "web", "ID": "web%d" % i, "Address": "10.0.0.%d" % i, "Port": 8000 + i,
              "Check": {"TTL": "600s"}})
        http(cls.http_port, "PUT", "/v1/agent/check/pass/service:web%d" % i)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.haproxy, cls.agent):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        cls.log.close()
        cls.tmp.cleanup()

    def servers(self):
        """{address:port} of the template's servers that resolution filled and that are not in maintenance."""
        data = b""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(self.sock)
                s.sendall(b"show servers state web\n")
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return None
        out = set()
        header = None
        for line in data.decode().splitlines():
            if line.startswith("# be_id"):
                header = line[2:].split()
                continue
            if not line or line.startswith("#") or header is None:
                continue
            row = dict(zip(header, line.split()))
            admin = int(row["srv_admin_state"])
            if admin & 0x20:  # SRV_ADMF_RMAINT: resolution found nothing for this slot
                continue
            out.add("%s:%s" % (row["srv_addr"], row["srv_port"]))
        return out

    def wait_servers(self, want):
        return wait_for("haproxy servers %s" % sorted(want), lambda: self.servers() == want and self.servers())

    def test_haproxy_sees_the_instances_and_follows_changes(self):
        self.wait_servers({"10.0.0.1:8001", "10.0.0.2:8002", "10.0.0.3:8003"})
        # A check goes critical: the instance leaves DNS and haproxy drops it.
        http(self.http_port, "PUT", "/v1/agent/check/fail/service:web2")
        self.wait_servers({"10.0.0.1:8001", "10.0.0.3:8003"})
        # A new instance appears.
        self.register(4)
        self.wait_servers({"10.0.0.1:8001", "10.0.0.3:8003", "10.0.0.4:8004"})
        # And the failed one comes back when it passes again.
        http(self.http_port, "PUT", "/v1/agent/check/pass/service:web2")
        self.wait_servers({"10.0.0.1:8001", "10.0.0.2:8002", "10.0.0.3:8003", "10.0.0.4:8004"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
