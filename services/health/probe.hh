// health probes: one run of an HTTP(S), TCP, UDP, script or gRPC check, with
// Consul's status mapping and output text (shared/spec/consul-http-api.md §3,
// agent/checks/check.go). Each probe is a coroutine on the calling shard; it
// ends by its deadline (the whole exchange, Consul's Timeout) and, if its task
// is cancelled, at once, closing what it opened. Nothing here keeps state
// between runs: a target is prepared once per check definition, then probed.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/net.hh"
#include "engine/task.hh"

namespace pharos::health {

enum class status : uint8_t { passing = 0, warning = 1, critical = 2 };
const char* status_name(status s) noexcept;

struct probe_result {
    status st = status::critical;
    std::string output;
};

// Keeps the last `cap` bytes written and counts all of them (Consul's circbuf).
class ring_capture {
public:
    explicit ring_capture(size_t cap) : cap_(cap ? cap : 1) {}
    void append(std::string_view s);
    uint64_t total() const noexcept { return total_; }
    size_t cap() const noexcept { return cap_; }
    std::string str() const;  // the kept bytes, oldest first

private:
    size_t cap_;
    std::string buf_;   // at most cap_ bytes, used as a ring once full
    size_t head_ = 0;   // where the next byte goes once full
    uint64_t total_ = 0;
};

// "host:port" or "[v6]:port" to an address without a query: IP literals,
// "localhost" and names in /etc/hosts (read once). Other names fail with ENOENT
// and Go's text (resolve_dial in lookup.hh then asks DNS); malformed input with
// EINVAL. `network` ("tcp", "udp") only shapes the error text.
engine::result<engine::socket_address> resolve(std::string_view host_port, std::string_view network,
                                               std::string* error);
// "host:port" / "[v6]:port" split; false if malformed.
bool split_host_port(std::string_view hp, std::string& host, std::string& port);
// Go's syscall error text for -errno: "connection refused", "i/o timeout" for timeouts.
std::string errno_text(int negative_errno);

// --- HTTP(S) ---
struct http_options {
    std::string url;
    std::string method;  // "" is GET
    std::vector<std::pair<std::string, std::vector<std::string>>> header;
    std::string body;
    std::string tls_server_name;
    bool tls_skip_verify = false;
};

// A prepared HTTP check: address, request bytes and the texts of its output.
// An agent keeps one per HTTP check (50,000 of them in issue 5's bench, with a
// budget of 2 KiB of RSS per check), so its texts share one allocation and its
// address takes the size of an IPv6 one, not a sockaddr_storage.
class http_target {
public:
    struct parts {  // what prepare_http works out; packed by the constructor
        std::string url, method;  // as in the output text
        bool tls = false;
        std::string sni;          // TLSServerName, else the URL's host if it is a name
        bool skip_verify = false;
        engine::socket_address addr;
        std::string addr_text;    // addr as "ip:port", for error texts
        std::string dial;         // non-empty: "name:port" to look up (DNS) before each run
        std::string request;      // the whole request, sent as is
        std::string error;        // non-empty: every run is critical with this output
    };
    explicit http_target(const parts& p);
    // The same target at `a` (a looked-up name's address for one run).
    std::shared_ptr<const http_target> at(const engine::socket_address& a) const;

    std::string_view url() const noexcept { return text(0); }
    std::string_view method() const noexcept { return text(1); }
    std::string_view sni() const noexcept { return text(2); }
    std::string_view addr_text() const noexcept { return text(3); }
    std::string_view dial() const noexcept { return text(4); }
    std::string_view request() const noexcept { return text(5); }
    std::string_view error() const noexcept { return text(6); }
    bool tls() const noexcept { return tls_; }
    bool skip_verify() const noexcept { return skip_verify_; }
    engine::socket_address addr() const noexcept;

private:
    static constexpr int n_texts = 7;
    std::string_view text(int i) const noexcept {
        uint32_t b = i ? end_[i - 1] : 0;
        return {text_.get() + b, end_[i] - b};
    }
    std::unique_ptr<char[]> text_;
    uint32_t end_[n_texts]{};
    sockaddr_in6 sa_{};  // AF_INET (a sockaddr_in in its first bytes) or AF_INET6; family 0: none
    uint8_t salen_ = 0;
    bool tls_ = false, skip_verify_ = false;
};
std::shared_ptr<const http_target> prepare_http(const http_options& o);

// 2xx passing, 429 warning, anything else or a transport error critical.
// Output: "HTTP GET <url>: 200 OK Output: <last max_output bytes of the body>".
// Cancel safety: the connection is closed; nothing is retried.
engine::task<probe_result> probe_http(std::shared_ptr<const http_target> t, size_t max_output, engine::deadline dl);
// The same over TLS (and for targets that failed to prepare): through health::conn.
engine::task<probe_result> probe_https(std::shared_ptr<const http_target> t, size_t max_output, engine::deadline dl);

// --- TCP / UDP ---
// Passing "TCP connect <addr>: Success" if the connect succeeds, else critical
// with Go's dial error ("dial tcp 127.0.0.1:1: connect: connection refused").
// Cancel safety: the socket is closed.
engine::task<probe_result> probe_tcp(std::string addr_text, engine::deadline dl);
// Sends an empty datagram on a connected socket and waits for a reply until the
// deadline: a reply or silence is passing ("UDP connect <addr>: Success"); an
// ICMP error (connection refused) is critical, as Consul's CheckUDP.
engine::task<probe_result> probe_udp(std::string addr_text, engine::deadline dl);

// --- script ---
// Runs argv (posix_spawn, own process group, stdin /dev/null, stdout and stderr
// into one pipe read by the reactor, exit watched through a pidfd). Exit 0
// passing, 1 warning, else critical. Output: the last max_output bytes, with
// "Captured X of Y bytes\n...\n" when cut. At the deadline the whole process
// group is killed: critical "Timed out (<timeout>) running check".
// Cancel safety: the process group is killed and reaped before returning.
engine::task<probe_result> probe_script(std::vector<std::string> argv, size_t max_output, int64_t timeout_ns,
                                        engine::deadline dl);

// --- gRPC ---
// grpc.health.v1.Health/Check over HTTP/2 (h2c, or TLS with ALPN h2) for
// "host:port[/service]". SERVING is passing "gRPC check <target>: success";
// anything else critical. Cancel safety: the connection is closed.
engine::task<probe_result> probe_grpc(std::string target, bool use_tls, std::string tls_server_name,
                                      bool skip_verify, engine::deadline dl);
// H2PING ("host:port"): the HTTP/2 preface, SETTINGS and a PING over a fresh
// connection (TLS with ALPN h2 when use_tls, else prior-knowledge h2c), passing
// "HTTP2 ping was successful" on the PING's ACK; "Failed to dial to <target>: ..."
// or "HTTP2 ping failed: ..." otherwise. Same HTTP/2 client as probe_grpc.
// Cancel safety: the connection is closed.
engine::task<probe_result> probe_h2ping(std::string target, bool use_tls, std::string tls_server_name,
                                        bool skip_verify, engine::deadline dl);

}  // namespace pharos::health
