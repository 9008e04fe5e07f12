#!/usr/bin/python3
"""python3-consul2 (Debian) against `pharos agent -dev`: the KV API as a real
client uses it. Usage: kv_python_consul_test.py path/to/pharos"""
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

import consul  # python3-consul2

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class KvWithPythonConsul(unittest.TestCase):
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

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            raise

    def test_put_get_with_flags(self):
        self.assertTrue(self.c.kv.put("py/a", "hello", flags=42))
        index, data = self.c.kv.get("py/a")
        self.assertEqual(data["Value"], b"hello")
        self.assertEqual(data["Flags"], 42)
        self.assertEqual(data["Key"], "py/a")
        self.assertGreaterEqual(int(index), data["ModifyIndex"])

    def test_missing_key_is_none(self):
        index, data = self.c.kv.get("py/never")
        self.assertIsNone(data)
        self.assertGreater(int(index), 0)

    def test_recurse_and_keys_with_separator(self):
        for k in ("py/tree/x", "py/tree/y/z", "py/tree/y/w"):
            self.assertTrue(self.c.kv.put(k, "v"))
        _, items = self.c.kv.get("py/tree/", recurse=True)
        self.assertEqual([i["Key"] for i in items], ["py/tree/x", "py/tree/y/w", "py/tree/y/z"])
        _, keys = self.c.kv.get("py/tree/", keys=True, separator="/")
        self.assertEqual(keys, ["py/tree/x", "py/tree/y/"])

    def test_cas_create_only_then_match(self):
        self.assertTrue(self.c.kv.put("py/cas", "1", cas=0))
        self.assertFalse(self.c.kv.put("py/cas", "2", cas=0))
        _, data = self.c.kv.get("py/cas")
        self.assertFalse(self.c.kv.put("py/cas", "2", cas=data["ModifyIndex"] - 1))
        self.assertTrue(self.c.kv.put("py/cas", "2", cas=data["ModifyIndex"]))
        self.assertEqual(self.c.kv.get("py/cas")[1]["Value"], b"2")

    def test_delete_and_recursive_delete(self):
        self.c.kv.put("py/del/a", "1")
        self.c.kv.put("py/del/b", "1")
        self.assertTrue(self.c.kv.delete("py/del/a"))
        self.assertIsNone(self.c.kv.get("py/del/a")[1])
        self.assertTrue(self.c.kv.delete("py/del/", recurse=True))
        self.assertIsNone(self.c.kv.get("py/del/", recurse=True)[1])

    def test_blocking_query_returns_when_the_key_changes(self):
        self.c.kv.put("py/watch", "before")
        index, _ = self.c.kv.get("py/watch")

        def writer():
            time.sleep(0.3)
            self.c.kv.put("py/watch", "after")

        t = threading.Thread(target=writer)
        start = time.time()
        t.start()
        new_index, data = self.c.kv.get("py/watch", index=index, wait="10s")
        took = time.time() - start
        t.join()
        self.assertEqual(data["Value"], b"after")
        self.assertGreater(int(new_index), int(index))
        self.assertLess(took, 5)

    def test_blocking_query_times_out_with_the_same_index(self):
        self.c.kv.put("py/still", "x")
        index, _ = self.c.kv.get("py/still")
        start = time.time()
        same, data = self.c.kv.get("py/still", index=index, wait="200ms")
        self.assertEqual(same, index)
        self.assertGreaterEqual(time.time() - start, 0.19)

    def test_the_pharos_kv_cli_talks_to_the_same_agent(self):
        env = dict(os.environ, CONSUL_HTTP_ADDR="127.0.0.1:%d" % self.port)

        def cli(*args, stdin=None):
            return subprocess.run([PHAROS, "kv", *args], env=env, input=stdin, capture_output=True, text=True,
                                  timeout=30)

        r = cli("put", "-flags=7", "py/cli/a", "from the cli")
        self.assertEqual((r.returncode, r.stdout), (0, "Success! Data written to: py/cli/a\n"))
        _, data = self.c.kv.get("py/cli/a")
        self.assertEqual((data["Value"], data["Flags"]), (b"from the cli", 7))
        self.c.kv.put("py/cli/b/c", "x")
        self.assertEqual(cli("get", "py/cli/a").stdout, "from the cli\n")
        self.assertEqual(cli("get", "-keys", "py/cli/").stdout, "py/cli/a\npy/cli/b/\n")
        self.assertEqual(cli("get", "-recurse", "py/cli/").stdout, "py/cli/a:from the cli\npy/cli/b/c:x\n")
        r = cli("get", "py/cli/none")
        self.assertEqual((r.returncode, r.stderr), (1, "Error! No key exists at: py/cli/none\n"))
        r = cli("put", "-cas", "-modify-index=1", "py/cli/a", "lost")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(cli("put", "py/cli/stdin", "-", stdin="piped").returncode, 0)
        self.assertEqual(self.c.kv.get("py/cli/stdin")[1]["Value"], b"piped")
        self.assertEqual(cli("delete", "-recurse", "py/cli/").stdout, "Success! Deleted keys with prefix: py/cli/\n")
        self.assertIsNone(self.c.kv.get("py/cli/", recurse=True)[1])

    def test_status_leader(self):
        self.assertEqual(self.c.status.leader(), "127.0.0.1:8300")


if __name__ == "__main__":
    unittest.main(verbosity=2)
