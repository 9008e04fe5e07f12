#!/usr/bin/python3
"""Leader election the way applications build it, with python3-consul2 against
`pharos agent -dev`: two contender processes run a lock-holder loop shaped like
Patroni's (a session with a TTL and behavior=delete, acquire the leader key,
renew in a loop; the other watches the key with a blocking query and takes
over). The holder is killed with SIGKILL; the other must take over within
2×TTL + lock-delay. Also drives sessions and /v1/txn through the client.
Usage: lock_python_consul_test.py path/to/pharos"""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

import consul  # python3-consul2

TTL = 10          # seconds; Consul's minimum
LOCK_DELAY = 1    # seconds
KEY = "service/pharos-test/leader"


def contend(port, name):
    """One contender: prints 'leader <name>' when it holds the key. Like Patroni,
    every member renews its own session each cycle (TTL/3), leader or not."""
    c = consul.Consul(host="127.0.0.1", port=port)
    sid = c.session.create(name=name, ttl=TTL, lock_delay=LOCK_DELAY, behavior="delete", checks=[])
    print("session", sid, flush=True)
    leader = False
    last_renew = time.time()
    while True:
        if time.time() - last_renew >= TTL / 3:
            try:
                c.session.renew(sid)
            except consul.NotFound:
                print("session lost", name, flush=True)
                return
            last_renew = time.time()
        if leader:
            index, data = c.kv.get(KEY, index=index, wait="1s")
            if data is None or data.get("Session") != sid:
                print("lost", name, flush=True)
                leader = False
            continue
        if c.kv.put(KEY, name, acquire=sid):
            leader = True
            last_renew = time.time()
            index, _ = c.kv.get(KEY)
            print("leader", name, flush=True)
            continue
        # Someone holds it (or lock-delay runs): watch the key until it changes.
        index, data = c.kv.get(KEY)
        if data is not None and data.get("Session"):
            c.kv.get(KEY, index=index, wait="2s")
        else:
            time.sleep(0.2)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_line(proc, prefix, timeout):
    """The first stdout line of `proc` starting with `prefix`, within `timeout` s (None if none)."""
    deadline = time.time() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = getattr(proc, "_buf", b"")
    while time.time() < deadline:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.decode().startswith(prefix):
                proc._buf = buf
                return line.decode()
        try:
            chunk = proc.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk
        else:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc._buf = buf
    return None


class LockWithPythonConsul(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.proc = subprocess.Popen([PHAROS, "agent", "-dev", "-client", "127.0.0.1", "-dns-port", "-1", "-serf-lan-port", "-1", "-http-port", str(cls.port),
                                     "-shards", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        cls.c = consul.Consul(host="127.0.0.1", port=cls.port)
        cls.children = []

    @classmethod
    def tearDownClass(cls):
        for p in cls.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            raise

    def contender(self, name):
        p = subprocess.Popen([sys.executable, "-W", "ignore", __file__, "--contend", str(self.port), name],
                             stdout=subprocess.PIPE)
        self.children.append(p)
        return p

    def test_sessions_through_the_client(self):
        sid = self.c.session.create(name="py", ttl=30, behavior="delete")
        index, info = self.c.session.info(sid)
        self.assertEqual(info["ID"], sid)
        self.assertEqual(info["Behavior"], "delete")
        self.assertEqual(info["TTL"], "30s")
        self.assertEqual(info["NodeChecks"], ["serfHealth"])
        _, listed = self.c.session.list()
        self.assertIn(sid, [s["ID"] for s in listed])
        _, on_node = self.c.session.node(info["Node"])
        self.assertIn(sid, [s["ID"] for s in on_node])
        self.assertEqual(self.c.session.renew(sid)["ID"], sid)
        # Below session_ttl_min (the client asserts 10..86400 itself, so go around it).
        r = self.c.http.put(lambda resp: resp, path="/v1/session/create", data='{"TTL":"5s"}')
        self.assertEqual(r.code, 500)
        self.assertTrue(r.body.startswith("Invalid Session TTL"), r.body)
        self.assertTrue(self.c.kv.put("py/lock", "x", acquire=sid))
        self.assertTrue(self.c.session.destroy(sid))
        with self.assertRaises(consul.NotFound):  # 404 "Session id '...' not found"
            self.c.session.renew(sid)
        _, data = self.c.kv.get("py/lock")
        self.assertIsNone(data)  # behavior=delete

    def test_txn_through_the_client(self):
        import base64
        b64 = lambda s: base64.b64encode(s.encode()).decode()
        res = self.c.txn.put([
            {"KV": {"Verb": "set", "Key": "py/txn/a", "Value": b64("1")}},
            {"KV": {"Verb": "set", "Key": "py/txn/b", "Value": b64("2")}},
            {"KV": {"Verb": "get", "Key": "py/txn/a"}},
        ])
        self.assertIsNone(res["Errors"])
        self.assertEqual(len(res["Results"]), 3)
        self.assertEqual(base64.b64decode(res["Results"][2]["KV"]["Value"]), b"1")
        index = res["Results"][1]["KV"]["ModifyIndex"]
        # A failing op rolls back the whole transaction (409).
        with self.assertRaises(consul.ConsulException) as cm:
            self.c.txn.put([
                {"KV": {"Verb": "set", "Key": "py/txn/c", "Value": b64("3")}},
                {"KV": {"Verb": "cas", "Key": "py/txn/b", "Value": b64("x"), "Index": index + 100}},
            ])
        self.assertIn("409", str(cm.exception))
        self.assertIn("index is stale", str(cm.exception))
        _, data = self.c.kv.get("py/txn/c")
        self.assertIsNone(data)

    def test_leader_election_survives_kill_9_of_the_holder(self):
        a = self.contender("alpha")
        self.assertIsNotNone(wait_line(a, "leader alpha", 10), "alpha never became leader")
        b = self.contender("beta")
        self.assertIsNotNone(wait_line(b, "session", 10))
        # beta watches; alpha keeps the lock while it renews.
        self.assertIsNone(wait_line(b, "leader", 5), "beta took a held lock")
        _, data = self.c.kv.get(KEY)
        self.assertEqual(data["Value"], b"alpha")
        a.send_signal(signal.SIGKILL)
        a.wait()
        killed = time.time()
        line = wait_line(b, "leader beta", 2 * TTL + LOCK_DELAY + 5)
        took = time.time() - killed
        self.assertIsNotNone(line, "beta did not take over")
        self.assertLessEqual(took, 2 * TTL + LOCK_DELAY + 3)
        _, data = self.c.kv.get(KEY)
        self.assertEqual(data["Value"], b"beta")
        print("takeover after kill -9: %.1f s (TTL %d s, lock-delay %d s)" % (took, TTL, LOCK_DELAY),
              file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--contend":
        contend(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"
    unittest.main()
