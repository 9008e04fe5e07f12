#!/usr/bin/python3
"""Four `pharos agent -dev` processes gossiping on 127.0.0.1 (distinct HTTP and
serf_lan ports), plus a Go memberlist peer (tests/integration/mlpeer):

  - a2 joins a1 with -join, a3 through /v1/agent/join (python3-consul2's
    c.agent.join), then `pharos join` again, a4 with -retry-join; an agent
    whose -join fails exits;
  - /v1/agent/members on every agent lists the four alive with Consul's tags
    (read by python3-consul2's c.agent.members()), and `pharos members` prints them;
  - the Go peer joins a1 and is listed (Serf protocol-2 tags: its Meta is the role);
  - kill -9 of a3 and a4: a1 and a2 list them failed (4), a3's serfHealth is
    critical in /v1/health/node on a1 and it drops out of ?passing;
    `pharos force-leave a3` on a1: left (3) on a1 and a2, deregistered on both;
    a2 (reconnect_timeout 8s) reaps a4 and deregisters it; `pharos leave` of a2:
    a1 lists it left (3) and drops it from /v1/catalog/nodes;
  - user events (Serf's messageUserEvent): fired on a1, listed on a2 and a3 with
    the same ID/Name/Payload/LTime, a blocking /v1/event/list on a2 woken by an
    event fired on a3, and a ?node= filter applied by each receiver.

Usage: gossip_agents_test.py PHAROS MLPEER_SOURCE_DIR BUILD_DIR
"""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import consul  # python3-consul2

import support

PHAROS = os.path.abspath(sys.argv.pop(1))
PEER_SRC = os.path.abspath(sys.argv.pop(1))
BUILD = os.path.abspath(sys.argv.pop(1))
PEER = os.path.join(BUILD, "mlpeer")


def get(port, path):
    return support.get_json(port, path)


def wait_until(pred, timeout, what):
    return support.wait_until(what, pred, timeout, interval=0.1)


class Agent(support.GossipAgent):
    """A gossiping dev agent named `name`, started at once (ready() waits for its HTTP API)."""

    def __init__(self, name, *extra):
        super().__init__(PHAROS, name, *extra)

    def output(self):
        return self.log(tail=1 << 20)

    def status_of(self, name):
        m = self.members().get(name)
        return m and m["Status"]

    def wait_status(self, name, want, timeout):
        """Waits until member `name` has Serf status `want` (None: not a member) on this agent."""
        deadline = time.time() + timeout
        while True:
            got = self.status_of(name)
            if got == want:
                return
            if time.time() > deadline:
                raise AssertionError("%s: member %s has status %r, not %r, after %d s; members: %s" %
                                     (self.name, name, got, want, timeout, self.members()))
            time.sleep(0.1)


