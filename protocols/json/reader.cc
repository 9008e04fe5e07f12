#include "reader.hh"

#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

#include "duration.hh"

namespace pharos::json {

namespace dom = simdjson::dom;

bool key_matches(std::string_view key, std::string_view name) noexcept {
    size_t i = 0, j = 0;
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; };
    for (;;) {
        while (i < key.size() && key[i] == '_') ++i;
        while (j < name.size() && name[j] == '_') ++j;
        if (i == key.size() || j == name.size()) return i == key.size() && j == name.size();
        if (lower(key[i]) != lower(name[j])) return false;
        ++i, ++j;
    }
}

namespace {

std::string field_path(const std::string& parent, std::string_view name) {
    std::string p;
    p.reserve(parent.size() + 1 + name.size());
    p += parent;
    p += '.';
    p += name;
    return p;
}

std::string number_text(dom::element el) {
    char buf[64];
    std::to_chars_result r;
    switch (el.type()) {
        case dom::element_type::INT64:
            r = std::to_chars(buf, buf + sizeof buf, int64_t(el));
            break;
        case dom::element_type::UINT64:
            r = std::to_chars(buf, buf + sizeof buf, uint64_t(el));
            break;
        default:
            r = std::to_chars(buf, buf + sizeof buf, double(el));
            break;
    }
    return std::string(buf, r.ptr);
}

// "json: cannot unmarshal <what> into Go struct field <path> of type <type>".
std::string unmarshal_error(std::string_view what, const std::string& path, std::string_view go_type) {
    std::string e = "json: cannot unmarshal ";
    e += what;
    if (path.empty()) {
        e += " into Go value of type ";
    } else {
        e += " into Go struct field ";
        e += path;
        e += " of type ";
    }
    e += go_type;
    return e;
}

// Go's strconv.Quote, close enough for error text: escapes quotes, backslashes
// and control bytes.
std::string go_quote(std::string_view s) {
    std::string q = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            q += '\\';
            q += char(c);
        } else if (c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            q += "\\x";
            q += hex[c >> 4];
            q += hex[c & 15];
        } else {
            q += char(c);
        }
    }
    q += '"';
    return q;
}

// A JSON number as an integer in [lo, hi]; doubles must be integral.
template <class T>
error integer(const value& v, T& out, std::string_view go_type) {
    dom::element el = v.raw();
    switch (el.type()) {
        case dom::element_type::INT64: {
            int64_t n = int64_t(el);
            if constexpr (std::is_signed_v<T>) {
                if (n >= int64_t(std::numeric_limits<T>::min()) && n <= int64_t(std::numeric_limits<T>::max())) {
                    out = T(n);
                    return std::nullopt;
                }
            } else {
                if (n >= 0 && uint64_t(n) <= uint64_t(std::numeric_limits<T>::max())) {
                    out = T(n);
                    return std::nullopt;
                }
            }
            break;
        }
        case dom::element_type::UINT64: {  // only above INT64_MAX
            uint64_t n = uint64_t(el);
            if (n <= uint64_t(std::numeric_limits<T>::max())) {
                out = T(n);
                return std::nullopt;
            }
            break;
        }
        case dom::element_type::DOUBLE: {
            double d = double(el);
            // Bounds as doubles: min is exact (-2^k), max+1 is exact (2^k).
            double lo = double(std::numeric_limits<T>::min());
            double hi_excl = std::ldexp(1.0, std::numeric_limits<T>::digits);
            if (std::trunc(d) == d && d >= lo && d < hi_excl) {
                out = T(d);
                return std::nullopt;
            }
            break;
        }
        default:
            return v.type_error(go_type);
    }
    return unmarshal_error("number " + number_text(el), v.path(), go_type);
}

// Decodes a string element of a list or map, where null means "".
error element_string(dom::element el, const std::string& path, std::string& out) {
    if (el.is_null()) {
        out.clear();
        return std::nullopt;
    }
    std::string_view s;
    if (el.get_string().get(s)) return value(el, path).type_error("string");
    out.assign(s);
    return std::nullopt;
}

error string_list(dom::element el, const std::string& path, std::vector<std::string>& out, std::string_view go_type) {
    dom::array a;
    if (el.get_array().get(a)) return value(el, path).type_error(go_type);
    std::vector<std::string> list;
    list.reserve(a.size());
    for (dom::element item : a) {
        if (auto e = element_string(item, path, list.emplace_back())) return e;
    }
    out = std::move(list);
    return std::nullopt;
}

std::string parse_error_text(simdjson::error_code code) {
    using namespace simdjson;
    switch (code) {
        case EMPTY:
            return "EOF";
        case UNCLOSED_STRING:
        case INCOMPLETE_ARRAY_OR_OBJECT:
            return "unexpected EOF";
        case T_ATOM_ERROR:
            return "invalid character in literal true (expecting 'true')";
        case F_ATOM_ERROR:
            return "invalid character in literal false (expecting 'false')";
        case N_ATOM_ERROR:
            return "invalid character in literal null (expecting 'null')";
        case NUMBER_ERROR:
            return "invalid character in numeric literal";
        case STRING_ERROR:
            return "invalid character in string escape code";
        case UNESCAPED_CHARS:
            return "invalid character in string literal";
        case UTF8_ERROR:
            return "invalid UTF-8 in JSON text";
        case DEPTH_ERROR:
            return "exceeded max depth";
        case TRAILING_CONTENT:
            return "invalid character after top-level value";
        default:
            return std::string("invalid JSON: ") + error_message(code);
    }
}

}  // namespace

