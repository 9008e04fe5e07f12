#!/usr/bin/python3
"""pharos's memberlist against a real Go memberlist node (Debian's 0.2.2).

Builds tests/integration/mlpeer (Go, GOPATH mode, offline) and runs it beside
build/pharos-mlnode on 127.0.0.1, in both directions, in parallel scenarios:
  - a pharos node joins a Go node, and a Go node joins a pharos node;
  - push/pull user state and user messages (UDP and TCP) cross over;
  - each side detects the other's kill -9, and the other's graceful leave;
  - the same join and user messages with encryption on (one AES key);
  - Go merges a bounded periodic push/pull (pharos with -push-pull-max 1).
Usage: memberlist_go_test.py PHAROS_MLNODE MLPEER_SOURCE_DIR BUILD_DIR
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import support

MLNODE, PEER_SRC, BUILD = (os.path.abspath(a) for a in sys.argv[1:4])
PEER = os.path.join(BUILD, "mlpeer")
KEY = "SGVsbG8sIHBoYXJvcyBnb3NzaXAga2V5IDMyYnl0ZXM="  # 32 bytes, base64



class Node:
    """A running node; its JSON lines are collected in self.events."""

    def __init__(self, argv, tag):
        self.tag = tag
        self.events = []
        self.cv = threading.Condition()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cv:
                self.events.append(ev)
                self.cv.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("%s: timed out waiting for %s; events: %s" % (self.tag, what, self.events[-8:]))
                self.cv.wait(left)

    def wait_event(self, event, name=None, timeout=10):
        return self.wait(lambda e: e.get("event") == event and (name is None or e.get("name") == name),
                         timeout, "%s %s" % (event, name or ""))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        ms = int(time.time() * 1000)
        self.proc.wait()
        return ms

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def go(name, port, *extra):
    return Node([PEER, "-name", name, "-bind", "127.0.0.1", "-port", str(port), "-quiet-members"] + list(extra),
                "go:" + name)


def pharos(name, port, *extra):
    return Node([MLNODE, "-name", name, "-bind", "127.0.0.1", "-port", str(port), "-quiet-members"] + list(extra),
                "pharos:" + name)


def hexs(s):
    return s.encode().hex()


results = {}


def scenario(fn):
    def run():
        try:
            fn()
            results[fn.__name__] = "ok"
        except Exception as e:  # reported below
            results[fn.__name__] = "FAIL: %s" % e
    return run


@scenario
def pharos_joins_go_and_go_detects_its_kill():
    g = go("g1", 17946, "-duration", "40", "-meta", "gm", "-state", "GSTATE")
    time.sleep(0.5)
    p = pharos("p1", 17947, "-duration", "40", "-join", "127.0.0.1:17946", "-meta", "pm", "-state", "PSTATE",
               "-send-user", "g1:hello")
    try:
        ev = g.wait_event("join", "p1")
        assert ev["meta"] == "pm" and ev["vsn"] == [1, 5, 2, 0, 0, 0], ev
        assert p.wait_event("join", "g1")["meta"] == "gm"
        assert p.wait_event("joined")["n"] == 1
        g.wait(lambda e: e.get("event") == "remote_state" and e["hex"] == hexs("PSTATE") and e["join"], 5, "p1 state")
        p.wait(lambda e: e.get("event") == "remote_state" and e["hex"] == hexs("GSTATE") and e["join"], 5, "g1 state")
        g.wait(lambda e: e.get("event") == "user_msg" and e["hex"] == hexs("hello-udp"), 5, "udp user msg")
        g.wait(lambda e: e.get("event") == "user_msg" and e["hex"] == hexs("hello-tcp"), 5, "tcp user msg")
        time.sleep(3)  # a few probe rounds both ways
        killed = p.kill9()
        ev = g.wait_event("leave", "p1", timeout=15)
        dt = ev["t_ms"] - killed
        print("go g1 saw pharos p1 dead %d ms after kill -9 (Go vs Go, LAN: 5500-7000 ms)" % dt)
        assert 2000 < dt < 12000, dt
    finally:
        p.stop()
        g.stop()


@scenario
def go_joins_pharos_and_pharos_detects_its_kill():
    p = pharos("p2", 17956, "-duration", "40", "-meta", "pm2", "-state", "PSTATE2")
    time.sleep(0.5)
    g = go("g2", 17957, "-duration", "40", "-join", "127.0.0.1:17956", "-meta", "gm2", "-state", "GSTATE2",
           "-send-user", "p2:hi")
    try:
        assert p.wait_event("join", "g2")["meta"] == "gm2"
        assert g.wait_event("join", "p2")["meta"] == "pm2"
        assert g.wait_event("joined")["n"] == 1
        p.wait(lambda e: e.get("event") == "remote_state" and e["hex"] == hexs("GSTATE2"), 5, "g2 state")
        p.wait(lambda e: e.get("event") == "user_msg" and e["hex"] == hexs("hi-udp"), 5, "udp user msg")
        p.wait(lambda e: e.get("event") == "user_msg" and e["hex"] == hexs("hi-tcp"), 5, "tcp user msg")
        time.sleep(3)
        killed = g.kill9()
        ev = p.wait_event("leave", "g2", timeout=15)
        dt = ev["t_ms"] - killed
        print("pharos p2 saw go g2 dead %d ms after kill -9 (Go vs Go, LAN: 5500-7000 ms)" % dt)
        assert 2000 < dt < 12000, dt
    finally:
        p.stop()
        g.stop()


@scenario
def graceful_leaves_are_seen_quickly_both_ways():
    g = go("g3", 17966, "-duration", "30", "-profile", "local")
    time.sleep(0.5)
    p = pharos("p3", 17967, "-duration", "3", "-join", "127.0.0.1:17966", "-leave", "-profile", "local")
    g4 = go("g4", 17968, "-duration", "4", "-join", "127.0.0.1:17966", "-leave", "-profile", "local")
    p5 = pharos("p5", 17969, "-duration", "30", "-join", "127.0.0.1:17966", "-profile", "local")
    try:
        g.wait_event("join", "p3")
        p5.wait_event("join", "g4")
        p.proc.wait(timeout=15)  # left and exited after 3 s
        exited_ms = time.time() * 1000
        ev = g.wait_event("leave", "p3", timeout=10)
        # Seen through pharos's dead-self message, not failure detection (which takes >= 4.5 s with the
        # local profile after the node goes quiet): within 3 s of the exit, however loaded the machine.
        assert ev["t_ms"] - exited_ms < 3000, (ev, exited_ms)
        ev = p5.wait_event("leave", "g4", timeout=8)
        g4.proc.wait(timeout=15)
        print("graceful leaves: go saw pharos leave at up %d ms; pharos saw go leave" % g.wait_event("leave", "p3")["up_ms"])
    finally:
        for n in (p, g4, p5, g):
            n.stop()


@scenario
def encrypted_cluster_joins_both_ways():
    """With encryption on: joins both ways, user messages and push/pull state both ways, a graceful
    leave, and each side detecting the other's kill -9."""
    g = go("g6", 17976, "-duration", "45", "-key", KEY, "-profile", "local", "-state", "GSEC")
    time.sleep(0.5)
    p = pharos("p6", 17977, "-duration", "45", "-key", KEY, "-join", "127.0.0.1:17976", "-profile", "local",
               "-send-user", "g6:secret", "-state", "PSEC")
    p.wait_event("started")
    g7 = go("g7", 17978, "-duration", "45", "-key", KEY, "-join", "127.0.0.1:17977", "-profile", "local")
    p8 = pharos("p8", 17979, "-duration", "4", "-key", KEY, "-join", "127.0.0.1:17976", "-leave", "-profile", "local")
    try:
        g.wait_event("join", "p6")
        p.wait_event("join", "g7")
        g.wait_event("join", "g7")
        g.wait(lambda e: e.get("event") == "user_msg" and e["hex"] == hexs("secret-tcp"), 5, "encrypted tcp user msg")
        g.wait(lambda e: e.get("event") == "user_msg" and e["hex"] == hexs("secret-udp"), 5, "encrypted udp user msg")
        g.wait(lambda e: e.get("event") == "remote_state" and e["hex"] == hexs("PSEC"), 5, "p6 state, encrypted")
        p.wait(lambda e: e.get("event") == "remote_state" and e["hex"] == hexs("GSEC"), 5, "g6 state, encrypted")
        g.wait_event("join", "p8")
        p8.proc.wait(timeout=15)  # left gracefully and exited after 4 s
        exited_ms = time.time() * 1000
        ev = g.wait_event("leave", "p8", timeout=10)
        assert ev["t_ms"] - exited_ms < 3000, (ev, exited_ms)  # the leave message, not failure detection
        time.sleep(1)
        killed = g7.kill9()
        ev = p.wait_event("leave", "g7", timeout=15)
        print("encrypted: pharos saw go g7 dead %d ms after kill -9 (Go vs Go, Local: 4500-5600 ms)" % (ev["t_ms"] - killed))
        killed = p.kill9()
        # g6 is alone now, but Go counts the dead g7 and the left p8 in its estimate of N (4), so it
        # expects one confirmation that nobody can send: the suspicion runs its maximum, 6 x 3 s.
        ev = g.wait_event("leave", "p6", timeout=30)
        dt = ev["t_ms"] - killed
        print("encrypted: go saw pharos p6 dead %d ms after kill -9 (Go's maximum suspicion: 18 s)" % dt)
        assert 1000 < dt < 28000, dt
    finally:
        for n in (p, p8, g7, g):
            n.stop()


