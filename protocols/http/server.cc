#include "server.hh"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <ostream>
#include <stdexcept>

#include "engine/log.hh"

namespace pharos::http {
using namespace engine;
namespace bhttp = boost::beast::http;

task<void> server::start() {
    auto at = socket_address::parse(cfg_.addr, cfg_.port);
    if (!at) throw std::runtime_error("http: bad address " + cfg_.addr);
    auto l = tcp_listener::listen(*at);
    if (!l) throw std::runtime_error("http: listen on " + at->to_string() + ": " + l.error().message());
    listener_ = std::move(*l);
    gate_.try_enter();  // held by the accept loop
    this_reactor().spawn(accept_loop());
    co_return;
}

task<void> server::accept_loop() {
    for (;;) {
        auto c = co_await listener_.accept();
        if (!c) {
            if (!listener_.is_open() || is_cancelled(c.error())) break;
            log(log_level::warn, "http: accept: %s", c.error().message().c_str());
            continue;  // EMFILE and the like: keep serving the connections we have
        }
        if (!gate_.try_enter()) break;
        ++stats_.connections;
        this_reactor().spawn(serve(std::move(*c)).with_cancel(&idle_));
    }
    gate_.leave();
}

task<void> server::stop() {
    listener_.close();
    idle_.request_cancel();
    (void)co_await gate_.close(after(std::chrono::seconds(5)));
}

namespace {

// A response written with no cancel source: once a request is being answered,
// stopping the server does not cut the answer short.
task<result<void>> write_out(tcp_stream* conn, std::string* out, deadline dl) {
    co_return co_await conn->write(buffer::copy_of(*out), dl);
}

task<response> call_handler(const handler* h, request* r) {
    try {
        co_return co_await (*h)(*r);
    } catch (const std::exception& e) {
        log(log_level::error, "http: %s %s: %s", r->method.c_str(), r->target.c_str(), e.what());
        co_return response::text(500, std::string(e.what()) + "\n");
    }
}

// Fills `req` from a finished Beast message. False if the target is malformed.
bool to_request(bhttp::request<bhttp::string_body>& m, request& req) {
    req.method = std::string(m.method_string());
    req.target = std::string(m.target());
    if (!split_target(req.target, req.path, req.query)) return false;
    req.headers.clear();
    for (auto& f : m) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(m.body());
    req.keep_alive = m.keep_alive();
    return true;
}

}  // namespace

task<void> server::serve(tcp_stream conn) {
    ++stats_.open_connections;
    std::string peer_ip;
    if (auto p = conn.peer()) peer_ip = p->ip();
    std::string in;   // received, not yet parsed
    std::string out;  // responses not yet written
    bool open = true;
    while (open) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(std::uint32_t(cfg_.max_header_bytes));
        parser.body_limit(cfg_.max_body_bytes);
        parser.eager(true);
        deadline request_deadline = no_deadline;
        boost::beast::error_code ec;
        unsigned fail_status = 0;
        // Parse what we have; read more until one request is complete.
        for (;;) {
            if (!in.empty()) {
                size_t used = parser.put(boost::asio::buffer(in), ec);
                in.erase(0, used);
                if (parser.is_done()) break;
                if (ec == bhttp::error::need_more) ec = {};
                if (ec) {
                    if (ec == bhttp::error::header_limit)
                        fail_status = 431;
                    else if (ec == bhttp::error::body_limit)
                        fail_status = 413;
                    else
                        fail_status = 400;
                    break;
                }
                if (used > 0 && !in.empty()) continue;
            }
            // Waiting for bytes: a request already begun has a deadline; an idle
            // connection has the idle timeout and may be cancelled by stop().
            if (!out.empty()) {
                auto w = co_await write_out(&conn, &out, after(cfg_.write_timeout)).with_cancel(nullptr);
                out.clear();
                if (!w) {
                    open = false;
                    break;
                }
            }
            bool begun = parser.got_some() || !in.empty();
            if (begun && request_deadline == no_deadline) request_deadline = after(cfg_.request_timeout);
            deadline dl = begun ? request_deadline : after(cfg_.idle_timeout);
            auto chunk = co_await conn.read(dl);
            if (!chunk || chunk->empty()) {  // closed or failed, mid-request or not: nothing to answer
                open = false;
                break;
            }
            in.append(chunk->view());
            if (!parser.got_some() && in.size() > cfg_.max_header_bytes + cfg_.max_body_bytes) {
                fail_status = 431;
                break;
            }
        }
        if (!open) break;
        if (fail_status) {
            ++stats_.bad_requests;
            response r = response::text(fail_status, fail_status == 413   ? "Request body too large\n"
                                                     : fail_status == 431 ? "Request header fields too large\n"
                                                                          : "Bad Request: " + ec.message() + "\n");
            r.close = true;
            serialize(r, false, out);
            break;
        }
        auto msg = parser.release();
        request req;
        req.peer_ip = peer_ip;
        if (!to_request(msg, req)) {
            ++stats_.bad_requests;
            response r = response::text(400, "Bad Request: malformed request target\n");
            r.close = true;
            serialize(r, false, out);
            break;
        }
        ++stats_.requests;
        auto call = call_handler(&handler_, &req);
        response resp = co_await std::move(call).with_cancel(nullptr);
        bool keep = req.keep_alive && !resp.close;
        serialize(resp, keep, out);
        if (!keep) break;
        // Pipelining: if the next request is already here, answer it before writing.
        if (in.empty() || out.size() > 256 * 1024) {
            auto w = co_await write_out(&conn, &out, after(cfg_.write_timeout)).with_cancel(nullptr);
            out.clear();
            if (!w) open = false;
        }
    }
    if (!out.empty()) (void)co_await write_out(&conn, &out, after(cfg_.write_timeout)).with_cancel(nullptr);
    conn.close();
    --stats_.open_connections;
    gate_.leave();
}

}  // namespace pharos::http
