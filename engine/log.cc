#include "log.hh"

#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace pharos::engine {
namespace {
log_level g_level = log_level::info;
const char* names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_log_level(log_level l) { g_level = l; }
log_level get_log_level() { return g_level; }

void log(log_level l, const char* fmt, ...) {
    if (l < g_level) return;
    char line[2048];
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t;
    gmtime_r(&ts.tv_sec, &t);
    int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] ", t.tm_year + 1900, t.tm_mon + 1,
                          t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000, names[int(l)]);
    va_list ap;
    va_start(ap, fmt);
    n += std::vsnprintf(line + n, sizeof line - size_t(n) - 1, fmt, ap);
    va_end(ap);
    if (n > int(sizeof line) - 2) n = int(sizeof line) - 2;
    line[n++] = '\n';
    [[maybe_unused]] auto w = ::write(2, line, size_t(n));  // one write: lines never interleave
}
}  // namespace pharos::engine
