// json::document/object/value: Consul's request decoding (case-insensitive,
// snake_case keys, null as absent, durations as strings or nanoseconds).
#include <gtest/gtest.h>

#include <string>

#include "protocols/json/reader.hh"

using namespace pharos;
using namespace std::chrono_literals;

namespace {
json::object parse_object(json::document& doc, std::string_view body) {
    auto err = doc.parse(body);
    EXPECT_FALSE(err) << *err;
    json::object o;
    EXPECT_FALSE(doc.root_object(o));
    return o;
}
}  // namespace

TEST(json_reader, reads_a_register_body_as_consul_does) {
    json::document doc;
    auto o = parse_object(doc, R"({"Name":"web","ID":"web-1","Tags":["a","b"],"Port":8080,
        "Meta":{"env":"prod"},"EnableTagOverride":true,"Weights":{"Passing":10,"Warning":1},
        "Check":{"HTTP":"http://127.0.0.1/","Interval":"10s","Timeout":1000000000,
                 "Header":{"X-A":["1","2"]}}})");
    std::string name, id;
    std::vector<std::string> tags;
    int port = 0;
    std::map<std::string, std::string> meta;
    bool eto = false;
    EXPECT_FALSE(o.get_string("Name", name));
    EXPECT_FALSE(o.get_string("ID", id));
    EXPECT_FALSE(o.get_strings("Tags", tags));
    EXPECT_FALSE(o.get_int("Port", port));
    EXPECT_FALSE(o.get_string_map("Meta", meta));
    EXPECT_FALSE(o.get_bool("EnableTagOverride", eto));
    EXPECT_EQ(name, "web");
    EXPECT_EQ(id, "web-1");
    EXPECT_EQ(tags, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(port, 8080);
    EXPECT_EQ(meta, (std::map<std::string, std::string>{{"env", "prod"}}));
    EXPECT_TRUE(eto);

    json::object check;
    ASSERT_FALSE(o.get_object("Check", check));
    std::chrono::nanoseconds interval{}, timeout{};
    std::map<std::string, std::vector<std::string>> header;
    EXPECT_FALSE(check.get_duration("Interval", interval));
    EXPECT_FALSE(check.get_duration("Timeout", timeout));
    EXPECT_FALSE(check.get_header("Header", header));
    EXPECT_EQ(interval, 10s);
    EXPECT_EQ(timeout, 1s);
    EXPECT_EQ(header["X-A"], (std::vector<std::string>{"1", "2"}));
}

