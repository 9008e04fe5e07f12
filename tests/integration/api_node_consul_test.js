// npm `consul` 2.0.1 (silas/node-consul) against `pharos agent -dev -shards 2`:
// Consul's seed scenario (register my-service with a TTL check and tags, find it
// through the catalog and health, KV put/get, a consul.watch on a key) and the
// watch sequence create/update/update/delete, plus agent self/members, events and
// status. Sessions are not served yet and are not exercised.
//
// Each test starts its own agent on a free 127.0.0.1 port and kills it when the
// test ends, passed or not. The client comes from NODE_PATH (tools/setup installs
// it into /opt/pharos/test-deps/node_modules).
// Usage: node api_node_consul_test.js path/to/pharos
"use strict";
const { test, beforeEach, afterEach } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const net = require("node:net");
const http = require("node:http");

const Consul = require("consul");

const PHAROS = process.argv[2] || "build/pharos";
const SERVICE_CHECK = "service:my-service-1";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function leaderAnswers(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/v1/status/leader", timeout: 1000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(res.statusCode === 200 && body !== '""'));
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with the next value `emitter` emits as `event`, or rejects after `ms`.
function next(emitter, event, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, on);
      reject(new Error(`no ${event} within ${ms} ms: ${what}`));
    }, ms);
    const on = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, on);
  });
}

let agent; // { proc, port, log, consul, watches }
const live = new Set();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL"); // never leave an agent behind
});

beforeEach(async () => {
  const port = await freePort();
  const proc = spawn(
    PHAROS,
    ["agent", "-dev", "-client", "127.0.0.1", "-dns-port", "-1", "-serf-lan-port", "-1", "-http-port", String(port), "-shards", "2"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  live.add(proc);
  let log = "";
  proc.stdout.on("data", (d) => (log += d));
  proc.stderr.on("data", (d) => (log += d));
  agent = { proc, port, log: () => log, watches: [] };
  const deadline = Date.now() + 10000;
  while (!(await leaderAnswers(port))) {
    if (proc.exitCode !== null) throw new Error("pharos exited at start:\n" + log);
    if (Date.now() > deadline) throw new Error("pharos did not answer /v1/status/leader in 10 s");
    await sleep(50);
  }
  agent.consul = new Consul({ host: "127.0.0.1", port });
});

afterEach(async () => {
  if (!agent) return;
  for (const w of agent.watches) w.end();
  if (agent.consul) agent.consul.destroy();
  const { proc } = agent;
  agent = undefined;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10000);
    await exited;
    clearTimeout(timer);
  }
  live.delete(proc);
});

function watchKey(key) {
  const w = agent.consul.watch({ method: agent.consul.kv.get, options: { key, wait: "10s" } });
  agent.watches.push(w);
  w.on("error", () => {}); // surfaced through the missing change instead
  return w;
}

async function registerMyService(c) {
  await c.agent.service.register({
    name: "my-service",
    id: "my-service-1",
    address: "127.0.0.1",
    port: 8080,
    tags: ["primary", "v1"],
    meta: { version: "1.0" },
    check: { ttl: "30s" },
  });
}

test("seed: register my-service, find it in the catalog and health, configure it, watch its key", async () => {
  const c = agent.consul;
  await registerMyService(c);

  const instances = await c.catalog.service.nodes("my-service");
  assert.equal(instances.length, 1);
  assert.equal(instances[0].ServiceID, "my-service-1");
  assert.equal(instances[0].ServicePort, 8080);
  assert.deepEqual(instances[0].ServiceTags, ["primary", "v1"]);
  assert.deepEqual(await c.catalog.service.nodes({ service: "my-service", tag: "nope" }), []);

  assert.deepEqual(await c.health.service({ service: "my-service", passing: true }), []);
  await c.agent.check.pass({ id: SERVICE_CHECK, note: "ready" });
  const passing = await c.health.service({ service: "my-service", passing: true });
  assert.equal(passing.length, 1);
  assert.equal(passing[0].Service.ID, "my-service-1");
  const check = passing[0].Checks.find((x) => x.CheckID === SERVICE_CHECK);
  assert.equal(check.Status, "passing");
  assert.equal(check.Output, "ready");

  assert.equal(await c.kv.set("config/my-service/max_conns", "100"), true);
  assert.equal((await c.kv.get("config/my-service/max_conns")).Value, "100");

  const w = watchKey("config/my-service/max_conns");
  const [first] = await next(w, "change", 5000, "the first read");
  assert.equal(first.Value, "100");
  await sleep(200); // the watch is now blocked on the agent
  const written = Date.now();
  const change = next(w, "change", 1000, "the new value within 1 s of the write"); // may come before the PUT's answer
  await c.kv.set("config/my-service/max_conns", "200");
  const [changed] = await change;
  assert.equal(changed.Value, "200");
  assert.ok(Date.now() - written < 1000);
});

