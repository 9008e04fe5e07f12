// The agent's LAN gossip pool and the catalog reconcile; see gossip.hh.
#include "services/agent/gossip.hh"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "engine/log.hh"
#include "protocols/json/writer.hh"
#include "services/agent/agent.hh"
#include "services/membership/net_node.hh"

namespace pharos::agent {
using namespace engine;
using membership::node_state;
namespace serf = gossip::serf;

namespace {
constexpr const char* build_version = "1.17.0:pharos";         // the Consul level pharos answers as
constexpr auto tombstone_timeout = std::chrono::hours(24);     // Serf's TombstoneTimeout
constexpr auto reconcile_interval = std::chrono::seconds(60);  // Consul's ReconcileInterval

std::string ip_text(const std::string& raw) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (raw.size() == 4) inet_ntop(AF_INET, raw.data(), buf, sizeof buf);
    if (raw.size() == 16) inet_ntop(AF_INET6, raw.data(), buf, sizeof buf);
    return buf;
}

member_status status_of(membership::node_state s) {
    switch (s) {
        case membership::node_state::alive:
        case membership::node_state::suspect:
            return member_status::alive;
        case membership::node_state::left:
            return member_status::left;
        default:
            return member_status::failed;
    }
}

// The serfHealth check of a member's node.
catalog::check serf_health(std::string status, std::string output) {
    catalog::check c;
    c.check_id = serf_check_id;
    c.name = "Serf Health Status";
    c.status = std::move(status);
    c.output = std::move(output);
    return c;
}

void fill(serf_member& s, const membership::member& m) {
    s.name = m.name;
    s.addr = ip_text(m.addr.ip);
    s.port = m.addr.port;
    s.tags = serf::decode_tags(m.meta);
    if (m.vsn.size() == 6)
        for (int i = 0; i < 6; ++i) s.vsn[i] = uint8_t(m.vsn[size_t(i)]);
}
}  // namespace

serf::tags consul_tags(const config& c) {
    serf::tags t;
    t["acls"] = "0";
    t["build"] = build_version;
    t["dc"] = c.datacenter;
    t["ft_fs"] = "1";
    t["ft_si"] = "1";
    t["id"] = c.node_id;
    t["role"] = c.server ? "consul" : "node";
    t["segment"] = "";
    t["vsn"] = "2";
    t["vsn_max"] = "3";
    t["vsn_min"] = "2";
    if (c.server) {
        t["port"] = std::to_string(c.ports.server);
        t["raft_vsn"] = std::to_string(c.raft_protocol);
        t["wan_join_port"] = std::to_string(c.ports.serf_wan);
        if (c.bootstrap) t["bootstrap"] = "1";
        if (c.bootstrap_expect > 0) t["expect"] = std::to_string(c.bootstrap_expect);
    }
    return t;
}

// ------------------------------------------------------------------ serf_table

void serf_table::joined(const membership::member& m, time_point now) {
    serf_member& s = members_[m.name];
    fill(s, m);
    member_status st = status_of(m.state);
    if (s.status != st) s.since = now;
    s.status = st;
}

void serf_table::departed(const membership::member& m, time_point now) {
    serf_member& s = members_[m.name];
    fill(s, m);
    member_status st = status_of(m.state);
    // A member that announced its leave (or was force-left) and then goes silent has left (Serf).
    if ((s.status == member_status::left || s.status == member_status::leaving) && st == member_status::failed)
        st = member_status::left;
    if (s.status != st) s.since = now;
    s.status = st;
}

bool serf_table::leave_intent(const serf::leave_intent& l, time_point now) {
    witness(l.ltime);
    auto it = members_.find(l.node);
    if (it == members_.end()) return false;
    serf_member& s = it->second;
    if (l.ltime <= s.status_ltime) return false;
    s.status_ltime = l.ltime;
    if (l.prune && (s.status == member_status::failed || s.status == member_status::left)) {
        members_.erase(it);
        return true;
    }
    if (s.status == member_status::failed) {
        s.status = member_status::left;
        s.since = now;
    } else if (s.status == member_status::alive) {
        s.status = member_status::leaving;  // left once it goes; alive again if it refutes (join intent)
        s.since = now;
    }
    return true;
}

bool serf_table::join_intent(const serf::join_intent& j) {
    witness(j.ltime);
    auto it = members_.find(j.node);
    if (it == members_.end() || j.ltime <= it->second.status_ltime) return false;
    it->second.status_ltime = j.ltime;
    if (it->second.status == member_status::leaving) it->second.status = member_status::alive;
    return true;
}