TEST(json_reader, keys_match_case_insensitively_and_as_snake_case) {
    EXPECT_TRUE(json::key_matches("ServiceID", "ServiceID"));
    EXPECT_TRUE(json::key_matches("serviceid", "ServiceID"));
    EXPECT_TRUE(json::key_matches("service_id", "ServiceID"));
    EXPECT_TRUE(json::key_matches("Service_ID", "ServiceID"));
    EXPECT_TRUE(json::key_matches("deregister_critical_service_after", "DeregisterCriticalServiceAfter"));
    EXPECT_FALSE(json::key_matches("service", "ServiceID"));
    EXPECT_FALSE(json::key_matches("ServiceIDs", "ServiceID"));
    EXPECT_FALSE(json::key_matches("", "ID"));

    // What python-consul sends.
    json::document doc;
    auto o =
        parse_object(doc, R"({"name":"db","id":"db1","check":{"http":"http://x","interval":"5s"},"lockdelay":"15s"})");
    std::string name, id, http;
    std::chrono::nanoseconds lock_delay{}, interval{};
    json::object check;
    EXPECT_FALSE(o.get_string("Name", name));
    EXPECT_FALSE(o.get_string("ID", id));
    EXPECT_FALSE(o.get_duration("LockDelay", lock_delay));
    ASSERT_FALSE(o.get_object("Check", check));
    EXPECT_FALSE(check.get_string("HTTP", http));
    EXPECT_FALSE(check.get_duration("Interval", interval));
    EXPECT_EQ(name, "db");
    EXPECT_EQ(id, "db1");
    EXPECT_EQ(http, "http://x");
    EXPECT_EQ(lock_delay, 15s);
    EXPECT_EQ(interval, 5s);
}

TEST(json_reader, exact_case_wins_else_the_last_match) {
    json::document doc;
    auto o = parse_object(doc, R"({"name":"a","Name":"b","NAME":"c"})");
    std::string s;
    EXPECT_FALSE(o.get_string("Name", s));
    EXPECT_EQ(s, "b");
    auto p = parse_object(doc, R"({"service_id":"a","serviceid":"b"})");
    EXPECT_FALSE(p.get_string("ServiceID", s));
    EXPECT_EQ(s, "b");
    auto q = parse_object(doc, R"({"Name":"a","Name":"b"})");
    EXPECT_FALSE(q.get_string("Name", s));
    EXPECT_EQ(s, "b");
}

TEST(json_reader, absent_and_null_leave_the_output_alone) {
    json::document doc;
    auto o = parse_object(doc, R"({"Name":null,"Tags":null,"Check":null,"Port":null})");
    std::string name = "keep";
    std::vector<std::string> tags{"keep"};
    int port = 7;
    std::chrono::nanoseconds d = 3s;
    EXPECT_FALSE(o.get_string("Name", name));
    EXPECT_FALSE(o.get_strings("Tags", tags));
    EXPECT_FALSE(o.get_int("Port", port));
    EXPECT_FALSE(o.get_duration("TTL", d));
    EXPECT_EQ(name, "keep");
    EXPECT_EQ(tags, std::vector<std::string>{"keep"});
    EXPECT_EQ(port, 7);
    EXPECT_EQ(d, 3s);
    EXPECT_FALSE(o.has("Name"));
    EXPECT_FALSE(o.has("Missing"));
    json::object check;
    EXPECT_FALSE(o.get_object("Check", check));
    EXPECT_TRUE(check.empty());
    EXPECT_FALSE(check.has("Anything"));
    EXPECT_EQ(check.begin(), check.end());

    // A null body decodes to nothing, as in Go.
    json::object root;
    ASSERT_FALSE(doc.parse("null"));
    EXPECT_FALSE(doc.root_object(root));
    EXPECT_TRUE(root.empty());
}

TEST(json_reader, wrong_types_name_the_field_and_the_go_type) {
    json::document doc;
    auto o = parse_object(doc, R"({"Name":1,"Port":"80","Tags":["a",2],"Meta":{"k":true},"Ok":"yes",
        "Check":{"Interval":true,"TTL":"ten"}})");
    std::string s;
    int port = 0;
    std::vector<std::string> tags;
    std::map<std::string, std::string> meta;
    bool ok = false;
    EXPECT_EQ(o.get_string("Name", s), "json: cannot unmarshal number into Go struct field .Name of type string");
    EXPECT_EQ(o.get_int("Port", port), "json: cannot unmarshal string into Go struct field .Port of type int");
    EXPECT_EQ(o.get_strings("Tags", tags), "json: cannot unmarshal number into Go struct field .Tags of type string");
    EXPECT_TRUE(tags.empty());  // untouched on error
    EXPECT_EQ(o.get_string_map("Meta", meta), "json: cannot unmarshal bool into Go struct field .Meta of type string");
    EXPECT_EQ(o.get_bool("Ok", ok), "json: cannot unmarshal string into Go struct field .Ok of type bool");
    json::object check;
    ASSERT_FALSE(o.get_object("Check", check));
    std::chrono::nanoseconds d{};
    EXPECT_EQ(check.get_duration("Interval", d),
              "json: cannot unmarshal bool into Go struct field .Check.Interval of type time.Duration");
    EXPECT_EQ(check.get_duration("TTL", d), R"(time: invalid duration "ten")");
    EXPECT_EQ(o.get_object("Name", check), "json: cannot unmarshal number into Go struct field .Name of type struct");

    // A type name for the root prefixes the paths, as Go's struct name does.
    json::object named;
    ASSERT_FALSE(doc.root_object(named, "ServiceDefinition"));
    EXPECT_EQ(named.get_string("Name", s),
              "json: cannot unmarshal number into Go struct field ServiceDefinition.Name of type string");

    ASSERT_FALSE(doc.parse(R"([1,2])"));
    json::object root;
    EXPECT_EQ(doc.root_object(root), "json: cannot unmarshal array into Go value of type struct");
    EXPECT_EQ(doc.root_object(root, "structs.CheckDefinition"),
              "json: cannot unmarshal array into Go value of type structs.CheckDefinition");
}

