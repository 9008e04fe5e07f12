// The gossip decoder fuzz target's body, shared by the libFuzzer-style entry
// point (gossip_decode_fuzz.cc) and the unit test that runs it over seeded
// mutations (tests/services/gossip_fuzz_test.cc). One input goes through every
// decoder memberlist has: UDP packet opening with and without label,
// encryption (v0 and v1) and CRC, compound/compress flattening, LZW
// decompression, the msgpack body of every message type (re-encoding what
// decodes), the Serf messages a user message carries (leave, join, user event,
// push/pull state, query, query response, filters, key request and response,
// tags) and Consul's user-event payload, stream opening and push/pull
// decoding, and two memberlist engines
// (plain; label + keyring) fed it as a packet and as a stream. Checks that
// nothing is read or produced beyond the stated limits; aborts on a breach.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "protocols/gossip/codec.hh"
#include "protocols/gossip/lzw.hh"
#include "protocols/gossip/serf.hh"
#include "services/agent/serf_events.hh"
#include "services/membership/memberlist.hh"

namespace pharos::gossipfuzz {

namespace g = pharos::gossip;
namespace ms = pharos::membership;

inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "gossip fuzz: %s\n", what);
        std::abort();
    }
}

inline const std::string& key() {
    static const std::string k = "0123456789abcdef";  // AES-128
    return k;
}
inline const g::keyring& ring() {
    static const g::keyring r = [] {
        g::keyring k;
        k.add_key(key());
        return k;
    }();
    return r;
}
// The wire setups the decoders are tried with: plain, label, keyring v1, keyring v0 + label.
inline std::vector<g::wire_options> wires() {
    std::vector<g::wire_options> w(4);
    w[1].label = "fz";
    w[2].keys = &ring();
    w[3].keys = &ring();
    w[3].encryption_version = 0;
    w[3].label = "fz";
    return w;
}

// A body decoder that succeeded must re-encode to something that decodes again.
template <class M>
void roundtrip(std::string_view body) {
    M m;
    if (!g::decode(body, m)) return;
    std::string again = g::encode_msg(m);
    M m2;
    check(!again.empty() && g::decode(std::string_view(again).substr(1), m2), "re-encoded message does not decode");
}

// A Serf decoder that succeeded must re-encode to something that decodes again.
template <class T, class Enc, class Dec>
void serf_roundtrip(std::string_view msg, Enc enc, Dec dec) {
    std::optional<T> m = dec(msg);
    if (!m) return;
    check(dec(enc(*m)).has_value(), "re-encoded Serf message does not decode");
}

// A Serf message (what a memberlist user message carries), with its type byte.
inline void decode_serf(std::string_view msg) {
    namespace s = g::serf;
    serf_roundtrip<s::leave_intent>(msg, s::encode_leave, s::decode_leave);
    serf_roundtrip<s::join_intent>(msg, s::encode_join, s::decode_join);
    serf_roundtrip<s::user_event>(msg, s::encode_user_event, s::decode_user_event);
    serf_roundtrip<s::push_pull_state>(msg, s::encode_push_pull_state, s::decode_push_pull_state);
    serf_roundtrip<s::query>(msg, s::encode_query, s::decode_query);
    serf_roundtrip<s::query_response>(msg, s::encode_query_response, s::decode_query_response);
    serf_roundtrip<s::filter>(msg, s::encode_filter, s::decode_filter);
    serf_roundtrip<s::node_key_response>(msg, s::encode_key_response, s::decode_key_response);
    (void)s::decode_key_request(msg);
    (void)s::decode_tags(msg);
    if (auto e = pharos::agent::decode_consul_event(msg)) {
        check(pharos::agent::decode_consul_event(pharos::agent::encode_consul_event(*e)).has_value(),
              "re-encoded Consul event does not decode");
    }
}

