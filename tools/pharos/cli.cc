// pharos's client commands, shaped like Consul's CLI. See cli.hh.
//   pharos kv get|put|delete [flags] KEY [VALUE]
//   pharos members [-detailed] [-wan] [-status RE]
//   pharos catalog services [-tags] | catalog nodes [-detailed] [-service S]
//   pharos services register [-name -id -address -port -tag -meta k=v] [FILE...]
//   pharos services deregister [-id ID] [FILE...]
//   pharos join [-wan] ADDR...
//   pharos force-leave [-prune] [-wan] NODE
//   pharos leave
//   pharos keyring -list | -list-primary | -install KEY | -use KEY | -remove KEY [-relay-factor N]
//   pharos version
// Every command also takes -http-addr and -token ($CONSUL_HTTP_ADDR,
// $CONSUL_HTTP_TOKEN); the catalog ones -datacenter and -stale.
#include "cli.hh"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/smp.hh"
#include "protocols/http/client.hh"
#include "protocols/json/writer.hh"

namespace pharos::tools {
namespace {

using namespace pharos::engine;

struct cli_result {
    int code = 0;
    std::string out, err;
};

// Splits "http://127.0.0.1:8500" or "127.0.0.1:8500" into an address.
socket_address http_addr_from(std::string a) {
    if (a.rfind("http://", 0) == 0) a = a.substr(7);
    auto colon = a.rfind(':');
    std::string host = colon == std::string::npos ? a : a.substr(0, colon);
    uint16_t port = colon == std::string::npos ? 8500 : uint16_t(std::stoul(a.substr(colon + 1)));
    if (host == "localhost") host = "127.0.0.1";
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    auto r = socket_address::parse(host, port);
    if (!r) throw std::runtime_error("invalid -http-addr: " + a);
    return *r;
}

std::string default_http_addr() {
    const char* env = std::getenv("CONSUL_HTTP_ADDR");
    return env && *env ? env : "127.0.0.1:8500";
}

// Percent-escapes a KV key for a path, keeping '/' (Consul's kv CLI).
std::string url_escape_key(const std::string& k) {
    std::string out;
    for (unsigned char c : k) {
        if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
            out.push_back(char(c));
        else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

// Go's url.PathEscape for one path segment ('/' escaped too).
std::string path_escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out.push_back(char(c));
        else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

std::string query_escape(const std::string& s) {
    std::string out = path_escape(s);
    return out;
}

// ------------------------------------------------------------------ kv

struct kv_cli {
    std::string verb, key, value, addr;
    bool recurse = false, keys = false, cas = false, value_given = false;
    uint64_t flags = 0, modify_index = 0;
};

task<cli_result> run_kv(kv_cli c) {
    cli_result res;
    socket_address to = http_addr_from(c.addr);
    std::string target = "/v1/kv/" + url_escape_key(c.key);
    std::string method = "GET", body;
    std::vector<std::string> q;
    if (c.verb == "get") {
        if (c.keys)
            q.push_back("keys&separator=/");  // Consul's CLI default separator
        else if (c.recurse)
            q.push_back("recurse");
        else
            q.push_back("raw");
    } else if (c.verb == "put") {
        method = "PUT";
        body = c.value;
        if (c.flags) q.push_back("flags=" + std::to_string(c.flags));
        if (c.cas) q.push_back("cas=" + std::to_string(c.modify_index));
    } else {
        method = "DELETE";
        if (c.recurse) q.push_back("recurse");
        if (c.cas) q.push_back("cas=" + std::to_string(c.modify_index));
    }
    for (size_t i = 0; i < q.size(); ++i) target += (i ? "&" : "?") + q[i];
    auto r = co_await http::fetch(to, method, target, body, {}, after(std::chrono::seconds(30)));
    if (!r) {
        res.code = 1;
        res.err = "Error! Failed to reach the agent at " + to.to_string() + ": " + r.error().message() + "\n";
        co_return res;
    }
    if (r->status == 404 && c.verb == "get") {
        res.code = 1;
        res.err = "Error! No key exists at: " + c.key + "\n";
        co_return res;
    }
    if (r->status != 200) {
        res.code = 1;
        res.err = "Error! Unexpected response code: " + std::to_string(r->status) + " (" + r->body + ")\n";
        co_return res;
    }
    if (c.verb == "get") {
        if (c.keys || c.recurse) {
            // Consul prints one key per line for -keys, and "key:value" for -recurse.
            simdjson::dom::parser p;
            simdjson::dom::element doc;
            if (p.parse(r->body).get(doc) || !doc.is_array()) {
                res.code = 1;
                res.err = "Error! Malformed response from the agent\n";
                co_return res;
            }
            for (auto item : doc.get_array()) {
                if (c.keys) {
                    std::string_view k;
                    if (!item.get_string().get(k)) res.out += std::string(k) + "\n";
                    continue;
                }
                std::string_view k, v64;
                if (item["Key"].get_string().get(k)) continue;
                std::string v;
                if (!item["Value"].get_string().get(v64)) json::base64_decode(v64, v);
                res.out += std::string(k) + ":" + v + "\n";
            }
        } else {
            res.out = r->body + "\n";
        }
    } else if (c.verb == "put") {
        if (r->body != "true") {
            res.code = 1;
            res.err = "Error! Did not write to " + c.key + ": CAS failed\n";
        } else {
            res.out = "Success! Data written to: " + c.key + "\n";
        }
    } else {
        if (r->body != "true") {
            res.code = 1;
            res.err = "Error! Did not delete key " + c.key + ": CAS failed\n";
        } else {
            res.out = c.recurse ? "Success! Deleted keys with prefix: " + c.key + "\n"
                                : "Success! Deleted key: " + c.key + "\n";
        }
    }
    co_return res;
}

smp_config client_smp() {
    smp_config cfg;
    cfg.shards = 1;
    cfg.pin = false;
    cfg.stall_threshold_ms = 0;
    return cfg;
}

int cmd_kv(int argc, char** argv) {
    if (argc < 3) throw std::runtime_error("usage: pharos kv get|put|delete [flags] KEY [VALUE]");
    kv_cli c;
    c.verb = argv[2];
    if (c.verb != "get" && c.verb != "put" && c.verb != "delete")
        throw std::runtime_error("unknown kv subcommand: " + c.verb);
    c.addr = default_http_addr();
    std::vector<std::string> args;
    for (int i = 3; i < argc; ++i) {
        std::string a = argv[i];
        if (a.size() > 1 && a[0] == '-' && args.empty()) {
            std::string name = a.substr(a[1] == '-' ? 2 : 1), value;
            auto eq = name.find('=');
            bool has_value = eq != std::string::npos;
            if (has_value) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            auto need = [&]() -> std::string {
                if (has_value) return value;
                if (i + 1 >= argc) throw std::runtime_error("flag -" + name + " needs a value");
                return argv[++i];
            };
            if (name == "recurse")
                c.recurse = !has_value || value != "false";
            else if (name == "keys")
                c.keys = !has_value || value != "false";
            else if (name == "cas")
                c.cas = !has_value || value != "false";
            else if (name == "flags")
                c.flags = std::stoull(need());
            else if (name == "modify-index")
                c.modify_index = std::stoull(need());
            else if (name == "http-addr")
                c.addr = need();
            else
                throw std::runtime_error("unknown flag -" + name);
            continue;
        }
        args.push_back(a);
    }
    if (args.empty() && !(c.verb == "get" && (c.recurse || c.keys))) throw std::runtime_error("missing KEY");
    if (!args.empty()) c.key = args[0];
    if (c.verb == "put") {
        if (args.size() > 1) c.value = args[1];
        if (c.value == "-") {
            std::string all;
            char buf[4096];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) all.append(buf, n);
            c.value = all;
        }
    }
    smp group(client_smp());
    cli_result out;
    int rc = group.run([c, &out]() -> task<int> {
        return [](kv_cli c, cli_result* o) -> task<int> {
            *o = co_await run_kv(std::move(c));
            co_return o->code;
        }(c, &out);
    });
    std::fputs(out.out.c_str(), stdout);
    std::fputs(out.err.c_str(), stderr);
    return rc;
}

// ------------------------------------------------------------------ shared by the other commands

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Go's flag package, as Consul's commands use it: -name, --name, -name=value,
// -name value (not for bools); parsing stops at "--" or the first argument
// that is not a flag. -http-addr and -token are always defined.
struct cli_flags {
    std::map<std::string, std::string> values;              // string flags, last one wins
    std::map<std::string, std::vector<std::string>> lists;  // repeatable flags
    std::map<std::string, bool> bools;
    std::vector<std::string> args;  // the rest

    bool flag(const std::string& n) const {
        auto it = bools.find(n);
        return it != bools.end() && it->second;
    }
    std::string value(const std::string& n, std::string def = {}) const {
        auto it = values.find(n);
        return it == values.end() ? def : it->second;
    }
    std::vector<std::string> list(const std::string& n) const {
        auto it = lists.find(n);
        return it == lists.end() ? std::vector<std::string>{} : it->second;
    }
};

cli_flags parse_cli_flags(int argc, char** argv, int first, std::set<std::string> bools, std::set<std::string> strings,
                          std::set<std::string> lists) {
    strings.insert("http-addr");
    strings.insert("token");
    cli_flags f;
    int i = first;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.size() < 2 || a[0] != '-') break;
        std::string name = a.substr(a[1] == '-' ? 2 : 1), value;
        auto eq = name.find('=');
        bool has_value = eq != std::string::npos;
        if (has_value) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        if (bools.count(name)) {
            if (!has_value) value = "true";
            if (value == "1" || value == "t" || value == "T" || value == "true" || value == "TRUE" || value == "True")
                f.bools[name] = true;
            else if (value == "0" || value == "f" || value == "F" || value == "false" || value == "FALSE" ||
                     value == "False")
                f.bools[name] = false;
            else
                throw usage_error("invalid boolean value \"" + value + "\" for -" + name + ": parse error");
            continue;
        }
        if (!strings.count(name) && !lists.count(name)) throw usage_error("flag provided but not defined: -" + name);
        if (!has_value) {
            if (i + 1 >= argc) throw usage_error("flag needs an argument: -" + name);
            value = argv[++i];
        }
        if (lists.count(name))
            f.lists[name].push_back(value);
        else
            f.values[name] = value;
    }
    for (; i < argc; ++i) f.args.emplace_back(argv[i]);
    return f;
}

struct call {
    std::string method, target, body;
};

struct reply {
    bool reached = false;
    std::string error;  // transport failure, when !reached
    unsigned status = 0;
    std::string body;
    bool ok() const { return reached && status >= 200 && status < 300; }
};

task<int> perform_calls(socket_address to, std::vector<call> calls, http::header_list headers,
                        std::vector<reply>* out) {
    for (auto& c : calls) {
        deadline dl = after(std::chrono::seconds(30));
        auto r = co_await http::fetch(to, c.method, c.target, c.body, headers, dl);
        reply rep;
        if (!r) {
            rep.error = r.error().message();
        } else {
            rep.reached = true;
            rep.status = r->status;
            rep.body = std::move(r->body);
        }
        bool stop = !rep.ok();
        out->push_back(std::move(rep));
        if (stop) break;
    }
    co_return 0;
}

// A client of one agent: runs requests in order, stopping at the first failure.
struct client {
    std::string addr;
    std::string token;