TEST(json_reader, integers_accept_integral_numbers_in_range_only) {
    json::document doc;
    auto o = parse_object(doc, R"({"a":1.0,"b":1e3,"c":1.5,"d":-1,"e":18446744073709551615,
        "f":9223372036854775807,"g":-9223372036854775808,"h":3000000000,"i":9.3e18,"j":"1"})");
    int64_t i = 0;
    uint64_t u = 0;
    int n = 0;
    double x = 0;
    EXPECT_FALSE(o.get_int("a", i));
    EXPECT_EQ(i, 1);
    EXPECT_FALSE(o.get_uint("b", u));
    EXPECT_EQ(u, 1000u);
    EXPECT_EQ(o.get_int("c", i), "json: cannot unmarshal number 1.5 into Go struct field .c of type int64");
    EXPECT_EQ(i, 1);
    EXPECT_EQ(o.get_uint("d", u), "json: cannot unmarshal number -1 into Go struct field .d of type uint64");
    EXPECT_FALSE(o.get_uint("e", u));
    EXPECT_EQ(u, 18446744073709551615u);
    EXPECT_EQ(o.get_int("e", i),
              "json: cannot unmarshal number 18446744073709551615 into Go struct field .e of type int64");
    EXPECT_FALSE(o.get_int("f", i));
    EXPECT_EQ(i, INT64_MAX);
    EXPECT_FALSE(o.get_int("g", i));
    EXPECT_EQ(i, INT64_MIN);
    EXPECT_TRUE(o.get_int("h", n));  // beyond int32
    EXPECT_FALSE(o.get_int("h", i));
    EXPECT_TRUE(o.get_int("i", i));  // beyond int64 as a double
    EXPECT_FALSE(o.get_uint("i", u));
    EXPECT_EQ(u, 9300000000000000000u);
    EXPECT_TRUE(o.get_int("j", i));
    EXPECT_FALSE(o.get_double("c", x));
    EXPECT_EQ(x, 1.5);
    EXPECT_FALSE(o.get_double("d", x));
    EXPECT_EQ(x, -1.0);
}

TEST(json_reader, durations_are_go_strings_or_nanoseconds) {
    json::document doc;
    auto o = parse_object(doc, R"({"a":"1m30s","b":1500000000,"c":2.9,"d":"0","e":-5,"f":1e30,"g":"1.000000001s"})");
    std::chrono::nanoseconds d{};
    EXPECT_FALSE(o.get_duration("a", d));
    EXPECT_EQ(d, 90s);
    EXPECT_FALSE(o.get_duration("b", d));
    EXPECT_EQ(d, 1500ms);
    EXPECT_FALSE(o.get_duration("c", d));
    EXPECT_EQ(d, 2ns);
    EXPECT_FALSE(o.get_duration("d", d));
    EXPECT_EQ(d, 0ns);
    EXPECT_FALSE(o.get_duration("e", d));
    EXPECT_EQ(d, -5ns);
    EXPECT_TRUE(o.get_duration("f", d));
    EXPECT_FALSE(o.get_duration("g", d));
    EXPECT_EQ(d, 1000000001ns);
}

TEST(json_reader, members_iterate_in_body_order_for_unknown_key_warnings) {
    json::document doc;
    auto o = parse_object(doc, R"({"Name":"x","Bogus":1,"service_id":"y","Nested":{"Deep":[1]}})");
    std::vector<std::string> keys, unknown;
    for (const json::member& m : o) {
        keys.emplace_back(m.key);
        bool known = false;
        for (std::string_view k : {"Name", "ServiceID", "Nested"}) known = known || json::key_matches(m.key, k);
        if (!known) unknown.emplace_back(m.key);
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"Name", "Bogus", "service_id", "Nested"}));
    EXPECT_EQ(unknown, std::vector<std::string>{"Bogus"});
    EXPECT_EQ(o.size(), 4u);

    // Raw access to nested arrays and simdjson elements.
    json::object nested;
    ASSERT_FALSE(o.get_object("nested", nested));
    json::array deep;
    ASSERT_FALSE(nested.get_array("deep", deep));
    ASSERT_EQ(deep.size(), 1u);
    for (json::value v : deep) {
        int64_t n = 0;
        EXPECT_FALSE(v.get(n));
        EXPECT_EQ(n, 1);
        EXPECT_EQ(v.path(), ".nested.deep");  // paths use the names the caller asked for
        EXPECT_EQ(v.kind(), "number");
    }
    auto raw = o.find("Bogus");
    ASSERT_TRUE(raw);
    EXPECT_EQ(int64_t(raw->raw()), 1);
}

