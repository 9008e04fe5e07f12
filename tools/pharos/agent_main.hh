// pharos agent: starts the agent's services from a loaded configuration and
// serves until SIGINT or SIGTERM.
#pragma once
#include <string>
#include <vector>

#include "services/agent/config.hh"

namespace pharos::tools {

// Runs the agent described by `cfg` (logs `warnings` first). Blocks until a
// stop signal; returns the process exit code. Writes cfg.pid_file at start and
// removes it on a clean exit. `command_line` (the arguments after `agent`) is
// read again by agent::load on a reload (PUT /v1/agent/reload, SIGHUP).
int run_agent(agent::config cfg, const std::vector<std::string>& warnings = {},
              std::vector<std::string> command_line = {});

}  // namespace pharos::tools