@scenario
def go_merges_a_bounded_periodic_push_pull():
    # pharos with push_pull_max_nodes = 1: its periodic push/pulls (sent and answered) carry only
    # itself; Go's mergeRemoteState must take them (Join=false) and nobody may drop out.
    g = go("g8", 17986, "-duration", "45", "-profile", "local", "-state", "G8")
    time.sleep(0.5)
    g9 = go("g9", 17988, "-duration", "45", "-join", "127.0.0.1:17986", "-profile", "local", "-state", "G9")
    g.wait_event("join", "g9")
    p = pharos("p10", 17987, "-duration", "45", "-join", "127.0.0.1:17986", "-profile", "local",
               "-state", "P10", "-push-pull-max", "1")
    try:
        p.wait_event("join", "g9")  # the join reply carried Go's whole table
        g9.wait_event("join", "p10")
        bounded = lambda e: e.get("event") == "remote_state" and e["hex"] == hexs("P10") and not e["join"]
        deadline = time.time() + 40  # push/pull every 15 s (local profile), staggered
        while not any(bounded(e) for n in (g, g9) for e in list(n.events)):
            assert time.time() < deadline, "no periodic push/pull from pharos reached Go"
            time.sleep(0.5)
        time.sleep(1)
        for n in (g, g9, p):
            assert not [e for e in list(n.events) if e.get("event") == "leave"], n.tag
        print("bounded push/pull: Go merged pharos's 1-entry periodic state")
    finally:
        for n in (p, g9, g):
            n.stop()


def main():
    support.build_go_peer(PEER_SRC, BUILD, PEER)
    threads = [threading.Thread(target=s) for s in (pharos_joins_go_and_go_detects_its_kill,
                                                    go_joins_pharos_and_pharos_detects_its_kill,
                                                    graceful_leaves_are_seen_quickly_both_ways,
                                                    encrypted_cluster_joins_both_ways,
                                                    go_merges_a_bounded_periodic_push_pull)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = False
    for name, r in sorted(results.items()):
        print("%-55s %s" % (name, r))
        failed |= r != "ok"
    if failed or len(results) != len(threads):
        sys.exit(1)


if __name__ == "__main__":
    main()
