// pharos's client commands, shaped like Consul's CLI (same flags, output and
// exit codes): kv, members, catalog, services, leave, version. Each talks to
// an agent's HTTP API at -http-addr, else $CONSUL_HTTP_ADDR, else 127.0.0.1:8500.
#pragma once
#include <string>

namespace pharos::tools {

// Whether `cmd` (argv[1]) is one of the client commands.
bool is_cli_command(const std::string& cmd);

// Runs client command argv[1] with its arguments argv[2..]; prints to stdout and
// stderr as Consul does and returns the exit code (0 ok, 1 error; members: 2 when
// no member matches). Throws std::runtime_error only for kv's usage errors.
int run_cli(int argc, char** argv);

}  // namespace pharos::tools
