// tools/common/flags: Go's flag conventions for the tools' command lines.
#include "tools/common/flags.hh"

#include <gtest/gtest.h>

#include <vector>

using namespace pharos;
using namespace std::chrono_literals;

namespace {

struct argv_of {
    std::vector<std::string> s;
    std::vector<char*> p;
    explicit argv_of(std::vector<std::string> a) : s(std::move(a)) {
        s.insert(s.begin(), "prog");
        for (auto& x : s) p.push_back(x.data());
    }
    int argc() { return int(p.size()); }
    char** argv() { return p.data(); }
};

struct opts {
    std::string addr = "127.0.0.1:8500";
    unsigned n = 10;
    int port = 7946;
    double loss = 0.1;
    bool leave = false;
    engine::clock::duration period = 1s;
    engine::backend_kind backend = engine::backend_kind::automatic;
};

void declare(tools::flag_set& f, opts& o) {
    f.string("addr", o.addr, "address");
    f.number("n", o.n, "count", 1u, 100u);
    f.number("port", o.port, "port", 0, 65535);
    f.number("loss", o.loss, "loss", 0.0, 1.0);
    f.boolean("leave", o.leave, "leave");
    f.duration("period", o.period, "period");
    f.backend("backend", o.backend);
}

void parse(opts& o, std::vector<std::string> args) {
    tools::flag_set f("prog");
    declare(f, o);
    argv_of a(std::move(args));
    f.parse(a.argc(), a.argv());
}

}  // namespace

TEST(ToolFlags, ValueForms) {
    opts o;
    parse(o, {"-addr", "10.0.0.1:1", "-n=7", "--port", "8000", "-loss=0.25", "-leave", "-period", "1m30s",
              "-backend=epoll"});
    EXPECT_EQ(o.addr, "10.0.0.1:1");
    EXPECT_EQ(o.n, 7u);
    EXPECT_EQ(o.port, 8000);
    EXPECT_DOUBLE_EQ(o.loss, 0.25);
    EXPECT_TRUE(o.leave);
    EXPECT_EQ(o.period, 90s);
    EXPECT_EQ(o.backend, engine::backend_kind::epoll);
}

TEST(ToolFlags, DefaultsStayAndBoolTakesExplicitFalse) {
    opts o;
    o.leave = true;
    parse(o, {"-leave=false"});
    EXPECT_FALSE(o.leave);
    EXPECT_EQ(o.n, 10u);
    EXPECT_EQ(o.addr, "127.0.0.1:8500");
}

TEST(ToolFlagsDeathTest, BadInputExits2) {
    opts o;
    EXPECT_EXIT(parse(o, {"-nope", "1"}), testing::ExitedWithCode(2), "flag provided but not defined: -nope");
    EXPECT_EXIT(parse(o, {"-n", "0"}), testing::ExitedWithCode(2), "invalid value \"0\" for flag -n");
    EXPECT_EXIT(parse(o, {"-n", "7x"}), testing::ExitedWithCode(2), "invalid value");
    EXPECT_EXIT(parse(o, {"-port", "-1"}), testing::ExitedWithCode(2), "invalid value");
    EXPECT_EXIT(parse(o, {"-n", "99999999999999999999"}), testing::ExitedWithCode(2), "invalid value");
    EXPECT_EXIT(parse(o, {"-period", "-1s"}), testing::ExitedWithCode(2), "invalid value");
    EXPECT_EXIT(parse(o, {"-backend", "kqueue"}), testing::ExitedWithCode(2), "invalid value");
    EXPECT_EXIT(parse(o, {"-addr"}), testing::ExitedWithCode(2), "flag needs an argument: -addr");
    EXPECT_EXIT(parse(o, {"stray"}), testing::ExitedWithCode(2), "unexpected argument: stray");
    EXPECT_EXIT(parse(o, {"-leave=maybe"}), testing::ExitedWithCode(2), "invalid value");
}

TEST(ToolFlagsDeathTest, HelpExits0) {
    opts o;
    EXPECT_EXIT(parse(o, {"-h"}), testing::ExitedWithCode(0), "");
}

TEST(ToolFlags, IpPort) {
    auto a = tools::parse_ip_port("http://localhost:8500");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->to_string(), "127.0.0.1:8500");
    auto b = tools::parse_ip_port("[::1]:53");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->port(), 53);
    EXPECT_FALSE(tools::parse_ip_port("127.0.0.1"));
    EXPECT_FALSE(tools::parse_ip_port("127.0.0.1:70000"));
    EXPECT_FALSE(tools::parse_ip_port("127.0.0.1:x"));
    EXPECT_FALSE(tools::parse_ip_port("example.com:80"));
}
