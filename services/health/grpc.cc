// The gRPC health probe: one unary call of grpc.health.v1.Health/Check over a
// fresh HTTP/2 connection (prior-knowledge h2c, or TLS with ALPN "h2"), with
// just enough HTTP/2 for it: the preface, SETTINGS (and their ACK), one
// HEADERS frame in HPACK literal form, one DATA frame, then the response's
// HEADERS, DATA and trailers (PING answered, GOAWAY and RST_STREAM reported).
// The request is small enough that flow control never comes into play.
#include <cstring>

#include "services/health/hpack.hh"
#include "services/health/lookup.hh"
#include "services/health/probe.hh"
#include "services/health/tls.hh"

namespace pharos::health {
using namespace engine;

namespace {
constexpr uint8_t f_data = 0, f_headers = 1, f_rst = 3, f_settings = 4, f_ping = 6, f_goaway = 7, f_continuation = 9;
constexpr uint8_t fl_end_stream = 1, fl_ack = 1, fl_end_headers = 4, fl_padded = 8, fl_priority = 0x20;

void put_int(std::string& out, uint8_t first, int prefix_bits, uint64_t v) {
    uint64_t max = (1u << prefix_bits) - 1;
    if (v < max) {
        out.push_back(char(first | v));
        return;
    }
    out.push_back(char(first | max));
    v -= max;
    while (v >= 128) {
        out.push_back(char(0x80 | (v & 0x7f)));
        v >>= 7;
    }
    out.push_back(char(v));
}
void put_str(std::string& out, std::string_view s) {
    put_int(out, 0, 7, s.size());
    out.append(s);
}
void frame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
    size_t n = payload.size();
    out.push_back(char(n >> 16));
    out.push_back(char(n >> 8));
    out.push_back(char(n));
    out.push_back(char(type));
    out.push_back(char(flags));
    out.push_back(char(stream >> 24));
    out.push_back(char(stream >> 16));
    out.push_back(char(stream >> 8));
    out.push_back(char(stream));
    out.append(payload);
}

const char* code_name(int c) {
    static const char* names[] = {"OK",       "Canceled",          "Unknown",           "InvalidArgument",
                                  "DeadlineExceeded", "NotFound",   "AlreadyExists",     "PermissionDenied",
                                  "ResourceExhausted", "FailedPrecondition", "Aborted",  "OutOfRange",
                                  "Unimplemented", "Internal",      "Unavailable",       "DataLoss",
                                  "Unauthenticated"};
    return c >= 0 && c <= 16 ? names[c] : "Unknown";
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : (c | 32) - 'a' + 10; };
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out.push_back(char(hex(s[i + 1]) * 16 + hex(s[i + 2])));
            i += 2;
            continue;
        }
        out.push_back(s[i]);
    }
    return out;
}

std::string rpc_error(int code, std::string_view desc) {
    return "rpc error: code = " + std::string(code_name(code)) + " desc = " + std::string(desc);
}

const char* serving_name(uint64_t s) {
    switch (s) {
        case 0: return "UNKNOWN";
        case 1: return "SERVING";
        case 2: return "NOT_SERVING";
        case 3: return "SERVICE_UNKNOWN";
        default: return "UNKNOWN";
    }
}
// One frame of the response side.
struct h2_frame {
    uint8_t type = 0, flags = 0;
    uint32_t stream = 0;
    std::string_view payload;  // padding and priority fields removed
};

// What the caller of h2_exchange wants from the frames it is shown.
class h2_handler {
public:
    // Called for each frame not handled by the exchange itself. True: done.
    // Set `failure` to stop with that error.
    virtual bool frame(const h2_frame& f, std::string& failure) = 0;
    virtual ~h2_handler() = default;
};

enum class h2_end : uint8_t { done, failed, timeout, eof, io_error };

