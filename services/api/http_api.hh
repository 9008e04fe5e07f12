// The Consul HTTP API. handle() runs on whichever shard accepted the
// connection: reads are answered from that shard's snapshot of the state,
// writes go to the state owner, agent-local calls to the agent's shard.
// Endpoint families live in kv_api.cc, catalog_api.cc (catalog and health),
// agent_api.cc and here (status, event, metrics); common.hh has what they share.
#pragma once
#include "services/api/common.hh"

namespace pharos::api {

engine::task<http::response> handle(const context* ctx, http::request& r);

}  // namespace pharos::api
