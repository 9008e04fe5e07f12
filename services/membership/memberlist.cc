// SWIM + Lifeguard engine; see memberlist.hh. Behaviour follows the spec's
// description of Go memberlist 0.2.2 (§11, §12); comments name the Go step.
#include "services/membership/memberlist.hh"

#include <algorithm>
#include <cmath>
#include <mutex>

namespace pharos::membership {

using namespace std::chrono_literals;
namespace g = gossip;

address address::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    address r;
    r.ip = {char(a), char(b), char(c), char(d)};
    r.port = port;
    return r;
}

std::string address::to_string() const {
    std::string s;
    if (ip.size() == 4) {
        for (int i = 0; i < 4; ++i) s += (i ? "." : "") + std::to_string(uint8_t(ip[i]));
    } else {
        static const char* h = "0123456789abcdef";
        s += "[";
        for (size_t i = 0; i < ip.size(); ++i) {
            if (i && i % 2 == 0) s += ":";
            s += h[uint8_t(ip[i]) >> 4], s += h[uint8_t(ip[i]) & 15];
        }
        s += "]";
    }
    return s + ":" + std::to_string(port);
}

config config::lan(std::string name, address advertise) {
    config c;
    c.name = std::move(name);
    c.advertise = std::move(advertise);
    return c;
}

config config::wan(std::string name, address advertise) {
    config c = lan(std::move(name), std::move(advertise));
    c.tcp_timeout = 30s;
    c.suspicion_mult = 6;
    c.push_pull_interval = 60s;
    c.probe_timeout = 3s;
    c.probe_interval = 5s;
    c.gossip_nodes = 4;
    c.gossip_interval = 500ms;
    c.gossip_to_the_dead_time = 60s;
    return c;
}

config config::local(std::string name, address advertise) {
    config c = lan(std::move(name), std::move(advertise));
    c.tcp_timeout = 1s;
    c.indirect_checks = 1;
    c.retransmit_mult = 2;
    c.suspicion_mult = 3;
    c.push_pull_interval = 15s;
    c.probe_timeout = 200ms;
    c.gossip_interval = 100ms;
    c.gossip_to_the_dead_time = 15s;
    return c;
}

// Go's suspicionTimeout: mult × max(1, log10(max(1, n))) × interval, the scale in whole thousandths.
duration suspicion_timeout(int mult, size_t n, duration interval) {
    double scale = std::max(1.0, std::log10(std::max(1.0, double(n))));
    return mult * (int64_t(scale * 1000) * interval) / 1000;
}

// Go's remainingSuspicionTime.
duration remaining_suspicion(int confirmations, int k, duration elapsed, duration min, duration max) {
    double frac = std::log(double(confirmations) + 1.0) / std::log(double(k) + 1.0);
    double mins = std::chrono::duration<double>(min).count(), maxs = std::chrono::duration<double>(max).count();
    double raw = maxs - frac * (maxs - mins);
    duration timeout = std::chrono::milliseconds(int64_t(std::floor(1000.0 * raw)));
    if (timeout < min) timeout = min;
    return timeout - elapsed;
}

static_assert(size_t(g::errc::unknown_type) + 1 == std::tuple_size_v<decltype(counters::packet_drops)>);

// --- the string pool and the member table ---

// An interned string: immutable once made, freed when the last entry holding it lets go. The pool
// is process-wide (one simulation holds 10^4 memberlists that all know the same 10^4 names), so
// interning and releasing take its mutex; reading a pooled string does not.
struct detail::pooled {
    std::string s;
    size_t hash = 0;
    uint32_t refs = 0;
};

namespace {
size_t hash_of(std::string_view s) { return std::hash<std::string_view>{}(s); }

class string_pool {
public:
    const detail::pooled* intern(std::string_view s) {
        size_t h = hash_of(s);
        std::lock_guard lock(mu_);
        auto f = by_.find(s);
        if (f != by_.end()) {
            ++f->second->refs;
            return f->second;
        }
        auto* p = new detail::pooled{std::string(s), h, 1};
        by_.emplace(std::string_view(p->s), p);
        return p;
    }
    void release(const detail::pooled* p) {
        if (!p) return;
        std::lock_guard lock(mu_);
        auto* q = const_cast<detail::pooled*>(p);
        if (--q->refs > 0) return;
        by_.erase(std::string_view(q->s));
        delete q;
    }

private:
    std::mutex mu_;
    std::unordered_map<std::string_view, detail::pooled*> by_;
};

string_pool& pool() {
    static auto* p = new string_pool;  // never destroyed: memberlists may outlive static destruction order
    return *p;
}

// Replaces *slot with an interned s unless it already holds s.
void assign(const detail::pooled*& slot, std::string_view s) {
    if (slot && slot->s == s) return;
    auto* p = pool().intern(s);
    pool().release(slot);
    slot = p;
}
}  // namespace

std::string_view memberlist::sv(const detail::pooled* p) { return p ? std::string_view(p->s) : std::string_view(); }

address memberlist::addr_of(const entry& e) { return address{std::string(e.ip.data(), e.ip_len), e.port}; }

uint8_t memberlist::pmax(const entry& e) {
    auto v = sv(e.vsn);
    return v.size() > 1 ? uint8_t(v[1]) : 0;
}

void memberlist::set_addr(entry& e, const address& a) {
    // Wire IPs are 4 or 16 bytes; anything longer is cut (it cannot be dialled anyway).
    e.ip_len = uint8_t(std::min<size_t>(a.ip.size(), e.ip.size()));
    std::copy_n(a.ip.data(), e.ip_len, e.ip.data());
    e.port = a.port;
}

member memberlist::materialize(const entry& e) {
    member m;
    m.name = std::string(sv(e.name));
    m.addr = addr_of(e);
    m.meta = std::string(sv(e.meta));
    m.vsn = std::string(sv(e.vsn));
    m.incarnation = e.incarnation;
    m.state = e.state;
    m.state_change = e.state_change;
    return m;
}

