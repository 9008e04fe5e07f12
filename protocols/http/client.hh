// http::client: one HTTP/1.1 request over a fresh connection, with a deadline
// for the whole exchange. Used by the CLI (and later by HTTP health checks).
#pragma once
#include <string>

#include "engine/net.hh"
#include "protocols/http/message.hh"

namespace pharos::http {

struct client_response {
    unsigned status = 0;
    header_list headers;
    std::string body;
    std::string_view header(std::string_view name) const;
};

// Sends `method target` with `body` to `to` and reads the whole response.
// Cancel safety: the connection is closed; nothing is retried.
engine::task<engine::result<client_response>> fetch(engine::socket_address to, std::string method, std::string target,
                                                    std::string body, header_list headers, engine::deadline dl);

}  // namespace pharos::http