TEST(json_reader, arrays_of_objects_decode_element_by_element) {
    json::document doc;
    auto o = parse_object(doc, R"({"Checks":[{"Name":"a","TTL":"10s"},{"name":"b","ttl":"1m"}, 5]})");
    json::array checks;
    ASSERT_FALSE(o.get_array("Checks", checks));
    std::vector<std::string> names;
    std::string last_error;
    for (json::value v : checks) {
        json::object c;
        if (auto e = v.get(c)) {
            last_error = *e;
            continue;
        }
        std::string name;
        EXPECT_FALSE(c.get_string("Name", name));
        names.push_back(name);
    }
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(last_error, "json: cannot unmarshal number into Go struct field .Checks of type struct");
    json::array not_array;
    EXPECT_EQ(o.get_array("Missing", not_array), std::nullopt);
    EXPECT_TRUE(not_array.empty());
}

TEST(json_reader, header_maps_take_lists_and_null_values) {
    json::document doc;
    auto o = parse_object(doc, R"({"Header":{"A":["1"],"B":[],"C":null,"D":["x",null]},"Bad":{"A":"1"}})");
    std::map<std::string, std::vector<std::string>> h;
    ASSERT_FALSE(o.get_header("Header", h));
    EXPECT_EQ(h.size(), 4u);
    EXPECT_EQ(h["A"], std::vector<std::string>{"1"});
    EXPECT_TRUE(h["B"].empty());
    EXPECT_TRUE(h["C"].empty());
    EXPECT_EQ(h["D"], (std::vector<std::string>{"x", ""}));
    EXPECT_EQ(o.get_header("Bad", h), "json: cannot unmarshal string into Go struct field .Bad of type []string");
}

TEST(json_reader, syntax_errors_read_like_go) {
    json::document doc;
    EXPECT_EQ(doc.parse(""), "EOF");
    EXPECT_EQ(doc.parse("  \n"), "EOF");
    EXPECT_EQ(doc.parse(R"({"a":"b)"), "unexpected EOF");
    EXPECT_TRUE(doc.parse(R"({"a":})"));
    EXPECT_TRUE(doc.parse(R"({"a":tru})"));
    EXPECT_TRUE(doc.parse(R"({"a":1,})"));
    EXPECT_TRUE(doc.parse(R"({"a" 1})"));
    EXPECT_TRUE(doc.parse("{\"a\":\"\x01\"}"));
    // A failed parse leaves nothing to read; a good one after it works.
    json::object o;
    EXPECT_TRUE(doc.root_object(o));
    ASSERT_FALSE(doc.parse(R"({"a":"b"})"));
    ASSERT_FALSE(doc.root_object(o));
    std::string s;
    EXPECT_FALSE(o.get_string("A", s));
    EXPECT_EQ(s, "b");
}

TEST(json_reader, documents_move_without_invalidating_values) {
    json::document a;
    ASSERT_FALSE(a.parse(R"({"Name":"moved"})"));
    json::object o;
    ASSERT_FALSE(a.root_object(o));
    json::document b = std::move(a);
    std::string s;
    EXPECT_FALSE(o.get_string("Name", s));
    EXPECT_EQ(s, "moved");
    // The body's buffer is not needed after parse.
    std::string body = R"({"Name":"copied"})";
    json::document c;
    ASSERT_FALSE(c.parse(body));
    body.assign(body.size(), 'x');
    json::object co;
    ASSERT_FALSE(c.root_object(co));
    EXPECT_FALSE(co.get_string("Name", s));
    EXPECT_EQ(s, "copied");
}