uint32_t memberlist::lookup(std::string_view name) const {
    if (idx_.empty()) return npos;
    size_t mask = idx_.size() - 1;
    for (size_t i = hash_of(name) & mask;; i = (i + 1) & mask) {
        uint32_t slot = idx_[i];
        if (slot == npos) return npos;
        if (entries_[slot].name->s == name) return slot;
    }
}

void memberlist::index_put(uint32_t slot) {
    size_t mask = idx_.size() - 1;
    size_t i = entries_[slot].name->hash & mask;
    while (idx_[i] != npos) i = (i + 1) & mask;
    idx_[i] = slot;
}

void memberlist::rebuild_index(size_t capacity) {
    idx_.assign(capacity, npos);
    for (uint32_t slot = 0; slot < entries_.size(); ++slot)
        if (entries_[slot].name) index_put(slot);
}

uint32_t memberlist::insert(std::string_view name) {
    if ((live_ + 1) * 4 > idx_.size() * 3) rebuild_index(std::max<size_t>(16, idx_.size() * 2));  // load <= 3/4
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        slot = uint32_t(entries_.size());
        entries_.emplace_back();
    }
    entries_[slot] = entry{};
    entries_[slot].name = pool().intern(name);
    ++live_;
    index_put(slot);
    return slot;
}

void memberlist::erase_slot(uint32_t slot) {
    entry& e = entries_[slot];
    pool().release(e.name);
    pool().release(e.meta);
    pool().release(e.vsn);
    e = entry{};
    free_.push_back(slot);
    --live_;
}

memberlist::memberlist(config cfg, transport& t, delegate d, uint64_t seed)
    : cfg_(std::move(cfg)), t_(t), d_(std::move(d)), rng_(seed) {}

memberlist::~memberlist() {
    *alive_token_ = false;
    for (auto& e : entries_) {
        pool().release(e.name);
        pool().release(e.meta);
        pool().release(e.vsn);
    }
}

// --- timers ---

uint64_t memberlist::at(time_point t, std::function<void()> fn) {
    uint64_t id = ++next_timer_;
    bool earliest = timers_.empty() || t < timers_.begin()->first.first;
    timers_.emplace(std::make_pair(t, id), std::move(fn));
    timer_at_[id] = t;
    if (earliest) t_.wake_at(t);
    return id;
}

void memberlist::cancel(uint64_t id) {
    auto f = timer_at_.find(id);
    if (f == timer_at_.end()) return;
    timers_.erase({f->second, id});
    timer_at_.erase(f);
}

time_point memberlist::next_deadline() const {
    return timers_.empty() ? time_point::max() : timers_.begin()->first.first;
}

void memberlist::run_timers() {
    auto now = t_.now();
    while (!timers_.empty() && timers_.begin()->first.first <= now) {
        auto it = timers_.begin();
        auto fn = std::move(it->second);
        timer_at_.erase(it->first.second);
        timers_.erase(it);
        fn();
    }
    if (!timers_.empty()) t_.wake_at(timers_.begin()->first.first);
}

// --- lifecycle ---

std::string memberlist::self_vsn() const {
    std::string v;
    v.push_back(char(1));
    v.push_back(char(5));
    v.push_back(char(cfg_.protocol_version));
    v.push_back(char(cfg_.delegate_min));
    v.push_back(char(cfg_.delegate_max));
    v.push_back(char(cfg_.delegate_version));
    return v;
}

void memberlist::start() {
    running_ = true;
    g::alive a;
    a.incarnation = ++incarnation_;
    a.node = cfg_.name;
    a.addr = cfg_.advertise.ip;
    a.port = cfg_.advertise.port;
    a.meta = cfg_.meta;
    a.vsn = self_vsn();
    alive_node(a, true);
    auto now = t_.now();
    auto stagger = [&](duration d) { return duration(int64_t(rng_() % uint64_t(std::max<int64_t>(1, d.count())))); };
    at(now + stagger(cfg_.probe_interval), [this] { probe_tick(); });
    at(now + stagger(cfg_.gossip_interval), [this] { gossip_tick(); });
    at(now + stagger(cfg_.push_pull_interval), [this] { push_pull_tick(); });
    if (cfg_.reconnect_interval.count() > 0) at(now + stagger(cfg_.reconnect_interval), [this] { reconnect_tick(); });
}

void memberlist::reconnect_tick() {
    // Serf's reconnector: with probability failed/alive, push/pull (Join) with one random failed member.
    if (!running_) return;
    auto now = t_.now();
    at(now + cfg_.reconnect_interval, [this] { reconnect_tick(); });
    for (auto it = failed_.begin(); it != failed_.end();) {
        if (now - it->second.second > cfg_.reconnect_timeout)
            it = failed_.erase(it);
        else
            ++it;
    }
    if (failed_.empty()) return;
    double alive = double(std::max<size_t>(1, num_alive()));
    if (double(rng_() % 1000000) / 1e6 > double(failed_.size()) / alive) return;
    auto pick = failed_.begin();
    std::advance(pick, long(rng_() % failed_.size()));
    push_pull_with(pick->second.first, true, {});
}

void memberlist::shutdown() {
    running_ = false;
    *alive_token_ = false;
    alive_token_ = std::make_shared<bool>(true);
    timers_.clear();
    timer_at_.clear();
    probe_.reset();
    probe_pending_ = eager_pending_ = false;
    relays_.clear();
    suspicions_.clear();
}

// --- helpers ---

void memberlist::apply_awareness(int delta) {
    awareness_ = std::clamp(awareness_ + delta, 0, cfg_.awareness_max_multiplier - 1);
}

size_t memberlist::packet_overhead() const {
    size_t o = 0;
    if (cfg_.wire.keys && !cfg_.wire.keys->empty() && cfg_.wire.verify_outgoing)
        o += g::keyring::overhead(cfg_.wire.encryption_version);
    if (!cfg_.wire.label.empty()) o += 2 + cfg_.wire.label.size();
    return o;
}