inline void decode_bodies(std::string_view body) {
    decode_serf(body);
    roundtrip<g::ping>(body);
    roundtrip<g::indirect_ping>(body);
    roundtrip<g::ack_resp>(body);
    roundtrip<g::nack_resp>(body);
    roundtrip<g::err_resp>(body);
    roundtrip<g::suspect>(body);
    roundtrip<g::dead>(body);
    roundtrip<g::alive>(body);
    g::compress_body c;
    if (g::decode(body, c)) check(c.buf.size() <= body.size(), "compress body larger than its input");
    g::push_pull_header h;
    (void)g::decode(body, h);
    g::push_node_state st;
    (void)g::decode(body, st);
    g::user_msg_header u;
    (void)g::decode(body, u);
}

// An engine with a transport that keeps nothing; time moves 50 ms per input.
struct engine_box final : ms::transport {
    ms::time_point t = ms::time_point(std::chrono::hours(1));
    std::unique_ptr<ms::memberlist> ml;
    size_t fed = 0;
    g::wire_options w;
    explicit engine_box(g::wire_options wo) : w(std::move(wo)) { reset(); }
    void reset() {
        ml.reset();
        auto c = ms::config::lan("me", ms::address::v4(10, 0, 0, 1, 7946));
        c.wire = w;
        ml = std::make_unique<ms::memberlist>(c, *this, ms::delegate{}, 7);
        ml->start();
        g::push_pull pp;
        for (int i = 2; i < 6; ++i) {
            g::push_node_state s;
            s.name = "n";  // appended, not "n" + ...: GCC 12 warns falsely about that (-Wrestrict)
        s.name += std::to_string(i);
            s.addr = std::string{10, 0, 0, char(i)};
            s.port = 7946;
            s.incarnation = 1;
            s.vsn = std::string{1, 5, 2, 0, 0, 0};
            pp.nodes.push_back(s);
        }
        ml->bootstrap(pp);
    }
    ms::time_point now() override { return t; }
    void send_packet(const ms::address&, std::string bytes) override {
        check(bytes.size() <= 65535, "engine sent an oversized packet");
    }
    void stream(const ms::address&, std::string, bool, ms::time_point,
                std::function<void(std::optional<std::string>)>) override {}
    void wake_at(ms::time_point) override {}
    void feed(std::string_view in) {
        if (++fed % 500 == 0) reset();  // keeps the member table (and push/pull replies) small
        t += std::chrono::milliseconds(50);
        auto before = ml->stats();
        ml->handle_packet(ms::address::v4(10, 0, 0, 2, 7946), in);
        auto after = ml->stats();
        uint64_t drops = 0;
        for (auto d : after.packet_drops) drops += d;
        uint64_t drops0 = 0;
        for (auto d : before.packet_drops) drops0 += d;
        check(after.packets_bad - before.packets_bad == drops - drops0, "a bad packet without a drop reason");
        ml->handle_stream(ms::address::v4(10, 0, 0, 3, 7946), in);
        ml->run_timers();
    }
};

inline int one(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    static const std::vector<g::wire_options> ws = wires();
    std::string out;
    std::vector<std::string> msgs;
    for (const auto& w : ws) {
        out.clear();
        if (g::open_packet(in, w, out) == g::errc::ok) {
            msgs.clear();
            g::errc e = g::flatten(out, msgs);
            (void)e;
            size_t total = 0;
            for (auto& m : msgs) {
                total += m.size();
                if (!m.empty()) decode_bodies(std::string_view(m).substr(1));
            }
            check(total <= g::max_decompressed * 2, "flatten produced too much");
        }
        std::string msg;
        size_t used = 0;
        g::errc e = g::open_stream(in, w, msg, used);
        if (e == g::errc::ok) {
            check(used <= in.size(), "open_stream consumed more than its input");
            check(!msg.empty(), "open_stream gave an empty message");
            if (uint8_t(msg[0]) == uint8_t(g::msg_type::push_pull)) {
                g::push_pull pp;
                if (g::decode_push_pull(msg, pp) == g::errc::ok) {
                    check(pp.nodes.size() <= g::max_nodes, "push/pull over max_nodes");
                    g::push_pull again;
                    check(g::decode_push_pull(g::encode_push_pull(pp), again) == g::errc::ok &&
                              again.nodes.size() == pp.nodes.size(),
                          "re-encoded push/pull does not decode");
                }
            }
        }
    }
    size_t len = 0;
    if (g::plain_stream_length(in, len) == g::errc::ok) check(len <= in.size(), "stream length past the input");
    g::push_pull pp;
    (void)g::decode_push_pull(in, pp);
    msgs.clear();
    (void)g::flatten(in, msgs);
    if (auto d = g::lzw::decompress(in, 1u << 20)) check(d->size() <= 1u << 20, "LZW output over its limit");
    if (!in.empty()) decode_bodies(in.substr(1));
    static engine_box plain(ws[0]), sealed(ws[3]);
    plain.feed(in);
    sealed.feed(in);
    return 0;
}