// The one HTTP/2 client mechanism of the gRPC and H2PING probes: sends the
// preface, an empty SETTINGS and `request` (frames), then reads frames by `dl`,
// acknowledging the server's SETTINGS and PINGs, ending on a GOAWAY (failure
// "GOAWAY") or when the handler is done. `io_errno` is set for io_error.
// Cancel safety: the caller closes the connection.
task<h2_end> h2_exchange(conn& c, std::string request, h2_handler& h, deadline dl, std::string& failure,
                         int& io_errno) {
    std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    frame(out, f_settings, 0, 0, "");
    out += request;
    auto w = co_await c.write(std::move(out), dl);
    if (!w) {
        io_errno = w.error().value();
        co_return is_timed_out(w.error()) ? h2_end::timeout : h2_end::io_error;
    }
    std::string in;
    for (;;) {
        while (in.size() >= 9) {
            uint32_t len = (uint32_t(uint8_t(in[0])) << 16) | (uint32_t(uint8_t(in[1])) << 8) | uint8_t(in[2]);
            if (in.size() < 9 + len) break;
            h2_frame f;
            f.type = uint8_t(in[3]);
            f.flags = uint8_t(in[4]);
            f.stream = ((uint32_t(uint8_t(in[5])) & 0x7f) << 24) | (uint32_t(uint8_t(in[6])) << 16) |
                       (uint32_t(uint8_t(in[7])) << 8) | uint8_t(in[8]);
            f.payload = std::string_view(in.data() + 9, len);
            if ((f.type == f_data || f.type == f_headers) && (f.flags & fl_padded) && !f.payload.empty()) {
                size_t pad = uint8_t(f.payload[0]);
                f.payload.remove_prefix(1);
                f.payload = f.payload.substr(0, f.payload.size() >= pad ? f.payload.size() - pad : 0);
            }
            if (f.type == f_headers && (f.flags & fl_priority) && f.payload.size() >= 5) f.payload.remove_prefix(5);
            std::string reply;
            bool done = false;
            if (f.type == f_settings && !(f.flags & fl_ack)) {
                frame(reply, f_settings, fl_ack, 0, "");
            } else if (f.type == f_ping && !(f.flags & fl_ack)) {
                frame(reply, f_ping, fl_ack, 0, f.payload);
            } else if (f.type == f_goaway) {
                failure = "GOAWAY";
            } else {
                done = h.frame(f, failure);
            }
            in.erase(0, 9 + len);
            if (!failure.empty()) co_return h2_end::failed;
            if (done) co_return h2_end::done;
            if (!reply.empty()) {
                auto r = co_await c.write(std::move(reply), dl);
                if (!r) {
                    io_errno = r.error().value();
                    co_return is_timed_out(r.error()) ? h2_end::timeout : h2_end::io_error;
                }
            }
        }
        auto more = co_await c.read(in, dl);
        if (!more) {
            io_errno = more.error().value();
            co_return is_timed_out(more.error()) ? h2_end::timeout : h2_end::io_error;
        }
        if (!*more) co_return h2_end::eof;
    }
}

// The gRPC call's response: HEADERS (+CONTINUATION), DATA, trailers on stream 1.
class grpc_response : public h2_handler {
public:
    hpack_decoder dec;
    header_pairs headers;
    std::string block, data;
    bool in_headers = false, end_pending = false;

    bool frame(const h2_frame& f, std::string& failure) override {
        if (f.type == f_rst && f.stream == 1) {
            std::string_view p = f.payload;
            uint32_t code = p.size() >= 4 ? (uint32_t(uint8_t(p[0])) << 24 | uint32_t(uint8_t(p[1])) << 16 |
                                             uint32_t(uint8_t(p[2])) << 8 | uint8_t(p[3]))
                                          : 0;
            failure = rpc_error(13, "stream terminated by RST_STREAM with error code: " + std::to_string(code));
            return false;
        }
        if ((f.type == f_headers || (f.type == f_continuation && in_headers)) && f.stream == 1) {
            block.append(f.payload);
            in_headers = !(f.flags & fl_end_headers);
            if (!in_headers) {
                if (!dec.decode(block, headers)) failure = rpc_error(13, "malformed header block");
                block.clear();
            }
            if (f.type == f_headers && (f.flags & fl_end_stream)) end_pending = true;
            return !in_headers && end_pending;
        }
        if (f.type == f_data && f.stream == 1) {
            data.append(f.payload);
            return f.flags & fl_end_stream;
        }
        return false;
    }
};

