// Consul's ?filter= expressions: a tokenizer, a recursive-descent parser into a
// flat node array, and a recursive evaluator whose depth is bounded by the
// nesting limit. See filter.hh for the language and its semantics.
#include "services/api/filter.hh"

#include <charconv>
#include <cmath>
#include <regex>
#include <vector>

namespace pharos::api {
namespace {

constexpr int max_depth = 64;  // parentheses + `not` nesting
constexpr std::size_t max_regex_len = 4096;
constexpr double max_regex_states = 20000;
constexpr const char* prefix = "Failed to create boolean expression evaluator: ";

enum class op : std::uint8_t { eq, ne, in, not_in, empty, not_empty, matches, not_matches };

const char* op_name(op o) {
    switch (o) {
        case op::eq:
            return "Equal";
        case op::ne:
            return "Not Equal";
        case op::in:
            return "In";
        case op::not_in:
            return "Not In";
        case op::empty:
            return "Is Empty";
        case op::not_empty:
            return "Is Not Empty";
        case op::matches:
            return "Matches";
        case op::not_matches:
            return "Not Matches";
    }
    return "?";
}

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Go's strconv.ParseBool.
std::optional<bool> coerce_bool(std::string_view s) {
    if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
    if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
    return std::nullopt;
}

// Decimal integers and floats, and Go's 0x/0o/0b integer prefixes, all of `s`.
std::optional<double> coerce_number(std::string_view s) {
    if (s.empty()) return std::nullopt;
    bool neg = false;
    std::string_view body = s;
    if (body[0] == '-' || body[0] == '+') {
        neg = body[0] == '-';
        body.remove_prefix(1);
    }
    int base = 0;
    if (body.size() > 2 && body[0] == '0') {
        char p = body[1] | 0x20;
        base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    }
    if (base != 0) {
        std::uint64_t v = 0;
        auto r = std::from_chars(body.data() + 2, body.data() + body.size(), v, base);
        if (r.ec != std::errc() || r.ptr != body.data() + body.size()) return std::nullopt;
        return neg ? -static_cast<double>(v) : static_cast<double>(v);
    }
    if (body.empty() || !(is_digit(body[0]) || body[0] == '.')) return std::nullopt;  // no inf/nan
    double v = 0;
    auto r = std::from_chars(body.data(), body.data() + body.size(), v, std::chars_format::general);
    if (r.ec != std::errc() || r.ptr != body.data() + body.size()) return std::nullopt;
    return neg ? -v : v;
}

void put_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Rough NFA size of a regex: counted repetitions multiply what they repeat.
// Refuses what would make std::regex build a huge automaton or recurse deeply
// while compiling. nullopt when acceptable.
std::optional<std::string> regex_too_complex(std::string_view p) {
    if (p.size() > max_regex_len) return "regular expression too long";
    struct frame {
        double total = 0, last = 0;
    };
    std::vector<frame> st(1);
    auto atom = [&](double cost) {
        st.back().total += st.back().last;
        st.back().last = cost;
    };
    for (std::size_t i = 0; i < p.size();) {
        char c = p[i];
        if (c == '\\') {
            atom(1);
            i += 2;
        } else if (c == '[') {
            std::size_t j = i + 1;
            if (j < p.size() && p[j] == '^') ++j;
            if (j < p.size() && p[j] == ']') ++j;
            while (j < p.size() && p[j] != ']') j += p[j] == '\\' ? 2 : 1;
            atom(1);
            i = j + 1;
        } else if (c == '(') {
            if (st.size() > max_depth) return "regular expression nested too deeply";
            st.back().total += st.back().last;
            st.back().last = 0;
            st.emplace_back();
            ++i;
        } else if (c == ')') {
            if (st.size() > 1) {
                frame g = st.back();
                st.pop_back();
                st.back().last = g.total + g.last + 1;
            }
            ++i;
        } else if (c == '|') {
            st.back().total += st.back().last;
            st.back().last = 0;
            ++i;
        } else if (c == '{') {
            // {m}, {m,}, {m,n}; anything else is a literal brace.
            std::size_t j = i + 1;
            double hi = 0;
            bool ok = false;
            for (int part = 0; part < 2; ++part) {
                std::size_t k = j;
                double v = 0;
                while (k < p.size() && is_digit(p[k]) && k - j < 9) v = v * 10 + (p[k++] - '0');
                if (k < p.size() && is_digit(p[k])) return "invalid repeat count";
                hi = std::max(hi, v);
                if (part == 0 && k == j) break;
                j = k;
                if (j < p.size() && p[j] == '}') {
                    ok = true;
                    break;
                }
                if (part == 0 && j < p.size() && p[j] == ',') {
                    ++j;
                    continue;
                }
                break;
            }
            if (!ok) {
                atom(1);
                ++i;
                continue;
            }
            if (hi > 1000) return "invalid repeat count";
            st.back().last *= std::max(hi, 1.0);
            i = j + 1;
        } else {
            atom(1);
            ++i;
        }
        double sum = 0;
        for (const frame& f : st) sum += f.total + f.last;
        if (sum > max_regex_states) return "regular expression too complex";
    }
    return std::nullopt;
}

// "line:col (offset): msg", like Go's PEG parser; col counts characters.
std::string where(std::string_view src, std::size_t pos, std::string msg) {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos && i < src.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(src[i]);
        if (c == '\n') {
            ++line;
            col = 1;
        } else if ((c & 0xC0) != 0x80) {
            ++col;
        }
    }
    return std::to_string(line) + ":" + std::to_string(col) + " (" + std::to_string(pos) + "): " + msg;
}

// ---- tokens ----

enum class tk : std::uint8_t { word, string, number, eq, ne, lparen, rparen, end };

struct token {
    tk kind;
    std::size_t pos;
    std::string text;               // string: unescaped; number: as written; word: segments joined by '.'
    std::vector<std::string> segs;  // word
    bool plain = false;             // word of one identifier, no index: may be a keyword
    bool is(std::string_view kw) const { return kind == tk::word && plain && text == kw; }
};

struct lex_error {
    std::size_t pos;
    std::string msg;
};

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + '"';
}