int memberlist::transmit_limit() const {
    return cfg_.retransmit_mult * int(std::ceil(std::log10(double(live_) + 1.0)));
}

std::vector<uint32_t> memberlist::random_nodes(int k, const std::function<bool(const entry&)>& skip) {
    // Go's kRandomNodes: random picks from the probe list, up to 3n tries.
    std::vector<uint32_t> out;
    size_t n = order_.size();
    for (size_t i = 0; i < 3 * n && out.size() < size_t(k); ++i) {
        uint32_t slot = order_[rng_() % n];
        if (skip(entries_[slot]) || std::find(out.begin(), out.end(), slot) != out.end()) continue;
        out.push_back(slot);
    }
    return out;
}

std::vector<member> memberlist::members() const {
    std::vector<member> out;
    out.reserve(order_.size());
    for (uint32_t slot : order_) out.push_back(materialize(entries_[slot]));
    return out;
}

std::optional<member> memberlist::find(std::string_view name) const {
    uint32_t slot = lookup(name);
    if (slot == npos) return std::nullopt;
    return materialize(entries_[slot]);
}

std::optional<node_state> memberlist::state_of(std::string_view name) const {
    uint32_t slot = lookup(name);
    if (slot == npos) return std::nullopt;
    return entries_[slot].state;
}

size_t memberlist::num_alive() const {
    size_t n = 0;
    for (const auto& e : entries_) n += e.name && !dead_or_left(e);
    return n;
}

size_t memberlist::count(node_state s) const {
    size_t n = 0;
    for (const auto& e : entries_) n += e.name && e.state == s;
    return n;
}

// --- sending ---

void memberlist::send_msg(const address& to, std::string msg) {
    // Go's sendMsg: piggyback queued broadcasts (memberlist's, then the delegate's) into a compound.
    size_t overhead = 2 + packet_overhead();
    size_t budget = cfg_.udp_buffer_size > msg.size() + overhead ? cfg_.udp_buffer_size - msg.size() - overhead : 0;
    int limit = transmit_limit();
    auto extra = broadcasts_.get(2, budget, limit);
    size_t used = 0;
    for (auto& e : extra) used += e.size() + 2;
    if (budget > used + 3) {
        for (auto& u : user_broadcasts_.get(2, budget - used, limit)) extra.push_back(std::move(u));
    }
    if (extra.empty()) return raw_send(to, std::move(msg), 0);
    extra.insert(extra.begin(), std::move(msg));
    for (size_t i = 0; i < extra.size(); i += 255) {
        std::span<const std::string> part(extra.data() + i, std::min<size_t>(255, extra.size() - i));
        raw_send(to, g::make_compound(part), 0);
    }
}

void memberlist::raw_send(const address& to, std::string packet, uint8_t peer_pmax) {
    if (cfg_.enable_compression) {
        auto c = g::compress_message(packet);
        if (c.size() < packet.size()) packet = std::move(c);
    }
    if (peer_pmax >= 5) packet = g::add_crc(packet);
    packet = g::seal_packet(std::move(packet), cfg_.wire);
    ++stats_.packets_out;
    stats_.bytes_out += packet.size();
    t_.send_packet(to, std::move(packet));
}

// --- probing (SWIM with Lifeguard) ---

void memberlist::probe_tick() {
    if (!running_) return;
    at(t_.now() + cfg_.probe_interval, [this] { probe_tick(); });
    if (probe_) {
        // A probe still runs (it ends at its deadline, one interval or more after it began). Go's
        // ticker channel holds one tick and drops the rest: the next probe starts as soon as this
        // one ends, not a whole interval later.
        probe_pending_ = true;
        return;
    }
    probe_next();
}

void memberlist::probe_next() {
    // Go's probe(): round-robin over the node list, skipping self, dead and left; reset at wrap.
    size_t checked = 0;
    while (checked < order_.size()) {
        if (probe_index_ >= order_.size()) {
            reset_nodes();
            probe_index_ = 0;
            ++checked;
            continue;
        }
        uint32_t slot = order_[probe_index_++];
        const entry& m = entries_[slot];
        if (is_self(m) || dead_or_left(m)) {
            ++checked;
            continue;
        }
        start_probe(slot);
        return;
    }
}

void memberlist::reset_nodes() {
    auto now = t_.now();
    std::vector<uint32_t> keep;
    keep.reserve(order_.size());
    bool erased = false;
    for (uint32_t slot : order_) {
        const entry& m = entries_[slot];
        if (dead_or_left(m) && now - m.state_change > cfg_.gossip_to_the_dead_time && !is_self(m)) {
            erase_slot(slot);
            erased = true;
            continue;
        }
        keep.push_back(slot);
    }
    if (erased) rebuild_index(idx_.size());
    order_ = std::move(keep);
    std::shuffle(order_.begin(), order_.end(), rng_);
}

void memberlist::start_probe(uint32_t slot) {
    ++stats_.probes;
    const entry& target = entries_[slot];
    probe_state p;
    p.seq = ++seq_;
    p.target = std::string(sv(target.name));
    p.target_incarnation = target.incarnation;
    p.sent = t_.now();
    g::ping ping;
    ping.seq_no = p.seq;
    ping.node = p.target;
    ping.source_addr = cfg_.advertise.ip;
    ping.source_port = cfg_.advertise.port;
    ping.source_node = cfg_.name;
    if (target.state == node_state::alive) {
        send_msg(addr_of(target), g::encode_msg(ping));
    } else {
        // A suspect gets ping + our suspicion, so it can refute; this path carries the CRC.
        g::suspect s{target.incarnation, p.target, cfg_.name};
        std::vector<std::string> parts{g::encode_msg(ping), g::encode_msg(s)};
        raw_send(addr_of(target), g::make_compound(parts), pmax(target));
    }
    p.timeout_timer = at(p.sent + cfg_.probe_timeout, [this] { probe_timeout_phase(); });
    p.deadline_timer = at(p.sent + scaled(cfg_.probe_interval), [this] { probe_deadline(); });
    probe_ = std::move(p);
}