// H2PING: the ACK of our PING.
class ping_ack : public h2_handler {
public:
    std::string payload;
    bool frame(const h2_frame& f, std::string&) override {
        return f.type == f_ping && (f.flags & fl_ack) && f.payload == payload;
    }
};

tls_options h2_tls(const std::string& hp, const std::string& server_name, bool skip_verify) {
    tls_options tls;
    tls.server_name = server_name;
    if (tls.server_name.empty()) {
        std::string host = hp.substr(0, hp.rfind(':'));
        if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
        if (!socket_address::parse(host, 0)) tls.server_name = host;
    }
    tls.skip_verify = skip_verify;
    tls.alpn.push_back("h2");
    return tls;
}
}  // namespace

task<probe_result> probe_grpc(std::string target, bool use_tls, std::string tls_server_name, bool skip_verify,
                              deadline dl) {
    probe_result res;
    std::string hp = target, service;
    if (auto slash = target.find('/'); slash != std::string::npos) {
        hp = target.substr(0, slash);
        service = target.substr(slash + 1);
    }
    std::string err;
    auto a = co_await resolve_dial(hp, "tcp", dl, &err);
    if (!a) {
        res.output = rpc_error(14, "connection error: desc = \"transport: Error while dialing: " + err + "\"");
        co_return res;
    }
    tls_options tls = h2_tls(hp, tls_server_name, skip_verify);
    conn c;
    bool ok = co_await conn::open(c, *a, hp, use_tls ? &tls : nullptr, dl, &err);
    if (!ok) {
        res.output = err.find("i/o timeout") != std::string::npos
                         ? rpc_error(4, "context deadline exceeded")
                         : rpc_error(14, "connection error: desc = \"transport: Error while dialing: " + err + "\"");
        co_return res;
    }

    // Request: HEADERS, DATA(END_STREAM) after the preface and SETTINGS.
    std::string hdr;
    hdr.push_back(char(0x83));                  // :method POST
    hdr.push_back(char(use_tls ? 0x87 : 0x86));  // :scheme
    put_int(hdr, 0x00, 4, 4);                   // :path, literal without indexing
    put_str(hdr, "/grpc.health.v1.Health/Check");
    put_int(hdr, 0x00, 4, 1);  // :authority
    put_str(hdr, hp);
    put_int(hdr, 0x00, 4, 31);  // content-type
    put_str(hdr, "application/grpc");
    put_int(hdr, 0x00, 4, 0);
    put_str(hdr, "te");
    put_str(hdr, "trailers");
    put_int(hdr, 0x00, 4, 58);  // user-agent
    put_str(hdr, "Consul Health Check");
    std::string msg;
    if (!service.empty()) {
        msg.push_back(0x0a);  // HealthCheckRequest.service, field 1, length-delimited
        uint64_t n = service.size();
        while (n >= 128) {
            msg.push_back(char(0x80 | (n & 0x7f)));
            n >>= 7;
        }
        msg.push_back(char(n));
        msg += service;
    }
    std::string body(5, '\0');
    uint32_t ml = uint32_t(msg.size());
    body[1] = char(ml >> 24);
    body[2] = char(ml >> 16);
    body[3] = char(ml >> 8);
    body[4] = char(ml);
    body += msg;
    std::string out;
    frame(out, f_headers, fl_end_headers, 1, hdr);
    frame(out, f_data, fl_end_stream, 1, body);

    grpc_response resp;
    std::string failure;
    int io_errno = 0;
    h2_end end = co_await h2_exchange(c, std::move(out), resp, dl, failure, io_errno);
    c.close();
    switch (end) {
        case h2_end::done: break;
        case h2_end::failed:
            res.output = failure == "GOAWAY" ? rpc_error(14, "connection closed by the server (GOAWAY)") : failure;
            co_return res;
        case h2_end::timeout: res.output = rpc_error(4, "context deadline exceeded"); co_return res;
        case h2_end::eof: res.output = rpc_error(14, "error reading from server: EOF"); co_return res;
        case h2_end::io_error:
            res.output = rpc_error(14, "connection error: desc = \"transport: " + errno_text(-io_errno) + "\"");
            co_return res;
    }
    const header_pairs& headers = resp.headers;
    const std::string& data = resp.data;
    std::string http_status, grpc_status, grpc_message;
    for (auto& [k, v] : headers) {
        if (k == ":status") http_status = v;
        else if (k == "grpc-status") grpc_status = v;
        else if (k == "grpc-message") grpc_message = v;
    }
    if (http_status != "200") {
        res.output = rpc_error(12, "unexpected HTTP status code received from server: " + http_status);
        co_return res;
    }
    int code = grpc_status.empty() ? 2 : std::atoi(grpc_status.c_str());
    if (code != 0) {
        res.output = rpc_error(code, percent_decode(grpc_message));
        co_return res;
    }
    // HealthCheckResponse: one message; field 1 (varint) is the serving status.
    uint64_t st = 0;
    if (data.size() >= 5) {
        std::string_view m(data.data() + 5, data.size() - 5);
        while (!m.empty()) {
            uint8_t tag = uint8_t(m[0]);
            m.remove_prefix(1);
            uint64_t v = 0;
            int shift = 0;
            if ((tag & 7) != 0) break;  // only varints are expected
            while (!m.empty()) {
                uint8_t b = uint8_t(m[0]);
                m.remove_prefix(1);
                v |= uint64_t(b & 0x7f) << shift;
                shift += 7;
                if (!(b & 0x80)) break;
            }
            if ((tag >> 3) == 1) st = v;
        }
    }
    if (st == 1) {
        res.st = status::passing;
        res.output = "gRPC check " + target + ": success";
    } else {
        res.output = "gRPC " + target + " serving status: " + serving_name(st);
    }
    co_return res;
}

}  // namespace pharos::health

