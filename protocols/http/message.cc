#include "message.hh"

#include <ctime>

#include <strings.h>

#include <boost/beast/http/status.hpp>
#include <ostream>

namespace pharos::http {

const std::string* request::query_param(std::string_view name) const {
    for (auto& [k, v] : query)
        if (k == name) return &v;
    return nullptr;
}

std::string_view request::header(std::string_view name) const {
    for (auto& [k, v] : headers)
        if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
    return {};
}

response response::text(unsigned status, std::string body) {
    response r;
    r.status = status;
    r.body = std::move(body);
    r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    return r;
}

response response::json(std::string body, unsigned status) {
    response r;
    r.status = status;
    r.body = std::move(body);
    r.headers.emplace_back("Content-Type", "application/json");
    return r;
}

engine::task<response> complete(response r) {
    while (r.later) {
        std::shared_ptr<deferred> later = std::move(r.later);
        r = co_await later->finish();
    }
    co_return r;
}

namespace {
// "Date: Wed, 25 Nov 2026 20:42:53 GMT\r\n" for this second, as Go's net/http
// sends on every response; formatted once per second per thread.
std::string_view date_line() {
    thread_local std::time_t cached_at = -1;
    thread_local char line[64];
    thread_local size_t len = 0;
    std::time_t now = std::time(nullptr);
    if (now != cached_at) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        len = std::strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        cached_at = now;
    }
    return {line, len};
}
}  // namespace

void serialize(const response& r, bool keep_alive, std::string& out) {
    auto reason = boost::beast::http::obsolete_reason(boost::beast::http::int_to_status(r.status));
    out.append("HTTP/1.1 ");
    out.append(std::to_string(r.status));
    out.push_back(' ');
    out.append(reason.data(), reason.size());
    out.append("\r\n");
    for (auto& [k, v] : r.headers) {
        out.append(k);
        out.append(": ");
        out.append(v);
        out.append("\r\n");
    }
    out.append(date_line());
    out.append("Content-Length: ");
    out.append(std::to_string(r.body.size()));
    out.append("\r\n");
    if (!keep_alive || r.close) out.append("Connection: close\r\n");
    out.append("\r\n");
    out.append(r.body);
}

namespace {
int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

bool percent_decode(std::string_view s, std::string& out, bool plus_is_space) {
    out.clear();
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) return false;
            int h = hex(s[i + 1]), l = hex(s[i + 2]);
            if (h < 0 || l < 0) return false;
            out.push_back(char(h * 16 + l));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

bool split_target(std::string_view target, std::string& path, std::vector<std::pair<std::string, std::string>>& query) {
    if (target.empty() || target[0] != '/') return false;
    auto q = target.find('?');
    if (!percent_decode(target.substr(0, q), path)) return false;
    query.clear();
    if (q == std::string_view::npos) return true;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string k, v;
        if (!percent_decode(pair.substr(0, eq), k, true)) return false;
        if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), v, true)) return false;
        query.emplace_back(std::move(k), std::move(v));
    }
    return true;
}

}  // namespace pharos::http
