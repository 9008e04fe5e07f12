// Waiting for process signals as a task. With smp_config::take_signals, smp::run
// blocks SIGINT and SIGTERM in every thread; a task on any one shard takes them
// here. SIGPIPE is always ignored.
#pragma once
#include <vector>

#include "reactor.hh"
#include "result.hh"
#include "task.hh"

namespace pharos::engine {

// Returns the number of the first of `signals` delivered to the process.
// Cancel safety: a signal delivered after cancellation stays pending.
task<result<int>> wait_for_signal(std::vector<int> signals, deadline dl = no_deadline);

}  // namespace pharos::engine
