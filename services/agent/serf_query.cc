// Serf's queries and key manager; see serf_query.hh.
#include "services/agent/serf_query.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <regex>

#include "protocols/json/reader.hh"
#include "protocols/json/writer.hh"

namespace pharos::agent {
namespace serf = gossip::serf;

namespace {
constexpr size_t query_buffer = 512;  // Serf's QueryBuffer
constexpr int query_timeout_mult = 16;

// A v4-mapped IPv6 address (Go's 16-byte net.IP for an IPv4) as 4 bytes.
std::string plain_ip(std::string ip) {
    static const char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, char(0xff), char(0xff)};
    if (ip.size() == 16 && std::memcmp(ip.data(), mapped, 12) == 0) ip.erase(0, 12);
    return ip;
}
}  // namespace

// ------------------------------------------------------------------ serf_queries

serf_queries::serf_queries(membership::memberlist& ml, std::string self, serf::tags tags, uint64_t seed)
    : ml_(ml), self_(std::move(self)), tags_(std::move(tags)), rng_(uint32_t(seed)), buffer_(query_buffer) {}

serf_queries::duration serf_queries::default_timeout() const {
    double n = double(ml_.num_alive());
    auto mult = int64_t(std::ceil(std::log10(n + 1)));
    return ml_.cfg().gossip_interval * query_timeout_mult * std::max<int64_t>(mult, 1);
}

std::shared_ptr<serf_queries::pending> serf_queries::start(std::string name, std::string payload, time_point now,
                                                           duration timeout, uint32_t flags,
                                                           std::vector<std::string> filters) {
    if (timeout <= duration::zero()) timeout = default_timeout();
    serf::query q;
    q.ltime = clock_;
    q.id = uint32_t(rng_() & 0x7fffffff);  // Go's rand.Int31
    q.addr = ml_.cfg().advertise.ip;
    q.port = ml_.cfg().advertise.port;
    q.source_node = self_;
    q.filters = std::move(filters);
    q.flags = flags;
    q.timeout_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
    q.name = std::move(name);
    q.payload = std::move(payload);
    auto p = std::make_shared<pending>();
    p->ltime = q.ltime;
    p->id = q.id;
    p->deadline = now + timeout;
    p->num_nodes = ml_.num_alive();
    running_[q.ltime] = p;
    std::string raw = serf::encode_query(q);
    handle_query(q, raw);  // locally first, as Serf
    ml_.broadcast_user(std::move(raw));
    return p;
}

void serf_queries::close(const std::shared_ptr<pending>& p) {
    p->closed = true;
    auto it = running_.find(p->ltime);
    if (it != running_.end() && it->second == p) running_.erase(it);
}

void serf_queries::close_all() {
    auto running = std::move(running_);
    running_.clear();
    for (auto& [lt, p] : running) {
        p->closed = true;
        if (p->on_change) p->on_change();
    }
}

bool serf_queries::on_user_msg(std::string_view msg, time_point now) {
    if (msg.empty()) return false;
    auto type = serf::message_type(uint8_t(msg[0]));
    if (type == serf::message_type::query) {
        if (auto q = serf::decode_query(msg)) {
            if (handle_query(*q, msg) && !(q->flags & serf::query_flag_no_broadcast))
                ml_.broadcast_user(std::string(msg));
        }
        return true;
    }
    if (type == serf::message_type::query_response) {
        if (auto r = serf::decode_query_response(msg)) on_response(*r, now);
        return true;
    }
    return false;
}

bool serf_queries::handle_query(const serf::query& q, std::string_view) {
    witness(q.ltime);
    if (clock_ > query_buffer && q.ltime < clock_ - query_buffer) return false;  // too old
    seen& s = buffer_[q.ltime % query_buffer];
    if (s.ltime == q.ltime) {
        if (std::find(s.ids.begin(), s.ids.end(), q.id) != s.ids.end()) return false;
    } else {
        s.ltime = q.ltime;
        s.ids.clear();
    }
    s.ids.push_back(q.id);
    if (!passes_filters(q.filters)) return true;  // not for us, but relayed
    if (q.flags & serf::query_flag_ack) {
        serf::query_response ack;
        ack.ltime = q.ltime;
        ack.id = q.id;
        ack.from = self_;
        ack.flags = serf::query_flag_ack;
        respond(q, std::move(ack));
    }
    if (handler_) {
        if (auto payload = handler_(q)) {
            serf::query_response r;
            r.ltime = q.ltime;
            r.id = q.id;
            r.from = self_;
            r.payload = std::move(*payload);
            respond(q, std::move(r));
        }
    }
    return true;
}

