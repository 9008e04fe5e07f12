// Go's time.Duration text: parse_go_duration is time.ParseDuration and
// format_go_duration is Duration.String, bit for bit, since Consul requests
// carry durations as Go strings ("10s", "1m30s", "1.5h") and responses echo them.
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace pharos::json {

// [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ with units ns, us, µs (U+00B5), μs (U+03BC),
// ms, s, m, h; "0" alone needs no unit. Integer and fraction parts are parsed
// separately as Go does ("1.000000001s" is 1000000001ns). nullopt if malformed
// or outside int64 nanoseconds (-9223372036854775808ns is allowed).
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s);

// Go's Duration.String: "0s", "1ns", "1.5µs" (micro sign U+00B5), "300ms",
// "1m30s", "1h0m0s", "-2562047h47m16.854775808s".
std::string format_go_duration(std::chrono::nanoseconds d);

}  // namespace pharos::json