// Not in Go, which waits for the deadline whatever the fallback says: the TCP fallback was refused
// (a reset answered the connect: nothing listens on the member's port, its process is gone), so no
// ack can come and waiting out the interval only delays the verdict. Suspect now, through the normal
// suspicion (same timeout, same refutation: a live member still clears itself); the probe itself
// runs to its deadline, so relays' nacks count toward the health score exactly as in Go. A fallback
// that merely times out changes nothing: the suspicion waits for the deadline.
void memberlist::probe_refused() {
    if (!probe_ || probe_->suspected || probe_->tcp_ok) return;
    probe_->suspected = true;
    ++stats_.probes_failed;
    ++stats_.probes_refused;
    g::suspect s{probe_->target_incarnation, probe_->target, cfg_.name};
    suspect_node(s);
}

void memberlist::probe_timeout_phase() {
    if (!probe_) return;
    probe_->timeout_timer = 0;
    uint32_t tslot = lookup(probe_->target);
    if (tslot == npos) return;
    const member target = materialize(entries_[tslot]);
    const uint8_t target_pmax = pmax(entries_[tslot]);
    // Indirect pings through up to k random alive members.
    g::indirect_ping ind;
    ind.seq_no = probe_->seq;
    ind.target = target.addr.ip;
    ind.port = target.addr.port;
    ind.node = target.name;
    ind.source_addr = cfg_.advertise.ip;
    ind.source_port = cfg_.advertise.port;
    ind.source_node = cfg_.name;
    auto relays = random_nodes(cfg_.indirect_checks, [&](const entry& m) {
        return is_self(m) || sv(m.name) == target.name || m.state != node_state::alive;
    });
    for (uint32_t r : relays) {
        ind.nack = pmax(entries_[r]) >= 4;
        probe_->expected_nacks += ind.nack;
        send_msg(addr_of(entries_[r]), g::encode_msg(ind));
    }
    // At the same moment, the TCP fallback with the same ping, until the probe deadline.
    if (!cfg_.disable_tcp_pings && target_pmax >= 3) {
        g::ping ping;
        ping.seq_no = probe_->seq;
        ping.node = target.name;
        ping.source_addr = cfg_.advertise.ip;
        ping.source_port = cfg_.advertise.port;
        ping.source_node = cfg_.name;
        auto req = g::seal_stream(g::encode_msg(ping), cfg_.enable_compression, cfg_.wire);
        uint32_t seq = probe_->seq;
        std::weak_ptr<bool> token = alive_token_;
        t_.stream_with_refusal(
            target.addr, std::move(req), true, probe_->sent + scaled(cfg_.probe_interval),
            [this, token, seq](std::optional<std::string> reply, bool refused) {
                auto live = token.lock();
                if (!live || !*live || !probe_ || probe_->seq != seq) return;
                if (refused) return probe_refused();
                if (!reply) return;
                std::string msg;
                size_t used;
                if (g::open_stream(*reply, cfg_.wire, msg, used) != g::errc::ok) return;
                g::ack_resp a;
                if (uint8_t(msg[0]) == uint8_t(g::msg_type::ack) && g::decode(std::string_view(msg).substr(1), a) &&
                    a.seq_no == seq)
                    probe_->tcp_ok = true;
            });
    }
}

void memberlist::probe_deadline() {
    if (!probe_) return;
    probe_->deadline_timer = 0;
    if (probe_->tcp_ok) return finish_probe(true, -1);  // UDP seems broken, but the node lives (a success for Go)
    int delta = 1;
    if (probe_->expected_nacks > 0) delta = probe_->expected_nacks - probe_->nacks;
    g::suspect s{probe_->target_incarnation, probe_->target, cfg_.name};
    bool suspected = probe_->suspected;  // early, on a refused fallback
    if (!suspected) ++stats_.probes_failed;
    finish_probe(false, delta);
    if (!suspected) suspect_node(s);
}

void memberlist::finish_probe(bool, int awareness_delta) {
    if (!probe_) return;
    if (probe_->timeout_timer) cancel(probe_->timeout_timer);
    if (probe_->deadline_timer) cancel(probe_->deadline_timer);
    probe_.reset();
    apply_awareness(awareness_delta);
    if (probe_pending_) {  // after the caller is done with this probe's outcome
        probe_pending_ = false;
        at(t_.now(), [this] {
            if (running_ && !probe_) probe_next();
        });
    }
}

// --- messages in ---

void memberlist::handle_packet(const address& from, std::string_view bytes) {
    if (!running_) return;
    ++stats_.packets_in;
    stats_.bytes_in += bytes.size();
    std::string inner;
    // Nothing legitimate is larger than a UDP datagram can be.
    g::errc e = bytes.size() > 65535 ? g::errc::too_large : g::open_packet(bytes, cfg_.wire, inner);
    if (e != g::errc::ok) {
        ++stats_.packets_bad;
        ++stats_.packet_drops[size_t(e)];
        return;
    }
    std::vector<std::string> msgs;
    if (e = g::flatten(inner, msgs); e != g::errc::ok) {  // parts before the fault still count
        ++stats_.packets_bad;
        ++stats_.packet_drops[size_t(e)];
    }
    for (const auto& m : msgs) handle_message(from, m);
}