class lexer {
public:
    explicit lexer(std::string_view in) : in_(in) {}

    std::variant<std::vector<token>, lex_error> run() {
        std::vector<token> out;
        for (;;) {
            while (i_ < in_.size() && is_blank(in_[i_])) ++i_;
            if (i_ == in_.size()) {
                out.push_back(token{tk::end, i_, {}, {}, false});
                return out;
            }
            auto t = next();
            if (auto* e = std::get_if<lex_error>(&t)) return std::move(*e);
            out.push_back(std::move(std::get<token>(t)));
        }
    }

private:
    std::variant<token, lex_error> next() {
        std::size_t start = i_;
        char c = in_[i_];
        if (c == '(' || c == ')') {
            ++i_;
            return token{c == '(' ? tk::lparen : tk::rparen, start, {}, {}, false};
        }
        if ((c == '=' || c == '!') && i_ + 1 < in_.size() && in_[i_ + 1] == '=') {
            i_ += 2;
            return token{c == '=' ? tk::eq : tk::ne, start, {}, {}, false};
        }
        if (c == '"' || c == '`') {
            std::string s;
            if (auto e = string_literal(s)) return std::move(*e);
            return token{tk::string, start, std::move(s), {}, false};
        }
        if (c == '-' || is_digit(c)) return number();
        if (is_ident_start(c)) return word();
        return lex_error{start, "unexpected character " + quote(in_.substr(start, 1))};
    }

