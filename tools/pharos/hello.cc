#include "hello.hh"

#include <cstring>
#include <stdexcept>

#include "engine/log.hh"

namespace pharos::tools {
using namespace engine;

namespace {
constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nServer: pharos\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
constexpr size_t max_header = 64 * 1024;
}  // namespace

task<void> hello_server::start() {
    auto at = socket_address::parse(addr_, port_);
    if (!at) throw std::runtime_error("bad address " + addr_);
    auto l = tcp_listener::listen(*at);
    if (!l) throw std::runtime_error("listen " + at->to_string() + ": " + l.error().message());
    listener_ = std::move(*l);
    gate_.try_enter();
    this_reactor().spawn(accept_loop());
    co_return;
}

task<void> hello_server::accept_loop() {
    for (;;) {
        auto c = co_await listener_.accept();
        if (!c) {
            if (listener_.is_open() && !is_cancelled(c.error()))
                log(log_level::warn, "accept: %s", c.error().message().c_str());
            if (!listener_.is_open() || is_cancelled(c.error())) break;
            continue;
        }
        if (!gate_.try_enter()) break;
        this_reactor().spawn(serve(std::move(*c)).with_cancel(&stop_));
    }
    gate_.leave();
}

task<void> hello_server::serve(tcp_stream conn) {
    std::string pending;  // bytes of an incomplete request
    for (;;) {
        auto chunk = co_await conn.read();
        if (!chunk || chunk->empty()) break;
        std::string_view data = chunk->view();
        if (!pending.empty()) {
            pending.append(data);
            data = pending;
        }
        // Count complete requests; keep the tail.
        size_t n = 0, pos = 0;
        for (;;) {
            size_t end = data.find("\r\n\r\n", pos);
            if (end == std::string_view::npos) break;
            ++n;
            pos = end + 4;
        }
        std::string rest(data.substr(pos));
        pending.swap(rest);
        if (pending.size() > max_header) break;
        if (n == 0) continue;
        requests_ += n;
        buffer out;
        if (n == 1) {
            out = buffer::from_static(response);
        } else {
            out = buffer(response.size() * n);
            for (size_t i = 0; i < n; ++i) out.append(response);
        }
        // The response goes out even when stopping: only idle reads are cancelled.
        auto write = conn.write(std::move(out), after(std::chrono::seconds(10)));
        auto w = co_await std::move(write).with_cancel(nullptr);
        if (!w) break;
    }
    gate_.leave();
}

task<void> hello_server::stop() {
    listener_.close();
    stop_.request_cancel();
    (void)co_await gate_.close(after(std::chrono::seconds(5)));
}

}  // namespace pharos::tools
