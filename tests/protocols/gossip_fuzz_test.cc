// Fuzz entry for the memberlist decoders (LLVMFuzzerTestOneInput, usable with
// libFuzzer under clang) and a seeded driver that runs it here under GoogleTest:
// random mutations (bit flips, truncation, splices, length-field bumps) of
// valid packets and streams must decode or fail cleanly, never crash.
#include <gtest/gtest.h>

#include <random>

#include "protocols/gossip/codec.hh"

using namespace pharos::gossip;

namespace {
// Decodes `msg` as its type says; returns whether it was well formed.
bool decode_any(std::string_view msg) {
    if (msg.empty()) return false;
    std::string_view body = msg.substr(1);
    switch (msg_type(uint8_t(msg[0]))) {
    case msg_type::ping: { ping m; return decode(body, m); }
    case msg_type::indirect_ping: { indirect_ping m; return decode(body, m); }
    case msg_type::ack: { ack_resp m; return decode(body, m); }
    case msg_type::nack: { nack_resp m; return decode(body, m); }
    case msg_type::suspect: { suspect m; return decode(body, m); }
    case msg_type::alive: { alive m; return decode(body, m); }
    case msg_type::dead: { dead m; return decode(body, m); }
    case msg_type::err: { err_resp m; return decode(body, m); }
    case msg_type::push_pull: { push_pull p; return decode_push_pull(msg, p) == errc::ok; }
    default: return false;
    }
}

keyring& fuzz_ring() {
    static keyring r = [] {
        keyring k;
        (void)k.add_key(std::string(16, 'f'));
        return k;
    }();
    return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    for (int mode = 0; mode < 2; ++mode) {
        wire_options o;
        if (mode == 1) o.keys = &fuzz_ring();
        std::string inner;
        if (open_packet(in, o, inner) == errc::ok) {
            std::vector<std::string> msgs;
            (void)flatten(inner, msgs);
            for (const auto& m : msgs) (void)decode_any(m);
        }
        std::string msg;
        size_t used = 0;
        if (open_stream(in, o, msg, used) == errc::ok) {
            if (used > size) __builtin_trap();
            (void)decode_any(msg);
        }
    }
    return 0;
}

namespace {
std::vector<std::string> seeds() {
    std::string lo("\x7f\0\0\1", 4), vsn("\1\5\2\0\0\0", 6);
    std::vector<std::string> s;
    ping p;
    p.seq_no = 7, p.node = "n3", p.source_addr = lo, p.source_port = 7946, p.source_node = "n1";
    s.push_back(encode_msg(p));
    indirect_ping ip;
    ip.seq_no = 9, ip.target = lo, ip.port = 7948, ip.node = "n3", ip.nack = true;
    s.push_back(encode_msg(ip));
    s.push_back(encode_msg(ack_resp{3, "payload"}));
    s.push_back(encode_msg(nack_resp{4}));
    s.push_back(encode_msg(suspect{1, "n3", "n2"}));
    s.push_back(encode_msg(dead{1, "n3", "n1"}));
    alive a;
    a.incarnation = 2, a.node = "n2", a.addr = lo, a.port = 7947, a.meta = "meta", a.vsn = vsn;
    s.push_back(add_crc(encode_msg(a)));
    std::vector<std::string> parts{s[0], s[4], s[6]};
    s.push_back(make_compound(parts));
    s.push_back(compress_message(make_compound(parts)));
    push_pull pp;
    pp.header.join = true;
    for (int i = 0; i < 3; ++i) {
        push_node_state n;
        n.name = "node" + std::to_string(i), n.addr = lo, n.port = uint16_t(7946 + i), n.vsn = vsn;
        pp.nodes.push_back(n);
    }
    pp.user_state = "state";
    s.push_back(encode_push_pull(pp));
    s.push_back(seal_stream(encode_push_pull(pp), true, {}));
    wire_options enc;
    enc.keys = &fuzz_ring();
    s.push_back(seal_packet(add_crc(s[7]), enc));
    s.push_back(seal_stream(s[0], true, enc));
    return s;
}

std::string mutate(std::string s, std::mt19937_64& rng) {
    int ops = 1 + int(rng() % 4);
    for (int i = 0; i < ops && !s.empty(); ++i) {
        size_t at = rng() % s.size();
        switch (rng() % 6) {
        case 0: s[at] = char(s[at] ^ (1 << (rng() % 8))); break;
        case 1: s.resize(at); break;
        case 2: s[at] = char(rng()); break;
        case 3: s.insert(at, 1, char(rng())); break;
        case 4: s.insert(at, s.substr(rng() % s.size(), rng() % 16)); break;
        case 5: s[at] = char(0xff); break;  // large lengths and counts
        }
    }
    return s;
}
}  // namespace

TEST(gossip_fuzz, seeds_decode_cleanly) {
    for (const auto& s : seeds())
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(gossip_fuzz, mutated_packets_never_crash) {
    std::mt19937_64 rng(20261125);
    auto base = seeds();
    for (int i = 0; i < 60000; ++i) {
        auto m = mutate(base[rng() % base.size()], rng);
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(m.data()), m.size());
    }
}

TEST(gossip_fuzz, random_garbage_never_crashes) {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 20000; ++i) {
        std::string g(rng() % 200, '\0');
        for (auto& c : g) c = char(rng());
        if (!g.empty() && i % 3 == 0) g[0] = char(rng() % 14);  // start with a real type byte
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(g.data()), g.size());
    }
}
