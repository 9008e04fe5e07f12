#include "json.hh"

#include <chrono>

#include "protocols/json/duration.hh"

namespace pharos::catalog {

void write_string_map(json::writer& w, const str_map& m) {
    w.begin_object();
    for (auto& [k, v] : m) w.key(k).string(v);
    w.end_object();
}

void write_string_list(json::writer& w, const std::vector<std::string>& l) {
    w.begin_array();
    for (auto& s : l) w.string(s);
    w.end_array();
}

namespace {
// The node's columns; the node's meta is "Meta" in a node, "NodeMeta" in a catalog service entry.
void node_columns(json::writer& w, const node& n, const char* meta_key) {
    w.key("ID").string(n.id);
    w.key("Node").string(n.name);
    w.key("Address").string(n.address);
    w.key("Datacenter").string(n.datacenter);
    w.key("TaggedAddresses");
    write_string_map(w, n.tagged_addresses);
    w.key(meta_key);
    write_string_map(w, n.meta);
}
}  // namespace

void write_node(json::writer& w, const node& n) {
    w.begin_object();
    node_columns(w, n, "Meta");
    w.key("CreateIndex").number(n.create_index);
    w.key("ModifyIndex").number(n.modify_index);
    w.end_object();
}

namespace {
void write_tagged(json::writer& w, const std::vector<std::pair<std::string, service_address>>& t) {
    w.begin_object();
    for (auto& [k, a] : t) {
        w.key(k).begin_object();
        w.key("Address").string(a.address);
        w.key("Port").number(a.port);
        w.end_object();
    }
    w.end_object();
}
void write_weights(json::writer& w, const service& s) {
    w.begin_object().key("Passing").number(s.weight_passing).key("Warning").number(s.weight_warning).end_object();
}
void write_proxy_connect(json::writer& w, const char* proxy, const char* connect) {
    w.key(proxy).begin_object();
    w.key("Mode").string("");
    w.key("MeshGateway").begin_object().end_object();
    w.key("Expose").begin_object().end_object();
    w.end_object();
    w.key(connect).begin_object().end_object();
}
void duration_field(json::writer& w, const char* name, int64_t ns) {
    if (ns) w.key(name).string(json::format_go_duration(std::chrono::nanoseconds(ns)));
}
}  // namespace

void write_agent_service(json::writer& w, const service& s, std::string_view datacenter) {
    w.begin_object();
    if (!s.kind.empty()) w.key("Kind").string(s.kind);
    w.key("ID").string(s.id);
    w.key("Service").string(s.name);
    w.key("Tags");
    write_string_list(w, s.tags);
    w.key("Meta");
    write_string_map(w, s.meta);
    w.key("Port").number(s.port);
    w.key("Address").string(s.address);
    if (!s.tagged_addresses.empty()) {
        w.key("TaggedAddresses");
        write_tagged(w, s.tagged_addresses);
    }
    w.key("Weights");
    write_weights(w, s);
    w.key("EnableTagOverride").boolean(s.enable_tag_override);
    if (datacenter.empty()) {
        write_proxy_connect(w, "Proxy", "Connect");
        w.key("PeerName").string("");
        w.key("CreateIndex").number(s.create_index);
        w.key("ModifyIndex").number(s.modify_index);
    } else {
        w.key("Datacenter").string(datacenter);
    }
    w.end_object();
}

void write_catalog_service(json::writer& w, const node& n, const service& s) {
    w.begin_object();
    node_columns(w, n, "NodeMeta");
    w.key("ServiceKind").string(s.kind);
    w.key("ServiceID").string(s.id);
    w.key("ServiceName").string(s.name);
    w.key("ServiceTags");
    write_string_list(w, s.tags);
    w.key("ServiceAddress").string(s.address);
    w.key("ServiceTaggedAddresses");
    write_tagged(w, s.tagged_addresses);
    w.key("ServiceWeights");
    write_weights(w, s);
    w.key("ServiceMeta");
    write_string_map(w, s.meta);
    w.key("ServicePort").number(s.port);
    w.key("ServiceSocketPath").string("");
    w.key("ServiceEnableTagOverride").boolean(s.enable_tag_override);
    write_proxy_connect(w, "ServiceProxy", "ServiceConnect");
    w.key("ServicePeerName").string("");
    w.key("CreateIndex").number(s.create_index);
    w.key("ModifyIndex").number(s.modify_index);
    w.end_object();
}

void write_check(json::writer& w, const check& c, bool indexes) {
    w.begin_object();
    w.key("Node").string(c.node);
    w.key("CheckID").string(c.check_id);
    w.key("Name").string(c.name);
    w.key("Status").string(c.status);
    w.key("Notes").string(c.notes);
    w.key("Output").string(c.output);
    w.key("ServiceID").string(c.service_id);
    w.key("ServiceName").string(c.service_name);
    w.key("ServiceTags");
    write_string_list(w, c.service_tags);
    w.key("Type").string(c.type);
    const check_definition& d = c.def();
    w.key("Interval").string(d.interval_ns ? json::format_go_duration(std::chrono::nanoseconds(d.interval_ns)) : "");
    w.key("Timeout").string(d.timeout_ns ? json::format_go_duration(std::chrono::nanoseconds(d.timeout_ns)) : "");
    w.key("ExposedPort").number(c.exposed_port);
    w.key("Definition").begin_object();
    if (!d.http.empty()) w.key("HTTP").string(d.http);
    if (!d.header.empty()) {
        w.key("Header").begin_object();
        for (auto& [k, vs] : d.header) {
            w.key(k);
            write_string_list(w, vs);
        }
        w.end_object();
    }
    if (!d.method.empty()) w.key("Method").string(d.method);
    if (!d.body.empty()) w.key("Body").string(d.body);
    if (!d.tls_server_name.empty()) w.key("TLSServerName").string(d.tls_server_name);
    if (d.tls_skip_verify) w.key("TLSSkipVerify").boolean(true);
    if (!d.tcp.empty()) w.key("TCP").string(d.tcp);
    if (!d.udp.empty()) w.key("UDP").string(d.udp);
    if (!d.grpc.empty()) w.key("GRPC").string(d.grpc);
    if (d.grpc_use_tls) w.key("GRPCUseTLS").boolean(true);
    if (!d.os_service.empty()) w.key("OSService").string(d.os_service);
    duration_field(w, "Interval", d.interval_ns);
    duration_field(w, "Timeout", d.timeout_ns);
    duration_field(w, "DeregisterCriticalServiceAfter", d.deregister_critical_service_after_ns);
    w.end_object();
    w.key("CreateIndex").number(indexes ? c.create_index : 0);
    w.key("ModifyIndex").number(indexes ? c.modify_index : 0);
    w.end_object();
}

}  // namespace pharos::catalog
