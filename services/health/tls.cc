#include "tls.hh"

#include "services/health/probe.hh"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace pharos::health {
using namespace engine;

namespace {
// One client context per shard thread and verification mode: the CA store is
// loaded once per thread, not per probe.
SSL_CTX* client_ctx(bool verify) {
    thread_local SSL_CTX* ctx[2] = {nullptr, nullptr};
    SSL_CTX*& c = ctx[verify ? 1 : 0];
    if (!c) {
        c = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
        SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
        if (verify) {
            SSL_CTX_set_default_verify_paths(c);
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
        } else {
            SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
        }
    }
    return c;
}

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "tls: handshake failure";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return std::string("tls: ") + buf;
}
}  // namespace

struct conn::tls_state {
    SSL* ssl = nullptr;
    BIO* in = nullptr;   // network -> OpenSSL (owned by ssl)
    BIO* out = nullptr;  // OpenSSL -> network (owned by ssl)
    ~tls_state() {
        if (ssl) SSL_free(ssl);
    }
};

conn::conn() = default;
conn::conn(conn&&) noexcept = default;
conn& conn::operator=(conn&&) noexcept = default;
conn::~conn() = default;

void conn::close() noexcept {
    s_.close();
    tls_.reset();
}

std::string conn::alpn_selected() const {
    if (!tls_) return "";
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(tls_->ssl, &p, &len);
    return std::string(reinterpret_cast<const char*>(p), len);
}

task<result<void>> conn::flush_tls(deadline dl) {
    std::string pending;
    char buf[16384];
    int n;
    while ((n = BIO_read(tls_->out, buf, sizeof buf)) > 0) pending.append(buf, size_t(n));
    if (pending.empty()) co_return result<void>{};
    co_return co_await s_.write(buffer::copy_of(pending), dl);
}

// Reads one chunk from the socket into OpenSSL. False: the peer closed.
task<result<bool>> conn::fill_tls(deadline dl) {
    auto c = co_await s_.read(dl);
    if (!c) co_return c.error();
    if (c->empty()) co_return false;
    BIO_write(tls_->in, c->data(), int(c->size()));
    co_return true;
}

task<bool> conn::open(conn& out, socket_address to, std::string_view addr_text, const tls_options* tls, deadline dl,
                      std::string* error) {
    auto c = co_await tcp_stream::connect(to, dl);
    if (!c) {
        int e = c.error().value();
        if (is_timed_out(c.error())) *error = "dial tcp " + std::string(addr_text) + ": i/o timeout";
        else if (is_cancelled(c.error())) *error = "dial tcp " + std::string(addr_text) + ": operation was canceled";
        else *error = "dial tcp " + std::string(addr_text) + ": connect: " + errno_text(-e);
        co_return false;
    }
    out.s_ = std::move(*c);
    if (!tls) co_return true;
    out.tls_ = std::make_unique<tls_state>();
    tls_state& t = *out.tls_;
    t.ssl = SSL_new(client_ctx(!tls->skip_verify));
    t.in = BIO_new(BIO_s_mem());
    t.out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(t.in, -1);
    SSL_set_bio(t.ssl, t.in, t.out);
    SSL_set_connect_state(t.ssl);
    if (!tls->server_name.empty()) {
        SSL_set_tlsext_host_name(t.ssl, tls->server_name.c_str());
        if (!tls->skip_verify) SSL_set1_host(t.ssl, tls->server_name.c_str());
    }
    if (!tls->alpn.empty()) {
        std::string wire;
        for (auto& p : tls->alpn) {
            wire.push_back(char(p.size()));
            wire += p;
        }
        SSL_set_alpn_protos(t.ssl, reinterpret_cast<const unsigned char*>(wire.data()), unsigned(wire.size()));
    }
    for (;;) {
        int r = SSL_do_handshake(t.ssl);
        auto f = co_await out.flush_tls(dl);
        if (!f) {
            *error = "tls: " + errno_text(-f.error().value());
            co_return false;
        }
        if (r == 1) co_return true;
        int e = SSL_get_error(t.ssl, r);
        if (e != SSL_ERROR_WANT_READ) {
            long v = SSL_get_verify_result(t.ssl);
            if (v != X509_V_OK)
                *error = std::string("tls: failed to verify certificate: x509: ") + X509_verify_cert_error_string(v);
            else
                *error = ssl_error_text();
            co_return false;
        }
        auto more = co_await out.fill_tls(dl);
        if (!more) {
            *error = is_timed_out(more.error()) ? "tls: handshake: i/o timeout"
                                                : "tls: " + errno_text(-more.error().value());
            co_return false;
        }
        if (!*more) {
            *error = "tls: handshake: EOF";
            co_return false;
        }
    }
}

task<result<void>> conn::write(std::string data, deadline dl) {
    if (!tls_) co_return co_await s_.write(buffer::copy_of(data), dl);
    size_t off = 0;
    while (off < data.size()) {
        int r = SSL_write(tls_->ssl, data.data() + off, int(data.size() - off));
        if (r <= 0) co_return std::error_code(EPROTO, std::system_category());
        off += size_t(r);
    }
    co_return co_await flush_tls(dl);
}

task<result<bool>> conn::read(std::string& out, deadline dl) {
    if (!tls_) {
        auto c = co_await s_.read(dl);
        if (!c) co_return c.error();
        if (c->empty()) co_return false;
        out.append(c->view());
        co_return true;
    }
    char buf[16384];
    for (;;) {
        int r = SSL_read(tls_->ssl, buf, sizeof buf);
        if (r > 0) {
            out.append(buf, size_t(r));
            co_return true;
        }
        int e = SSL_get_error(tls_->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) co_return false;
        if (e != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            co_return std::error_code(EPROTO, std::system_category());
        }
        auto f = co_await flush_tls(dl);  // e.g. a key update answer
        if (!f) co_return f.error();
        auto more = co_await fill_tls(dl);
        if (!more) co_return more.error();
        if (!*more) co_return false;  // TCP EOF without close_notify: treat as EOF, as Go does for HTTP/1 bodies
    }
}

}  // namespace pharos::health