class GossipAgents(unittest.TestCase):
    def test_four_agents_and_a_go_peer(self):
        support.build_go_peer(PEER_SRC, BUILD, PEER)
        a1 = Agent("a1").ready()
        self.addCleanup(a1.stop)
        # A -join that reaches nobody fails the start, as in Consul.
        bad = Agent("bad", "-join", "127.0.0.1:%d" % support.free_port())
        self.assertNotEqual(bad.proc.wait(timeout=30), 0)
        self.assertIn("error joining the LAN pool: no contact with 127.0.0.1:", bad.output())

        # a2 reaps failed members after 8 s (reconnect_timeout; under 8 h is accepted with -dev only).
        rt = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        self.addCleanup(os.unlink, rt.name)
        json.dump({"reconnect_timeout": "8s"}, rt)
        rt.close()
        a2 = Agent("a2", "-join", "127.0.0.1:%d" % a1.serf, "-config-file", rt.name).ready()
        self.addCleanup(a2.stop)
        a3 = Agent("a3").ready()
        self.addCleanup(a3.stop)
        c3 = consul.Consul(host="127.0.0.1", port=a3.http)
        self.assertTrue(c3.agent.join("127.0.0.1:%d" % a1.serf))
        p = a3.cli("join", "127.0.0.1:%d" % a2.serf)
        self.assertEqual((p.returncode, p.stdout), (0, "Successfully joined cluster by contacting 1 nodes.\n"),
                         p.stderr)
        p = a3.cli("join", "127.0.0.1:%d" % support.free_port())
        self.assertEqual(p.returncode, 1)
        self.assertIn("Failed to join any nodes.", p.stderr)
        a4 = Agent("a4", "-retry-join", "127.0.0.1:%d" % a2.serf, "-retry-interval", "1s").ready()
        self.addCleanup(a4.stop)

        names = {"a1", "a2", "a3", "a4"}
        for a in (a1, a2, a3, a4):
            wait_until(lambda: all(a.status_of(n) == 1 for n in names), 10, "4 alive on " + a.name)
        ms = {m["Name"]: m for m in consul.Consul(host="127.0.0.1", port=a1.http).agent.members()}
        self.assertEqual(set(ms), names)
        for a in (a1, a2, a3, a4):
            m = ms[a.name]
            self.assertEqual((m["Addr"], m["Port"]), ("127.0.0.1", a.serf))
            self.assertEqual(m["Tags"]["role"], "consul")
            self.assertEqual(m["Tags"]["dc"], "dc1")
            self.assertEqual(len(m["Tags"]["id"]), 36)
            self.assertEqual((m["ProtocolMin"], m["ProtocolMax"], m["ProtocolCur"]), (1, 5, 2))
            self.assertEqual((m["DelegateMin"], m["DelegateMax"], m["DelegateCur"]), (2, 5, 4))
        p = a2.cli("members")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [l.split() for l in p.stdout.splitlines()[1:]]
        self.assertEqual(sorted((r[0], r[2]) for r in rows), [(n, "alive") for n in sorted(names)])
        # Each agent registers the alive members in its catalog with a passing serfHealth.
        wait_until(lambda: {n["Node"] for n in get(a1.http, "/v1/catalog/nodes")} == names, 10, "catalog nodes")
        checks = get(a1.http, "/v1/health/node/a3")
        self.assertEqual([(c["CheckID"], c["Status"], c["Output"]) for c in checks],
                         [("serfHealth", "passing", "Agent alive and reachable")])
        self.assertEqual(sorted(s["Node"] for s in get(a1.http, "/v1/catalog/service/consul")), sorted(names))
        self.check_user_events(a1, a2, a3)

        # A Go memberlist node joins a1: listed, not registered (not a Consul agent).
        peer = subprocess.Popen([PEER, "-name", "g1", "-bind", "127.0.0.1", "-port", str(support.free_port()), "-join",
                                 "127.0.0.1:%d" % a1.serf, "-meta", "plain", "-duration", "30", "-quiet-members"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (peer.poll() is None and peer.kill(), peer.wait()))
        g1 = wait_until(lambda: a2.members().get("g1"), 10, "g1 in a2's members")
        self.assertEqual((g1["Status"], g1["Tags"], g1["DelegateCur"]), (1, {"role": "plain"}, 0))
        self.assertNotIn("g1", {n["Node"] for n in get(a1.http, "/v1/catalog/nodes")})

        # kill -9 a3, then a4 (one at a time: each is detected with the others' help): failed, serfHealth critical.
        a3.proc.send_signal(signal.SIGKILL)
        a3.proc.wait()
        for a in (a1, a2):
            a.wait_status("a3", 4, 20)
        a4.proc.send_signal(signal.SIGKILL)
        a4.proc.wait()
        checks = wait_until(lambda: [c for c in get(a1.http, "/v1/health/node/a3") if c["Status"] == "critical"], 5,
                            "a3 serfHealth critical")
        self.assertEqual((checks[0]["CheckID"], checks[0]["Output"]), ("serfHealth", "Agent not live or unreachable"))
        passing = get(a1.http, "/v1/health/service/consul?passing=1")
        self.assertEqual(sorted(e["Node"]["Node"] for e in passing), ["a1", "a2", "a4"])

        # force-leave of the failed a3 on a1: left there and, through Serf's leave intent, on a2.
        p = a1.cli("force-leave", "a3")
        self.assertEqual(p.returncode, 0, p.stderr)
        for a in (a1, a2):
            a.wait_status("a3", 3, 5)
            wait_until(lambda: "a3" not in {n["Node"] for n in get(a.http, "/v1/catalog/nodes")}, 5,
                       "a3 deregistered on " + a.name)

        # a2 reaps a4 after its reconnect_timeout: gone from its members and its catalog.
        for a in (a1, a2):
            wait_until(lambda: a.status_of("a4") in (4, None), 45, "a4 failed on " + a.name)  # few confirmers: slow
        a2.wait_status("a4", None, 15)
        wait_until(lambda: "a4" not in {n["Node"] for n in get(a2.http, "/v1/catalog/nodes")}, 5, "a4 off a2's catalog")
        self.assertEqual(a1.status_of("a4"), 4)  # a1 keeps it for 72 h

        # Graceful leave of a2: left on a1, deregistered.
        p = a2.cli("leave")
        self.assertEqual((p.returncode, p.stdout), (0, "Graceful leave complete\n"), p.stderr)
        self.assertEqual(a2.proc.wait(timeout=15), 0)
        a1.wait_status("a2", 3, 30)  # memberlist's dead message, or the leave intent + failure detection
        wait_until(lambda: "a2" not in {n["Node"] for n in get(a1.http, "/v1/catalog/nodes")}, 5, "a2 deregistered")

        self.assertEqual({n["Node"] for n in get(a1.http, "/v1/catalog/nodes")}, {"a1", "a4"})
        p = a1.cli("force-leave", "nobody")
        self.assertEqual(p.returncode, 1)
        self.assertIn("No node found with name 'nobody'", p.stderr)
        p = a1.cli("force-leave", "-prune", "a3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNone(a1.status_of("a3"))

    def check_user_events(self, a1, a2, a3):
        """Consul's user events over Serf: fired on a1 (python3-consul2), listed on a2 and a3 with the same ID,
        Name, Payload and LTime; a blocking list on a2 wakes when a3 fires; a node filter keeps an event off
        the agents it does not name."""
        c1, c2 = (consul.Consul(host="127.0.0.1", port=a.http) for a in (a1, a2))
        fired = c1.event.fire("deploy", "v1.2.3")
        self.assertEqual((fired["Name"], len(fired["ID"])), ("deploy", 36))

        def fields(a):
            return [(e["ID"], e["Name"], e["Payload"], e["LTime"]) for e in get(a.http, "/v1/event/list?name=deploy")]

        want = fields(a1)
        self.assertEqual(fired["LTime"], 0)  # Consul's answer to a fire: the LTime is Serf's, in the lists
        self.assertEqual([w[:3] for w in want], [(fired["ID"], "deploy", "djEuMi4z")])  # base64 of v1.2.3
        self.assertGreater(want[0][3], 0)
        for a in (a2, a3):
            wait_until(lambda: fields(a), 10, "the event on " + a.name)
            self.assertEqual(fields(a), want, a.name)

        # A blocking list on a2 (?index= of its newest event) wakes when a3 fires the next one.
        index, events = c2.event.list(name="deploy")
        self.assertEqual(len(events), 1)
        result = {}

        def block():
            t = time.time()
            result["got"] = c2.event.list(name="deploy", index=index, wait="30s")
            result["took"] = time.time() - t

        waiter = threading.Thread(target=block)
        waiter.start()
        time.sleep(0.5)
        self.assertTrue(waiter.is_alive())  # blocked until there is a new event
        support.ok(a3.http, "PUT", "/v1/event/fire/deploy", "v2")
        waiter.join(timeout=35)
        new_index, events = result["got"]
        self.assertLess(result["took"], 10)
        self.assertNotEqual(new_index, index)
        self.assertEqual([base64.b64decode(e["Payload"]) for e in events], [b"v1.2.3", b"v2"])
        self.assertGreater(events[1]["LTime"], events[0]["LTime"])

        # ?node= is applied by each receiver: only a3 keeps it (the firing a1 too drops it).
        support.ok(a1.http, "PUT", "/v1/event/fire/only-a3?node=%5Ea3%24")
        wait_until(lambda: get(a3.http, "/v1/event/list?name=only-a3"), 10, "only-a3 on a3")
        support.ok(a1.http, "PUT", "/v1/event/fire/marker")  # fired after: once it is on a2, so would be only-a3
        wait_until(lambda: get(a2.http, "/v1/event/list?name=marker"), 10, "marker on a2")
        self.assertEqual(get(a2.http, "/v1/event/list?name=only-a3"), [])
        self.assertEqual(get(a1.http, "/v1/event/list?name=only-a3"), [])


if __name__ == "__main__":
    unittest.main()
