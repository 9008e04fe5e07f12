// Pieces of the Consul HTTP API that need no running node.
#include "services/api/http_api.hh"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using pharos::api::parse_go_duration;

TEST(http_api, wait_durations_parse_as_go_does) {
    EXPECT_EQ(parse_go_duration("10s"), std::chrono::nanoseconds(10s));
    EXPECT_EQ(parse_go_duration("300ms"), std::chrono::nanoseconds(300ms));
    EXPECT_EQ(parse_go_duration("1.5h"), std::chrono::nanoseconds(90min));
    EXPECT_EQ(parse_go_duration("2h45m"), std::chrono::nanoseconds(165min));
    EXPECT_EQ(parse_go_duration("0"), std::chrono::nanoseconds(0));
    EXPECT_EQ(parse_go_duration("5us"), std::chrono::nanoseconds(5000));
    EXPECT_FALSE(parse_go_duration(""));
    EXPECT_FALSE(parse_go_duration("300"));  // a unit is required, as in Go
    EXPECT_FALSE(parse_go_duration("10x"));
    EXPECT_FALSE(parse_go_duration("s"));
    EXPECT_FALSE(parse_go_duration("."));
}
