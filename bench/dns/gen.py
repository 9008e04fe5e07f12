#!/usr/bin/python3
"""Data for bench/dns/dns_vs_nsd: registers one catalog in a running pharos
agent (through /v1/catalog/register on one keep-alive connection) and writes the
same data as an nsd zone, plus dnsperf query files.

  web            10 instances on nodes node-1..10 (10.0.0.1..10), port 8080, passing
  svc-0..9999    one instance each on node mix-(i % 100), service address 10.2.x.y, port 9000

Zone records are exactly what pharos answers (TTL 0): A and SRV for web (SRV
targets node-N.node.dc1.consul. with their A records), A and SRV for each svc-N
(SRV target <hex>.addr.dc1.consul. with its A record), and the RFC 2782 names.

Usage: gen.py HTTP_PORT OUT_DIR
Writes OUT_DIR/consul.zone, a.txt, srv.txt, mix.txt, samples.txt."""
import http.client
import json
import random
import sys

port, out = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def put(path, body):
    conn.request("PUT", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit("PUT %s: %d %s" % (path, r.status, data[:200]))


zone = ["$ORIGIN consul.", "$TTL 0",
        "@ IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0", "@ IN NS ns.consul.", "ns IN A 127.0.0.1"]

for i in range(1, 11):
    addr = "10.0.0.%d" % i
    put("/v1/catalog/register",
        {"Node": "node-%d" % i, "Address": addr,
         "Service": {"ID": "web-%d" % i, "Service": "web", "Port": 8080},
         "Check": {"CheckID": "service:web-%d" % i, "Name": "web check", "Status": "passing",
                   "ServiceID": "web-%d" % i}})
    zone.append("web.service IN A %s" % addr)
    zone.append("web.service IN SRV 1 1 8080 node-%d.node.dc1.consul." % i)
    zone.append("_web._tcp.service IN SRV 1 1 8080 node-%d.node.dc1.consul." % i)
    zone.append("node-%d.node.dc1 IN A %s" % (i, addr))

for k in range(100):
    put("/v1/catalog/register", {"Node": "mix-%d" % k, "Address": "10.1.0.%d" % (k + 1)})
for i in range(10000):
    addr = "10.2.%d.%d" % (i // 256, i % 256)
    hexaddr = "0a02%02x%02x" % (i // 256, i % 256)
    put("/v1/catalog/register",
        {"Node": "mix-%d" % (i % 100), "Address": "10.1.0.%d" % (i % 100 + 1), "SkipNodeUpdate": True,
         "Service": {"ID": "svc-%d" % i, "Service": "svc-%d" % i, "Address": addr, "Port": 9000},
         "Check": {"CheckID": "service:svc-%d" % i, "Name": "svc check", "Status": "passing",
                   "ServiceID": "svc-%d" % i}})
    zone.append("svc-%d.service IN A %s" % (i, addr))
    zone.append("svc-%d.service IN SRV 1 1 9000 %s.addr.dc1.consul." % (i, hexaddr))
    zone.append("_svc-%d._tcp.service IN SRV 1 1 9000 %s.addr.dc1.consul." % (i, hexaddr))
    zone.append("%s.addr.dc1 IN A %s" % (hexaddr, addr))

with open(out + "/consul.zone", "w") as f:
    f.write("\n".join(zone) + "\n")
with open(out + "/a.txt", "w") as f:
    f.write("web.service.consul A\n")
with open(out + "/srv.txt", "w") as f:
    f.write("web.service.consul SRV\n")
rng = random.Random(7)
mix = []
for i in range(10000):
    mix.append("svc-%d.service.consul A" % i)
    if i % 4 == 0:
        mix.append("_svc-%d._tcp.service.consul SRV" % i)
    if i % 50 == 0:
        mix.append("web.service.consul A")
        mix.append("_web._tcp.service.consul SRV")
rng.shuffle(mix)
with open(out + "/mix.txt", "w") as f:
    f.write("\n".join(mix) + "\n")
with open(out + "/samples.txt", "w") as f:
    f.write("\n".join(["web.service.consul A", "web.service.consul SRV", "_web._tcp.service.consul SRV",
                       "svc-0.service.consul A", "svc-9999.service.consul SRV", "_svc-4242._tcp.service.consul SRV",
                       "svc-1234.service.consul A"]) + "\n")
