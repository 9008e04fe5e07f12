#!/usr/bin/python3
"""Time from kill -9 of one node to every survivor reporting it dead, for three
pharos memberlist nodes and for three Go memberlist nodes (Debian 0.2.2), in
the same run, alternating rounds; prints each round, the medians, the means and the ratios.

Usage: kill_vs_go.py PHAROS_MLNODE MLPEER [ROUNDS] [PROFILE]
(MLPEER: built from tests/integration/mlpeer, e.g. by the memberlist_go test.)
"""
import json
import statistics
import subprocess
import sys
import threading
import time

MLNODE, MLPEER = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PROFILE = sys.argv[4] if len(sys.argv) > 4 else "lan"


def start(binary, name, port, join):
    argv = [binary, "-name", name, "-bind", "127.0.0.1", "-port", str(port), "-duration", "40", "-quiet-members",
            "-profile", PROFILE]
    if join:
        argv += ["-join", "127.0.0.1:%d" % join]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    p.events = []
    threading.Thread(target=lambda: [p.events.append(json.loads(l)) for l in p.stdout if l.startswith("{")],
                     daemon=True).start()
    return p


def round_(binary, base):
    nodes = [start(binary, "n1", base, None)]
    time.sleep(0.5)
    nodes.append(start(binary, "n2", base + 1, base))
    time.sleep(0.5)
    nodes.append(start(binary, "n3", base + 2, base))
    time.sleep(6)
    killed = int(time.time() * 1000)
    nodes[2].kill()
    nodes[2].wait()
    deadline = time.time() + 20
    seen = {}
    while time.time() < deadline and len(seen) < 2:
        for i in (0, 1):
            for e in list(nodes[i].events):
                if e.get("event") == "leave" and e.get("name") == "n3":
                    seen[i] = e["t_ms"] - killed
        time.sleep(0.05)
    for n in nodes:
        n.kill()
        n.wait()
    return max(seen.values()) if len(seen) == 2 else None


def main():
    res = {"pharos": [], "go": []}
    for r in range(ROUNDS):
        for name, binary, base in (("pharos", MLNODE, 18100), ("go", MLPEER, 18200)):
            ms = round_(binary, base + 10 * r)
            res[name].append(ms)
            print("round %d %-6s kill -> both survivors report dead: %s ms" % (r, name, ms), flush=True)
    ok = {k: [x for x in v if x is not None] for k, v in res.items()}
    p, g = statistics.median(ok["pharos"]), statistics.median(ok["go"])
    pm, gm = statistics.mean(ok["pharos"]), statistics.mean(ok["go"])
    missed = sum(len(v) - len(ok[k]) for k, v in res.items())
    print("median: pharos %d ms, go %d ms, ratio pharos/go %.2f (profile %s, %d rounds)" % (p, g, p / g, PROFILE, ROUNDS))
    print("mean:   pharos %d ms, go %d ms, ratio pharos/go %.2f (rounds without a result: %d)" % (pm, gm, pm / gm, missed))


if __name__ == "__main__":
    main()
