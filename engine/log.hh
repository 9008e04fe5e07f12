// Minimal leveled logging to stderr, one line per call, safe from any thread.
#pragma once
#include <cstdarg>

namespace pharos::engine {
enum class log_level { debug = 0, info, warn, error };
void set_log_level(log_level l);
log_level get_log_level();
[[gnu::format(printf, 2, 3)]] void log(log_level l, const char* fmt, ...);
}  // namespace pharos::engine
