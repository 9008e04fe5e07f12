// health::conn: a client byte stream for probes, plain TCP or TLS (OpenSSL
// driven through memory BIOs over the engine's tcp_stream, so the reactor does
// all socket I/O and OpenSSL never touches a descriptor). Lives on the shard
// that opened it. Every awaitable takes a deadline; on cancel or deadline the
// caller closes the connection (nothing is resumable mid-record).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/net.hh"
#include "engine/task.hh"

namespace pharos::health {

struct tls_options {
    std::string server_name;        // SNI and the name verified (empty: no name check)
    bool skip_verify = false;       // TLSSkipVerify
    std::vector<std::string> alpn;  // e.g. "h2" for gRPC
};

class conn {
public:
    conn();
    conn(conn&&) noexcept;
    conn& operator=(conn&&) noexcept;
    ~conn();

    // Connects (and for TLS, handshakes) to `to` by `dl`. On failure `error`
    // gets Go's text for the failing step ("dial tcp ...: connect: connection
    // refused", "tls: ..."). Cancel safety: the socket is closed.
    static engine::task<bool> open(conn& out, engine::socket_address to, std::string_view addr_text,
                                   const tls_options* tls, engine::deadline dl, std::string* error);
    // Writes all of `data`. Cancel safety: unknown prefix sent; close after.
    engine::task<engine::result<void>> write(std::string data, engine::deadline dl);
    // Appends the next decrypted bytes to `out`; false with empty `out` growth means EOF.
    // Cancel safety: bytes already received stay buffered.
    engine::task<engine::result<bool>> read(std::string& out, engine::deadline dl);
    // The ALPN protocol the server chose ("" if none or plain TCP).
    std::string alpn_selected() const;
    void close() noexcept;

private:
    struct tls_state;
    engine::task<engine::result<void>> flush_tls(engine::deadline dl);
    engine::task<engine::result<bool>> fill_tls(engine::deadline dl);
    engine::tcp_stream s_;
    std::unique_ptr<tls_state> tls_;
};

}  // namespace pharos::health