test("watch: create, update, update, delete yields undefined, 1, 2, 3, undefined", async () => {
  const c = agent.consul;
  const seen = [];
  const w = watchKey("watch/seq");
  const value = ([data]) => (data === undefined ? undefined : data.Value);
  seen.push(value(await next(w, "change", 5000, "the first read of a missing key")));
  for (const v of ["1", "2", "3"]) {
    const got = next(w, "change", 1000, `value ${v}`);
    await c.kv.set("watch/seq", v);
    seen.push(value(await got));
  }
  const gone = next(w, "change", 1000, "the delete");
  await c.kv.del("watch/seq");
  seen.push(value(await gone));
  assert.deepEqual(seen, [undefined, "1", "2", "3", undefined]);
});

test("agent self and members", async () => {
  const c = agent.consul;
  const self = await c.agent.self();
  assert.equal(self.Config.Datacenter, "dc1");
  assert.equal(self.Config.Server, true);
  assert.ok(self.Config.NodeName);
  assert.equal(self.Member.Name, self.Config.NodeName);
  assert.equal(self.Member.Addr, "127.0.0.1");
  const members = await c.agent.members();
  assert.equal(members.length, 1);
  assert.equal(members[0].Name, self.Config.NodeName);
  assert.equal(members[0].Status, 1);
  assert.equal(members[0].Tags.role, "consul");
});

test("agent services, checks, warn and fail, deregister", async () => {
  const c = agent.consul;
  await registerMyService(c);
  const services = await c.agent.service.list();
  assert.deepEqual(Object.keys(services), ["my-service-1"]);
  assert.deepEqual(services["my-service-1"].Tags, ["primary", "v1"]);
  await c.agent.check.warn({ id: SERVICE_CHECK, note: "slow" });
  let checks = await c.agent.check.list();
  assert.equal(checks[SERVICE_CHECK].Status, "warning");
  assert.equal(checks[SERVICE_CHECK].Output, "slow");
  assert.deepEqual(await c.health.service({ service: "my-service", passing: true }), []);
  await c.agent.check.fail(SERVICE_CHECK);
  checks = await c.agent.check.list();
  assert.equal(checks[SERVICE_CHECK].Status, "critical");
  await c.agent.service.deregister("my-service-1");
  assert.deepEqual(await c.agent.service.list(), {});
  assert.deepEqual(await c.catalog.service.nodes("my-service"), []);
});

test("catalog nodes and services, health state", async () => {
  const c = agent.consul;
  await registerMyService(c);
  const self = await c.agent.self();
  const nodes = await c.catalog.node.list();
  assert.deepEqual(
    nodes.map((n) => n.Node),
    [self.Config.NodeName],
  );
  assert.deepEqual(await c.catalog.service.list(), { consul: [], "my-service": ["primary", "v1"] });
  const any = await c.health.state("any");
  assert.deepEqual(any.map((x) => x.CheckID).sort(), ["serfHealth", SERVICE_CHECK]);
  const nodeChecks = await c.health.node(self.Config.NodeName);
  assert.ok(nodeChecks.some((x) => x.CheckID === "serfHealth" && x.Status === "passing"));
});

test("kv keys, recurse, delete recurse", async () => {
  const c = agent.consul;
  for (const [k, v] of [["app/a", "1"], ["app/b/c", "2"], ["app/b/d", "3"]]) await c.kv.set(k, v);
  assert.deepEqual(await c.kv.keys("app/"), ["app/a", "app/b/c", "app/b/d"]);
  assert.deepEqual(await c.kv.keys({ key: "app/", separator: "/" }), ["app/a", "app/b/"]);
  const all = await c.kv.get({ key: "app/", recurse: true });
  assert.deepEqual(
    all.map((i) => [i.Key, i.Value]),
    [["app/a", "1"], ["app/b/c", "2"], ["app/b/d", "3"]],
  );
  const a = await c.kv.get("app/a");
  // The agent answers `false`; papi 1.x resolves a falsy body as undefined.
  assert.notEqual(await c.kv.set({ key: "app/a", value: "x", cas: a.ModifyIndex + 1000 }), true);
  assert.equal((await c.kv.get("app/a")).Value, "1");
  assert.equal(await c.kv.set({ key: "app/a", value: "x", cas: a.ModifyIndex }), true);
  assert.equal((await c.kv.get("app/a")).Value, "x");
  await c.kv.del({ key: "app/", recurse: true });
  assert.equal(await c.kv.get({ key: "app/", recurse: true }), undefined);
});

test("events and status", async () => {
  const c = agent.consul;
  const fired = await c.event.fire("deploy", "v1.2.3");
  assert.equal(fired.Name, "deploy");
  assert.equal(fired.Payload, "v1.2.3");
  const events = await c.event.list({ name: "deploy" });
  assert.deepEqual(
    events.map((e) => [e.ID, e.Payload]),
    [[fired.ID, "v1.2.3"]],
  );
  assert.equal(await c.status.leader(), "127.0.0.1:8300");
  assert.deepEqual(await c.status.peers(), ["127.0.0.1:8300"]);
});