// --- seeds: valid packets and streams of every kind, built deterministically ---

inline std::string seal_fixed(const g::wire_options& w, std::string packet, bool stream) {
    // As seal_packet / seal_stream, with a fixed nonce so seeds are the same on every run.
    std::string lab;
    if (!w.label.empty()) {
        lab.push_back(char(g::msg_type::has_label));
        lab.push_back(char(w.label.size()));
        lab += w.label;
    }
    if (!w.keys) return lab + packet;
    std::string nonce(12, '\x5a');
    if (!stream) return lab + g::seal(w.encryption_version, key(), nonce, packet, w.label);
    std::string head(1, char(g::msg_type::encrypt));
    size_t blob = packet.size() + (w.encryption_version == 0 ? 16 - packet.size() % 16 + 29 : 29);
    for (int i = 3; i >= 0; --i) head.push_back(char((blob >> (8 * i)) & 0xff));
    return lab + head + g::seal(w.encryption_version, key(), nonce, packet, head + w.label);
}

inline std::vector<std::string> messages() {
    std::vector<std::string> m;
    g::ping p;
    p.seq_no = 7;
    p.node = "me";
    p.source_addr = std::string{10, 0, 0, 2};
    p.source_port = 7946;
    p.source_node = "n2";
    m.push_back(g::encode_msg(p));
    g::indirect_ping ip;
    ip.seq_no = 8;
    ip.target = std::string{10, 0, 0, 4};
    ip.port = 7946;
    ip.node = "n4";
    ip.nack = true;
    ip.source_addr = std::string{10, 0, 0, 2};
    ip.source_port = 7946;
    ip.source_node = "n2";
    m.push_back(g::encode_msg(ip));
    g::ack_resp a;
    a.seq_no = 1;
    a.payload = "coord";
    m.push_back(g::encode_msg(a));
    m.push_back(g::encode_msg(g::nack_resp{2}));
    m.push_back(g::encode_msg(g::suspect{1, "n3", "n2"}));
    m.push_back(g::encode_msg(g::dead{1, "n4", "n2"}));
    m.push_back(g::encode_msg(g::dead{3, "n5", "n5"}));
    g::alive al;
    al.incarnation = 2;
    al.node = "n9";
    al.addr = std::string{10, 0, 0, 9};
    al.port = 7946;
    al.meta = "meta";
    al.vsn = std::string{1, 5, 2, 0, 0, 0};
    m.push_back(g::encode_msg(al));
    m.push_back(std::string(1, char(g::msg_type::user)) + "hello");
    g::err_resp er;
    er.error = "boom";
    m.push_back(g::encode_msg(er));
    // Serf messages, each a memberlist user message.
    namespace s = g::serf;
    std::string user(1, char(g::msg_type::user));
    m.push_back(user + s::encode_leave(s::leave_intent{4, "n3", true}));
    m.push_back(user + s::encode_join(s::join_intent{5, "n6"}));
    pharos::agent::user_event ce;
    ce.id = "0b5e4a6c-3c6e-4d38-9a5e-5d4f0f6d2a11";
    ce.name = "deploy";
    ce.payload = "v1";
    ce.node_filter = "^n";
    m.push_back(user + s::encode_user_event(s::user_event{6, "consul:event:deploy", pharos::agent::encode_consul_event(ce), false}));
    s::push_pull_state pps;
    pps.ltime = 9;
    pps.status_ltimes["n2"] = 3;
    pps.left_members.push_back("n7");
    pps.event_ltime = 7;
    s::push_pull_state::events_at at;
    at.ltime = 6;
    at.events.emplace_back("consul:event:deploy", "p");
    pps.events.push_back(at);
    pps.query_ltime = 2;
    m.push_back(user + s::encode_push_pull_state(pps));
    s::query q;
    q.ltime = 3;
    q.id = 77;
    q.addr = std::string{10, 0, 0, 2};
    q.port = 7946;
    q.source_node = "n2";
    q.filters.push_back(s::encode_filter(s::filter{}));
    q.flags = s::query_flag_ack;
    q.timeout_ns = 1'000'000'000;
    q.name = "_serf_list-keys";
    q.payload = s::encode_key_request("");
    m.push_back(user + s::encode_query(q));
    s::query_response qr;
    qr.ltime = 3;
    qr.id = 77;
    qr.from = "n2";
    s::node_key_response kr;
    kr.result = true;
    kr.keys.push_back("AAAAAAAAAAAAAAAAAAAAAA==");
    qr.payload = s::encode_key_response(kr);
    m.push_back(user + s::encode_query_response(qr));
    return m;
}