    explicit client(const cli_flags& f) {
        addr = f.value("http-addr", default_http_addr());
        const char* env = std::getenv("CONSUL_HTTP_TOKEN");
        token = f.value("token", env ? env : "");
    }

    std::vector<reply> run(std::vector<call> calls) const {
        socket_address to = http_addr_from(addr);
        http::header_list headers;
        if (!token.empty()) headers.emplace_back("X-Consul-Token", token);
        std::vector<reply> out;
        smp group(client_smp());
        group.run([&]() { return perform_calls(to, calls, headers, &out); });
        return out;
    }
    reply one(std::string method, std::string target, std::string body = {}) const {
        std::vector<call> calls;
        calls.push_back(call{std::move(method), std::move(target), std::move(body)});
        return run(std::move(calls)).at(0);
    }

    // The text Consul's api package gives for a failed request.
    std::string describe(const reply& r, const call& c) const {
        if (!r.reached) {
            std::string a = addr.rfind("http://", 0) == 0 ? addr.substr(7) : addr;
            std::string verb = c.method.empty() ? "Get" : std::string(1, c.method[0]) + lower_rest(c.method);
            return verb + " \"http://" + a + c.target + "\": " + r.error;
        }
        return "Unexpected response code: " + std::to_string(r.status) + " (" + trim(r.body) + ")";
    }
    static std::string lower_rest(const std::string& m) {
        std::string s = m.substr(1);
        for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        return s;
    }
    static std::string trim(std::string s) {
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
        return s;
    }
};

// ryanuber/columnize as Consul uses it: columns padded to the widest cell and
// joined by two spaces; the last column is not padded.
std::string columnize(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths;
    for (auto& r : rows)
        for (size_t i = 0; i < r.size(); ++i) {
            if (widths.size() <= i) widths.push_back(0);
            widths[i] = std::max(widths[i], r[i].size());
        }
    std::string out;
    for (auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) {
            out += r[i];
            if (i + 1 < r.size()) out += std::string(widths[i] - r[i].size() + 2, ' ');
        }
        out += '\n';
    }
    return out;
}