std::string_view value::kind() const noexcept {
    switch (el_.type()) {
        case dom::element_type::ARRAY:
            return "array";
        case dom::element_type::OBJECT:
            return "object";
        case dom::element_type::STRING:
            return "string";
        case dom::element_type::BOOL:
            return "bool";
        case dom::element_type::NULL_VALUE:
            return "null";
        default:
            return "number";
    }
}

std::string value::type_error(std::string_view go_type) const { return unmarshal_error(kind(), path_, go_type); }

error value::get(std::string& out) const {
    if (is_null()) return std::nullopt;
    std::string_view s;
    if (el_.get_string().get(s)) return type_error("string");
    out.assign(s);
    return std::nullopt;
}

error value::get(bool& out) const {
    if (is_null()) return std::nullopt;
    if (el_.get_bool().get(out)) return type_error("bool");
    return std::nullopt;
}

error value::get(int64_t& out) const { return is_null() ? std::nullopt : integer(*this, out, "int64"); }
error value::get(uint64_t& out) const { return is_null() ? std::nullopt : integer(*this, out, "uint64"); }
error value::get(int& out) const { return is_null() ? std::nullopt : integer(*this, out, "int"); }

error value::get(double& out) const {
    if (is_null()) return std::nullopt;
    if (el_.get_double().get(out)) return type_error("float64");
    return std::nullopt;
}

error value::get(std::vector<std::string>& out) const {
    if (is_null()) return std::nullopt;
    return string_list(el_, path_, out, "[]string");
}

error value::get(std::map<std::string, std::string>& out) const {
    if (is_null()) return std::nullopt;
    dom::object o;
    if (el_.get_object().get(o)) return type_error("map[string]string");
    std::map<std::string, std::string> m;
    for (dom::key_value_pair kv : o) {
        if (auto e = element_string(kv.value, path_, m[std::string(kv.key)])) return e;
    }
    out = std::move(m);
    return std::nullopt;
}

error value::get(std::map<std::string, std::vector<std::string>>& out) const {
    if (is_null()) return std::nullopt;
    dom::object o;
    if (el_.get_object().get(o)) return type_error("map[string][]string");
    std::map<std::string, std::vector<std::string>> m;
    for (dom::key_value_pair kv : o) {
        auto& list = m[std::string(kv.key)];
        if (kv.value.is_null()) {
            list.clear();
            continue;
        }
        if (auto e = string_list(kv.value, path_, list, "[]string")) return e;
    }
    out = std::move(m);
    return std::nullopt;
}

error value::get(std::chrono::nanoseconds& out) const {
    if (is_null()) return std::nullopt;
    if (std::string_view s; !el_.get_string().get(s)) {
        auto d = parse_go_duration(s);
        if (!d) return "time: invalid duration " + go_quote(s);
        out = *d;
        return std::nullopt;
    }
    if (!is_number()) return type_error("time.Duration");
    int64_t ns = 0;
    if (el_.is_double()) {  // Consul: time.Duration(float64), truncating
        double d = std::trunc(double(el_));
        if (!(d >= -0x1p63 && d < 0x1p63)) return unmarshal_error("number " + number_text(el_), path_, "time.Duration");
        ns = int64_t(d);
    } else if (auto e = integer(*this, ns, "time.Duration")) {
        return e;
    }
    out = std::chrono::nanoseconds(ns);
    return std::nullopt;
}

error value::get(object& out) const {
    if (is_null()) return std::nullopt;
    dom::object o;
    if (el_.get_object().get(o)) return type_error("struct");
    out = object(o, path_);
    return std::nullopt;
}

error value::get(array& out) const {
    if (is_null()) return std::nullopt;
    dom::array a;
    if (el_.get_array().get(a)) return type_error("slice");
    out = array(a, path_);
    return std::nullopt;
}

std::optional<value> object::find(std::string_view name) const {
    if (!valid_) return std::nullopt;
    std::optional<dom::element> exact, folded;
    for (dom::key_value_pair kv : obj_) {
        if (kv.key == name)
            exact = kv.value;
        else if (key_matches(kv.key, name))
            folded = kv.value;
    }
    std::optional<dom::element> hit = exact ? exact : folded;
    if (!hit || hit->is_null()) return std::nullopt;
    return value(*hit, field_path(path_, name));
}

member object::iterator::operator*() const {
    dom::key_value_pair kv = *it_;
    return member{kv.key, value(kv.value, field_path(owner_->path_, kv.key))};
}

document::document() : parser_(std::make_unique<dom::parser>()) {}
document::~document() = default;
document::document(document&&) noexcept = default;
document& document::operator=(document&&) noexcept = default;

error document::parse(std::string_view body) {
    parsed_ = false;
    if (!parser_) parser_ = std::make_unique<dom::parser>();
    simdjson::padded_string padded(body);
    if (auto code = parser_->parse(padded).get(root_)) return parse_error_text(code);
    parsed_ = true;
    return std::nullopt;
}

value document::root() const { return value(root_, ""); }

error document::root_object(object& out, std::string_view type_name) const {
    if (!parsed_) return std::string("EOF");
    if (root_.is_null()) {
        out = object();
        return std::nullopt;
    }
    dom::object o;
    if (root_.get_object().get(o)) {
        return unmarshal_error(value(root_, "").kind(), "", type_name.empty() ? "struct" : type_name);
    }
    out = object(o, std::string(type_name));
    return std::nullopt;
}

}  // namespace pharos::json