    std::optional<lex_error> string_literal(std::string& out) {
        std::size_t start = i_;
        char q = in_[i_++];
        while (i_ < in_.size() && in_[i_] != q) {
            char c = in_[i_];
            if (q == '`' || c != '\\') {
                out += c;
                ++i_;
                continue;
            }
            std::size_t esc = i_;
            if (++i_ == in_.size()) break;
            char e = in_[i_++];
            switch (e) {
                case 'a':
                    out += '\a';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'v':
                    out += '\v';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '"':
                    out += '"';
                    break;
                case 'x':
                case 'u':
                case 'U': {
                    int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    std::uint32_t v = 0;
                    for (int k = 0; k < n; ++k, ++i_) {
                        int h = i_ < in_.size() ? hex_val(in_[i_]) : -1;
                        if (h < 0) return lex_error{esc, "invalid escape in string literal"};
                        v = v * 16 + static_cast<std::uint32_t>(h);
                    }
                    if (e == 'x') {
                        out += static_cast<char>(v);
                    } else {
                        if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000))
                            return lex_error{esc, "invalid escape in string literal"};
                        put_utf8(out, v);
                    }
                    break;
                }
                default:
                    if (e >= '0' && e <= '7') {
                        std::uint32_t v = static_cast<std::uint32_t>(e - '0');
                        for (int k = 0; k < 2; ++k, ++i_) {
                            if (i_ >= in_.size() || in_[i_] < '0' || in_[i_] > '7')
                                return lex_error{esc, "invalid escape in string literal"};
                            v = v * 8 + static_cast<std::uint32_t>(in_[i_] - '0');
                        }
                        if (v > 255) return lex_error{esc, "invalid escape in string literal"};
                        out += static_cast<char>(v);
                        break;
                    }
                    return lex_error{esc, "invalid escape in string literal"};
            }
        }
        if (i_ >= in_.size()) return lex_error{start, "Unterminated string literal"};
        ++i_;  // closing quote
        return std::nullopt;
    }

    // "-"? ("0" / [1-9][0-9]*) ("." [0-9]+)?, then a blank, ")" or the end.
    std::variant<token, lex_error> number() {
        std::size_t start = i_;
        if (in_[i_] == '-') ++i_;
        if (i_ == in_.size() || !is_digit(in_[i_])) return lex_error{start, "Invalid number literal"};
        if (in_[i_] == '0') {
            ++i_;
        } else {
            while (i_ < in_.size() && is_digit(in_[i_])) ++i_;
        }
        if (i_ + 1 < in_.size() && in_[i_] == '.' && is_digit(in_[i_ + 1])) {
            ++i_;
            while (i_ < in_.size() && is_digit(in_[i_])) ++i_;
        }
        if (i_ < in_.size() && !is_blank(in_[i_]) && in_[i_] != ')') return lex_error{start, "Invalid number literal"};
        return token{tk::number, start, std::string(in_.substr(start, i_ - start)), {}, false};
    }

    std::string_view ident() {
        std::size_t s = i_;
        while (i_ < in_.size() && is_ident_char(in_[i_])) ++i_;
        return in_.substr(s, i_ - s);
    }

    // Ident ("." Ident / "." [0-9]+ / "[" _? string _? "]")*
    std::variant<token, lex_error> word() {
        token t{tk::word, i_, {}, {}, true};
        t.segs.emplace_back(ident());
        for (;;) {
            if (i_ + 1 < in_.size() && in_[i_] == '.' && is_ident_char(in_[i_ + 1])) {
                ++i_;
                t.segs.emplace_back(ident());
                t.plain = false;
            } else if (i_ < in_.size() && in_[i_] == '[') {
                std::size_t open = i_++;
                while (i_ < in_.size() && is_blank(in_[i_])) ++i_;
                if (i_ == in_.size() || (in_[i_] != '"' && in_[i_] != '`')) return lex_error{open, "Invalid index"};
                std::string key;
                if (auto e = string_literal(key)) return std::move(*e);
                while (i_ < in_.size() && is_blank(in_[i_])) ++i_;
                if (i_ == in_.size() || in_[i_] != ']') return lex_error{open, "Unclosed index expression"};
                ++i_;
                t.segs.push_back(std::move(key));
                t.plain = false;
            } else {
                break;
            }
        }
        for (std::size_t k = 0; k < t.segs.size(); ++k) {
            if (k) t.text += '.';
            t.text += t.segs[k];
        }
        return t;
    }

    std::string_view in_;
    std::size_t i_ = 0;
};

}  // namespace

// ---- the parsed filter ----

struct filter::impl {
    struct match {
        std::vector<std::string> segs;
        std::vector<std::string_view> path;  // views into segs, set once the impl stops moving
        op o;
        std::string raw;
        std::optional<double> num;
        std::optional<bool> flag;
        std::optional<std::regex> re;
    };
    struct node {
        enum kind_t : std::uint8_t { leaf, and_, or_, not_ } kind;
        std::uint32_t first = 0;  // leaf: match index; not_: child node; and_/or_: index into kids
        std::uint32_t count = 0;  // and_/or_: number of children
    };
    std::vector<match> matches;
    std::vector<node> nodes;
    std::vector<std::uint32_t> kids;
    std::uint32_t root = 0;

    bool eval(std::uint32_t n, void* obj, fvalue (*call)(void*, path)) const;
};