std::string json_string(simdjson::dom::element e, const char* key) {
    std::string_view s;
    if (e[key].get_string().get(s)) return {};
    return std::string(s);
}

std::string json_number_text(simdjson::dom::element e, const char* key) {
    simdjson::dom::element v;
    if (e[key].get(v)) return {};
    int64_t i;
    if (!v.get_int64().get(i)) return std::to_string(i);
    uint64_t u;
    if (!v.get_uint64().get(u)) return std::to_string(u);
    return {};
}

std::map<std::string, std::string> json_string_map(simdjson::dom::element e, const char* key) {
    std::map<std::string, std::string> out;
    simdjson::dom::object o;
    if (e[key].get_object().get(o)) return out;
    for (auto f : o) {
        std::string_view v;
        if (!f.value.get_string().get(v)) out[std::string(f.key)] = std::string(v);
    }
    return out;
}

// "k1=v1<sep>k2=v2", keys sorted (std::map order).
std::string map_to_kv(const std::map<std::string, std::string>& m, const std::string& sep) {
    std::string out;
    for (auto& [k, v] : m) out += (out.empty() ? "" : sep) + k + "=" + v;
    return out;
}

std::string host_port(const std::string& ip, const std::string& port) {
    if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + port;
    return ip + ":" + port;
}

int fail_with(const std::string& msg) {
    std::fprintf(stderr, "%s\n", msg.c_str());
    return 1;
}

// ------------------------------------------------------------------ members

// serf.MemberStatus.String()
std::string member_status(int64_t s) {
    switch (s) {
        case 0:
            return "none";
        case 1:
            return "alive";
        case 2:
            return "leaving";
        case 3:
            return "left";
        case 4:
            return "failed";
        default:
            return "unknown";
    }
}