bool serf_table::reap(time_point now, clock::duration reconnect_timeout, clock::duration tombstone) {
    bool any = false;
    for (auto it = members_.begin(); it != members_.end();) {
        const serf_member& s = it->second;
        bool gone = (s.status == member_status::failed && now - s.since > reconnect_timeout) ||
                    (s.status == member_status::left && now - s.since > tombstone);
        if (gone) {
            it = members_.erase(it);
            any = true;
        } else {
            ++it;
        }
    }
    return any;
}

const serf_member* serf_table::find(const std::string& name) const {
    auto it = members_.find(name);
    return it == members_.end() ? nullptr : &it->second;
}

// ------------------------------------------------------------------ reconcile

std::vector<state::command> reconcile(const catalog::store& cat, const std::map<std::string, serf_member>& members,
                                      const std::string& self, const std::string& datacenter) {
    std::vector<state::command> out;
    state::check_updates failed;
    for (const auto& [name, m] : members) {
        // Consul's shouldHandleMember: only Consul agents (role node or consul) of this datacenter.
        auto role = m.tags.find("role"), dc = m.tags.find("dc");
        bool consul_node = role != m.tags.end() && (role->second == "node" || role->second == "consul");
        if (!consul_node || dc == m.tags.end() || dc->second != datacenter) continue;
        const catalog::node* n = cat.get_node(name);
        const catalog::check* serf_check = n ? cat.get_check(name, serf_check_id) : nullptr;
        if (m.status == member_status::alive) {
            bool server = m.tags.count("role") && m.tags.at("role") == "consul";
            int port = 0;
            if (server) port = std::atoi(m.tags.count("port") ? m.tags.at("port").c_str() : "0");
            bool ok = n && n->address == m.addr && serf_check && serf_check->status == "passing";
            if (ok && server) {
                const catalog::service* svc = cat.get_service(name, "consul");
                ok = svc && svc->port == port;
            }
            if (ok) continue;
            catalog::register_request r;
            if (n && name == self) {
                r.n = *n;  // keep the local agent's own node fields
            } else {
                r.n.name = name;
                r.n.address = m.addr;
                r.n.datacenter = datacenter;
                if (m.tags.count("id")) r.n.id = m.tags.at("id");
                if (n) {
                    r.n.tagged_addresses = n->tagged_addresses;
                    r.n.meta = n->meta;
                }
            }
            r.checks.push_back(serf_health("passing", serf_alive_output));
            if (server) {
                catalog::service s;
                s.id = "consul";
                s.name = "consul";
                s.port = port;
                s.meta = {{"non_voter", "false"},
                          {"raft_version", m.tags.count("raft_vsn") ? m.tags.at("raft_vsn") : "3"},
                          {"read_replica", "false"},
                          {"serf_protocol_current", std::to_string(m.vsn[2])},
                          {"serf_protocol_max", std::to_string(m.vsn[1])},
                          {"serf_protocol_min", std::to_string(m.vsn[0])},
                          {"version",
                           m.tags.count("build") ? m.tags.at("build").substr(0, m.tags.at("build").find(':')) : ""}};
                r.svc = s;
            }
            out.push_back(std::move(r));
        } else if (m.status == member_status::failed) {
            if (!n || name == self) continue;  // Consul ignores failed members it never registered
            if (serf_check && serf_check->status == "critical") continue;
            if (serf_check) {
                failed.updates.push_back(state::check_update{name, serf_check_id, "critical", serf_failed_output});
            } else {
                catalog::register_request r;
                r.n = *n;
                r.skip_node_update = true;
                r.checks.push_back(serf_health("critical", serf_failed_output));
                out.push_back(std::move(r));
            }
        } else if (m.status == member_status::left) {
            if (n && name != self) out.push_back(catalog::deregister_request{name, "", ""});
        }
    }
    if (!failed.updates.empty()) out.push_back(std::move(failed));
    // Reaped: nodes with a serfHealth check that are no longer members.
    std::vector<std::string> reaped;
    cat.for_each_check([&](const catalog::check& c) {
        if (c.check_id == serf_check_id && c.service_id.empty() && c.node != self && !members.count(c.node))
            reaped.push_back(c.node);
    });
    for (auto& name : reaped) out.push_back(catalog::deregister_request{name, "", ""});
    return out;
}

