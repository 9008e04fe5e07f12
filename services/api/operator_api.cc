// /v1/operator/keyring: Consul's gossip keyring endpoint over the agent's LAN
// pool (there is no WAN pool: every answer has one entry, WAN false).
//
//   GET    list     → [{WAN, Datacenter, Segment, Messages?, Keys, PrimaryKeys, NumNodes}]
//   POST   install  {"Key": base64}
//   PUT    use      {"Key": base64}
//   DELETE remove   {"Key": base64}
//
// The operation runs on the agent's shard (lan_gossip::key_operation, Serf's
// key queries); its errors come back as Consul's keyringErrorsOrNil words
// them: 500 with a multierror list ("dc1 (LAN) error: 1/3 nodes reported
// failure" and one "node: message" line per node that said something).
// ?relay-factor (0-5) and ?local-only (GET only) are validated as Consul does;
// relaying is not done and the one pool is always "local".
#include <cstdlib>

#include "services/agent/gossip.hh"
#include "services/api/common.hh"

namespace pharos::api {
using namespace engine;

namespace {

using op = agent::lan_gossip::key_op;

task<agent::key_response> keyring_on_agent(agent::agent& a, op o, std::string key) {
    if (!a.gossip()) {
        agent::key_response r;
        r.error = "gossip is disabled (ports.serf_lan = -1)";
        co_return r;
    }
    agent::key_response r = co_await a.gossip()->key_operation(o, std::move(key));
    co_return r;
}

// Go's multierror text: "1 error occurred:\n\t* e\n\n" / "N errors occurred:\n\t* a\n\t* b\n\n".
std::string multierror(const std::vector<std::string>& errs) {
    std::string out = errs.size() == 1 ? "1 error occurred:\n\t" : std::to_string(errs.size()) + " errors occurred:\n\t";
    for (size_t i = 0; i < errs.size(); ++i) out += (i ? "\n\t* " : "* ") + errs[i];
    return out + "\n\n";
}

void write_counts(json::writer& w, const std::map<std::string, int>& m) {
    w.begin_object();
    for (const auto& [k, n] : m) w.key(k).number(n);
    w.end_object();
}

}  // namespace

task<std::optional<response>> operator_routes(const context* ctx, request& r) {
    if (r.path != "/v1/operator/keyring") co_return std::nullopt;
    op o;
    if (r.method == "GET")
        o = op::list;
    else if (r.method == "POST")
        o = op::install;
    else if (r.method == "PUT")
        o = op::use;
    else if (r.method == "DELETE")
        o = op::remove;
    else
        co_return method_not_allowed(r, "GET,POST,PUT,DELETE");
    std::string key;
    if (o != op::list) {
        json::document doc;
        json::object body;
        if (auto bad = decode_body(r, doc, body)) co_return std::move(*bad);
        if (auto err = body.get_string("Key", key)) co_return consul_error(400, "Request decode failed: " + *err);
    }
    if (auto* rf = r.query_param("relay-factor"); rf && !rf->empty()) {
        char* end = nullptr;
        long n = std::strtol(rf->c_str(), &end, 10);
        if (*end != '\0')
            co_return consul_error(400, "Error parsing relay factor: strconv.Atoi: parsing \"" + *rf +
                                            "\": invalid syntax");
        if (n < 0 || n > 5)
            co_return consul_error(400, "Invalid relay-factor: Relay factor must be in range: [0, 5]");
    }
    if (auto* lo = r.query_param("local-only"); lo && !lo->empty()) {
        bool v;
        if (*lo == "1" || *lo == "t" || *lo == "T" || *lo == "true" || *lo == "TRUE" || *lo == "True")
            v = true;
        else if (*lo == "0" || *lo == "f" || *lo == "F" || *lo == "false" || *lo == "FALSE" || *lo == "False")
            v = false;
        else
            co_return consul_error(400, "Error parsing local-only: strconv.ParseBool: parsing \"" + *lo +
                                            "\": invalid syntax");
        if (v && o != op::list)
            co_return consul_error(400, "Invalid use of local-only: local-only can only be set for list requests");
    }
    auto fn = [o, key](agent::agent& a) { return keyring_on_agent(a, o, key); };
    agent::key_response res = co_await on_agent(ctx, fn);
    if (!res.error.empty()) {
        std::vector<std::string> errs;
        errs.push_back(ctx->datacenter + " (LAN) error: " + res.error);
        for (const auto& [node, msg] : res.messages) errs.push_back(node + ": " + msg);
        co_return consul_error(500, multierror(errs));
    }
    if (o != op::list) co_return empty_ok();
    json::writer w;
    w.begin_array().begin_object();
    w.key("WAN").boolean(false);
    w.key("Datacenter").string(ctx->datacenter);
    w.key("Segment").string("");
    if (!res.messages.empty()) {
        w.key("Messages").begin_object();
        for (const auto& [node, msg] : res.messages) w.key(node).string(msg);
        w.end_object();
    }
    w.key("Keys");
    write_counts(w, res.keys);
    w.key("PrimaryKeys");
    write_counts(w, res.primary_keys);
    w.key("NumNodes").number(res.num_nodes);
    w.end_object().end_array();
    co_return response::json(w.take());
}

}  // namespace pharos::api