int cmd_members(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 2, {"detailed", "wan"}, {"status", "segment", "filter", "partition"}, {});
    if (!f.args.empty()) return fail_with("Too many arguments (expected 0, got " + std::to_string(f.args.size()) + ")");
    std::regex status_re;
    try {
        status_re = std::regex(f.value("status", ".*"), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        return fail_with(std::string("Failed to compile status regexp: ") + e.what());
    }
    client c(f);
    std::vector<std::string> q;
    if (f.flag("wan")) q.push_back("wan=1");
    if (!f.value("segment").empty()) q.push_back("segment=" + query_escape(f.value("segment")));
    if (!f.value("filter").empty()) q.push_back("filter=" + query_escape(f.value("filter")));
    std::string target = "/v1/agent/members";
    for (size_t i = 0; i < q.size(); ++i) target += (i ? "&" : "?") + q[i];
    reply r = c.one("GET", target);
    if (!r.ok()) return fail_with("Error retrieving members: " + c.describe(r, call{"GET", target, {}}));

    simdjson::dom::parser p;
    simdjson::dom::array arr;
    if (p.parse(r.body).get_array().get(arr)) return fail_with("Error retrieving members: malformed response");
    struct member {
        std::string name, addr, status;
        std::map<std::string, std::string> tags;
    };
    std::vector<member> members;
    for (auto e : arr) {
        member m;
        m.name = json_string(e, "Name");
        m.addr = host_port(json_string(e, "Addr"), json_number_text(e, "Port"));
        int64_t st = 0;
        if (e["Status"].get_int64().get(st)) st = 0;
        m.status = member_status(st);
        m.tags = json_string_map(e, "Tags");
        if (m.tags["partition"].empty()) m.tags["partition"] = "default";
        if (m.tags["partition"] == "default") {
            if (f.value("segment").empty() && m.tags["role"] == "consul")
                m.tags["segment"] = "<all>";
            else if (m.tags["segment"].empty())
                m.tags["segment"] = "<default>";
        } else {
            m.tags["segment"] = "";
        }
        if (!std::regex_search(m.status, status_re)) continue;
        members.push_back(std::move(m));
    }
    if (members.empty()) return 2;
    // Servers first, then the default partition, then by segment, partition and name.
    std::stable_sort(members.begin(), members.end(), [](const member& a, const member& b) {
        auto at = a.tags, bt = b.tags;
        bool as = at["role"] == "consul", bs = bt["role"] == "consul";
        if (as != bs) return as;
        bool ad = at["partition"] == "default", bd = bt["partition"] == "default";
        if (ad != bd) return ad;
        if (at["segment"] != bt["segment"]) return at["segment"] < bt["segment"];
        if (at["partition"] != bt["partition"]) return at["partition"] < bt["partition"];
        return a.name < b.name;
    });

    std::vector<std::vector<std::string>> rows;
    if (f.flag("detailed")) {
        rows.push_back({"Node", "Address", "Status", "Tags"});
        for (auto& m : members) rows.push_back({m.name, m.addr, m.status, map_to_kv(m.tags, ",")});
    } else {
        rows.push_back({"Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"});
        for (auto& m : members) {
            auto t = m.tags;
            std::string build = t["build"];
            if (build.empty())
                build = "< 0.3";
            else if (auto colon = build.find(':'); colon != std::string::npos)
                build = build.substr(0, colon);
            std::string role = t["role"];
            if (role == "consul")
                rows.push_back(
                    {m.name, m.addr, m.status, "server", build, t["vsn"], t["dc"], t["partition"], t["segment"]});
            else if (role == "node")
                rows.push_back(
                    {m.name, m.addr, m.status, "client", build, t["vsn"], t["dc"], t["partition"], t["segment"]});
            else
                rows.push_back({m.name, m.addr, m.status, "unknown", "", "", "", "", ""});
        }
    }
    std::fputs(columnize(rows).c_str(), stdout);
    return 0;
}

// ------------------------------------------------------------------ catalog

std::string server_query(const cli_flags& f) {
    std::vector<std::string> q;
    if (!f.value("datacenter").empty()) q.push_back("dc=" + query_escape(f.value("datacenter")));
    if (f.flag("stale")) q.push_back("stale");
    std::string s;
    for (auto& x : q) s += (s.empty() ? "?" : "&") + x;
    return s;
}

