// Consul's JSON shapes for catalog rows, written with json::writer. Field names
// and order follow Consul 1.x's Go structs; empty maps are written as {} and
// empty lists as [] (clients iterate them).
#pragma once
#include "protocols/json/writer.hh"
#include "services/catalog/store.hh"

namespace pharos::catalog {

// /v1/catalog/nodes entry and the "Node" of health entries.
void write_node(json::writer& w, const node& n);
// AgentService, as /v1/agent/services and /v1/catalog/node/:node write it.
// `datacenter` non-empty adds the agent form's "Datacenter".
void write_agent_service(json::writer& w, const service& s, std::string_view datacenter = {});
// /v1/catalog/service/:name entry (node columns + Service* columns).
void write_catalog_service(json::writer& w, const node& n, const service& s);
// HealthCheck. `indexes` false writes CreateIndex and ModifyIndex as 0, as the
// agent's local checks have them (the agent shares the catalog's rows).
void write_check(json::writer& w, const check& c, bool indexes = true);
void write_string_map(json::writer& w, const str_map& m);
void write_string_list(json::writer& w, const std::vector<std::string>& l);

}  // namespace pharos::catalog
