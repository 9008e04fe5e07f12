#include "client.hh"

#include <strings.h>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <ostream>

namespace pharos::http {
using namespace engine;
namespace bhttp = boost::beast::http;

std::string_view client_response::header(std::string_view name) const {
    for (auto& [k, v] : headers)
        if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
    return {};
}

task<result<client_response>> fetch(socket_address to, std::string method, std::string target, std::string body,
                                    header_list headers, deadline dl) {
    auto c = co_await tcp_stream::connect(to, dl);
    if (!c) co_return c.error();
    tcp_stream conn = std::move(*c);
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + to.to_string() +
                      "\r\nUser-Agent: pharos\r\nConnection: close\r\n";
    for (auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (!body.empty() || method == "PUT" || method == "POST")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n";
    req += body;
    auto w = co_await conn.write(buffer::copy_of(req), dl);
    if (!w) co_return w.error();

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    parser.eager(true);
    std::string in;
    bool eof = false;
    for (;;) {
        boost::beast::error_code ec;
        if (!in.empty()) {
            size_t used = parser.put(boost::asio::buffer(in), ec);
            in.erase(0, used);
            if (parser.is_done()) break;
            if (ec && ec != bhttp::error::need_more) co_return std::error_code(EPROTO, std::system_category());
            if (used > 0 && !in.empty()) continue;
        }
        if (eof) {
            parser.put_eof(ec);  // a body delimited by the end of the connection
            if (ec || !parser.is_done()) co_return std::error_code(EPROTO, std::system_category());
            break;
        }
        auto chunk = co_await conn.read(dl);
        if (!chunk) co_return chunk.error();
        if (chunk->empty())
            eof = true;
        else
            in.append(chunk->view());
    }
    auto msg = parser.release();
    client_response r;
    r.status = msg.result_int();
    for (auto& f : msg) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = std::move(msg.body());
    co_return r;
}

}  // namespace pharos::http
