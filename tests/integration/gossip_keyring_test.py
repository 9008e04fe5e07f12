#!/usr/bin/python3
"""Gossip key rotation across three `pharos agent -dev` processes with `encrypt`
(a1 with a data dir), as Consul's operator does it:

  - /v1/operator/keyring lists one key on 3/3 nodes (Consul's response shape);
    POST installs a new key, PUT makes it primary, DELETE removes the old one;
    removing the primary is refused by every node (Consul's 500 error list);
  - then `pharos keyring -install/-use/-remove/-list` rotates once more;
  - Consul's request errors (405, 400s) and, on an agent without `encrypt`,
    Consul's "Keyring is empty (encryption not enabled)" 500;
  - the three stay alive throughout; a 4th agent with only the newest key
    joins, one with only the first key cannot (its -join fails, it exits);
  - a1's <data_dir>/serf/local.keyring holds the newest key; restarted with
    its old `encrypt`, a1 uses the file and rejoins;
  - a Go memberlist peer (tests/integration/mlpeer) with the keyring
    [newest, first] joins and is alive on every agent.

Usage: gossip_keyring_test.py PHAROS MLPEER_SOURCE_DIR BUILD_DIR
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import support

PHAROS = os.path.abspath(sys.argv.pop(1))
PEER_SRC = os.path.abspath(sys.argv.pop(1))
BUILD = os.path.abspath(sys.argv.pop(1))
PEER = os.path.join(BUILD, "mlpeer-keyring")  # its own binary: ctest -j may run gossip_agents at once


def key(n):
    return base64.b64encode(os.urandom(n)).decode()


class Agent(support.GossipAgent):
    def __init__(self, name, *extra, serf=None):
        super().__init__(PHAROS, name, *extra, serf=serf)

    def keyring(self, method, k=None):
        return self.call(method, "/v1/operator/keyring", None if k is None else {"Key": k}, timeout=15)


class GossipKeyring(unittest.TestCase):
    def wait_alive(self, agents, names, timeout=10):
        deadline = time.time() + timeout
        for a in agents:
            while not names <= a.alive():
                if time.time() > deadline:
                    self.fail("%s not all alive on %s: %s" % (sorted(names), a.name,
                                                              [(m["Name"], m["Port"], m["Status"])
                                                               for m in a.get_json("/v1/agent/members")]))
                time.sleep(0.05)

    def test_rotation_through_the_api_and_the_cli(self):
        support.build_go_peer(PEER_SRC, BUILD, PEER)
        k1, k2, k3 = key(16), key(32), key(24)
        data = tempfile.mkdtemp(prefix="pharos-keyring-")
        self.addCleanup(shutil.rmtree, data, True)
        # -dev disables the keyring file as Consul's dev mode does; a1 asks for it back.
        a1_args = ("-encrypt", k1, "-data-dir", data, "-disable-keyring-file=false")
        a1 = Agent("a1", *a1_args).ready()
        self.addCleanup(a1.stop)
        a2 = Agent("a2", "-encrypt", k1, "-join", "127.0.0.1:%d" % a1.serf).ready()
        self.addCleanup(a2.stop)
        a3 = Agent("a3", "-encrypt", k1, "-join", "127.0.0.1:%d" % a2.serf).ready()
        self.addCleanup(a3.stop)
        agents = (a1, a2, a3)
        names = {"a1", "a2", "a3"}
        self.wait_alive(agents, names)
        keyring_file = os.path.join(data, "serf", "local.keyring")
        with open(keyring_file) as f:
            self.assertEqual(json.load(f), [k1])

        self.assertEqual(support.get_json(a2.http, "/v1/operator/keyring", timeout=15),
                         [{"WAN": False, "Datacenter": "dc1", "Segment": "", "Keys": {k1: 3},
                           "PrimaryKeys": {k1: 3}, "NumNodes": 3}])

        # HTTP: install k2, refuse removing the primary, use k2, remove k1.
        self.assertEqual(a1.keyring("POST", k2), (200, ""))
        listed = support.get_json(a3.http, "/v1/operator/keyring", timeout=15)[0]
        self.assertEqual((listed["Keys"], listed["PrimaryKeys"]), ({k1: 3, k2: 3}, {k1: 3}))
        st, body = a2.keyring("DELETE", k1)
        self.assertEqual(st, 500)
        self.assertTrue(body.startswith("4 errors occurred:\n\t* dc1 (LAN) error: 3/3 nodes reported failure\n"), body)
        for n in sorted(names):
            self.assertIn("\t* %s: Removing the primary key is not allowed" % n, body)
        self.assertEqual(a2.keyring("PUT", k2), (200, ""))
        listed = support.get_json(a1.http, "/v1/operator/keyring", timeout=15)[0]
        self.assertEqual(listed["PrimaryKeys"], {k2: 3})
        self.assertEqual(a3.keyring("DELETE", k1), (200, ""))
        listed = support.get_json(a1.http, "/v1/operator/keyring", timeout=15)[0]
        self.assertEqual((listed["Keys"], listed["PrimaryKeys"], listed["NumNodes"]), ({k2: 3}, {k2: 3}, 3))

        # Consul's request errors.
        self.assertEqual(a1.call("PATCH", "/v1/operator/keyring")[0], 405)
        self.assertEqual(a1.call("POST", "/v1/operator/keyring"), (400, "Request decode failed: EOF"))
        self.assertEqual(a1.call("GET", "/v1/operator/keyring?relay-factor=9"),
                         (400, "Invalid relay-factor: Relay factor must be in range: [0, 5]"))
        self.assertEqual(a1.call("PUT", "/v1/operator/keyring?local-only=true", {"Key": k2}),
                         (400, "Invalid use of local-only: local-only can only be set for list requests"))

        # The CLI: install k3, use it, remove k2, list.
        for args, info in ((("-install", k3), "Installing new gossip encryption key..."),
                           (("-use", k3), "Changing primary gossip encryption key..."),
                           (("-remove", k2), "Removing gossip encryption key...")):
            p = a3.cli("keyring", *args)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "==> %s\n" % info, ""))
        p = a1.cli("keyring", "-list")
        self.assertEqual((p.returncode, p.stdout),
                         (0, "==> Gathering installed encryption keys...\n\ndc1 (LAN):\n  %s [3/3]\n" % k3), p.stderr)
        p = a1.cli("keyring", "-use", k1)
        self.assertEqual(p.returncode, 1)
        self.assertIn("a1: Requested key is not in the keyring", p.stderr)
        p = a1.cli("keyring", "-list", "-use", k1)
        self.assertEqual((p.returncode, p.stderr), (1, "Only a single action is allowed\n"))
        with open(keyring_file) as f:
            self.assertEqual(json.load(f), [k3])

        # Gossip carries on with k3 alone: nobody is suspected, a k3 agent joins, a k1 one cannot.
        time.sleep(2)
        for a in agents:
            self.assertEqual(a.alive(), names, a.name)
        a4 = Agent("a4", "-encrypt", k3, "-join", "127.0.0.1:%d" % a3.serf).ready()
        self.addCleanup(a4.stop)
        names.add("a4")
        self.wait_alive(agents + (a4,), names)
        old = Agent("old", "-encrypt", k1, "-join", "127.0.0.1:%d" % a1.serf)
        self.addCleanup(old.stop)
        self.assertNotEqual(old.proc.wait(timeout=30), 0)
        self.assertIn("error joining the LAN pool", old.log())
        self.assertNotIn("old", a1.alive())

        # Without encryption every node says so (Consul's error for an agent without `encrypt`).
        plain = Agent("plain").ready()
        self.addCleanup(plain.stop)
        self.assertEqual(plain.keyring("GET"), (500, "2 errors occurred:\n\t* dc1 (LAN) error: 1/1 nodes reported "
                                                      "failure\n\t* plain: Keyring is empty (encryption not "
                                                      "enabled)\n\n"))
        plain.stop()

        # a1 restarts (same port) with its first `encrypt`: the keyring file wins, and it rejoins with k3.
        a1.proc.terminate()
        self.assertEqual(a1.proc.wait(timeout=15), 0)
        a1 = Agent("a1", *(a1_args + ("-join", "127.0.0.1:%d" % a2.serf)), serf=a1.serf).ready()
        self.addCleanup(a1.stop)
        self.assertIn("LAN keyring exists", a1.log())
        self.wait_alive((a1, a2), names)

        # A Go memberlist node with the keyring [k3, k1] joins and stays alive on every agent.
        peer = subprocess.Popen([PEER, "-name", "g1", "-bind", "127.0.0.1", "-port", str(support.free_port()), "-join",
                                 "127.0.0.1:%d" % a4.serf, "-key", "%s,%s" % (k3, k1), "-duration", "20",
                                 "-quiet-members"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (peer.poll() is None and peer.kill(), peer.wait()))
        names.add("g1")
        self.wait_alive((a1, a2, a3, a4), names)
        time.sleep(2)
        for a in (a1, a2, a3, a4):
            self.assertEqual(a.alive(), names, a.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