bool serf_queries::passes_filters(const std::vector<std::string>& filters) const {
    for (const auto& raw : filters) {
        auto f = serf::decode_filter(raw);
        if (!f) return false;  // unknown or malformed: Serf does not process the query
        if (f->type == serf::filter_type::node) {
            if (std::find(f->nodes.begin(), f->nodes.end(), self_) == f->nodes.end()) return false;
        } else {
            auto t = tags_.find(f->tag);
            std::string v = t == tags_.end() ? "" : t->second;
            try {
                if (!std::regex_search(v, std::regex(f->expr))) return false;
            } catch (const std::regex_error&) {
                return false;
            }
        }
    }
    return true;
}

void serf_queries::respond(const serf::query& q, serf::query_response r) {
    if (q.source_node == self_) {  // our own query: no trip through the network
        on_response(r, time_point::min());
        return;
    }
    std::string raw = serf::encode_query_response(r);
    if (raw.size() > query_response_size_limit) return;  // Serf: "response exceeds limit"
    membership::address to;
    to.ip = plain_ip(q.addr);
    to.port = q.port;
    ml_.send_user_best_effort(to, raw);
}

void serf_queries::on_response(const serf::query_response& r, time_point now) {
    auto it = running_.find(r.ltime);
    if (it == running_.end()) return;  // a reply for a query no longer running
    pending& p = *it->second;
    if (p.id != r.id || p.finished(now)) return;
    if (r.flags & serf::query_flag_ack) {
        if (!p.acks.insert(r.from).second) return;
    } else {
        if (!p.responded.insert(r.from).second) return;
        p.responses.emplace_back(r.from, r.payload);
    }
    if (p.on_change) p.on_change();
}

// ------------------------------------------------------------------ key queries

namespace {

std::string key_list_answer(serf::node_key_response r) {
    // Serf's keyListResponseWithCorrectSize: drop keys until the query response fits.
    size_t actual = r.keys.size();
    for (;;) {
        std::string payload = serf::encode_key_response(r);
        // The query response around it: a fixed header of < 64 bytes plus the node name (checked by respond()).
        if (payload.size() + 64 <= query_response_size_limit || r.keys.empty()) return payload;
        r.keys.pop_back();
        r.message = "truncated key list response, showing first " + std::to_string(r.keys.size()) + " of " +
                    std::to_string(actual) + " keys";
    }
}

}  // namespace

std::optional<std::string> handle_key_query(const serf::query& q, gossip::keyring& ring, const keyring_saver& save) {
    bool install = q.name == install_key_query, use = q.name == use_key_query, remove = q.name == remove_key_query;
    bool list = q.name == list_keys_query;
    if (!install && !use && !remove && !list) return std::nullopt;
    serf::node_key_response r;
    bool enabled = !ring.empty();
    if (list) {
        if (!enabled) {
            r.message = "Keyring is empty (encryption not enabled)";
            return serf::encode_key_response(r);
        }
        for (const auto& k : ring.keys()) r.keys.push_back(json::base64_encode(k));
        r.primary_key = r.keys.front();
        r.result = true;
        return key_list_answer(std::move(r));
    }
    auto key = serf::decode_key_request(q.payload);
    if (!key) return serf::encode_key_response(r);  // Serf: Result false, no message
    if (!enabled) {
        r.message = "No keyring to modify (encryption not enabled)";
        return serf::encode_key_response(r);
    }
    if (install) {
        if (!ring.add_key(*key)) {
            r.message = "key size must be 16, 24 or 32 bytes";
            return serf::encode_key_response(r);
        }
    } else if (use) {
        if (!ring.use_key(*key)) {
            r.message = "Requested key is not in the keyring";
            return serf::encode_key_response(r);
        }
    } else {
        if (*key == ring.keys().front()) {
            r.message = "Removing the primary key is not allowed";
            return serf::encode_key_response(r);
        }
        ring.remove_key(*key);  // a key not in the ring: nothing to do, success (memberlist)
    }
    if (save) {
        if (auto err = save(ring)) {
            r.message = *err;
            return serf::encode_key_response(r);
        }
    }
    r.result = true;
    return serf::encode_key_response(r);
}