namespace pharos::health {

task<probe_result> probe_h2ping(std::string target, bool use_tls, std::string tls_server_name, bool skip_verify,
                                deadline dl) {
    probe_result res;
    std::string err;
    auto a = co_await resolve_dial(target, "tcp", dl, &err);
    if (!a) {
        res.output = "Failed to dial to " + target + ": " + err;
        co_return res;
    }
    tls_options tls = h2_tls(target, tls_server_name, skip_verify);
    conn c;
    bool ok = co_await conn::open(c, *a, target, use_tls ? &tls : nullptr, dl, &err);
    if (!ok) {
        res.output = "Failed to dial to " + target + ": " + err;
        co_return res;
    }
    ping_ack h;
    h.payload = "pharos.p";  // 8 bytes, echoed in the ACK
    std::string out;
    frame(out, f_ping, 0, 0, h.payload);
    std::string failure;
    int io_errno = 0;
    h2_end end = co_await h2_exchange(c, std::move(out), h, dl, failure, io_errno);
    c.close();
    switch (end) {
        case h2_end::done:
            res.st = status::passing;
            res.output = "HTTP2 ping was successful";
            break;
        case h2_end::timeout: res.output = "HTTP2 ping failed: context deadline exceeded"; break;
        case h2_end::failed: res.output = "HTTP2 ping failed: http2: server sent GOAWAY and closed the connection"; break;
        case h2_end::eof: res.output = "HTTP2 ping failed: http2: client connection lost"; break;
        case h2_end::io_error: res.output = "HTTP2 ping failed: " + errno_text(-io_errno); break;
    }
    co_return res;
}

}  // namespace pharos::health
