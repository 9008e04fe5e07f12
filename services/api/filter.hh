// Consul's `?filter=` expressions: the hashicorp/go-bexpr language as Consul
// uses it (go-bexpr v0.1.x), parsed once per request and evaluated per row.
//
// Grammar: `Sel == V`, `Sel != V`, `V in Sel`, `V not in Sel`, `Sel contains V`,
// `Sel not contains V`, `Sel is empty`, `Sel is not empty`, `Sel matches V`,
// `Sel not matches V`, combined with `and`, `or`, `not` and parentheses
// (precedence not > and > or). A selector is `Ident(.Ident | .Digits | ["str"])*`
// with Ident = [A-Za-z_][A-Za-z0-9_]*; `Meta.env` and `Meta["env"]` are the same
// path {"Meta","env"}. A value is a "double-quoted" string (Go escapes), a
// `backtick` raw string, a number, or a bare word/selector (taken as its text,
// segments joined by '.', so `Status == passing` and `Port == 8080` work).
// Deliberate differences from go-bexpr, all accepting more: `\"` inside a
// double-quoted string, identifiers may start with '_', `not(`/`contains"x"`
// need no blank.
//
// Evaluation is against a caller's resolver, fvalue(path), so one filter type
// serves catalog, health, node and agent rows. Values are coerced to the field's
// kind at evaluation (or at parse time when a schema is given): numbers
// (decimal, 0x/0o/0b) and Go booleans (true, false, 1, 0, t, f, TRUE, ...).
// Per field kind:
//   string       ==, != exact; in/contains substring; is empty; matches (regex search)
//   boolean/number ==, != on the coerced value (an uncoercible value matches neither)
//   string_list  in/contains membership; is empty
//   string_map   in/contains key membership; is empty (index with Meta.key)
//   any_of       a slice of structs (Checks.Status): true if ANY element matches
//                the whole match expression, negated operators included; false if empty
//   missing      (unknown selector or absent map key) ==, in, is not empty, matches
//                are false; !=, not in, is empty, not matches are true (go-bexpr's
//                rule for an absent map key)
// An operator that does not apply to the kind (matches on a number) is false.
//
// Regexes are std::regex ECMAScript (Go's RE2 syntax mostly overlaps; a leading
// `(?i)` is honoured; back-references are refused, as RE2 does), compiled at
// parse time and run on libstdc++'s Thompson-NFA executor: time linear in the
// value, stack bounded by the pattern. Patterns over 4 KiB, nested over 64 groups,
// with a repeat count over 1000 (RE2's limit) or expanding past ~20k states are
// refused.
//
// A filter is immutable after parse and cheap to copy (shared state); matches()
// allocates nothing itself (std::regex_search does, for `matches`). It belongs
// to the shard that parsed it (the shared state's count is not for other cores).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace pharos::api {

// A field value as the filter sees it. Views point into the caller's row and
// must stay valid for the matches() call that resolved them.
struct fvalue {
    enum kind_t : std::uint8_t { missing, string, boolean, number, string_list, string_map, any_of };
    kind_t kind = missing;
    std::string_view s;  // string
    bool b = false;      // boolean
    double n = 0;        // number
    // string_list, string_map, any_of: `count` elements behind `ctx`.
    const void* ctx = nullptr;
    std::size_t count = 0;
    std::string_view (*list_at)(const void* ctx, std::size_t i) = nullptr;  // string_list
    bool (*map_has)(const void* ctx, std::string_view key) = nullptr;       // string_map
    fvalue (*elem_at)(const void* ctx, std::size_t i) = nullptr;            // any_of

    static fvalue of_string(std::string_view v) {
        fvalue f;
        f.kind = string;
        f.s = v;
        return f;
    }
    static fvalue of_bool(bool v) {
        fvalue f;
        f.kind = boolean;
        f.b = v;
        return f;
    }
    static fvalue of_number(double v) {
        fvalue f;
        f.kind = number;
        f.n = v;
        return f;
    }
    // Any random-access container of string-likes (std::vector<std::string>, ...).
    template <class L>
    static fvalue of_list(const L& l) {
        fvalue f;
        f.kind = string_list;
        f.ctx = &l;
        f.count = l.size();
        f.list_at = [](const void* c, std::size_t i) { return std::string_view((*static_cast<const L*>(c))[i]); };
        return f;
    }
    // Any map (or vector of pairs) keyed by a string-like. Uses a heterogeneous
    // find(string_view) when the map has one, else a linear scan: never allocates.
    template <class M>
    static fvalue of_map(const M& m) {
        fvalue f;
        f.kind = string_map;
        f.ctx = &m;
        f.count = m.size();
        f.map_has = [](const void* c, std::string_view k) {
            const M& mm = *static_cast<const M*>(c);
            if constexpr (requires { mm.find(k) == mm.end(); }) {
                return mm.find(k) != mm.end();
            } else {
                for (const auto& kv : mm)
                    if (std::string_view(kv.first) == k) return true;
                return false;
            }
        };
        return f;
    }
    // `count` elements; elem(ctx, i) resolves the rest of the path in element i.
    static fvalue of_any(const void* ctx, std::size_t count, fvalue (*elem)(const void*, std::size_t)) {
        fvalue f;
        f.kind = any_of;
        f.ctx = ctx;
        f.count = count;
        f.elem_at = elem;
        return f;
    }
};

class filter {
public:
    using path = std::span<const std::string_view>;

    // What a schema says a selector is. `fanout` marks a path through a slice of
    // structs (the resolver answers any_of whose elements are of `kind`).
    struct field_type {
        fvalue::kind_t kind = fvalue::missing;
        bool fanout = false;
    };
    // nullopt: the selector does not exist.
    using schema = std::function<std::optional<field_type>(path)>;

    // Parses `expr`. Errors are the body of Consul's 400, e.g.
    //   Failed to create boolean expression evaluator: 1:8 (7): expected a value after "=="
    //   Failed to create boolean expression evaluator: Selector "Service.Foo" is not valid
    // With a schema, unknown selectors, operators the field does not support and
    // values that do not coerce to the field's type are refused here, as Consul
    // does; without one every selector is accepted and resolved at evaluation.
    // An empty `expr` is an error: callers skip filtering when ?filter= is empty.
    static std::variant<filter, std::string> parse(std::string_view expr, const schema& s = nullptr);

    // Evaluates against one row. `resolve` is callable as fvalue(path); it is
    // called once per match expression reached (and/or short-circuit).
    template <class F>
    bool matches(F&& resolve) const {
        using R = std::remove_reference_t<F>;
        return eval(const_cast<void*>(static_cast<const void*>(std::addressof(resolve))),
                    [](void* o, path p) -> fvalue { return (*static_cast<R*>(o))(p); });
    }

    // The number of match expressions (for tests and limits).
    std::size_t size() const;

    struct impl;  // opaque; defined in filter.cc

private:
    explicit filter(std::shared_ptr<const impl> i) : impl_(std::move(i)) {}
    bool eval(void* obj, fvalue (*call)(void*, path)) const;

    std::shared_ptr<const impl> impl_;
};

}  // namespace pharos::api