int cmd_catalog_services(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 3, {"tags", "stale"}, {"datacenter", "node"}, {});
    if (!f.args.empty()) return fail_with("Too many arguments (expected 0, got " + std::to_string(f.args.size()) + ")");
    client c(f);
    std::map<std::string, std::set<std::string>> services;
    std::string node = f.value("node");
    std::string target = node.empty() ? "/v1/catalog/services" : "/v1/catalog/node/" + path_escape(node);
    target += server_query(f);
    reply r = c.one("GET", target);
    if (!r.ok())
        return fail_with(std::string(node.empty() ? "Error listing services: " : "Error listing services for node: ") +
                         c.describe(r, call{"GET", target, {}}));
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    if (p.parse(r.body).get(doc)) return fail_with("Error listing services: malformed response");
    auto add_tags = [&](const std::string& name, simdjson::simdjson_result<simdjson::dom::element> tags) {
        auto& set = services[name];
        simdjson::dom::array a;
        if (tags.get_array().get(a)) return;
        for (auto t : a) {
            std::string_view s;
            if (!t.get_string().get(s)) set.insert(std::string(s));
        }
    };
    if (node.empty()) {
        simdjson::dom::object o;
        if (doc.get_object().get(o)) return fail_with("Error listing services: malformed response");
        for (auto fld : o)
            add_tags(std::string(fld.key),
                     simdjson::simdjson_result<simdjson::dom::element>(simdjson::dom::element(fld.value)));
    } else if (doc.is_object()) {
        simdjson::dom::object svcs;
        if (!doc["Services"].get_object().get(svcs))
            for (auto fld : svcs) add_tags(json_string(fld.value, "Service"), fld.value["Tags"]);
    }
    if (services.empty()) {
        std::fputs("No services match the given query - try expanding your search.\n", stderr);
        return 0;
    }
    if (!f.flag("tags")) {
        for (auto& [name, tags] : services) std::printf("%s\n", name.c_str());
        return 0;
    }
    // Go's tabwriter(minwidth 0, tabwidth 2, padding 6, ' '), output trimmed.
    size_t width = 0;
    for (auto& [name, tags] : services) width = std::max(width, name.size());
    std::string out;
    for (auto& [name, tags] : services) {
        std::string joined;
        for (auto& t : tags) joined += (joined.empty() ? "" : ",") + t;
        out += name + std::string(width + 6 - name.size(), ' ') + joined + "\n";
    }
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    std::printf("%s\n", out.c_str());
    return 0;
}

int cmd_catalog_nodes(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 3, {"detailed", "stale"}, {"datacenter", "service", "near", "filter"},
                                  {"node-meta"});
    if (!f.args.empty()) return fail_with("Too many arguments (expected 0, got " + std::to_string(f.args.size()) + ")");
    client c(f);
    std::string service = f.value("service");
    std::string target = service.empty() ? "/v1/catalog/nodes" : "/v1/catalog/service/" + path_escape(service);
    std::string q = server_query(f);
    if (!f.value("near").empty()) q += (q.empty() ? "?" : "&") + std::string("near=") + query_escape(f.value("near"));
    if (!f.value("filter").empty())
        q += (q.empty() ? "?" : "&") + std::string("filter=") + query_escape(f.value("filter"));
    for (auto& m : f.list("node-meta")) q += (q.empty() ? "?" : "&") + std::string("node-meta=") + query_escape(m);
    target += q;
    reply r = c.one("GET", target);
    if (!r.ok())
        return fail_with(std::string(service.empty() ? "Error listing nodes: " : "Error listing nodes for service: ") +
                         c.describe(r, call{"GET", target, {}}));
    simdjson::dom::parser p;
    simdjson::dom::array arr;
    if (p.parse(r.body).get_array().get(arr)) return fail_with("Error listing nodes: malformed response");
    bool detailed = f.flag("detailed");
    std::vector<std::vector<std::string>> rows;
    if (detailed)
        rows.push_back({"Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"});
    else
        rows.push_back({"Node", "ID", "Address", "DC"});
    for (auto e : arr) {
        std::string node = json_string(e, "Node"), id = json_string(e, "ID"), address = json_string(e, "Address"),
                    dc = json_string(e, "Datacenter");
        if (detailed) {
            rows.push_back({node, id, address, dc, map_to_kv(json_string_map(e, "TaggedAddresses"), ", "),
                            map_to_kv(json_string_map(e, service.empty() ? "Meta" : "NodeMeta"), ", ")});
        } else {
            auto dash = id.find('-');
            if (dash != std::string::npos && dash > 0) id = id.substr(0, dash);  // the first octet, as Consul
            rows.push_back({node, id, address, dc});
        }
    }
    if (rows.size() == 1) {
        std::fputs("No nodes match the given query - try expanding your search.\n", stderr);
        return 0;
    }
    std::fputs(columnize(rows).c_str(), stdout);
    return 0;
}

int cmd_catalog(int argc, char** argv) {
    std::string sub = argc > 2 ? argv[2] : "";
    if (sub == "services") return cmd_catalog_services(argc, argv);
    if (sub == "nodes") return cmd_catalog_nodes(argc, argv);
    return fail_with(
        "Usage: pharos catalog <subcommand> [options]\n\n  services    Lists all registered services\n"
        "  nodes       Lists all nodes in the given datacenter");
}

// ------------------------------------------------------------------ services

// A config-file key (snake_case or already PascalCase) as the HTTP API spells it.
std::string api_key(std::string_view k) {
    if (k == "args") return "ScriptArgs";
    if (k.find('_') == std::string_view::npos && !k.empty() && std::isupper(static_cast<unsigned char>(k[0])))
        return std::string(k);
    static const std::set<std::string> acronyms = {"id",  "ttl",    "http", "tcp", "udp", "grpc",
                                                   "tls", "h2ping", "dns",  "ip",  "url", "os"};
    std::string out;
    size_t start = 0;
    while (start <= k.size()) {
        size_t end = k.find('_', start);
        if (end == std::string_view::npos) end = k.size();
        std::string part(k.substr(start, end - start));
        for (auto& ch : part) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        if (acronyms.count(part)) {
            for (auto& ch : part) ch = char(std::toupper(static_cast<unsigned char>(ch)));
        } else if (!part.empty()) {
            part[0] = char(std::toupper(static_cast<unsigned char>(part[0])));
        }
        out += part;
        start = end + 1;
    }
    return out;
}

