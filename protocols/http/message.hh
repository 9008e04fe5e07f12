// HTTP/1.1 request and response values, independent of any route or service.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/task.hh"

namespace pharos::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct request {
    std::string method;                                      // as sent: "GET", "PUT", ...
    std::string target;                                      // raw request-target: "/v1/kv/a%20b?recurse"
    std::string path;                                        // percent-decoded path: "/v1/kv/a b"
    std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
    header_list headers;                                     // names as sent
    std::string body;
    bool keep_alive = true;
    std::string peer_ip;

    // The first value of query parameter `name`, or null. Consul's boolean flags
    // count by presence: `has_query("recurse")` is true for "?recurse".
    const std::string* query_param(std::string_view name) const;
    bool has_query(std::string_view name) const { return query_param(name) != nullptr; }
    // The first header named `name` (case-insensitive), or "" if absent.
    std::string_view header(std::string_view name) const;
};

struct response;

// The rest of a response that is not ready yet (a blocking query). The handler
// returns at once with `response::later` set, so its coroutine frames are freed,
// and the server awaits finish(): a small object instead of the handler's whole
// coroutine chain, which is what lets a node hold 100k parked requests. finish()
// runs on the same shard, must not refer to the request (it is freed first), and
// may itself return a response with `later` set. Cancel safety: as the handler's.
class deferred {
public:
    virtual ~deferred() = default;
    virtual engine::task<response> finish() = 0;
};

struct response {
    unsigned status = 200;
    header_list headers;
    std::string body;
    bool close = false;  // close the connection after sending
    std::shared_ptr<deferred> later;  // set: the server awaits later->finish() for the real response

    static response text(unsigned status, std::string body);
    static response json(std::string body, unsigned status = 200);
    response& with_header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

// Awaits `r.later` until the response is complete, as the server does; for code
// that calls handlers directly (tests, in-process callers).
engine::task<response> complete(response r);

// Appends the wire form of `r` (status line, headers, Content-Length, body) to `out`.
void serialize(const response& r, bool keep_alive, std::string& out);

// Percent-decodes `s` ('+' stays '+', as Go's PathUnescape). False on a bad escape.
bool percent_decode(std::string_view s, std::string& out, bool plus_is_space = false);
// Splits a request-target into decoded path and query. False if malformed.
bool split_target(std::string_view target, std::string& path, std::vector<std::pair<std::string, std::string>>& query);

}  // namespace pharos::http