namespace {

using impl = filter::impl;

bool eval_match(const impl::match& m, const fvalue& v, int depth) {
    switch (v.kind) {
        case fvalue::missing:
            return m.o == op::ne || m.o == op::not_in || m.o == op::empty || m.o == op::not_matches;
        case fvalue::any_of:
            if (depth > 8 || !v.elem_at) return false;
            for (std::size_t i = 0; i < v.count; ++i)
                if (eval_match(m, v.elem_at(v.ctx, i), depth + 1)) return true;
            return false;
        case fvalue::string:
            switch (m.o) {
                case op::eq:
                    return v.s == m.raw;
                case op::ne:
                    return v.s != m.raw;
                case op::in:
                    return v.s.find(m.raw) != std::string_view::npos;
                case op::not_in:
                    return v.s.find(m.raw) == std::string_view::npos;
                case op::empty:
                    return v.s.empty();
                case op::not_empty:
                    return !v.s.empty();
                case op::matches:
                case op::not_matches: {
                    if (!m.re) return false;
                    bool hit = false;
                    try {
                        hit = std::regex_match(v.s.begin(), v.s.end(), *m.re);
                    } catch (const std::regex_error&) {
                        return false;  // error_complexity / error_stack: neither matches nor not
                    }
                    return m.o == op::matches ? hit : !hit;
                }
            }
            return false;
        case fvalue::boolean:
            if (!m.flag) return false;
            if (m.o == op::eq) return *m.flag == v.b;
            if (m.o == op::ne) return *m.flag != v.b;
            return false;
        case fvalue::number:
            if (!m.num) return false;
            if (m.o == op::eq) return *m.num == v.n;
            if (m.o == op::ne) return *m.num != v.n;
            return false;
        case fvalue::string_list: {
            if (m.o == op::empty) return v.count == 0;
            if (m.o == op::not_empty) return v.count != 0;
            if (m.o != op::in && m.o != op::not_in) return false;
            bool found = false;
            for (std::size_t i = 0; i < v.count && !found && v.list_at; ++i) found = v.list_at(v.ctx, i) == m.raw;
            return m.o == op::in ? found : !found;
        }
        case fvalue::string_map: {
            if (m.o == op::empty) return v.count == 0;
            if (m.o == op::not_empty) return v.count != 0;
            if (m.o != op::in && m.o != op::not_in) return false;
            bool found = v.map_has && v.map_has(v.ctx, m.raw);
            return m.o == op::in ? found : !found;
        }
    }
    return false;
}

bool op_applies(fvalue::kind_t k, op o) {
    switch (k) {
        case fvalue::string:
            return true;
        case fvalue::boolean:
        case fvalue::number:
            return o == op::eq || o == op::ne;
        case fvalue::string_list:
        case fvalue::string_map:
            return o == op::in || o == op::not_in || o == op::empty || o == op::not_empty;
        default:
            return false;
    }
}

class parser {
public:
    parser(std::string_view src, std::vector<token> toks, const filter::schema& s, impl& out)
        : src_(src), toks_(std::move(toks)), schema_(s), out_(out) {}

    // Returns the error message (without the common prefix) or nullopt.
    std::optional<std::string> run() {
        auto r = parse_or(0);
        if (!r) return std::move(err_);
        if (peek().kind != tk::end) {
            if (peek().kind == tk::rparen) return at(peek().pos, "Unmatched parentheses");
            return at(peek().pos, "expected \"and\", \"or\" or the end of the expression, found " + describe(peek()));
        }
        out_.root = *r;
        return std::nullopt;
    }

private:
    const token& peek(std::size_t k = 0) const { return toks_[std::min(p_ + k, toks_.size() - 1)]; }

    std::string at(std::size_t pos, std::string msg) const { return where(src_, pos, std::move(msg)); }

    static std::string describe(const token& t) {
        switch (t.kind) {
            case tk::word:
                return quote(t.text);
            case tk::string:
                return "string " + quote(t.text);
            case tk::number:
                return "number " + t.text;
            case tk::eq:
                return "\"==\"";
            case tk::ne:
                return "\"!=\"";
            case tk::lparen:
                return "\"(\"";
            case tk::rparen:
                return "\")\"";
            case tk::end:
                return "the end of the expression";
        }
        return "?";
    }

    std::nullopt_t fail(std::string msg) {
        if (err_.empty()) err_ = std::move(msg);
        return std::nullopt;
    }

    std::uint32_t add(impl::node n) {
        out_.nodes.push_back(n);
        return static_cast<std::uint32_t>(out_.nodes.size() - 1);
    }

    // A flat and/or node over `parts` (one part: that part).
    std::uint32_t join(impl::node::kind_t kind, const std::vector<std::uint32_t>& parts) {
        if (parts.size() == 1) return parts[0];
        auto first = static_cast<std::uint32_t>(out_.kids.size());
        out_.kids.insert(out_.kids.end(), parts.begin(), parts.end());
        return add(impl::node{kind, first, static_cast<std::uint32_t>(parts.size())});
    }