inline std::string push_pull_msg(bool join, int nodes) {
    g::push_pull pp;
    pp.header.join = join;
    for (int i = 0; i < nodes; ++i) {
        g::push_node_state s;
        s.name = "n";  // appended, not "n" + ...: GCC 12 warns falsely about that (-Wrestrict)
        s.name += std::to_string(i);
        s.addr = std::string{10, 0, 1, char(i)};
        s.port = 7946;
        s.incarnation = uint32_t(i);
        s.state = g::node_state(i % 4);
        s.vsn = std::string{1, 5, 2, 0, 0, 0};
        pp.nodes.push_back(s);
    }
    pp.user_state = join ? "state" : "";
    return g::encode_push_pull(pp);
}

inline std::string seed_input(unsigned i) {
    static const std::vector<std::string> msgs = messages();
    static const std::vector<g::wire_options> ws = wires();
    const auto& w = ws[(i / 7) % ws.size()];
    std::string inner;
    switch (i % 7) {
        case 0:
            inner = msgs[(i / 28) % msgs.size()];
            break;
        case 1:
            inner = g::make_compound(msgs);
            break;
        case 2:
            inner = g::compress_message(g::make_compound(msgs));
            break;
        case 3:
            inner = g::add_crc(g::compress_message(msgs[(i / 28) % msgs.size()]));
            break;
        case 4:
            return g::lzw::compress(msgs[(i / 28) % msgs.size()] + push_pull_msg(false, 3));
        case 5:
            return seal_fixed(w, push_pull_msg(i % 2, int(i / 28) % 6), true);
        case 6:
            return seal_fixed(w, g::compress_message(push_pull_msg(true, 4)), true);
    }
    return seal_fixed(w, inner, false);
}

// A deterministic mutation: flip bytes, interesting msgpack bytes, big lengths, truncation,
// insertion, duplication.
inline std::string mutate(std::string p, uint64_t& rng) {
    auto next = [&] {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    };
    static const uint8_t interesting[] = {0x00, 0x07, 0x09, 0x0c, 0x80, 0x8f, 0x90, 0xa0, 0xc0, 0xc4, 0xc5, 0xc6, 0xcc,
                                          0xce, 0xcf, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xf4, 0xff, 0x7f, 0x01};
    int rounds = int(next() % 3) + 1;
    for (int k = 0; k < rounds; ++k) {
        if (p.empty()) p.push_back('\0');
        switch (next() % 6) {
            case 0:
                p[next() % p.size()] = char(next());
                break;
            case 1:
                p[next() % p.size()] = char(interesting[next() % sizeof(interesting)]);
                break;
            case 2: {  // a large length right after some byte
                size_t at = next() % p.size();
                for (size_t j = at; j < at + 4 && j < p.size(); ++j) p[j] = char(j == at ? 0xff : next());
                break;
            }
            case 3:
                p.resize(next() % (p.size() + 1));
                break;
            case 4:
                p.insert(next() % p.size(), std::string(1 + next() % 4, char(next())));
                break;
            case 5:
                p.append(p.substr(next() % p.size(), 64));
                break;
        }
    }
    return p;
}

}  // namespace pharos::gossipfuzz
