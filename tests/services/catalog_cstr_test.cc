// catalog::cstr (one-pointer strings of check definitions) and the shared,
// out-of-line check definition: empty costs nothing, copies are deep and equal,
// an empty definition is held as null, re-registering an equal definition keeps
// the row's object, and the JSON rendering is the same either way.
#include <gtest/gtest.h>

#include "services/catalog/cstr.hh"
#include "services/catalog/json.hh"
#include "services/catalog/store.hh"

using namespace pharos;
using catalog::cstr;

TEST(cstr, empty_is_one_null_pointer) {
    static_assert(sizeof(cstr) == sizeof(void*));
    cstr e;
    EXPECT_TRUE(e.empty());
    EXPECT_EQ(e.size(), 0u);
    EXPECT_EQ(e.view(), "");
    cstr z(std::string_view(""));
    EXPECT_TRUE(z.empty());
    EXPECT_EQ(e, z);
}

TEST(cstr, values_copy_move_and_compare) {
    cstr a(std::string_view("http://127.0.0.1:8080/health"));
    EXPECT_EQ(a.size(), 28u);
    EXPECT_EQ(a, std::string_view("http://127.0.0.1:8080/health"));
    cstr b = a;
    EXPECT_EQ(a, b);
    EXPECT_NE(a.data(), b.data());  // deep copy
    cstr c = std::move(b);
    EXPECT_EQ(c, a);
    EXPECT_TRUE(b.empty());  // NOLINT: moved-from is empty
    c = std::string_view("x\0y", 3);
    EXPECT_EQ(c.size(), 3u);
    EXPECT_EQ(c.str(), std::string("x\0y", 3));
    c = a;
    EXPECT_EQ(c, a);
    cstr& same = c;
    c = same;
    EXPECT_EQ(c, a);
    c = std::string_view();
    EXPECT_TRUE(c.empty());
}

namespace {
catalog::register_request with_check(const catalog::check_definition& d) {
    catalog::register_request r;
    r.n.name = "n1";
    r.n.address = "10.0.0.1";
    catalog::check c;
    c.check_id = "c1";
    c.name = "c1";
    c.type = "http";
    c.set_definition(d);
    r.checks.push_back(c);
    return r;
}
std::string render(const catalog::check& c) {
    json::writer w;
    catalog::write_check(w, c);
    return w.take();
}
}  // namespace

TEST(check_definition, empty_is_null_and_renders_as_before) {
    catalog::check c;
    c.set_definition(catalog::check_definition());
    EXPECT_FALSE(c.definition);
    EXPECT_EQ(c.def(), catalog::empty_definition());
    std::string out = render(c);
    EXPECT_NE(out.find(R"("Definition":{})"), std::string::npos) << out;
}

TEST(check_definition, equal_reregistration_keeps_the_row_and_its_definition) {
    catalog::check_definition d;
    d.http = "http://127.0.0.1:8080/health";
    d.interval_ns = 10'000'000'000;
    catalog::store s;
    ASSERT_FALSE(s.register_(with_check(d), 2));
    auto first = s.check_row("n1", "c1");
    ASSERT_TRUE(first && first->definition);
    ASSERT_FALSE(s.register_(with_check(d), 3));  // a fresh but equal definition object
    EXPECT_EQ(s.check_row("n1", "c1"), first);    // nothing changed: same row, no index bump
    EXPECT_EQ(s.checks_index(), 2u);
    // A status change copies the row but shares its definition.
    ASSERT_FALSE(s.update_check("n1", "c1", "passing", "ok", 4));
    auto second = s.check_row("n1", "c1");
    EXPECT_NE(second, first);
    EXPECT_EQ(second->definition, first->definition);
    EXPECT_NE(render(*second).find(R"("HTTP":"http://127.0.0.1:8080/health")"), std::string::npos);
    // Another definition replaces it.
    d.method = "POST";
    ASSERT_FALSE(s.register_(with_check(d), 5));
    EXPECT_EQ(s.check_row("n1", "c1")->def().method, std::string_view("POST"));
    EXPECT_EQ(s.check_row("n1", "c1")->modify_index, 5u);
}

TEST(check_definition, agent_rendering_writes_zero_indexes) {
    catalog::check c;
    c.check_id = "c1";
    c.create_index = 7;
    c.modify_index = 9;
    std::string with = render(c);
    json::writer w;
    catalog::write_check(w, c, false);
    std::string without = w.take();
    EXPECT_NE(with.find(R"("CreateIndex":7,"ModifyIndex":9)"), std::string::npos);
    EXPECT_NE(without.find(R"("CreateIndex":0,"ModifyIndex":0)"), std::string::npos);
}