// ------------------------------------------------------------------ addresses

std::optional<membership::address> resolve_join_address(const std::string& text, uint16_t default_port) {
    std::string host = text;
    uint16_t port = default_port;
    if (!host.empty() && host[0] == '[') {
        auto close = host.find(']');
        if (close == std::string::npos) return std::nullopt;
        std::string rest = host.substr(close + 1);
        host = host.substr(1, close - 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return std::nullopt;
            int p = std::atoi(rest.c_str() + 1);
            if (p <= 0 || p > 65535) return std::nullopt;
            port = uint16_t(p);
        }
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
        auto colon = host.find(':');
        int p = std::atoi(host.c_str() + colon + 1);
        if (p <= 0 || p > 65535) return std::nullopt;
        port = uint16_t(p);
        host = host.substr(0, colon);
    }
    membership::address a;
    a.port = port;
    unsigned char buf[16];
    if (inet_pton(AF_INET, host.c_str(), buf) == 1) {
        a.ip.assign(reinterpret_cast<char*>(buf), 4);
        return a;
    }
    if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
        a.ip.assign(reinterpret_cast<char*>(buf), 16);
        return a;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return std::nullopt;
    auto s = socket_address::from(res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    auto r = membership::from_socket_address(s);
    r.port = port;
    return r;
}

// ------------------------------------------------------------------ lan_gossip

lan_gossip::lan_gossip(config cfg, sharded<state::service>* st) : cfg_(std::move(cfg)), st_(st) {}

lan_gossip::~lan_gossip() = default;

task<void> lan_gossip::start() {
    std::string bind_ip = cfg_.serf_lan_bind.empty() ? cfg_.bind_addr : cfg_.serf_lan_bind;
    auto adv = resolve_join_address(advertise_address(cfg_), uint16_t(cfg_.ports.serf_lan));
    if (!adv) throw std::runtime_error("gossip: bad advertise address " + advertise_address(cfg_));
    membership::config mc = membership::config::lan(cfg_.node_name, *adv);
    auto meta = serf::encode_tags(consul_tags(cfg_));
    if (!meta) throw std::runtime_error("gossip: the node's tags exceed 512 bytes");
    mc.meta = *meta;
    mc.protocol_version = 2;
    mc.delegate_min = 2;  // Serf's delegate protocol, as Consul's Serf reports it
    mc.delegate_max = 5;
    mc.delegate_version = 4;
    mc.reconnect_interval = std::chrono::seconds(30);  // Serf's ReconnectInterval
    mc.reconnect_timeout = std::chrono::duration_cast<clock::duration>(cfg_.reconnect_timeout);
    const gossip_tuning& t = cfg_.gossip_lan;
    if (t.gossip_nodes) mc.gossip_nodes = *t.gossip_nodes;
    if (t.retransmit_mult) mc.retransmit_mult = *t.retransmit_mult;
    if (t.suspicion_mult) mc.suspicion_mult = *t.suspicion_mult;
    if (t.gossip_interval) mc.gossip_interval = std::chrono::duration_cast<clock::duration>(*t.gossip_interval);
    if (t.probe_interval) mc.probe_interval = std::chrono::duration_cast<clock::duration>(*t.probe_interval);
    if (t.probe_timeout) mc.probe_timeout = std::chrono::duration_cast<clock::duration>(*t.probe_timeout);
    mc.wire.verify_incoming = cfg_.encrypt_verify_incoming;
    mc.wire.verify_outgoing = cfg_.encrypt_verify_outgoing;
    load_keyring();
    if (!keys_.empty()) mc.wire.keys = &keys_;
    membership::delegate d;
    d.on_join = [this](const membership::member& m) {
        table_.joined(m, clock::now());
        changed();
    };
    d.on_update = d.on_join;
    d.on_leave = [this](const membership::member& m) {
        table_.departed(m, clock::now());
        changed();
    };
    d.on_user_msg = [this](std::string_view msg) { on_user_msg(msg); };
    d.local_state = [this](bool) { return local_state(); };
    d.merge_remote_state = [this](std::string_view buf, bool join) { merge_remote_state(buf, join); };
    uint64_t seed = uint64_t(std::random_device{}());
    node_ = std::make_unique<membership::net_node>(std::move(mc), std::move(d), seed);
    queries_ = std::make_unique<serf_queries>(node_->ml(), cfg_.node_name, consul_tags(cfg_), seed ^ 0x5e4f);
    queries_->set_handler([this](const serf::query& q) { return handle_query(q); });
    events_ = std::make_unique<serf_events>([this](std::string m) { node_->ml().broadcast_user(std::move(m)); });
    events_->set_handler([this](const serf::user_event& e) {
        auto c = consul_event_of(e);
        if (!c) return;  // not Consul's (or undecodable): relayed all the same, as Serf
        if (event_sink_) event_sink_(std::move(*c));
    });
    auto bind = socket_address::parse(bind_ip, uint16_t(cfg_.ports.serf_lan));
    if (!bind) throw std::runtime_error("gossip: bad bind address " + bind_ip);
    co_await node_->start(*bind);
    started_ = true;
    log(log_level::info, "gossip: LAN pool on %s:%d, advertising %s", bind_ip.c_str(), cfg_.ports.serf_lan,
        adv->to_string().c_str());
    gate_.try_enter();
    this_reactor().spawn(reconcile_loop().with_cancel(&stop_));
}

void lan_gossip::load_keyring() {
    if (!cfg_.data_dir.empty() && !cfg_.disable_keyring_file) keyring_path_ = cfg_.data_dir + "/serf/local.keyring";
    std::string err;
    std::optional<std::vector<std::string>> file;
    if (!keyring_path_.empty()) file = read_keyring_file(keyring_path_, err);
    if (!err.empty()) throw std::runtime_error("gossip: " + err);
    if (file) {
        if (!cfg_.encrypt.empty())
            log(log_level::warn, "gossip: LAN keyring exists (%s) but encrypt is set: using the keyring",
                keyring_path_.c_str());
        for (auto& k : *file) keys_.add_key(k);
        return;
    }
    if (cfg_.encrypt.empty()) return;
    std::string key;
    if (!json::base64_decode(cfg_.encrypt, key) || !keys_.add_key(key))
        throw std::runtime_error("gossip: encrypt must be a base64 key of 16, 24 or 32 bytes");
    if (!keyring_path_.empty()) {
        if (auto e = write_keyring_file(keyring_path_, keys_.keys())) throw std::runtime_error("gossip: " + *e);
    }
}

std::optional<std::string> lan_gossip::handle_query(const serf::query& q) {
    keyring_saver save;
    if (!keyring_path_.empty())
        save = [this](const gossip::keyring& r) { return write_keyring_file(keyring_path_, r.keys()); };
    if (auto a = handle_key_query(q, keys_, save)) {
        log(log_level::info, "gossip: %s query from %s", q.name.c_str(), q.source_node.c_str());
        return a;
    }
    return std::nullopt;  // _serf_ping: the ack alone; other queries: no handler here
}

task<key_response> lan_gossip::key_operation(key_op op, std::string key_b64) {
    struct waiter {
        wait_slot slot;
    };
    key_response out;
    if (!started_) {
        out.error = "gossip is disabled (ports.serf_lan = -1)";
        co_return out;
    }
    std::string raw;
    if (op != key_op::list && !json::base64_decode(key_b64, raw)) {
        size_t bad = 0;
        while (bad < key_b64.size() && (std::isalnum(uint8_t(key_b64[bad])) || key_b64[bad] == '+' ||
                                        key_b64[bad] == '/'))
            ++bad;
        out.error = "illegal base64 data at input byte " + std::to_string(bad);
        co_return out;
    }
    const char* name = op == key_op::list      ? list_keys_query
                       : op == key_op::install ? install_key_query
                       : op == key_op::use     ? use_key_query
                                               : remove_key_query;
    std::shared_ptr<serf_queries::pending> p = queries_->start(name, serf::encode_key_request(raw), clock::now());
    auto w = std::make_shared<waiter>();
    p->on_change = [w] { w->slot.notify(); };
    bool entered = gate_.try_enter();  // stop() waits for us (and closes the query to wake us)
    while (entered && !stopping_ && p->responses.size() < p->num_nodes && !p->finished(clock::now())) {
        int r = co_await w->slot.wait(p->deadline);
        if (r == -ECANCELED) break;
    }
    if (entered) gate_.leave();
    queries_->close(p);
    co_return summarize(*p);
}

std::string lan_gossip::local_state() {
    // Serf's messagePushPull: the three clocks and the recent events. StatusLTimes and LeftMembers go
    // empty (Go Serf reads that as nothing to merge): the intents' repair is not done here.
    serf::push_pull_state pp;
    pp.ltime = table_.witness(0);
    events_->export_state(pp);
    pp.query_ltime = queries_->clock();
    return serf::encode_push_pull_state(pp);
}

void lan_gossip::merge_remote_state(std::string_view buf, bool join) {
    auto pp = serf::decode_push_pull_state(buf);
    if (!pp) return;  // a plain memberlist peer's state, or not Serf's
    if (pp->ltime > 0) table_.witness(pp->ltime - 1);
    if (pp->query_ltime > 0) queries_->witness(pp->query_ltime - 1);
    events_->merge_state(*pp, join && joining_ > 0);
}

std::optional<std::string> lan_gossip::fire_event(const user_event& e, uint64_t* ltime) {
    if (!gossiping()) return std::string("gossip is disabled (ports.serf_lan = -1)");
    return fire_consul_event(*events_, e, ltime);
}

task<void> lan_gossip::stop() {
    stopping_ = true;
    if (queries_) queries_->close_all();
    stop_.request_cancel();
    wake_.notify();
    (void)co_await gate_.close();
    if (started_) co_await node_->stop();
    started_ = false;
}

void lan_gossip::changed() {
    dirty_ = true;
    wake_.notify();
}

void lan_gossip::on_user_msg(std::string_view msg) {
    if (events_->on_user_msg(msg)) return;
    if (queries_->on_user_msg(msg, clock::now())) return;
    // Serf re-broadcasts every new intent. Other Serf messages (push/pull, relays) are not handled.
    if (auto l = serf::decode_leave(msg)) {
        if (l->node == cfg_.node_name) {
            table_.witness(l->ltime);
            if (!leaving_) {  // refute: we are alive
                serf::join_intent j{table_.tick(), cfg_.node_name};
                node_->ml().broadcast_user(serf::encode_join(j));
            }
            return;
        }
        if (!table_.leave_intent(*l, clock::now())) return;
        node_->ml().broadcast_user(std::string(msg));
        changed();
    } else if (auto j = serf::decode_join(msg)) {
        if (j->node == cfg_.node_name || !table_.join_intent(*j)) return;
        node_->ml().broadcast_user(std::string(msg));
        changed();
    }
}

task<int> lan_gossip::join(std::vector<std::string> addrs, deadline dl, std::string* error) {
    struct waiter {
        int n = -1;
        wait_slot slot;
    };
    if (!started_) {
        if (error) *error = "gossip is disabled (ports.serf_lan = -1)";
        co_return 0;
    }
    std::vector<membership::address> targets;
    std::string bad;
    for (auto& a : addrs) {
        auto r = resolve_join_address(a, uint16_t(cfg_.ports.serf_lan));
        if (r)
            targets.push_back(*r);
        else
            bad += (bad.empty() ? "" : ", ") + a;
    }
    int n = 0;
    bool tried = !targets.empty();
    if (tried) {
        auto w = std::make_shared<waiter>();
        std::function<void(int)> done = [w](int k) {
            w->n = k;
            w->slot.notify();
        };
        ++joining_;  // Consul joins with ignoreOld: the peers' past events are not replayed here
        node_->ml().join(std::move(targets), std::move(done));
        while (w->n < 0) {
            int r = co_await w->slot.wait(dl);
            if (r < 0 && w->n < 0) break;
        }
        --joining_;
        n = std::max(0, w->n);
    }
    if (error && (n == 0 || !bad.empty())) {
        std::string e;
        if (!bad.empty()) e = "cannot resolve " + bad;
        if (n == 0 && tried) {
            std::string all;
            for (auto& a : addrs) all += (all.empty() ? "" : ", ") + a;
            e += (e.empty() ? "" : "; ") + std::string("no contact with ") + all;
        }
        *error = e;
    }
    co_return n;
}

void lan_gossip::start_retry_join(std::function<void()> on_exhausted) {
    if (cfg_.retry_join.empty() || !started_) return;
    gate_.try_enter();
    this_reactor().spawn(retry_loop(std::move(on_exhausted)).with_cancel(&stop_));
}

task<void> lan_gossip::retry_loop(std::function<void()> on_exhausted) {
    int attempt = 0;
    for (;;) {
        ++attempt;
        std::string err;
        int n = co_await join(cfg_.retry_join, clock::now() + std::chrono::seconds(10), &err);
        if (stopping_) break;
        if (n > 0) {
            log(log_level::info, "gossip: retry-join: joined %d node(s)", n);
            break;
        }
        if (cfg_.retry_max > 0 && attempt >= cfg_.retry_max) {
            log(log_level::error, "gossip: retry-join: max join retry exhausted (%s), exiting", err.c_str());
            if (on_exhausted) on_exhausted();
            break;
        }
        log(log_level::warn, "gossip: retry-join failed (%s); retrying in %lld ms", err.c_str(),
            (long long)std::chrono::duration_cast<std::chrono::milliseconds>(cfg_.retry_interval).count());
        auto wait = std::chrono::duration_cast<clock::duration>(cfg_.retry_interval);
        co_await sleep_for(wait);
        if (stopping_) break;
    }
    gate_.leave();
}

task<void> lan_gossip::leave(deadline dl) {
    struct waiter {
        bool done = false;
        wait_slot slot;
    };
    if (!started_) co_return;
    // Serf: a leave intent first (every member relays it, so those that miss memberlist's dead
    // message still see "leaving" and then "left" when we go), then memberlist's leave.
    leaving_ = true;
    serf::leave_intent l;
    l.ltime = table_.tick();
    l.node = cfg_.node_name;
    spread(serf::encode_leave(l));
    auto w = std::make_shared<waiter>();
    std::function<void()> done = [w] {
        w->done = true;
        w->slot.notify();
    };
    node_->ml().leave(std::move(done));
    while (!w->done) {
        int r = co_await w->slot.wait(dl);
        if (r < 0 && !w->done) break;
    }
    // Serf: the local member is left from now on.
    if (auto me = node_->ml().find(cfg_.node_name)) table_.departed(*me, clock::now());
}

std::optional<std::string> lan_gossip::force_leave(const std::string& node, bool prune) {
    if (node == cfg_.node_name) return "Cannot force leave the local node";
    const serf_member* m = table_.find(node);
    if (!m) return "agent: No node found with name '" + node + "'";
    serf::leave_intent l;
    l.ltime = table_.tick();
    l.node = node;
    l.prune = prune;
    if (table_.leave_intent(l, clock::now())) changed();
    if (started_) spread(serf::encode_leave(l));
    return std::nullopt;
}

void lan_gossip::spread(std::string msg) {
    // Gossip, as Serf; and, because pharos has no Serf push/pull of intents to repair a member that
    // missed every relay (a few transmits in a small cluster), once over TCP to each live member.
    for (const membership::member& m : node_->ml().members())
        if (m.name != cfg_.node_name && (m.state == node_state::alive || m.state == node_state::suspect))
            node_->ml().send_user_reliable(m.addr, msg);
    node_->ml().broadcast_user(std::move(msg));
}

task<void> lan_gossip::run_reconcile() {
    auto now = clock::now();
    auto rt = std::chrono::duration_cast<clock::duration>(cfg_.reconnect_timeout);
    table_.reap(now, rt, tombstone_timeout);
    std::vector<state::command> cmds =
        reconcile(st_->local().read().catalog, table_.members(), cfg_.node_name, cfg_.datacenter);
    for (auto& c : cmds) {
        state::result res = co_await st_->local().write(std::move(c));
        if (!res.error.empty()) log(log_level::warn, "gossip: reconcile write refused: %s", res.error.c_str());
    }
}

task<void> lan_gossip::reconcile_now() {
    dirty_ = false;
    co_await run_reconcile();
}

task<void> lan_gossip::reconcile_loop() {
    // Reaping is checked at least every 15 s (Serf's ReapInterval), sooner with a short reconnect_timeout.
    auto rt = std::chrono::duration_cast<clock::duration>(cfg_.reconnect_timeout);
    clock::duration tick = std::min<clock::duration>(std::chrono::seconds(15), rt / 4);
    tick = std::max<clock::duration>(tick, std::chrono::milliseconds(100));
    auto next_full = clock::now() + reconcile_interval;
    while (!stopping_) {
        if (!dirty_) {
            auto until = std::min(next_full, clock::now() + tick);
            int r = co_await wake_.wait(until);
            if (r == -ECANCELED || stopping_) break;
            if (!dirty_ && clock::now() < next_full) {
                // a reap check only: reconcile if someone expired
                auto before = table_.members().size();
                table_.reap(clock::now(), rt, tombstone_timeout);
                if (table_.members().size() == before) continue;
            }
        }
        dirty_ = false;
        if (clock::now() >= next_full) next_full = clock::now() + reconcile_interval;
        co_await run_reconcile();
    }
    gate_.leave();
}

}  // namespace pharos::agent