// Rewrites a service definition from a config file into the JSON the register
// endpoint takes: keys to the API's spelling, except user-chosen map keys.
void translate(simdjson::dom::element e, json::writer& w, bool user_keys = false) {
    switch (e.type()) {
        case simdjson::dom::element_type::OBJECT: {
            simdjson::dom::object obj;
            if (e.get_object().get(obj)) break;
            w.begin_object();
            for (auto f : obj) {
                std::string k = user_keys ? std::string(f.key) : api_key(f.key);
                w.key(k);
                if (user_keys) {
                    translate(f.value, w, false);
                    continue;
                }
                bool string_map = k == "Meta" || k == "NodeMeta" || k == "Header" || k == "Env";
                if (string_map) {
                    w.raw(simdjson::to_string(f.value));
                } else {
                    bool keyed = k == "TaggedAddresses";  // user keys, values translated
                    translate(f.value, w, keyed);
                }
            }
            w.end_object();
            break;
        }
        case simdjson::dom::element_type::ARRAY:
            w.begin_array();
            {
                simdjson::dom::array arr;
                if (!e.get_array().get(arr))
                    for (auto item : arr) translate(item, w, false);
            }
            w.end_array();
            break;
        default:
            w.raw(simdjson::to_string(e));
    }
}

struct service_def {
    std::string name, id, body;  // body: the register request's JSON
};

// Reads the service definitions in a file: {"service": {...}} or
// {"services": [...]} (any key case).
std::vector<service_def> services_from_file(const std::string& path) {
    simdjson::padded_string text;
    if (simdjson::padded_string::load(path).get(text)) throw std::runtime_error("Error reading " + path);
    simdjson::dom::parser p;
    simdjson::dom::object root;
    if (p.parse(text).get_object().get(root))
        throw std::runtime_error("Error decoding " + path + ": expected a JSON object");
    std::vector<service_def> out;
    auto add = [&](simdjson::dom::element s) {
        if (!s.is_object()) throw std::runtime_error("Error decoding " + path + ": a service must be an object");
        json::writer w;
        translate(s, w);
        service_def d;
        d.body = w.take();
        simdjson::dom::parser p2;
        simdjson::dom::element t;
        if (!p2.parse(d.body).get(t)) {
            d.name = json_string(t, "Name");
            d.id = json_string(t, "ID");
        }
        out.push_back(std::move(d));
    };
    for (auto f : root) {
        std::string k(f.key);
        for (auto& ch : k) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        if (k == "service") {
            add(f.value);
        } else if (k == "services") {
            simdjson::dom::array a;
            if (f.value.get_array().get(a))
                throw std::runtime_error("Error decoding " + path + ": services must be a list");
            for (auto s : a) add(s);
        }
    }
    if (out.empty()) throw std::runtime_error("Error: no service definition found in " + path);
    return out;
}

int cmd_services_register(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 3, {}, {"name", "id", "address", "port", "kind", "socket"},
                                  {"tag", "meta", "tagged-address"});
    std::string name = f.value("name");
    if (f.args.empty() && name.empty())
        return fail_with("Service registration requires at least one argument or flags.");
    if (!f.args.empty() && !name.empty()) return fail_with("Service registration requires arguments or -id, not both.");
    int port = 0;
    if (!f.value("port").empty()) {
        char* end = nullptr;
        long v = std::strtol(f.value("port").c_str(), &end, 10);
        if (*end) return fail_with("invalid value \"" + f.value("port") + "\" for flag -port: parse error");
        port = int(v);
    }
    std::map<std::string, std::string> meta;
    for (auto& m : f.list("meta")) {
        auto eq = m.find('=');
        if (eq == std::string::npos) return fail_with("invalid value \"" + m + "\" for flag -meta: missing '='");
        meta[m.substr(0, eq)] = m.substr(eq + 1);
    }
    std::vector<service_def> defs;
    if (!f.args.empty()) {
        try {
            for (auto& file : f.args) {
                auto more = services_from_file(file);
                defs.insert(defs.end(), more.begin(), more.end());
            }
        } catch (const std::exception& e) {
            return fail_with(std::string("Error: ") + e.what());
        }
    } else {
        json::writer w;
        w.begin_object();
        if (!f.value("kind").empty()) w.key("Kind").string(f.value("kind"));
        if (!f.value("id").empty()) w.key("ID").string(f.value("id"));
        w.key("Name").string(name);
        auto tags = f.list("tag");
        if (!tags.empty()) {
            w.key("Tags").begin_array();
            for (auto& t : tags) w.string(t);
            w.end_array();
        }
        if (port) w.key("Port").number(port);
        if (!f.value("address").empty()) w.key("Address").string(f.value("address"));
        if (!f.value("socket").empty()) w.key("SocketPath").string(f.value("socket"));
        if (!meta.empty()) {
            w.key("Meta").begin_object();
            for (auto& [k, v] : meta) w.key(k).string(v);
            w.end_object();
        }
        w.end_object();
        defs.push_back(service_def{name, f.value("id"), w.take()});
    }
    client c(f);
    std::vector<call> calls;
    for (auto& d : defs) calls.push_back(call{"PUT", "/v1/agent/service/register", d.body});
    auto replies = c.run(calls);
    for (size_t i = 0; i < replies.size(); ++i) {
        if (!replies[i].ok())
            return fail_with("Error registering service \"" + defs[i].name + "\": " + c.describe(replies[i], calls[i]));
        std::printf("Registered service: %s\n", defs[i].name.c_str());
    }
    return 0;
}

