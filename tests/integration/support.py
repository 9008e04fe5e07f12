"""What the integration tests share: free loopback ports, JSON over HTTP, waiting
for a condition, and a `pharos agent` process (start, ready, stop, kill -9, log).

A test imports it from its own folder (`import support`); nothing here binds
outside 127.0.0.1, and every wait has a deadline."""
import http.client
import os
import json
import signal
import socket
import subprocess
import tempfile
import time


def free_port(udp=False):
    """A 127.0.0.1 port free now for TCP (and for UDP too when `udp`)."""
    while True:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        if not udp:
            t.close()
            return port
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def call(port, method, path, body=None, timeout=10):
    """One request on a fresh connection: (status, body text). A dict or list body is sent as JSON."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def ok(port, method, path, body=None, timeout=10):
    """call() that must answer 200: the body text."""
    st, text = call(port, method, path, body, timeout)
    assert st == 200, (method, path, st, text)
    return text


def get_json(port, path, timeout=10):
    """GET `path`, which must answer 200, as parsed JSON."""
    st, body = call(port, "GET", path, timeout=timeout)
    assert st == 200, (path, st, body)
    return json.loads(body)


def wait_until(what, fn, timeout=20, interval=0.05):
    """fn()'s first truthy result, polled every `interval` s (an OSError counts as not yet);
    AssertionError after `timeout` s."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = fn()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        if time.time() >= deadline:
            raise AssertionError("timed out after %gs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


class Agent:
    """A `pharos agent` on 127.0.0.1. With `dev` (the default) it is `-dev`, on 2 shards, DNS and LAN
    gossip off unless `dns_port` / `serf_port` are given; `args` are appended. With `only_args` the
    command line is `args` alone (a config file then names the ports; pass its `http_port`). The log
    goes to `log_path` (appended across restarts) or to a temporary file."""

    def __init__(self, binary, *args, dev=True, shards=2, dns_port=-1, serf_port=-1, http_port=None, log_path=None,
                 only_args=False):
        self.binary = binary
        self.port = http_port or free_port()
        self.dns_port = dns_port
        self.args = list(args)
        if not only_args:
            self.args = (["-dev"] if dev else []) + ["-client", "127.0.0.1", "-http-port", str(self.port),
                                                     "-dns-port", str(dns_port), "-serf-lan-port", str(serf_port),
                                                     "-shards", str(shards)] + self.args
        self.proc = None
        self.log_path = log_path
        self._tmp_log = None if log_path else tempfile.NamedTemporaryFile(prefix="pharos-agent-", suffix=".log")
        if self._tmp_log:
            self.log_path = self._tmp_log.name

    def start(self, ready=True, timeout=15):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "agent"] + self.args, stdout=self.logf, stderr=subprocess.STDOUT)
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        """Ready as Consul's own test harness judges it: /v1/status/leader answers with a leader."""
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("pharos exited with %d at start:\n%s" % (self.proc.returncode, self.log()))
            try:
                st, body = call(self.port, "GET", "/v1/status/leader", timeout=1)
                if st == 200 and body.strip('"\n'):
                    return
            except OSError:
                pass
            if time.time() >= deadline:
                raise AssertionError("pharos did not answer /v1/status/leader in %gs:\n%s" % (timeout, self.log()))
            time.sleep(0.02)

    def call(self, method, path, body=None, timeout=10):
        return call(self.port, method, path, body, timeout)

    def get_json(self, path, timeout=10):
        return get_json(self.port, path, timeout)

    def stop(self, timeout=15):
        """SIGTERM and wait; a process still running after `timeout` s is killed and that is an error."""
        if self.proc is None or self.proc.poll() is not None:
            self._close_log()
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("pharos did not stop on SIGTERM within %gs:\n%s" % (timeout, self.log()))
        finally:
            self._close_log()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close_log()

    def log(self, tail=4000):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-tail:]

    def _close_log(self):
        if getattr(self, "logf", None) and not self.logf.closed:
            self.logf.close()


class GossipAgent(Agent):
    """A dev agent named `name` in a LAN pool on 127.0.0.1 (its own serf_lan port, or `serf`), started at
    once; ready() waits for its HTTP API. stop() is kill -9 (cleanup after a failure)."""

    def __init__(self, binary, name, *extra, serf=None):
        self.name = name
        self.serf = serf or free_port(udp=True)
        super().__init__(binary, "-node", name, "-bind", "127.0.0.1", "-server-port", str(free_port()),
                         *extra, serf_port=self.serf)
        self.http = self.port
        self.start(ready=False)

    def ready(self):
        self.wait_ready(10)
        return self

    def members(self):
        return {m["Name"]: m for m in self.get_json("/v1/agent/members")}

    def alive(self):
        return {name for name, m in self.members().items() if m["Status"] == 1}

    def cli(self, *args):
        """`pharos <args>` against this agent's HTTP API."""
        return subprocess.run([self.binary] + list(args), capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, CONSUL_HTTP_ADDR="127.0.0.1:%d" % self.http))

    def stop(self):
        if self.proc.poll() is None:
            self.kill9()


def build_go_peer(src, build_dir, out):
    """Builds the Go memberlist peer (tests/integration/mlpeer) offline from Debian's Go packages.
    Several tests build it to the same `out` and ctest may run them at once: each builds to a
    file of its own and renames it into place, so none runs a half-written binary."""
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOPROXY="off",
               GOCACHE=os.path.join(build_dir, "gocache"), GOFLAGS="")
    tmp = "%s.%d.tmp" % (out, os.getpid())
    subprocess.run(["go", "build", "-o", tmp, "."], cwd=src, env=env, check=True)
    os.replace(tmp, out)


def stop_all(*procs, timeout=15):
    """Terminate plain subprocesses (not Agents), killing any that outlive `timeout` s."""
    for p in procs:
        if p is None or p.poll() is not None:
            continue
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
