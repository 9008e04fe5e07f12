// Serf's user events and Consul's on top of them; see serf_events.hh.
#include "services/agent/serf_events.hh"

#include <algorithm>
#include <regex>

#include "protocols/gossip/msgpack.hh"

namespace pharos::agent {
namespace serf = gossip::serf;
namespace msgpack = gossip::msgpack;

namespace {
constexpr size_t user_event_sane_limit = 9 * 1024;  // Serf's UserEventSizeLimit constant

// ECMAScript here where Go uses RE2; nullopt when it does not compile.
std::optional<std::regex> compile(const std::string& expr) {
    try {
        return std::regex(expr);
    } catch (const std::regex_error&) {
        return std::nullopt;
    }
}
}  // namespace

// ------------------------------------------------------------------ serf_events

serf_events::serf_events(broadcaster b, size_t buffer) : broadcast_(std::move(b)), buffer_(std::max<size_t>(buffer, 1)) {}

std::optional<std::string> serf_events::fire(std::string name, std::string payload, bool coalesce, uint64_t* ltime) {
    size_t before = name.size() + payload.size();
    if (before > user_event_size_limit)
        return "user event exceeds configured limit of " + std::to_string(user_event_size_limit) +
               " bytes before encoding";
    if (before > user_event_sane_limit)
        return "user event exceeds sane limit of " + std::to_string(user_event_sane_limit) + " bytes before encoding";
    serf::user_event e;
    e.ltime = clock_;
    e.name = std::move(name);
    e.payload = std::move(payload);
    e.coalesce = coalesce;
    std::string raw = serf::encode_user_event(e);
    if (raw.size() > user_event_size_limit)
        return "encoded user event exceeds configured limit of " + std::to_string(user_event_size_limit) +
               " bytes after encoding";
    ++clock_;
    if (ltime) *ltime = e.ltime;
    handle(e);  // locally first, as Serf
    broadcast_(std::move(raw));
    return std::nullopt;
}

bool serf_events::on_user_msg(std::string_view msg) {
    if (msg.empty() || uint8_t(msg[0]) != uint8_t(serf::message_type::user_event)) return false;
    auto e = serf::decode_user_event(msg);
    if (e && handle(*e)) broadcast_(std::string(msg));  // Serf relays a new event once, as it came
    return true;
}

void serf_events::export_state(serf::push_pull_state& pp) const {
    pp.event_ltime = clock_;
    for (const seen& s : buffer_) {
        if (!s.used) continue;
        serf::push_pull_state::events_at at;
        at.ltime = s.ltime;
        at.events = s.events;
        pp.events.push_back(std::move(at));
    }
}

void serf_events::merge_state(const serf::push_pull_state& pp, bool join_ignoring_old) {
    if (pp.event_ltime > 0 && pp.event_ltime - 1 >= clock_) clock_ = pp.event_ltime;  // witness(EventLTime - 1)
    if (join_ignoring_old && pp.event_ltime > min_time_) min_time_ = pp.event_ltime;
    serf::user_event e;
    for (const auto& at : pp.events) {
        e.ltime = at.ltime;
        for (const auto& [name, payload] : at.events) {
            e.name = name;
            e.payload = payload;
            handle(e);  // delivered if new; Serf does not relay these
        }
    }
}

bool serf_events::handle(const serf::user_event& e) {
    if (e.ltime >= clock_) clock_ = e.ltime + 1;  // witness
    if (e.ltime < min_time_) return false;
    uint64_t window = buffer_.size();
    if (clock_ > window && e.ltime < clock_ - window) return false;  // older than the buffer: Serf drops it
    seen& s = buffer_[e.ltime % window];
    if (s.used && s.ltime == e.ltime) {
        for (const auto& [name, payload] : s.events)
            if (name == e.name && payload == e.payload) return false;
    } else {
        s.used = true;
        s.ltime = e.ltime;
        s.events.clear();
    }
    s.events.emplace_back(e.name, e.payload);
    if (handler_) handler_(e);
    return true;
}

// ------------------------------------------------------------------ Consul's user events

std::string encode_consul_event(const user_event& e) {
    // Go's struct order: ID, n, p, nf, sf, tf, v; omitempty on p, nf, sf, tf.
    uint32_t n = 3 + !e.payload.empty() + !e.node_filter.empty() + !e.service_filter.empty() + !e.tag_filter.empty();
    std::string out;
    msgpack::writer w(out);
    w.map(n);
    w.key("ID");
    w.str(e.id);
    w.key("n");
    w.str(e.name);
    if (!e.payload.empty()) {
        w.key("p");
        w.bytes(e.payload);
    }
    if (!e.node_filter.empty()) {
        w.key("nf");
        w.str(e.node_filter);
    }
    if (!e.service_filter.empty()) {
        w.key("sf");
        w.str(e.service_filter);
    }
    if (!e.tag_filter.empty()) {
        w.key("tf");
        w.str(e.tag_filter);
    }
    w.key("v");
    w.sint(e.version);
    return out;
}

std::optional<user_event> decode_consul_event(std::string_view payload) {
    msgpack::reader r(payload);
    user_event e;
    e.version = 0;
    bool ok = msgpack::read_struct(r, [&](const std::string& k) {
        if (k == "ID") return r.str(e.id);
        if (k == "n") return r.str(e.name);
        if (k == "p") return r.str(e.payload);
        if (k == "nf") return r.str(e.node_filter);
        if (k == "sf") return r.str(e.service_filter);
        if (k == "tf") return r.str(e.tag_filter);
        if (k == "v") {
            int64_t v = 0;
            if (!r.i64(v)) return false;
            e.version = int(v);
            return true;
        }
        return r.skip();
    });
    if (!ok) return std::nullopt;
    return e;
}

std::optional<std::string> validate_event(const user_event& e) {
    if (e.name.empty()) return "User event missing name";
    if (!e.tag_filter.empty() && e.service_filter.empty()) return "Cannot provide tag filter without service filter";
    if (!e.node_filter.empty() && !compile(e.node_filter)) return "Invalid node filter: " + e.node_filter;
    if (!e.service_filter.empty() && !compile(e.service_filter)) return "Invalid service filter: " + e.service_filter;
    if (!e.tag_filter.empty() && !compile(e.tag_filter)) return "Invalid tag filter: " + e.tag_filter;
    return std::nullopt;
}

std::optional<std::string> fire_consul_event(serf_events& ev, const user_event& e, uint64_t* ltime) {
    return ev.fire(std::string(consul_event_prefix) + e.name, encode_consul_event(e), false, ltime);
}

std::optional<user_event> consul_event_of(const serf::user_event& e) {
    if (e.name.compare(0, consul_event_prefix.size(), consul_event_prefix) != 0) return std::nullopt;
    auto c = decode_consul_event(e.payload);
    if (!c) return std::nullopt;
    c->ltime = e.ltime;
    return c;
}

bool should_process(const user_event& e, const std::string& node,
                    const std::map<std::string, catalog::service>& services) {
    if (!e.node_filter.empty()) {
        auto re = compile(e.node_filter);
        if (!re || !std::regex_search(node, *re)) return false;
    }
    if (e.service_filter.empty()) return true;
    auto sre = compile(e.service_filter);
    if (!sre) return false;
    std::optional<std::regex> tre;
    if (!e.tag_filter.empty()) {
        tre = compile(e.tag_filter);
        if (!tre) return false;
    }
    for (const auto& [id, s] : services) {
        if (!std::regex_search(id, *sre)) continue;
        if (!tre) return true;
        for (const auto& t : s.tags)
            if (std::regex_search(t, *tre)) return true;
    }
    return false;
}

}  // namespace pharos::agent