void memberlist::handle_message(const address& from, std::string_view msg) {
    std::string_view body = msg.substr(1);
    bool ok = true;
    switch (g::msg_type(uint8_t(msg[0]))) {
    case g::msg_type::ping: {
        g::ping p;
        if ((ok = g::decode(body, p))) on_ping(from, p);
        break;
    }
    case g::msg_type::indirect_ping: {
        g::indirect_ping p;
        if ((ok = g::decode(body, p))) on_indirect_ping(from, p);
        break;
    }
    case g::msg_type::ack: {
        g::ack_resp a;
        if ((ok = g::decode(body, a))) on_ack(a);
        break;
    }
    case g::msg_type::nack: {
        g::nack_resp n;
        if ((ok = g::decode(body, n))) on_nack(n);
        break;
    }
    case g::msg_type::alive: {
        g::alive a;
        if ((ok = g::decode(body, a))) {
            // Go ignores an alive with an impossible protocol range.
            if (a.vsn.size() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || uint8_t(a.vsn[0]) > uint8_t(a.vsn[1]))) break;
            alive_node(a, false);
        }
        break;
    }
    case g::msg_type::suspect: {
        g::suspect s;
        if ((ok = g::decode(body, s))) suspect_node(s);
        break;
    }
    case g::msg_type::dead: {
        g::dead d;
        if ((ok = g::decode(body, d))) dead_node(d);
        break;
    }
    case g::msg_type::user:
        if (d_.on_user_msg) d_.on_user_msg(body);
        break;
    default: ++stats_.messages_unknown; return;
    }
    if (!ok) ++stats_.messages_bad;
}

void memberlist::on_ping(const address& from, const g::ping& p) {
    if (!p.node.empty() && p.node != cfg_.name) {
        ++stats_.pings_wrong_node;
        return;
    }
    g::ack_resp a;
    a.seq_no = p.seq_no;
    if (d_.ack_payload) a.payload = d_.ack_payload();
    address to = from;
    if (!p.source_addr.empty() && p.source_port > 0) to = address{p.source_addr, p.source_port};
    send_msg(to, g::encode_msg(a));
}

void memberlist::on_indirect_ping(const address& from, const g::indirect_ping& ind) {
    relay_state r;
    r.orig_seq = ind.seq_no;
    r.nack = ind.nack;
    r.reply_to = from;
    if (!ind.source_addr.empty() && ind.source_port > 0) r.reply_to = address{ind.source_addr, ind.source_port};
    uint32_t local = ++seq_;
    g::ping ping;
    ping.seq_no = local;
    ping.node = ind.node;
    ping.source_addr = cfg_.advertise.ip;
    ping.source_port = cfg_.advertise.port;
    ping.source_node = cfg_.name;
    // After ProbeTimeout without an ack: nack if asked, and forget the relay.
    r.timer = at(t_.now() + cfg_.probe_timeout, [this, local] {
        auto f = relays_.find(local);
        if (f == relays_.end()) return;
        auto rs = f->second;
        relays_.erase(f);
        if (rs.nack) send_msg(rs.reply_to, g::encode_msg(g::nack_resp{rs.orig_seq}));
    });
    relays_[local] = r;
    uint16_t port = ind.port ? ind.port : cfg_.advertise.port;
    send_msg(address{ind.target, port}, g::encode_msg(ping));
}

void memberlist::on_ack(const g::ack_resp& a) {
    if (probe_ && probe_->seq == a.seq_no) {
        finish_probe(true, -1);
        return;
    }
    auto f = relays_.find(a.seq_no);
    if (f == relays_.end()) return;
    auto r = f->second;
    relays_.erase(f);
    cancel(r.timer);
    g::ack_resp out;
    out.seq_no = r.orig_seq;
    send_msg(r.reply_to, g::encode_msg(out));
}

void memberlist::on_nack(const g::nack_resp& n) {
    if (probe_ && probe_->seq == n.seq_no) ++probe_->nacks;
}

// --- the state machine ---

void memberlist::alive_node(const g::alive& a, bool bootstrap) {
    if (leaving_ && a.node == cfg_.name) return;
    auto now = t_.now();
    address addr{a.addr, a.port ? a.port : cfg_.advertise.port};
    uint32_t slot = lookup(a.node);
    bool updates_node = false;
    if (slot == npos) {
        // New nodes start dead at incarnation 0 and go in at a random place in the probe order.
        slot = insert(a.node);
        entry& m = entries_[slot];
        set_addr(m, addr);
        assign(m.meta, a.meta);
        assign(m.vsn, a.vsn);
        m.state = node_state::dead;
        m.state_change = now;
        order_.push_back(slot);
        size_t j = rng_() % order_.size();
        std::swap(order_[j], order_.back());
    } else if (entry& m = entries_[slot];
               m.port != addr.port || std::string_view(m.ip.data(), m.ip_len) != std::string_view(addr.ip)) {
        bool reclaim = cfg_.dead_node_reclaim_time.count() > 0 && m.state == node_state::dead &&
                       now - m.state_change > cfg_.dead_node_reclaim_time;
        if (m.state == node_state::left || reclaim) {
            updates_node = true;
        } else {
            ++stats_.conflicts;
            return;
        }
    }
    entry& m = entries_[slot];
    bool local = is_self(m);
    if (a.incarnation <= m.incarnation && !local && !updates_node) return;
    if (a.incarnation < m.incarnation && local) return;
    if (auto s = suspicions_.find(a.node); s != suspicions_.end()) {
        cancel(s->second.timer);
        suspicions_.erase(s);
    }
    node_state old_state = m.state;
    bool meta_changed = sv(m.meta) != a.meta;
    if (!bootstrap && local) {
        // A stale or forged alive about us: refute unless it says exactly what we say.
        if (a.incarnation == m.incarnation && !meta_changed && a.vsn == self_vsn()) return;
        refute(slot, a.incarnation);
        return;
    }
    if (!bootstrapping_) broadcasts_.queue(a.node, g::encode_msg(a));
    // A refutation that clears a suspicion we held chases that suspicion as fast as it spread.
    if (old_state == node_state::suspect) gossip_soon();
    if (!a.vsn.empty()) assign(m.vsn, a.vsn);
    m.incarnation = a.incarnation;
    assign(m.meta, a.meta);
    set_addr(m, addr);
    if (m.state != node_state::alive) {
        m.state = node_state::alive;
        m.state_change = now;
    }
    if (!failed_.empty()) failed_.erase(a.node);
    if (old_state == node_state::dead || old_state == node_state::left)
        notify(d_.on_join, slot);
    else if (meta_changed)
        notify(d_.on_update, slot);
}