key_response summarize(const serf_queries::pending& p) {
    key_response k;
    k.num_nodes = int(p.num_nodes);
    for (const auto& [from, payload] : p.responses) {
        if (k.num_resp == k.num_nodes) break;  // Serf stops reading once NumResp == NumNodes
        ++k.num_resp;
        auto r = serf::decode_key_response(payload);
        if (!r) {
            k.messages[from] = payload.empty() || uint8_t(payload[0]) != uint8_t(serf::message_type::key_response)
                                   ? "Invalid key query response type"
                                   : "Failed to decode key query response";
            ++k.num_err;
            continue;
        }
        if (!r->result) {
            k.messages[from] = r->message;
            ++k.num_err;
        } else if (!r->message.empty()) {
            k.messages[from] = r->message;
        }
        for (const auto& key : r->keys) ++k.keys[key];
        ++k.primary_keys[r->primary_key];
    }
    if (k.num_err != 0)
        k.error = std::to_string(k.num_err) + "/" + std::to_string(k.num_nodes) + " nodes reported failure";
    else if (k.num_resp != k.num_nodes)
        k.error = std::to_string(k.num_resp) + "/" + std::to_string(k.num_nodes) + " nodes reported success";
    return k;
}

// ------------------------------------------------------------------ keyring files

std::string encode_keyring_file(const std::vector<std::string>& raw_keys) {
    // Go's json.MarshalIndent(keys, "", "  "), as Serf writes it.
    std::string out = "[";
    for (size_t i = 0; i < raw_keys.size(); ++i)
        out += std::string(i ? "," : "") + "\n  \"" + json::base64_encode(raw_keys[i]) + "\"";
    out += raw_keys.empty() ? "]" : "\n]";
    return out;
}

std::optional<std::vector<std::string>> decode_keyring_file(std::string_view text, std::string& err) {
    json::document doc;
    if (auto e = doc.parse(text)) {
        err = *e;
        return std::nullopt;
    }
    std::vector<std::string> b64;
    if (auto e = doc.root().get(b64)) {
        err = *e;
        return std::nullopt;
    }
    std::vector<std::string> raw;
    for (const auto& k : b64) {
        std::string r;
        if (!json::base64_decode(k, r)) {
            err = "illegal base64 data in keyring: " + k;
            return std::nullopt;
        }
        if (r.size() != 16 && r.size() != 24 && r.size() != 32) {
            err = "key size must be 16, 24 or 32 bytes";
            return std::nullopt;
        }
        raw.push_back(std::move(r));
    }
    if (raw.empty()) {
        err = "no keys present in keyring";
        return std::nullopt;
    }
    return raw;
}

std::optional<std::string> write_keyring_file(const std::string& path, const std::vector<std::string>& raw_keys) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
        std::string dir = path.substr(0, slash);
        if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) return "cannot create " + dir + ": " + strerror(errno);
    }
    std::string tmp = path + ".tmp";
    std::string body = encode_keyring_file(raw_keys);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return "cannot write " + tmp + ": " + strerror(errno);
    size_t off = 0;
    while (off < body.size()) {
        ssize_t n = ::write(fd, body.data() + off, body.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::string e = "cannot write " + tmp + ": " + strerror(errno);
            ::close(fd);
            return e;
        }
        off += size_t(n);
    }
    bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced || ::rename(tmp.c_str(), path.c_str()) < 0) return "cannot write " + path + ": " + strerror(errno);
    return std::nullopt;
}

std::optional<std::vector<std::string>> read_keyring_file(const std::string& path, std::string& err) {
    err.clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) err = "cannot read " + path + ": " + strerror(errno);
        return std::nullopt;
    }
    std::string body;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        body.append(buf, size_t(n));
    }
    ::close(fd);
    auto keys = decode_keyring_file(body, err);
    if (!keys) err = path + ": " + err;
    return keys;
}

}  // namespace pharos::agent