    std::optional<std::uint32_t> parse_or(int depth) {
        std::vector<std::uint32_t> parts;
        for (;;) {
            auto n = parse_and(depth);
            if (!n) return std::nullopt;
            parts.push_back(*n);
            if (!peek().is("or")) break;
            ++p_;
        }
        return join(impl::node::or_, parts);
    }

    std::optional<std::uint32_t> parse_and(int depth) {
        std::vector<std::uint32_t> parts;
        for (;;) {
            auto n = parse_not(depth);
            if (!n) return std::nullopt;
            parts.push_back(*n);
            if (!peek().is("and")) break;
            ++p_;
        }
        return join(impl::node::and_, parts);
    }

    std::optional<std::uint32_t> parse_not(int depth) {
        // `not == x` / `not != x`: a selector named "not".
        if (peek().is("not") && peek(1).kind != tk::eq && peek(1).kind != tk::ne) {
            if (depth >= max_depth) return fail(at(peek().pos, "expression nested too deeply"));
            ++p_;
            auto n = parse_not(depth + 1);
            if (!n) return std::nullopt;
            return add(impl::node{impl::node::not_, *n, 0});
        }
        return parse_primary(depth);
    }

    std::optional<std::uint32_t> parse_primary(int depth) {
        if (peek().kind == tk::lparen) {
            if (depth >= max_depth) return fail(at(peek().pos, "expression nested too deeply"));
            std::size_t open = peek().pos;
            ++p_;
            auto n = parse_or(depth + 1);
            if (!n) return std::nullopt;
            if (peek().kind != tk::rparen) {
                if (peek().kind == tk::end) return fail(at(open, "Unmatched parentheses"));
                return fail(at(peek().pos, "expected \"and\", \"or\" or \")\", found " + describe(peek())));
            }
            ++p_;
            return n;
        }
        return parse_match();
    }

    bool is_value(const token& t) const { return t.kind == tk::word || t.kind == tk::string || t.kind == tk::number; }

    std::optional<std::uint32_t> parse_match() {
        const token& first = peek();
        if (!is_value(first))
            return fail(at(first.pos, "expected a selector, a value, \"not\" or \"(\", found " + describe(first)));
        const token& second = peek(1);
        if (second.kind == tk::eq || second.kind == tk::ne) {
            if (first.kind != tk::word) return fail(at(first.pos, "Invalid selector " + describe(first)));
            p_ += 2;
            return with_value(first, second.kind == tk::eq ? op::eq : op::ne, describe(second));
        }
        bool neg = false;
        std::size_t k = 1;
        if (peek(k).is("not")) {
            neg = true;
            ++k;
        }
        const token& kw = peek(k);
        if (kw.is("is") && !neg) {
            std::size_t j = k + 1;
            bool notempty = false;
            if (peek(j).is("not")) {
                notempty = true;
                ++j;
            }
            if (!peek(j).is("empty")) return fail(at(peek(j).pos, "expected \"empty\" after \"is\""));
            if (first.kind != tk::word) return fail(at(first.pos, "Invalid selector " + describe(first)));
            p_ += j + 1;
            return make(first, notempty ? op::not_empty : op::empty, nullptr);
        }
        if (kw.is("contains") || kw.is("matches")) {
            if (first.kind != tk::word) return fail(at(first.pos, "Invalid selector " + describe(first)));
            bool contains = kw.is("contains");
            p_ += k + 1;
            op o = contains ? (neg ? op::not_in : op::in) : (neg ? op::not_matches : op::matches);
            return with_value(first, o, quote(kw.text));
        }
        if (kw.is("in")) {
            const token& sel = peek(k + 1);
            if (sel.kind != tk::word) return fail(at(sel.pos, "Invalid selector " + describe(sel)));
            p_ += k + 2;
            return make(sel, neg ? op::not_in : op::in, &first);
        }
        return fail(at(kw.pos,
                       "expected an operator (==, !=, in, not in, contains, not contains, is empty, "
                       "is not empty, matches, not matches), found " +
                           describe(kw)));
    }

    std::optional<std::uint32_t> with_value(const token& sel, op o, const std::string& after) {
        const token& v = peek();
        if (!is_value(v)) return fail(at(v.pos, "expected a value after " + after + ", found " + describe(v)));
        ++p_;
        return make(sel, o, &v);
    }