void memberlist::suspect_node(const g::suspect& s) {
    uint32_t slot = lookup(s.node);
    if (slot == npos) return;
    entry& m = entries_[slot];
    if (s.incarnation < m.incarnation) return;
    if (!suspicions_.empty()) {
        if (auto f = suspicions_.find(s.node); f != suspicions_.end()) {
            confirm(s.node, f->second, s.from);
            return;
        }
    }
    if (m.state != node_state::alive) return;
    if (is_self(m)) {
        refute(slot, s.incarnation);
        return;
    }
    broadcasts_.queue(s.node, g::encode_msg(s));
    gossip_soon();
    auto now = t_.now();
    m.incarnation = s.incarnation;
    m.state = node_state::suspect;
    m.state_change = now;
    ++stats_.suspects_raised;
    // Lifeguard's dynamic suspicion: start at max when confirmations are expected, shrink with each.
    size_t n = live_;
    int k = cfg_.suspicion_mult - 2;
    if (int64_t(n) - 2 < k) k = 0;
    suspicion sp;
    sp.k = k;
    sp.min = suspicion_timeout(cfg_.suspicion_mult, n, cfg_.probe_interval);
    sp.max = cfg_.suspicion_max_timeout_mult * sp.min;
    sp.start = now;
    sp.state_change = now;
    sp.from.push_back(s.from);
    std::string node = s.node;
    sp.timer = at(now + (k < 1 ? sp.min : sp.max), [this, node, now] { suspicion_fired(node, now); });
    suspicions_[node] = std::move(sp);
}

void memberlist::confirm(const std::string& node, suspicion& s, const std::string& from) {
    if (s.confirmations >= s.k) return;
    if (std::find(s.from.begin(), s.from.end(), from) != s.from.end()) return;
    s.from.push_back(from);
    ++s.confirmations;
    auto now = t_.now();
    duration remaining = remaining_suspicion(s.confirmations, s.k, now - s.start, s.min, s.max);
    cancel(s.timer);
    auto change = s.state_change;
    s.timer = at(remaining > duration::zero() ? now + remaining : now,
                 [this, node, change] { suspicion_fired(node, change); });
    // A new, independent confirmation is gossiped on.
    uint32_t slot = lookup(node);
    if (slot == npos) return;
    const entry& m = entries_[slot];
    broadcasts_.queue(node, g::encode_msg(g::suspect{m.incarnation, node, from}));
    gossip_soon();
}

void memberlist::suspicion_fired(const std::string& node, time_point state_change) {
    suspicions_.erase(node);
    uint32_t slot = lookup(node);
    if (slot == npos) return;
    const entry& m = entries_[slot];
    if (m.state != node_state::suspect || m.state_change != state_change) return;
    ++stats_.deaths_declared;
    dead_node(g::dead{m.incarnation, node, cfg_.name});
}

void memberlist::dead_node(const g::dead& d, std::function<void()> on_sent) {
    uint32_t slot = lookup(d.node);
    if (slot == npos) return;
    entry& m = entries_[slot];
    if (d.incarnation < m.incarnation) return;
    if (auto s = suspicions_.find(d.node); s != suspicions_.end()) {
        cancel(s->second.timer);
        suspicions_.erase(s);
    }
    if (dead_or_left(m)) return;
    if (is_self(m)) {
        if (!leaving_) {
            refute(slot, d.incarnation);
            return;
        }
        broadcasts_.queue(d.node, g::encode_msg(d), std::move(on_sent));
    } else {
        broadcasts_.queue(d.node, g::encode_msg(d));
        gossip_soon();
    }
    m.incarnation = d.incarnation;
    m.state = d.node == d.from ? node_state::left : node_state::dead;
    m.state_change = t_.now();
    if (m.state == node_state::dead && !is_self(m))
        failed_[d.node] = {addr_of(m), m.state_change};
    else
        failed_.erase(d.node);
    notify(d_.on_leave, slot);
}

void memberlist::refute(uint32_t slot, uint32_t accused) {
    uint32_t inc = ++incarnation_;
    if (accused >= inc) inc = incarnation_ = accused + 1;
    entry& me = entries_[slot];
    me.incarnation = inc;
    ++stats_.refutes;
    apply_awareness(1);
    g::alive a;
    a.incarnation = inc;
    a.node = cfg_.name;
    a.addr = cfg_.advertise.ip;
    a.port = cfg_.advertise.port;
    a.meta = std::string(sv(me.meta));
    a.vsn = self_vsn();
    broadcasts_.queue(cfg_.name, g::encode_msg(a));
    gossip_soon();
}

void memberlist::update_meta(std::string meta) {
    g::alive a;
    a.incarnation = ++incarnation_;
    a.node = cfg_.name;
    a.addr = cfg_.advertise.ip;
    a.port = cfg_.advertise.port;
    a.meta = std::move(meta);
    a.vsn = self_vsn();
    alive_node(a, true);
}

void memberlist::leave(std::function<void()> done) {
    leaving_ = true;
    uint32_t self = lookup(cfg_.name);
    bool others = false;
    for (const auto& e : entries_) others |= e.name && !is_self(e) && !dead_or_left(e);
    if (self == npos || !others) {
        if (self != npos) dead_node(g::dead{entries_[self].incarnation, cfg_.name, cfg_.name});
        if (done) done();
        return;
    }
    dead_node(g::dead{entries_[self].incarnation, cfg_.name, cfg_.name}, std::move(done));
}

// --- gossip and anti-entropy ---

void memberlist::gossip_tick() {
    if (!running_) return;
    auto now = t_.now();
    at(now + cfg_.gossip_interval, [this] { gossip_tick(); });
    gossip_round();
}

