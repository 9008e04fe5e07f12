// pharos agent: starts the agent's services from a loaded configuration and
// serves until SIGINT or SIGTERM.
#pragma once
#include <string>
#include <vector>

#include "services/agent/config.hh"

namespace pharos::tools {

// Runs the agent described by `cfg` (logs `warnings` first). Blocks until a
// stop signal; returns the process exit code. Writes cfg.pid_file at start and
// removes it on a clean exit.
int run_agent(agent::config cfg, const std::vector<std::string>& warnings = {});

}  // namespace pharos::tools
