// api::filter: Consul's ?filter= (go-bexpr) parsing and evaluation against a fake
// row, error messages, schema validation, and random input that must not crash.
#include "services/api/filter.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <string>
#include <vector>

// Counts allocations on this thread so a test can show evaluation allocates nothing.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // GCC pairs gtest's inlined new with our delete
namespace {
thread_local std::size_t g_allocs = 0;
}
void* operator new(std::size_t n) {
    ++g_allocs;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using pharos::api::filter;
using pharos::api::fvalue;

struct check {
    std::string status;
    std::string name;
};

struct row {
    std::string name = "web";
    std::string address = "10.0.0.1";
    std::string empty;
    double port = 8080;
    bool enabled = true;
    std::vector<std::string> tags{"primary", "v1"};
    std::vector<std::string> no_tags;
    std::map<std::string, std::string, std::less<>> meta{{"env", "prod"}, {"my-key", "x y"}, {"0", "zero"}};
    std::vector<check> checks{{"passing", "serf"}, {"critical", "http"}};
};

fvalue check_status(const void* ctx, std::size_t i) {
    return fvalue::of_string((*static_cast<const std::vector<check>*>(ctx))[i].status);
}
fvalue check_name(const void* ctx, std::size_t i) {
    return fvalue::of_string((*static_cast<const std::vector<check>*>(ctx))[i].name);
}

fvalue resolve(const row& r, filter::path p) {
    if (p.size() == 1) {
        if (p[0] == "Name") return fvalue::of_string(r.name);
        if (p[0] == "Address") return fvalue::of_string(r.address);
        if (p[0] == "Empty") return fvalue::of_string(r.empty);
        if (p[0] == "Port") return fvalue::of_number(r.port);
        if (p[0] == "Enabled") return fvalue::of_bool(r.enabled);
        if (p[0] == "Tags") return fvalue::of_list(r.tags);
        if (p[0] == "NoTags") return fvalue::of_list(r.no_tags);
        if (p[0] == "Meta") return fvalue::of_map(r.meta);
    }
    if (p.size() == 2 && p[0] == "Meta") {
        auto it = r.meta.find(p[1]);
        return it == r.meta.end() ? fvalue{} : fvalue::of_string(it->second);
    }
    if (p.size() == 2 && p[0] == "Checks" && p[1] == "Status")
        return fvalue::of_any(&r.checks, r.checks.size(), check_status);
    if (p.size() == 2 && p[0] == "Checks" && p[1] == "Name")
        return fvalue::of_any(&r.checks, r.checks.size(), check_name);
    return {};
}

std::optional<filter::field_type> schema(filter::path p) {
    row r;
    fvalue v = resolve(r, p);
    if (v.kind == fvalue::any_of) return filter::field_type{fvalue::string, true};
    if (v.kind == fvalue::missing && p.size() == 2 && p[0] == "Meta") return filter::field_type{fvalue::string};
    if (v.kind == fvalue::missing) return std::nullopt;
    return filter::field_type{v.kind};
}

filter must_parse(std::string_view expr) {
    auto r = filter::parse(expr);
    if (auto* e = std::get_if<std::string>(&r)) {
        ADD_FAILURE() << "parse failed for `" << expr << "`: " << *e;
        return std::get<filter>(filter::parse("Name == web"));
    }
    return std::get<filter>(std::move(r));
}

bool eval(std::string_view expr, const row& r = row{}) {
    filter f = must_parse(expr);
    return f.matches([&](filter::path p) { return resolve(r, p); });
}

std::string parse_error(std::string_view expr, const filter::schema& s = nullptr) {
    auto r = filter::parse(expr, s);
    if (auto* e = std::get_if<std::string>(&r)) return *e;
    return {};
}

struct eval_case {
    const char* expr;
    bool want;
};

void run_table(const std::vector<eval_case>& cases) {
    for (const auto& c : cases) EXPECT_EQ(eval(c.expr), c.want) << c.expr;
}

TEST(filter, string_operators_compare_exactly_or_by_substring) {
    run_table({
        {"Name == web", true},
        {"Name == \"web\"", true},
        {"Name == `web`", true},
        {"Name==web", true},
        {"Name == Web", false},
        {"Name == we", false},
        {"Name != web", false},
        {"Name != api", true},
        {"Name contains eb", true},
        {"Name contains \"\"", true},
        {"Name contains x", false},
        {"Name not contains x", true},
        {"Name not contains w", false},
        {"eb in Name", true},
        {"\"b\" not in Name", false},
        {"zz not in Name", true},
        {"Empty is empty", true},
        {"Name is empty", false},
        {"Name is not empty", true},
        {"Empty is not empty", false},
        {"Address == \"10.0.0.1\"", true},
    });
}

TEST(filter, numbers_and_booleans_compare_by_value) {
    run_table({
        {"Port == 8080", true},      {"Port == 8080.0", true},
        {"Port == \"8080\"", true},  {"Port == \"0x1F90\"", true},
        {"Port != 8080", false},     {"Port == 80", false},
        {"Port != 80", true},        {"Port == -1", false},
        {"Port == abc", false},  // does not coerce: neither == nor != holds
        {"Port != abc", false},      {"Enabled == true", true},
        {"Enabled == True", true},   {"Enabled == 1", true},
        {"Enabled == \"t\"", true},  {"Enabled == false", false},
        {"Enabled != false", true},  {"Enabled == yes", false},
        {"Port contains 80", false},  // not an operator for numbers
        {"Port is empty", false},
    });
}

TEST(filter, lists_test_membership_and_maps_test_keys) {
    run_table({
        {"primary in Tags", true},
        {"prim in Tags", false},  // membership, not substring
        {"Tags contains v1", true},
        {"Tags contains \"v2\"", false},
        {"Tags not contains v2", true},
        {"v1 not in Tags", false},
        {"Tags is empty", false},
        {"Tags is not empty", true},
        {"NoTags is empty", true},
        {"x in NoTags", false},
        {"Tags == primary", false},
        {"env in Meta", true},
        {"Meta contains \"my-key\"", true},
        {"prod in Meta", false},  // keys, not values
        {"Meta not contains nope", true},
        {"Meta is empty", false},
        {"Meta is not empty", true},
    });
}

TEST(filter, map_index_in_dotted_and_bracket_form_resolves_the_value) {
    run_table({
        {"Meta.env == prod", true},
        {"Meta[\"env\"] == prod", true},
        {"Meta[ `env` ] == prod", true},
        {"Meta[\"my-key\"] == \"x y\"", true},
        {"Meta[\"my-key\"] contains y", true},
        {"Meta.0 == zero", true},
        {"Meta.env != prod", false},
        {"Meta.env is not empty", true},
    });
}

TEST(filter, a_missing_selector_matches_only_negative_operators) {
    run_table({
        {"Meta.nope == x", false},
        {"Meta.nope != x", true},
        {"x in Meta.nope", false},
        {"x not in Meta.nope", true},
        {"Meta.nope contains x", false},
        {"Meta.nope is empty", true},
        {"Meta.nope is not empty", false},
        {"Meta.nope matches x", false},
        {"Meta.nope not matches x", true},
        {"Unknown.Field == 1", false},
        {"not Unknown.Field == 1", true},
    });
}

TEST(filter, a_slice_of_structs_matches_if_any_element_does) {
    run_table({
        {"Checks.Status == passing", true},
        {"Checks.Status == critical", true},
        {"Checks.Status == warning", false},
        {"Checks.Status != passing", true},  // the critical one
        {"Checks.Name contains tt", true},
        {"Checks.Name matches \"^s.*f$\"", true},
        {"not Checks.Status == warning", true},
    });
    row r;
    r.checks.clear();
    EXPECT_FALSE(eval("Checks.Status != passing", r));
    EXPECT_FALSE(eval("Checks.Status is empty", r));
}

TEST(filter, regex_matches_search_anywhere_and_honour_case_flag) {
    run_table({
        {"Name matches \"^w.b$\"", true},
        {"Name matches eb", true},
        {"Name matches `^W`", false},
        {"Name matches \"(?i)^W\"", true},
        {"Name not matches \"^api\"", true},
        {"Name not matches \"web\"", false},
        {"Address matches `^10\\.0\\.`", true},
        {"Port matches 80", false},
        {"Tags matches v1", false},
        {"Name matches \"a|w\"", true},
        {"Name matches \"^(a|e)\"", false},
    });
}

TEST(filter, regex_on_a_long_value_neither_overflows_the_stack_nor_goes_quadratic) {
    row r;
    r.name.assign(96 * 1024, 'a');  // the recursive executor overflowed at 64 KiB
    EXPECT_FALSE(eval("Name matches \".*b\"", r));
    EXPECT_FALSE(eval("Name matches \"(a|b)*c\"", r));
    EXPECT_TRUE(eval("Name matches \"a+$\"", r));
    EXPECT_TRUE(eval("Name matches \"^a{50}\"", r));
    EXPECT_FALSE(eval("Name matches \"^b\"", r));
    EXPECT_TRUE(eval("Name not matches \"(a*)*b\"", r));
}

TEST(filter, not_binds_tighter_than_and_which_binds_tighter_than_or) {
    run_table({
        // T or F and F: and first → T
        {"Name == web or Name == x and Port == 1", true},
        // (T or F) and F → F
        {"(Name == web or Name == x) and Port == 1", false},
        // F and F or T → T
        {"Name == x and Port == 1 or Port == 8080", true},
        {"Name == x and (Port == 1 or Port == 8080)", false},
        // not applies to the first match only
        {"not Name == web or Port == 8080", true},
        {"not Name == web and Port == 8080", false},
        {"not (Name == web and Port == 1)", true},
        {"not not Name == web", true},
        {"not not not Name == web", false},
        {"((((Name == web))))", true},
        {" ( Name == web ) ", true},
        {"Name == web and Port == 8080 and Enabled == true and v1 in Tags", true},
        {"Name == x or Port == 1 or Enabled == false or v9 in Tags", false},
        {"Name == x or Port == 1 or Enabled == false or v1 in Tags", true},
        {"not(Name == x)", true},
        {"Name == web\nand\tPort == 8080", true},
    });
}

TEST(filter, quoted_values_decode_go_escapes) {
    row r;
    r.name = "a\"b\\c\n\t\x01\xc3\xa9\xf0\x9f\x98\x80 \x7f";
    EXPECT_TRUE(eval(R"(Name == "a\"b\\c\n\t\x01\u00e9\U0001F600\040\177")", r));
    EXPECT_TRUE(eval(R"(Name contains "\u00E9")", r));
    r.name = R"(raw\n"x)";
    EXPECT_TRUE(eval("Name == `raw\\n\"x`", r));
    r.name = "and";
    EXPECT_TRUE(eval("Name == and", r));  // a keyword in value position is a bare word
    r.name = "not";
    EXPECT_TRUE(eval("Name == not and Port == 8080", r));
    r.name = "a.b.c";
    EXPECT_TRUE(eval("Name == a.b.c", r));  // a bare selector value is its dotted text
    r.name = "-3.25";
    EXPECT_TRUE(eval("Name == -3.25", r));
    r.port = -3.25;
    EXPECT_TRUE(eval("Port == -3.25", r));
}

TEST(filter, syntax_errors_say_where_parsing_failed) {
    struct err_case {
        const char* expr;
        const char* where;
        const char* what;
    };
    std::vector<err_case> cases = {
        {"", "1:1 (0)", "expected a selector"},
        {"   ", "1:4 (3)", "expected a selector"},
        {"Name", "1:5 (4)", "expected an operator"},
        {"Name ==", "1:8 (7)", "expected a value after \"==\""},
        {"Name == web and", "1:16 (15)", "expected a selector"},
        {"Name == web or or", "1:18 (17)", "expected an operator"},  // the second "or" is a selector
        {"Name == web web", "1:13 (12)", "expected \"and\", \"or\""},
        {"(Name == web", "1:1 (0)", "Unmatched parentheses"},
        {"Name == web)", "1:12 (11)", "Unmatched parentheses"},
        {"()", "1:2 (1)", "expected a selector"},
        {"Name = web", "1:6 (5)", "unexpected character \"=\""},
        {"Name == \"web", "1:9 (8)", "Unterminated string literal"},
        {"Name == `web", "1:9 (8)", "Unterminated string literal"},
        {"Name == \"\\q\"", "1:10 (9)", "invalid escape"},
        {"Name == \"\\uD800\"", "1:10 (9)", "invalid escape"},
        {"Port == 01", "1:9 (8)", "Invalid number literal"},
        {"Port == 1x", "1:9 (8)", "Invalid number literal"},
        {"Port == -", "1:9 (8)", "Invalid number literal"},
        {"Meta[env] == x", "1:5 (4)", "Invalid index"},
        {"Meta[\"env\" == x", "1:5 (4)", "Unclosed index expression"},
        {"\"web\" == Name", "1:1 (0)", "Invalid selector"},
        {"web in \"Name\"", "1:8 (7)", "Invalid selector"},
        {"Name is full", "1:9 (8)", "expected \"empty\""},
        {"Name not == x", "1:10 (9)", "expected an operator"},
        {"Name matches \"(\"", "", "Failed to compile regular expression"},
        {"Name matches \"a{1001}\"", "", "invalid repeat count"},
        {"Name matches \"(a)\\\\1\"", "", "Failed to compile regular expression"},  // back-reference
        {"Name matches \"((a{1000}){1000}){1000}\"", "", "too complex"},
        {"Tags.x\xc3\xa9 == 1", "1:7 (6)", "unexpected character"},
        {"\xc3\xa9\xc3\xa9 Name", "1:1 (0)", "unexpected character"},
        {"x ==\n  @", "2:3 (7)", "unexpected character \"@\""},
    };
    for (const auto& c : cases) {
        std::string e = parse_error(c.expr);
        EXPECT_TRUE(e.starts_with("Failed to create boolean expression evaluator: ")) << c.expr << " -> " << e;
        EXPECT_NE(e.find(c.where), std::string::npos) << c.expr << " -> " << e;
        EXPECT_NE(e.find(c.what), std::string::npos) << c.expr << " -> " << e;
    }
}

TEST(filter, a_schema_refuses_unknown_selectors_bad_operators_and_uncoercible_values) {
    EXPECT_EQ(parse_error("Name == web and Checks.Status == passing and env in Meta and Meta.env == x", schema), "");
    EXPECT_EQ(parse_error("Nope == 1", schema),
              "Failed to create boolean expression evaluator: Selector \"Nope\" is not valid");
    EXPECT_EQ(parse_error("Name == web or Service.Foo == 1", schema),
              "Failed to create boolean expression evaluator: Selector \"Service.Foo\" is not valid");
    EXPECT_EQ(
        parse_error("Port matches 80", schema),
        "Failed to create boolean expression evaluator: Invalid match operator \"Matches\" for selector \"Port\"");
    EXPECT_EQ(parse_error("Tags == x", schema),
              "Failed to create boolean expression evaluator: Invalid match operator \"Equal\" for selector \"Tags\"");
    EXPECT_EQ(parse_error("Port == abc", schema),
              "Failed to create boolean expression evaluator: Failed to coerce value \"abc\" for selector \"Port\": "
              "invalid syntax");
    EXPECT_NE(parse_error("Enabled != maybe", schema).find("Failed to coerce value \"maybe\""), std::string::npos);
    EXPECT_EQ(parse_error("Enabled != 0", schema), "");
    EXPECT_EQ(
        parse_error("Port is empty", schema),
        "Failed to create boolean expression evaluator: Invalid match operator \"Is Empty\" for selector \"Port\"");
}

TEST(filter, a_copied_filter_outlives_the_original_and_the_input_text) {
    std::optional<filter> f;
    {
        std::string expr = "Meta[\"a-very-long-key-that-is-not-short-string-optimised\"] == v or Name == web";
        filter g = must_parse(expr);
        f = g;
        expr.assign(expr.size(), '#');
    }
    filter moved = std::move(*f);
    row r;
    EXPECT_TRUE(moved.matches([&](filter::path p) { return resolve(r, p); }));
    EXPECT_EQ(moved.size(), 2u);
}

TEST(filter, evaluating_a_row_allocates_nothing) {
    filter f = must_parse(
        "(Name == web and Port != 1 and Enabled == true) and (v1 in Tags or x in Meta) and Meta.env contains ro and "
        "Checks.Status == critical and not Meta[\"nope\"] is not empty");
    row r;
    bool hit = false;
    auto resolver = [&](filter::path p) { return resolve(r, p); };
    std::size_t before = g_allocs;
    for (int i = 0; i < 100; ++i) hit = f.matches(resolver);
    EXPECT_EQ(g_allocs, before);
    EXPECT_TRUE(hit);
}

TEST(filter, deep_nesting_is_refused_and_long_chains_are_fine) {
    std::string deep(100000, '(');
    deep += "Name == web";
    deep += std::string(100000, ')');
    EXPECT_NE(parse_error(deep).find("nested too deeply"), std::string::npos);
    std::string nots;
    for (int i = 0; i < 100000; ++i) nots += "not ";
    nots += "Name == web";
    EXPECT_NE(parse_error(nots).find("nested too deeply"), std::string::npos);
    std::string ok(60, '(');
    ok += "Name == web";
    ok += std::string(60, ')');
    EXPECT_TRUE(eval(ok));

    std::string chain = "Name == web";
    for (int i = 0; i < 50000; ++i) chain += i % 2 ? " and Port == 8080" : " or Name == x";
    EXPECT_TRUE(eval(chain));
    EXPECT_EQ(must_parse(chain).size(), 50001u);
}

void parse_and_maybe_eval(const std::string& s) {
    auto r = filter::parse(s);
    if (auto* f = std::get_if<filter>(&r)) {
        row rw;
        (void)f->matches([&](filter::path p) { return resolve(rw, p); });
    } else {
        EXPECT_FALSE(std::get<std::string>(r).empty());
    }
    (void)filter::parse(s, schema);
}

TEST(filter, random_bytes_never_crash) {
    std::mt19937_64 rng(20261125);
    std::uniform_int_distribution<int> len(0, 64);
    std::uniform_int_distribution<int> byte(0, 255);
    std::string s;
    for (int i = 0; i < 100000; ++i) {
        s.resize(static_cast<std::size_t>(len(rng)));
        for (char& c : s) c = static_cast<char>(byte(rng));
        parse_and_maybe_eval(s);
    }
}

TEST(filter, random_token_soup_never_crashes) {
    static const std::vector<std::string> toks = {
        "Name",
        "Port",
        "Tags",
        "Meta",
        "Meta.env",
        "Meta[\"env\"]",
        "Checks.Status",
        "Unknown.x",
        "Meta[`a b`]",
        "==",
        "!=",
        "in",
        "not",
        "contains",
        "matches",
        "is",
        "empty",
        "and",
        "or",
        "(",
        ")",
        "web",
        "8080",
        "-1.5",
        "0",
        "true",
        "\"web\"",
        "`v1`",
        "\"\\u00e9\"",
        "\"(\"",
        "\"a{1000}{1000}\"",
        "\"(?i)W\"",
        "\"[\"",
        "\"\\\\\"",
        "\"",
        "`",
        "[",
        "]",
        ".",
        "\"a|b|c*\"",
        "\"^.*$\"",
        "\"(a*)*b\"",
        "Meta.",
    };
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<std::size_t> pick(0, toks.size() - 1);
    std::uniform_int_distribution<int> len(1, 16);
    std::bernoulli_distribution blank(0.85);
    int parsed = 0;
    for (int i = 0; i < 100000; ++i) {
        std::string s;
        for (int n = len(rng); n > 0; --n) {
            s += toks[pick(rng)];
            if (blank(rng)) s += ' ';
        }
        if (std::holds_alternative<filter>(filter::parse(s))) ++parsed;
        parse_and_maybe_eval(s);
    }
    EXPECT_GT(parsed, 100);  // the soup does reach evaluation
}

}  // namespace
