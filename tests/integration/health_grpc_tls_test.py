#!/usr/bin/python3
"""HTTPS and gRPC probes of `pharos agent -dev` against servers made here: an
HTTPS server with a self-signed certificate (Python's ssl) and a
grpc.health.v1 server (Debian's python3-grpcio, generic handlers, plain and
TLS). Checks Consul's status mapping and output text.
Usage: health_grpc_tls_test.py path/to/pharos"""
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = (200, b"secure") if self.path == "/ok" else (503, b"down")
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


SERVING = {"": b"\x08\x01", "down": b"\x08\x02"}


def check(req, ctx):
    svc = req[2:].decode() if len(req) > 2 else ""
    if svc not in SERVING:
        ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return SERVING[svc]


class ProbesOverTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        key, cert = os.path.join(cls.dir.name, "k.pem"), os.path.join(cls.dir.name, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        cls.https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cls.https.socket = ctx.wrap_socket(cls.https.socket, server_side=True)
        threading.Thread(target=cls.https.serve_forever, daemon=True).start()
        cls.https_port = cls.https.server_address[1]

        h = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(check)})
        cls.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        cls.grpc.add_generic_rpc_handlers((h,))
        cls.grpc_port = cls.grpc.add_insecure_port("127.0.0.1:0")
        creds = grpc.ssl_server_credentials([(open(key, "rb").read(), open(cert, "rb").read())])
        cls.grpcs_port = cls.grpc.add_secure_port("127.0.0.1:0", creds)
        cls.grpc.start()

        cls.port = free_port()
        cls.agent = subprocess.Popen([PHAROS, "agent", "-dev", "-client", "127.0.0.1", "-dns-port", "-1", "-serf-lan-port", "-1", "-http-port", str(cls.port),
                                      "-shards", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                cls.call("GET", "/v1/status/leader")
                break
            except OSError:
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.agent.terminate()
        cls.agent.wait(timeout=15)
        cls.grpc.stop(0)
        cls.https.shutdown()
        cls.dir.cleanup()

    @classmethod
    def call(cls, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=10)
        c.request(method, path, body=None if body is None else json.dumps(body))
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r.status, data

    def register(self, cid, **kw):
        kw.update(ID=cid, Name=cid, Interval="1s", Timeout="3s")
        st, body = self.call("PUT", "/v1/agent/check/register", kw)
        self.assertEqual(st, 200, body)

    def wait_checks(self, ids):
        deadline = time.time() + 10
        while True:
            st, body = self.call("GET", "/v1/agent/checks")
            checks = json.loads(body)
            if all(checks[i]["Output"] for i in ids) or time.time() > deadline:
                return {i: (checks[i]["Status"], checks[i]["Output"]) for i in ids}
            time.sleep(0.1)

    def test_https_with_skip_verify_and_verification_failure(self):
        base = "https://127.0.0.1:%d" % self.https_port
        self.register("https-ok", HTTP=base + "/ok", TLSSkipVerify=True)
        self.register("https-bad", HTTP=base + "/bad", TLSSkipVerify=True)
        self.register("https-verify", HTTP=base + "/ok")
        self.register("https-name", HTTP="https://localhost:%d/ok" % self.https_port, TLSServerName="localhost")
        c = self.wait_checks(["https-ok", "https-bad", "https-verify", "https-name"])
        self.assertEqual(c["https-ok"], ("passing", "HTTP GET %s/ok: 200 OK Output: secure" % base))
        self.assertEqual(c["https-bad"], ("critical", "HTTP GET %s/bad: 503 Service Unavailable Output: down" % base))
        # a self-signed certificate is not trusted unless verification is skipped
        for k in ("https-verify", "https-name"):
            self.assertEqual(c[k][0], "critical")
            self.assertIn("certificate", c[k][1])

    def test_grpc_plain_and_tls(self):
        g, gs = "127.0.0.1:%d" % self.grpc_port, "127.0.0.1:%d" % self.grpcs_port
        self.register("grpc-ok", GRPC=g)
        self.register("grpc-down", GRPC=g + "/down")
        self.register("grpc-unknown", GRPC=g + "/nope")
        self.register("grpc-tls", GRPC=gs, GRPCUseTLS=True, TLSSkipVerify=True)
        self.register("grpc-tls-verify", GRPC=gs, GRPCUseTLS=True)
        self.register("grpc-refused", GRPC="127.0.0.1:1")
        c = self.wait_checks(["grpc-ok", "grpc-down", "grpc-unknown", "grpc-tls", "grpc-tls-verify", "grpc-refused"])
        self.assertEqual(c["grpc-ok"], ("passing", "gRPC check %s: success" % g))
        self.assertEqual(c["grpc-down"], ("critical", "gRPC %s/down serving status: NOT_SERVING" % g))
        self.assertEqual(c["grpc-unknown"], ("critical", "rpc error: code = NotFound desc = unknown service"))
        self.assertEqual(c["grpc-tls"], ("passing", "gRPC check %s: success" % gs))
        self.assertEqual(c["grpc-tls-verify"][0], "critical")
        self.assertEqual(c["grpc-refused"][0], "critical")
        self.assertIn("connect: connection refused", c["grpc-refused"][1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