    std::optional<std::uint32_t> make(const token& sel, op o, const token* value) {
        impl::match m;
        m.segs = sel.segs;
        m.o = o;
        if (value) {
            m.raw = value->text;
            m.num = coerce_number(m.raw);
            m.flag = coerce_bool(m.raw);
        }
        std::vector<std::string_view> path(m.segs.begin(), m.segs.end());
        if (schema_) {
            auto ft = schema_(filter::path(path));
            if (!ft || ft->kind == fvalue::missing || ft->kind == fvalue::any_of)
                return fail("Selector " + quote(sel.text) + " is not valid");
            if (!op_applies(ft->kind, o))
                return fail("Invalid match operator " + quote(op_name(o)) + " for selector " + quote(sel.text));
            if (value && ft->kind == fvalue::boolean && !m.flag)
                return fail("Failed to coerce value " + quote(m.raw) + " for selector " + quote(sel.text) +
                            ": invalid syntax");
            if (value && ft->kind == fvalue::number && !m.num)
                return fail("Failed to coerce value " + quote(m.raw) + " for selector " + quote(sel.text) +
                            ": invalid syntax");
        }
        if (o == op::matches || o == op::not_matches) {
            std::string_view pat = m.raw;
            auto flags = std::regex::ECMAScript;
            if (pat.starts_with("(?i)")) {
                pat.remove_prefix(4);
                flags |= std::regex::icase;
            }
            if (auto why = regex_too_complex(pat))
                return fail("Failed to compile regular expression " + quote(m.raw) + ": " + *why);
            // libstdc++'s default executor recurses once per input character and
            // regex_search restarts at every offset: a 64 KiB value overflows the
            // stack and the time is quadratic. The Thompson executor (__polynomial)
            // recurses only along the pattern, and regex_match over
            // [\s\S]*(?:pat)[\s\S]* is one linear pass. Compiling `pat` alone first
            // keeps its own syntax errors; __polynomial also refuses back-references,
            // as RE2 does.
            flags |= std::regex_constants::__polynomial;
            try {
                std::regex alone(pat.begin(), pat.end(), flags);
                std::string wrapped = "[\\s\\S]*(?:";
                wrapped.append(pat);
                wrapped += ")[\\s\\S]*";
                m.re.emplace(wrapped, flags);
            } catch (const std::regex_error& e) {
                return fail("Failed to compile regular expression " + quote(m.raw) + ": " + e.what());
            }
        }
        out_.matches.push_back(std::move(m));
        return add(impl::node{impl::node::leaf, static_cast<std::uint32_t>(out_.matches.size() - 1), 0});
    }

    std::string_view src_;
    std::vector<token> toks_;
    std::size_t p_ = 0;
    const filter::schema& schema_;
    impl& out_;
    std::string err_;
};

}  // namespace

bool filter::impl::eval(std::uint32_t n, void* obj, fvalue (*call)(void*, path)) const {
    const node& nd = nodes[n];
    switch (nd.kind) {
        case node::leaf: {
            const match& m = matches[nd.first];
            return eval_match(m, call(obj, path(m.path)), 0);
        }
        case node::not_:
            return !eval(nd.first, obj, call);
        case node::and_:
            for (std::uint32_t i = 0; i < nd.count; ++i)
                if (!eval(kids[nd.first + i], obj, call)) return false;
            return true;
        case node::or_:
            for (std::uint32_t i = 0; i < nd.count; ++i)
                if (eval(kids[nd.first + i], obj, call)) return true;
            return false;
    }
    return false;
}

std::variant<filter, std::string> filter::parse(std::string_view expr, const schema& s) {
    auto lexed = lexer(expr).run();
    if (auto* e = std::get_if<lex_error>(&lexed)) {
        return std::string(prefix) + where(expr, e->pos, std::move(e->msg));
    }
    auto out = std::make_shared<impl>();
    parser p(expr, std::move(std::get<std::vector<token>>(lexed)), s, *out);
    if (auto err = p.run()) return std::string(prefix) + *err;
    for (auto& m : out->matches) m.path.assign(m.segs.begin(), m.segs.end());
    return filter(std::move(out));
}

bool filter::eval(void* obj, fvalue (*call)(void*, path)) const { return impl_->eval(impl_->root, obj, call); }

std::size_t filter::size() const { return impl_->matches.size(); }

}  // namespace pharos::api
