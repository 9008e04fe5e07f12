#!/usr/bin/python3
"""Durability of `pharos agent -server -bootstrap -data-dir D`:
- kill -9 during concurrent PUT load from 16 clients, restart on the same data
  dir, 20 times: every acknowledged write is present with its value; a write in
  flight at the kill is either absent (previous value) or whole;
- a half record appended by hand to the WAL is dropped at start-up;
- a corrupted record in the middle of the WAL refuses start-up with a message.
Usage: durability_test.py path/to/pharos"""
import http.client
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import threading
import time
import unittest
import base64

import support

PHAROS = sys.argv.pop(1) if len(sys.argv) > 1 else "build/pharos"
ROUNDS = int(os.environ.get("PHAROS_CRASH_ROUNDS", "20"))
CLIENTS = 16
KEYS_PER_CLIENT = 40


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def wal_record(index, term, rtype, payload):
    rest = struct.pack("<QQB", index, term, rtype) + payload
    length = struct.pack("<I", len(payload))
    crc = crc32c(rest, crc32c(length))
    return length + struct.pack("<I", crc) + rest


class Agent(support.Agent):
    """A durable server agent on `data_dir`, restartable; its log is appended to `data_dir`.log."""

    def __init__(self, data_dir, config=None):
        args = ["-server", "-bootstrap", "-data-dir", data_dir, "-bind", "127.0.0.1", "-node", "crash-test"]
        if config:
            args += ["-config-file", config]
        super().__init__(PHAROS, *args, dev=False, log_path=data_dir + ".log")
        self.data_dir = data_dir

    def tail(self):
        return self.log(3000)

    def kv_all(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/v1/kv/?recurse")
        r = c.getresponse()
        body = r.read()
        if r.status == 404:
            return {}
        assert r.status == 200, (r.status, body)
        return {e["Key"]: base64.b64decode(e["Value"] or "").decode() for e in json.loads(body)}

    def put(self, key, value):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("PUT", "/v1/kv/" + key, body=value)
        r = c.getresponse()
        return r.status, r.read()


def load(agent, t, rnd, stop, acked, inflight, counts):
    """One client: sequential PUTs over its own keys; records what was acknowledged."""
    t0 = time.time()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=10)
        j = 0
        while not stop.is_set():
            key = "c%02d/k%02d" % (t, j % KEYS_PER_CLIENT)
            value = "r%d:c%d:w%d:" % (rnd, t, j) + "v" * (j % 97)
            inflight[key] = value
            conn.request("PUT", "/v1/kv/" + key, body=value)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or body != b"true":
                counts["bad"] += 1
                return
            acked[key] = value
            del inflight[key]
            counts["acked"] += 1
            j += 1
    except (OSError, http.client.HTTPException) as e:
        counts.setdefault("errors", []).append("%.3f %r" % (time.time() - t0, e))
        return  # the agent was killed


class Durability(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pharos-durability-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_kill_9_under_load_loses_no_acknowledged_write(self):
        cfg = os.path.join(self.tmp, "agent.json")
        with open(cfg, "w") as f:
            json.dump({"raft_snapshot_threshold": 700}, f)  # snapshots and segment removal happen during the rounds
        agent = Agent(os.path.join(self.tmp, "data"), cfg)
        truth = {}  # key -> value that must be there
        rng = random.Random(4)
        total = 0
        node_id = None
        for rnd in range(ROUNDS):
            agent.start()
            # The node ID lives in <data_dir>/node-id: a restarted agent keeps it (as Consul).
            got_id = agent.get_json("/v1/agent/self")["Config"]["NodeID"]
            self.assertEqual(got_id, node_id or got_id, "round %d: the node ID changed" % rnd)
            node_id = got_id
            stop = threading.Event()
            acked, counts = {}, {"acked": 0, "bad": 0}
            inflight = [dict() for _ in range(CLIENTS)]
            threads = [threading.Thread(target=load, args=(agent, t, rnd, stop, acked, inflight[t], counts))
                       for t in range(CLIENTS)]
            for th in threads:
                th.start()
            # Kill at a random moment once writes flow (a contended disk can stall an fsync for a while).
            deadline = time.time() + 20
            while counts["acked"] < 16 and counts["bad"] == 0 and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.4))
            agent.kill9()
            stop.set()
            for th in threads:
                th.join()
            self.assertEqual(counts["bad"], 0, agent.tail())
            self.assertGreater(counts["acked"], 0, "round %d: no write was acknowledged; errors %s\n%s" % (
                rnd, counts.get("errors"), agent.tail()))
            total += counts["acked"]
            truth.update(acked)

            agent.start()
            got = agent.kv_all()
            for key, value in truth.items():
                maybe = [value]
                for d in inflight:
                    if key in d:
                        maybe.append(d[key])  # written, not acknowledged: may or may not be there
                self.assertIn(got.get(key), maybe, "round %d: key %s" % (rnd, key))
            for d in inflight:
                for key, value in d.items():
                    if key not in truth:
                        self.assertIn(got.get(key), (None, value), "round %d: key %s" % (rnd, key))
            self.assertEqual(set(got) - set(truth) - {k for d in inflight for k in d}, set())
            truth = dict(got)
            agent.kill9()
        names = os.listdir(os.path.join(self.tmp, "data", "state"))
        self.assertTrue(any(n.startswith("snapshot-") for n in names), names)
        print("%d rounds, %d acknowledged writes, all present; files: %s" % (ROUNDS, total, sorted(names)),
              file=sys.stderr)

    def _fresh_log(self, writes):
        agent = Agent(os.path.join(self.tmp, "data"))
        agent.start()
        for i in range(writes):
            self.assertEqual(agent.put("k%03d" % i, "value-%d" % i), (200, b"true"))
        agent.stop()
        state = os.path.join(self.tmp, "data", "state")
        segs = sorted(n for n in os.listdir(state) if n.startswith("wal-"))
        return agent, os.path.join(state, segs[-1])

    def test_a_torn_tail_is_dropped_at_start_up(self):
        agent, seg = self._fresh_log(50)
        with open(seg, "rb") as f:
            before = f.read()
        rec = wal_record(10 ** 6, 0, 1, b"\x01\x00" + b"half a command" * 4)
        half = rec[: len(rec) // 2]
        with open(seg, "ab") as f:
            f.write(half)
        agent.start()
        self.assertIn("dropping torn tail", agent.tail())
        got = agent.kv_all()
        for i in range(50):
            self.assertEqual(got["k%03d" % i], "value-%d" % i)
        with open(seg, "rb") as f:
            after = f.read()
        self.assertEqual(after[: len(before)], before)
        self.assertNotEqual(after[len(before): len(before) + len(half)], half)  # cut off; new records follow
        self.assertEqual(agent.put("after", "torn"), (200, b"true"))
        agent.stop()
        agent.start()
        self.assertEqual(agent.kv_all()["after"], "torn")
        agent.stop()

    def test_a_corrupted_record_in_the_middle_refuses_start_up(self):
        agent, seg = self._fresh_log(50)
        with open(seg, "r+b") as f:
            data = bytearray(f.read())
            at = len(data) // 2
            data[at] ^= 0x40
            f.seek(0)
            f.write(data)
        agent.start(ready=False)
        rc = agent.proc.wait(timeout=15)
        agent.logf.close()
        self.assertNotEqual(rc, 0)
        log = agent.tail()
        self.assertIn("refusing to start", log)
        self.assertIn(os.path.basename(seg), log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
