// pharos-mlnode: a pharos memberlist node on its own, for interop tests and
// experiments beside Go's memberlist. Flags follow tests/integration/mlpeer
// (memberlist-peer.md §4); stdout carries one JSON line per event (started,
// joined, join, leave, update, user_msg, remote_state, members). Runs on one
// shard; exits after -duration seconds (Leave first with -leave).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/clock.hh"
#include "engine/reactor.hh"
#include "engine/smp.hh"
#include "services/membership/net_node.hh"
#include "tools/common/flags.hh"

using namespace pharos;
using namespace pharos::membership;

namespace {

struct opts {
    std::string name = "pharos", bind = "127.0.0.1", join, profile = "lan", meta, state, key_b64, send_user;
    int port = 7946, duration = 60;
    long push_pull_max = -1;  // -1: config's default
    bool leave = false, quiet = false;
} o;

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}
auto start_time = std::chrono::steady_clock::now();

std::string esc(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += char(c);
        else if (c < 0x20 || c >= 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            out += b;
        } else out += char(c);
    }
    return out;
}
std::string hex(std::string_view s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) out += d[c >> 4], out += d[c & 15];
    return out;
}

void emit(const std::string& fields) {
    auto up = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_time);
    std::printf("{%s,\"self\":\"%s\",\"t_ms\":%lld,\"up_ms\":%lld}\n", fields.c_str(), esc(o.name).c_str(),
                (long long)wall_ms(), (long long)up.count());
    std::fflush(stdout);
}

void node_event(const char* ev, const member& m) {
    std::string ip = m.addr.to_string();
    ip = ip.substr(0, ip.rfind(':'));
    std::string vsn;
    for (size_t i = 0; i < m.vsn.size(); ++i) vsn += (i ? "," : "") + std::to_string(uint8_t(m.vsn[i]));
    emit(std::string("\"event\":\"") + ev + "\",\"name\":\"" + esc(m.name) + "\",\"addr\":\"" + ip +
         "\",\"port\":" + std::to_string(m.addr.port) + ",\"meta\":\"" + esc(m.meta) + "\",\"vsn\":[" + vsn + "]");
}

std::string unbase64(std::string_view in) {
    static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    uint32_t buf = 0;
    int bits = 0;
    for (char c : in) {
        auto p = chars.find(c);
        if (p == std::string::npos) continue;
        buf = buf << 6 | uint32_t(p);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(char((buf >> bits) & 0xff));
        }
    }
    return out;
}

gossip::keyring ring;