// Not in Go (it waits for the next gossip tick): a new suspect or dead about another member, our own
// refutation, or an alive that clears a suspicion we held (a refutation passed on) goes out in a
// gossip round of its own at once (one round per burst: whatever is queued by then rides along), so
// news travels a network hop per relay instead of up to a gossip interval per hop. The round draws
// transmits from the queue like a tick's round, so each message is still sent the same number of
// times; the regular ticks go on unchanged.
void memberlist::gossip_soon() {
    if (!running_ || bootstrapping_ || eager_pending_) return;
    eager_pending_ = true;
    at(t_.now(), [this] {
        eager_pending_ = false;
        if (!running_) return;
        ++stats_.eager_gossip;
        gossip_round();
    });
}

// Go's gossip(): up to GossipNodes random live (or recently dead) members, each a packet of queued
// broadcasts, memberlist's first, then the delegate's.
void memberlist::gossip_round() {
    auto now = t_.now();
    if (broadcasts_.size() == 0 && user_broadcasts_.size() == 0) return;
    auto targets = random_nodes(cfg_.gossip_nodes, [&](const entry& m) {
        if (is_self(m)) return true;
        switch (m.state) {
        case node_state::alive:
        case node_state::suspect: return false;
        case node_state::dead: return now - m.state_change > cfg_.gossip_to_the_dead_time;
        default: return true;
        }
    });
    size_t budget = cfg_.udp_buffer_size - 2 - packet_overhead();
    int limit = transmit_limit();
    for (uint32_t t : targets) {
        const entry& m = entries_[t];
        auto msgs = broadcasts_.get(2, budget, limit);
        size_t used = 0;
        for (auto& e : msgs) used += e.size() + 2;
        if (budget > used + 3)
            for (auto& u : user_broadcasts_.get(2, budget - used, limit)) msgs.push_back(std::move(u));
        if (msgs.empty()) return;
        if (msgs.size() == 1)
            raw_send(addr_of(m), std::move(msgs[0]), pmax(m));
        else
            raw_send(addr_of(m), g::make_compound(msgs), pmax(m));
    }
}

void memberlist::broadcast_user(std::string payload) {
    std::string msg(1, char(g::msg_type::user));
    msg += payload;
    user_broadcasts_.queue("", std::move(msg));
}

void memberlist::send_user_best_effort(const address& to, std::string_view payload) {
    std::string msg(1, char(g::msg_type::user));
    msg += payload;
    raw_send(to, std::move(msg), 0);
}

void memberlist::send_user_reliable(const address& to, std::string_view payload) {
    std::string msg;
    g::encode(g::user_msg_header{int64_t(payload.size())}, msg);
    msg += payload;
    t_.stream(to, g::seal_stream(msg, cfg_.enable_compression, cfg_.wire), false, t_.now() + cfg_.tcp_timeout,
              [](std::optional<std::string>) {});
}

void memberlist::push_pull_tick() {
    if (!running_) return;
    at(t_.now() + push_pull_period(), [this] { push_pull_tick(); });
    auto peers = random_nodes(1, [&](const entry& m) { return is_self(m) || m.state != node_state::alive; });
    if (peers.empty()) return;
    push_pull_with(addr_of(entries_[peers[0]]), false, {});
}

duration memberlist::push_pull_period() const {
    // Go's pushPullScale: the interval grows by one step per doubling of N above 32.
    size_t n = live_;
    duration interval = cfg_.push_pull_interval;
    if (n > 32) interval = interval * (int64_t(std::ceil(std::log2(double(n)) - 5.0)) + 1);
    return interval;
}

std::vector<uint32_t> memberlist::push_pull_slots(bool join, const g::push_pull* remote) {
    size_t k = cfg_.push_pull_max_nodes;
    if (join || k == 0 || live_ <= k) return order_;  // a joiner must learn everyone
    // Bounded: ourselves; when answering, our newer incarnation of entries the request had stale
    // (up to half of K: a node that missed a refutation hears it from the first peer that knows);
    // then up to half of the rest: the most recent state changes (within one push/pull period, so
    // each change rides at least one of our own push/pulls, dead and left ones included); then the
    // rest from a cursor over the table that moves on each time, so N/K exchanges cover it all.
    std::vector<uint32_t> out, taken;  // taken: sorted, for the later phases to skip
    out.reserve(k);
    uint32_t self = lookup(cfg_.name);
    if (self != npos) out.push_back(self), taken.push_back(self);
    auto add_from = [&](std::vector<uint32_t>& picked) {
        out.insert(out.end(), picked.begin(), picked.end());
        taken.insert(taken.end(), picked.begin(), picked.end());
        std::sort(taken.begin(), taken.end());
    };
    if (remote) {
        std::vector<uint32_t> fix;
        size_t want = (k - out.size()) / 2;
        for (const auto& r : remote->nodes) {
            if (fix.size() >= want) break;
            uint32_t slot = lookup(r.name);
            if (slot != npos && slot != self && entries_[slot].incarnation > r.incarnation) fix.push_back(slot);
        }
        std::sort(fix.begin(), fix.end());
        fix.erase(std::unique(fix.begin(), fix.end()), fix.end());
        add_from(fix);
    }
    auto since = t_.now() - push_pull_period();
    std::vector<uint32_t> recent;
    for (uint32_t slot = 0; slot < entries_.size(); ++slot) {
        const entry& e = entries_[slot];
        if (e.name && e.state_change >= since && !std::binary_search(taken.begin(), taken.end(), slot))
            recent.push_back(slot);
    }
    size_t want = std::min(recent.size(), (k - out.size()) / 2);
    auto newer = [this](uint32_t a, uint32_t b) {
        const auto &x = entries_[a].state_change, &y = entries_[b].state_change;
        return x != y ? x > y : a < b;
    };
    if (want < recent.size()) {
        std::nth_element(recent.begin(), recent.begin() + long(want), recent.end(), newer);
        recent.resize(want);
    }
    std::sort(recent.begin(), recent.end(), newer);
    add_from(recent);
    for (size_t seen = 0; out.size() < k && seen < entries_.size(); ++seen) {
        if (push_pull_cursor_ >= entries_.size()) push_pull_cursor_ = 0;
        uint32_t slot = push_pull_cursor_++;
        if (entries_[slot].name && !std::binary_search(taken.begin(), taken.end(), slot)) out.push_back(slot);
    }
    return out;
}