int cmd_services_deregister(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 3, {}, {"id"}, {});
    std::string id = f.value("id");
    if (f.args.empty() && id.empty()) return fail_with("Service deregistration requires at least one argument or -id.");
    if (!f.args.empty() && !id.empty()) return fail_with("Service deregistration requires arguments or -id, not both.");
    std::vector<std::string> ids;
    if (!id.empty()) {
        ids.push_back(id);
    } else {
        try {
            for (auto& file : f.args)
                for (auto& d : services_from_file(file)) ids.push_back(d.id.empty() ? d.name : d.id);
        } catch (const std::exception& e) {
            return fail_with(std::string("Error: ") + e.what());
        }
    }
    client c(f);
    std::vector<call> calls;
    for (auto& x : ids) calls.push_back(call{"PUT", "/v1/agent/service/deregister/" + path_escape(x), {}});
    auto replies = c.run(calls);
    for (size_t i = 0; i < replies.size(); ++i) {
        if (!replies[i].ok())
            return fail_with("Error deregistering service \"" + ids[i] + "\": " + c.describe(replies[i], calls[i]));
        std::printf("Deregistered service: %s\n", ids[i].c_str());
    }
    return 0;
}

int cmd_services(int argc, char** argv) {
    std::string sub = argc > 2 ? argv[2] : "";
    if (sub == "register") return cmd_services_register(argc, argv);
    if (sub == "deregister") return cmd_services_deregister(argc, argv);
    return fail_with(
        "Usage: pharos services <subcommand> [options]\n\n  register      Register services with the local agent\n"
        "  deregister    Deregister services with the local agent");
}

// ------------------------------------------------------------------ leave, version

// Consul's commands that are one PUT without arguments: `leave` and `reload`.
int put_command(int argc, char** argv, const char* path, const char* error_prefix, const char* done) {
    cli_flags f = parse_cli_flags(argc, argv, 2, {}, {}, {});
    if (!f.args.empty())
        return fail_with("Error! Too many arguments (expected 0, got " + std::to_string(f.args.size()) + ")");
    client c(f);
    reply r = c.one("PUT", path);
    if (!r.ok()) return fail_with(error_prefix + c.describe(r, call{"PUT", path, {}}));
    std::printf("%s\n", done);
    return 0;
}

int cmd_leave(int argc, char** argv) {
    return put_command(argc, argv, "/v1/agent/leave", "Error leaving: ", "Graceful leave complete");
}

// The agent reads its config files again (PUT /v1/agent/reload).
int cmd_reload(int argc, char** argv) {
    return put_command(argc, argv, "/v1/agent/reload", "Error reloading: ", "Configuration reload triggered");
}

// Consul's `join`: one PUT /v1/agent/join per address; succeeds if any did.
int cmd_join(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 2, {"wan"}, {"partition"}, {});
    if (f.args.empty()) return fail_with("Error! At least one address to join must be specified.");
    client c(f);
    int joins = 0;
    for (auto& addr : f.args) {
        std::string target = "/v1/agent/join/" + addr + (f.flag("wan") ? "?wan=1" : "");
        reply r = c.one("PUT", target);
        if (!r.ok()) {
            std::fprintf(stderr, "Error joining address '%s': %s\n", addr.c_str(),
                         c.describe(r, call{"PUT", target, {}}).c_str());
            continue;
        }
        ++joins;
    }
    if (joins == 0) return fail_with("Failed to join any nodes.");
    std::printf("Successfully joined cluster by contacting %d nodes.\n", joins);
    return 0;
}

// Consul's `force-leave`: a failed member becomes left (-prune: forgotten).
int cmd_force_leave(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 2, {"prune", "wan"}, {"partition"}, {});
    if (f.args.size() != 1) return fail_with("A single node name must be specified to force leave.");
    client c(f);
    std::string target = "/v1/agent/force-leave/" + f.args[0];
    std::vector<std::string> q;
    if (f.flag("prune")) q.push_back("prune=1");
    if (f.flag("wan")) q.push_back("wan=1");
    for (size_t i = 0; i < q.size(); ++i) target += (i ? "&" : "?") + q[i];
    reply r = c.one("PUT", target);
    if (!r.ok()) return fail_with("Error force leaving: " + c.describe(r, call{"PUT", target, {}}));
    return 0;
}