engine::task<int> run_node() {
    address adv;
    auto sa = engine::socket_address::parse(o.bind, uint16_t(o.port));
    if (!sa) {
        std::fprintf(stderr, "bad -bind\n");
        co_return 2;
    }
    adv = from_socket_address(*sa);
    config c = o.profile == "local" ? config::local(o.name, adv)
               : o.profile == "wan" ? config::wan(o.name, adv)
                                    : config::lan(o.name, adv);
    if (!o.key_b64.empty()) {
        if (!ring.add_key(unbase64(o.key_b64))) {
            std::fprintf(stderr, "bad -key\n");
            co_return 2;
        }
        c.wire.keys = &ring;
    }
    delegate d;
    d.on_join = [](const member& m) { node_event("join", m); };
    d.on_leave = [](const member& m) { node_event("leave", m); };
    d.on_update = [](const member& m) { node_event("update", m); };
    d.on_user_msg = [](std::string_view b) { emit("\"event\":\"user_msg\",\"hex\":\"" + hex(b) + "\""); };
    d.local_state = [](bool) { return o.state; };
    d.merge_remote_state = [](std::string_view b, bool join) {
        emit("\"event\":\"remote_state\",\"hex\":\"" + hex(b) + "\",\"join\":" + (join ? "true" : "false"));
    };
    c.meta = o.meta;
    if (o.push_pull_max >= 0) c.push_pull_max_nodes = size_t(o.push_pull_max);
    net_node node(c, d, uint64_t(wall_ms()) ^ uint64_t(o.port));
    co_await node.start(*sa);
    emit("\"event\":\"started\"");
    if (!o.join.empty()) {
        std::vector<address> addrs;
        size_t at = 0;
        while (at <= o.join.size()) {
            size_t comma = o.join.find(',', at);
            std::string hp = o.join.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
            auto colon = hp.rfind(':');
            auto ja = engine::socket_address::parse(hp.substr(0, colon), uint16_t(std::stoi(hp.substr(colon + 1))));
            if (ja) addrs.push_back(from_socket_address(*ja));
            if (comma == std::string::npos) break;
            at = comma + 1;
        }
        int joined = -1;
        node.ml().join(addrs, [&joined](int n) { joined = n; });
        auto limit = engine::clock::now() + c.tcp_timeout + std::chrono::seconds(1);
        while (joined < 0 && engine::clock::now() < limit) co_await engine::sleep_for(std::chrono::milliseconds(10));
        emit("\"event\":\"joined\",\"n\":" + std::to_string(joined));
    }
    bool sent_user = o.send_user.empty();
    auto end = engine::clock::now() + std::chrono::seconds(o.duration);
    auto next_members = engine::clock::now() + std::chrono::seconds(1);
    while (engine::clock::now() < end) {
        co_await engine::sleep_for(std::chrono::milliseconds(100));
        if (!sent_user) {
            auto colon = o.send_user.find(':');
            auto m = node.ml().find(o.send_user.substr(0, colon));  // a local: this is a coroutine
            if (m) {
                std::string payload = o.send_user.substr(colon + 1);
                node.ml().send_user_best_effort(m->addr, payload + "-udp");
                node.ml().send_user_reliable(m->addr, payload + "-tcp");
                sent_user = true;
            }
        }
        if (!o.quiet && engine::clock::now() >= next_members) {
            next_members += std::chrono::seconds(1);
            std::string list;
            size_t n = 0;
            for (const auto& m : node.ml().members()) {
                if (m.state != node_state::alive && m.state != node_state::suspect) continue;
                list += (n++ ? ",\"" : "\"") + esc(m.name) + "@" + m.addr.to_string() + "\"";
            }
            emit("\"event\":\"members\",\"members\":[" + list + "],\"n\":" + std::to_string(n) +
                 ",\"health\":" + std::to_string(node.ml().health_score()));
        }
    }
    if (o.leave) {
        bool left = false;
        node.ml().leave([&left] { left = true; });
        auto limit = engine::clock::now() + std::chrono::seconds(5);
        while (!left && engine::clock::now() < limit) co_await engine::sleep_for(std::chrono::milliseconds(10));
    }
    co_await node.stop();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    tools::flag_set f("pharos-mlnode", "One memberlist node on its own, for interop with Go's memberlist.");
    f.string("name", o.name, "node name");
    f.string("bind", o.bind, "address to bind");
    f.number("port", o.port, "gossip port (UDP and TCP)", 0, 65535);
    f.string("join", o.join, "comma-separated host:port list to join");
    f.number("duration", o.duration, "seconds to run", 0, 1000000);
    f.string("profile", o.profile, "lan, local or wan (memberlist's default configurations)");
    f.string("meta", o.meta, "node metadata");
    f.string("state", o.state, "push/pull user state");
    f.string("key", o.key_b64, "gossip encryption key (base64)");
    f.string("send-user", o.send_user, "name:payload: send a user message to that member once it is known");
    f.boolean("leave", o.leave, "leave gracefully at the end");
    f.boolean("quiet-members", o.quiet, "do not print the member list every second");
    f.number("push-pull-max", o.push_pull_max, "entries in a periodic push/pull (0: the whole table; -1: the built-in default)", -1L, 1L << 24);
    f.parse(argc, argv);
    engine::smp_config cfg;
    cfg.shards = 1;
    cfg.pin = false;
    engine::smp group(cfg);
    return group.run([] { return run_node(); });
}
