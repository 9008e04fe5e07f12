// Go durations: the tables are the inputs and results of Go's own
// TestParseDuration, TestParseDurationErrors and TestDurationString
// (src/time/time_test.go), plus the cases Consul clients send.
#include "protocols/json/duration.hh"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

using namespace pharos::json;
using ns = std::chrono::nanoseconds;

namespace {
constexpr int64_t us = 1000, ms = 1000 * us, sec = 1000 * ms, min = 60 * sec, hour = 60 * min;
constexpr int64_t max_i = std::numeric_limits<int64_t>::max(), min_i = std::numeric_limits<int64_t>::min();
}  // namespace

TEST(go_duration, parses_what_go_parses_to_the_nanosecond) {
    struct {
        const char* in;
        int64_t want;
    } cases[] = {
        {"0", 0},
        {"5s", 5 * sec},
        {"30s", 30 * sec},
        {"1478s", 1478 * sec},
        {"-5s", -5 * sec},
        {"+5s", 5 * sec},
        {"-0", 0},
        {"+0", 0},
        {"5.0s", 5 * sec},
        {"5.6s", 5 * sec + 600 * ms},
        {"5.s", 5 * sec},
        {".5s", 500 * ms},
        {"1.0s", 1 * sec},
        {"1.00s", 1 * sec},
        {"1.004s", 1 * sec + 4 * ms},
        {"1.0040s", 1 * sec + 4 * ms},
        {"100.00100s", 100 * sec + 1 * ms},
        {"10ns", 10},
        {"11us", 11 * us},
        {"12\xc2\xb5s", 12 * us},  // U+00B5
        {"12\xce\xbcs", 12 * us},  // U+03BC
        {"13ms", 13 * ms},
        {"14s", 14 * sec},
        {"15m", 15 * min},
        {"16h", 16 * hour},
        {"3h30m", 3 * hour + 30 * min},
        {"10.5s4m", 4 * min + 10 * sec + 500 * ms},
        {"-2m3.4s", -(2 * min + 3 * sec + 400 * ms)},
        {"1h2m3s4ms5us6ns", 1 * hour + 2 * min + 3 * sec + 4 * ms + 5 * us + 6},
        {"39h9m14.425s", 39 * hour + 9 * min + 14 * sec + 425 * ms},
        {"52763797000ns", 52763797000},
        {"0.3333333333333333333h", 20 * min},
        {"9007199254740993ns", (int64_t(1) << 53) + 1},
        {"9223372036854775807ns", max_i},
        {"9223372036854775.807us", max_i},
        {"9223372036s854ms775us807ns", max_i},
        {"-9223372036854775808ns", min_i},
        {"-9223372036854775.808us", min_i},
        {"-9223372036s854ms775us808ns", min_i},
        {"-2562047h47m16.854775808s", min_i},
        {"0.100000000000000000000h", 6 * min},
        {"0.830103483285477580700h", 49 * min + 48 * sec + 372539827},
        // Consul's own examples and the exactness the old long double parser lacked.
        {"300ms", 300 * ms},
        {"1.5h", hour + 30 * min},
        {"2h45m", 2 * hour + 45 * min},
        {"100000ms", 100 * sec},
        {"1.000000001s", 1000000001},
        {"-1s", -sec},
    };
    for (const auto& c : cases) {
        auto got = parse_go_duration(c.in);
        ASSERT_TRUE(got.has_value()) << c.in;
        EXPECT_EQ(got->count(), c.want) << c.in;
    }
}

TEST(go_duration, rejects_what_go_rejects) {
    const char* cases[] = {
        "",
        "3",
        "-",
        "s",
        ".",
        "-.",
        ".s",
        "+.s",
        "1d",
        "\x85\x85",
        "\xff"
        "ff",
        "hello \xff"
        "ff world",
        "\xef\xbf\xbd",
        "\xef\xbf\xbd hello \xef\xbf\xbd world",
        // overflow
        "9223372036854775810ns",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "9223372036854776us",
        "3000000h",
        "9223372036854775.808us",
        "9223372036854ms775us808ns",
        // and a few more
        "ns",
        "1.5",
        "1 s",
        "1s ",
        " 1s",
        "--1s",
        "1sm",
    };
    for (const char* c : cases) EXPECT_FALSE(parse_go_duration(c).has_value()) << c;
}

TEST(go_duration, formats_as_go_duration_string) {
    struct {
        int64_t d;
        const char* want;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {1100, "1.1\xc2\xb5s"},
        {2200 * us, "2.2ms"},
        {3300 * ms, "3.3s"},
        {4 * min + 5 * sec, "4m5s"},
        {4 * min + 5001 * ms, "4m5.001s"},
        {5 * hour + 6 * min + 7001 * ms, "5h6m7.001s"},
        {8 * min + 1, "8m0.000000001s"},
        {max_i, "2562047h47m16.854775807s"},
        {min_i, "-2562047h47m16.854775808s"},
        // the shapes Consul responses carry
        {1500, "1.5\xc2\xb5s"},
        {300 * ms, "300ms"},
        {10 * sec, "10s"},
        {90 * sec, "1m30s"},
        {hour, "1h0m0s"},
        {60 * sec + 500 * ms, "1m0.5s"},
        {-sec, "-1s"},
        {-1500 * ms, "-1.5s"},
        {-1, "-1ns"},
        {999, "999ns"},
        {1000, "1\xc2\xb5s"},
        {ms, "1ms"},
        {72 * hour, "72h0m0s"},
    };
    for (const auto& c : cases) EXPECT_EQ(format_go_duration(ns(c.d)), c.want) << c.d;
}

TEST(go_duration, round_trips_extremes_and_a_sweep) {
    for (int64_t d : {max_i, min_i, int64_t(0), int64_t(1), int64_t(-1)}) {
        EXPECT_EQ(parse_go_duration(format_go_duration(ns(d)))->count(), d) << d;
    }
    // Deterministic sweep over magnitudes from ns to hours.
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t d = int64_t(x >> (1 + x % 63));
        if (i & 1) d = -d;
        auto back = parse_go_duration(format_go_duration(ns(d)));
        ASSERT_TRUE(back) << d;
        ASSERT_EQ(back->count(), d) << format_go_duration(ns(d));
    }
}