std::string memberlist::local_push_pull(bool join, const g::push_pull* remote) {
    g::push_pull pp;
    pp.header.join = join;
    auto slots = push_pull_slots(join, remote);
    pp.nodes.reserve(slots.size());
    for (uint32_t slot : slots) {
        const entry& m = entries_[slot];
        g::push_node_state s;
        s.name = std::string(sv(m.name));
        s.addr = std::string(m.ip.data(), m.ip_len);
        s.port = m.port;
        s.meta = std::string(sv(m.meta));
        s.incarnation = m.incarnation;
        s.state = m.state;
        s.vsn = std::string(sv(m.vsn));
        pp.nodes.push_back(std::move(s));
    }
    if (d_.local_state) pp.user_state = d_.local_state(join);
    return g::encode_push_pull(pp);
}

void memberlist::push_pull_with(const address& to, bool join, std::function<void(bool)> done) {
    auto req = g::seal_stream(local_push_pull(join), cfg_.enable_compression, cfg_.wire);
    std::weak_ptr<bool> token = alive_token_;
    t_.stream(to, std::move(req), true, t_.now() + cfg_.tcp_timeout,
              [this, token, done = std::move(done)](std::optional<std::string> reply) {
                  auto live = token.lock();
                  if (!live || !*live) return;
                  bool ok = false;
                  if (reply) {
                      std::string msg;
                      size_t used;
                      g::push_pull pp;
                      if (g::open_stream(*reply, cfg_.wire, msg, used) == g::errc::ok &&
                          g::decode_push_pull(msg, pp) == g::errc::ok) {
                          merge(pp);
                          ok = true;
                      } else {
                          ++stats_.streams_bad;
                      }
                  }
                  if (done) done(ok);
              });
}

void memberlist::join(std::vector<address> addrs, std::function<void(int)> done) {
    if (addrs.empty()) {
        if (done) done(0);
        return;
    }
    struct tally {
        size_t left;
        int ok = 0;
        std::function<void(int)> done;
    };
    auto t = std::make_shared<tally>(tally{addrs.size(), 0, std::move(done)});
    for (const auto& a : addrs) {
        push_pull_with(a, true, [t](bool ok) {
            t->ok += ok;
            if (--t->left == 0 && t->done) t->done(t->ok);
        });
    }
}

void memberlist::merge(const g::push_pull& pp) {
    for (const auto& r : pp.nodes) {
        switch (r.state) {
        case node_state::alive: {
            g::alive a{r.incarnation, r.name, r.addr, r.port, r.meta, r.vsn};
            if (a.vsn.size() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || uint8_t(a.vsn[0]) > uint8_t(a.vsn[1]))) break;
            alive_node(a, false);
            break;
        }
        case node_state::left: dead_node(g::dead{r.incarnation, r.name, r.name}); break;
        default: suspect_node(g::suspect{r.incarnation, r.name, cfg_.name}); break;  // a remote dead only suspects
        }
    }
    if (d_.merge_remote_state && !pp.user_state.empty()) d_.merge_remote_state(pp.user_state, pp.header.join);
}

void memberlist::bootstrap(const g::push_pull& pp) {
    bootstrapping_ = true;  // every node is given the same list: there is nothing to tell anyone
    merge(pp);
    bootstrapping_ = false;
    broadcasts_.clear();
}

std::string memberlist::handle_stream(const address&, std::string_view bytes) {
    if (!running_) return {};
    ++stats_.streams_in;
    std::string msg;
    size_t used;
    if (auto e = g::open_stream(bytes, cfg_.wire, msg, used); e != g::errc::ok) {
        ++stats_.streams_bad;
        ++stats_.stream_drops[size_t(e)];
        g::err_resp er;
        er.error = g::to_string(e);
        return g::seal_stream(g::encode_msg(er), cfg_.enable_compression, cfg_.wire);  // as Go's sendErr
    }
    std::string_view body = std::string_view(msg).substr(1);
    switch (g::msg_type(uint8_t(msg[0]))) {
    case g::msg_type::ping: {
        g::ping p;
        if (!g::decode(body, p)) break;
        if (!p.node.empty() && p.node != cfg_.name) {
            ++stats_.pings_wrong_node;
            return {};
        }
        g::ack_resp a;
        a.seq_no = p.seq_no;
        if (d_.ack_payload) a.payload = d_.ack_payload();
        return g::seal_stream(g::encode_msg(a), cfg_.enable_compression, cfg_.wire);
    }
    case g::msg_type::push_pull: {
        g::push_pull pp;
        if (g::decode_push_pull(msg, pp) != g::errc::ok) break;
        // Reply with our state before merging theirs, echoing the Join flag.
        auto reply = g::seal_stream(local_push_pull(pp.header.join, &pp), cfg_.enable_compression, cfg_.wire);
        merge(pp);
        return reply;
    }
    case g::msg_type::user: {
        g::user_msg_header h;
        gossip::msgpack::reader r(body);
        if (!g::decode(r, h) || h.user_msg_len < 0 || r.remaining() < size_t(h.user_msg_len)) break;
        if (d_.on_user_msg)
            d_.on_user_msg(std::string_view(reinterpret_cast<const char*>(r.pos()), size_t(h.user_msg_len)));
        return {};
    }
    default: break;
    }
    ++stats_.streams_bad;
    return {};
}

}  // namespace pharos::membership