// Consul's `keyring`: one action per call over /v1/operator/keyring; exit 1 if any node failed.
int cmd_keyring(int argc, char** argv) {
    cli_flags f = parse_cli_flags(argc, argv, 2, {"list", "list-primary", "local-only"},
                                  {"install", "use", "remove", "relay-factor"}, {});
    bool list = f.flag("list"), primary = f.flag("list-primary");
    int found = int(list) + int(primary);
    for (const char* k : {"install", "use", "remove"}) found += !f.value(k).empty();
    if (found > 1) return fail_with("Only a single action is allowed");
    if (found == 0)
        return fail_with("Usage: pharos keyring [options]\n\n  Manages encryption keys used for gossip messages: "
                         "-list, -list-primary, -install KEY, -use KEY, -remove KEY.");
    std::string relay = f.value("relay-factor", "0");
    char* end = nullptr;
    long rf = std::strtol(relay.c_str(), &end, 10);
    if (*end != '\0' || relay.empty())
        return fail_with("invalid value \"" + relay + "\" for flag -relay-factor: parse error");
    if (rf < 0 || rf > 5) return fail_with("Error parsing relay factor: Relay factor must be in range: [0, 5]");
    std::vector<std::string> q;
    if (rf) q.push_back("relay-factor=" + relay);
    if (f.flag("local-only")) q.push_back("local-only=1");
    std::string suffix;
    for (size_t i = 0; i < q.size(); ++i) suffix += (i ? "&" : "?") + q[i];
    client c(f);
    std::string target = "/v1/operator/keyring" + suffix;
    if (list || primary) {
        std::printf("==> Gathering installed %sencryption keys...\n", primary ? "primary " : "");
        std::fflush(stdout);
        reply r = c.one("GET", target);
        if (!r.ok()) return fail_with("error: " + c.describe(r, call{"GET", target, {}}));
        simdjson::dom::parser parser;
        simdjson::dom::array pools;
        if (parser.parse(r.body).get(pools)) return fail_with("error: bad JSON from the agent");
        for (simdjson::dom::element p : pools) {
            std::string_view dc, segment;
            bool wan = false;
            int64_t nodes = 0;
            auto absent_ok = [](simdjson::error_code) {};  // missing fields keep their zero values
            absent_ok(p["Datacenter"].get(dc));
            absent_ok(p["Segment"].get(segment));
            absent_ok(p["WAN"].get(wan));
            absent_ok(p["NumNodes"].get(nodes));
            std::string pool = wan ? "WAN" : std::string(dc) + " (LAN)";
            if (!wan && !segment.empty()) pool += " [" + std::string(segment) + "]";
            std::printf("\n%s:\n", pool.c_str());
            simdjson::dom::object keys;
            if (p[primary ? "PrimaryKeys" : "Keys"].get(keys)) continue;
            for (auto kv : keys) {
                int64_t n = 0;
                absent_ok(kv.value.get(n));
                std::printf("  %.*s [%lld/%lld]\n", int(kv.key.size()), kv.key.data(), (long long)n,
                            (long long)nodes);
            }
        }
        return 0;
    }
    std::string method, key, what;
    if (!f.value("install").empty()) {
        method = "POST", key = f.value("install"), what = "Installing new gossip encryption key...";
    } else if (!f.value("use").empty()) {
        method = "PUT", key = f.value("use"), what = "Changing primary gossip encryption key...";
    } else {
        method = "DELETE", key = f.value("remove"), what = "Removing gossip encryption key...";
    }
    std::printf("==> %s\n", what.c_str());
    std::fflush(stdout);
    json::writer w;
    w.begin_object().key("Key").string(key).end_object();
    std::string body = w.take();
    reply r = c.one(method, target, body);
    if (!r.ok()) return fail_with("error: " + c.describe(r, call{method, target, body}));
    return 0;
}

int cmd_version() {
    std::printf("Pharos v0.1.0\nConsul-compatible API: 1.x\n");
    return 0;
}

}  // namespace

bool is_cli_command(const std::string& cmd) {
    return cmd == "kv" || cmd == "members" || cmd == "catalog" || cmd == "services" || cmd == "leave" ||
           cmd == "reload" || cmd == "join" || cmd == "force-leave" || cmd == "keyring" ||
           cmd == "version" || cmd == "-version" || cmd == "--version" || cmd == "-v";
}

int run_cli(int argc, char** argv) {
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "kv") return cmd_kv(argc, argv);  // throws on usage errors, as before
    try {
        if (cmd == "members") return cmd_members(argc, argv);
        if (cmd == "catalog") return cmd_catalog(argc, argv);
        if (cmd == "services") return cmd_services(argc, argv);
        if (cmd == "leave") return cmd_leave(argc, argv);
        if (cmd == "reload") return cmd_reload(argc, argv);
        if (cmd == "join") return cmd_join(argc, argv);
        if (cmd == "force-leave") return cmd_force_leave(argc, argv);
        if (cmd == "keyring") return cmd_keyring(argc, argv);
        if (cmd == "version" || cmd == "-version" || cmd == "--version" || cmd == "-v") return cmd_version();
    } catch (const std::exception& e) {
        return fail_with(e.what());
    }
    return fail_with("unknown command: " + cmd);
}

}  // namespace pharos::tools
