// json::document, json::object, json::value: decode Consul request bodies the
// way Consul's Go decoder does, over simdjson's DOM.
//
//   json::document doc;
//   if (auto err = doc.parse(body)) return 400 "Request decode failed: " + *err;
//   json::object o;
//   if (auto err = doc.root_object(o)) return 400 ...;   // `null` gives an empty object
//   std::string name;
//   if (auto err = o.get_string("Name", name)) return 400 ...;
//   json::object check;
//   if (auto err = o.get_object("Check", check)) ...;
//   for (const json::member& m : o) if (!known(m.key)) warn(m.key);
//
// Contract:
// - Every getter returns `error` (std::optional<std::string>): nullopt on
//   success. An absent key or a JSON null leaves `out` unchanged and is not an
//   error (Go: null is a no-op). A wrong JSON type is an error naming the field
//   and the expected Go type: `json: cannot unmarshal number into Go struct
//   field .Name of type string`.
// - Key lookup is Consul's: ASCII case-insensitive, and underscores are
//   ignored on both sides, so "ServiceID" matches "serviceid", "service_id" and
//   "Service_ID" (a superset of Consul's explicit alias table). When several
//   keys match, an exact-case match wins, else the last one (Go: last wins).
// - Integers accept any JSON number with an integral value in range (1, 1.0,
//   1e3). Durations accept a Go duration string ("10s", "1m30s") or a number of
//   nanoseconds (fraction truncated), as Consul does.
// - Lists and maps are replaced, not merged; null elements become "" (Go's zero).
// - Lifetime: objects, arrays and values point into their document's parser;
//   they are valid until the document is destroyed or parses again. A
//   document is movable (the parser lives on the heap) but not copyable.
// - Differences from Go's decoder: text after the first value is rejected,
//   invalid UTF-8 inside strings is rejected (Go substitutes U+FFFD), and
//   syntax errors do not give the offending character.
#pragma once
#include <simdjson.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pharos::json {

using error = std::optional<std::string>;

class object;
class array;

// Consul's key match: ASCII case-insensitive, underscores ignored.
bool key_matches(std::string_view key, std::string_view name) noexcept;

// One JSON value with the dotted field path used in error messages.
class value {
public:
    value(simdjson::dom::element el, std::string path) : el_(el), path_(std::move(path)) {}

    bool is_null() const noexcept { return el_.is_null(); }
    bool is_string() const noexcept { return el_.is_string(); }
    bool is_number() const noexcept { return el_.is_number(); }
    bool is_bool() const noexcept { return el_.is_bool(); }
    bool is_object() const noexcept { return el_.is_object(); }
    bool is_array() const noexcept { return el_.is_array(); }
    // Go's name for the JSON kind: "string", "number", "bool", "array", "object", "null".
    std::string_view kind() const noexcept;
    const std::string& path() const noexcept { return path_; }
    simdjson::dom::element raw() const noexcept { return el_; }

    // Null leaves `out` unchanged; see the contract at the top.
    error get(std::string& out) const;
    error get(bool& out) const;
    error get(int64_t& out) const;
    error get(uint64_t& out) const;
    error get(int& out) const;
    error get(double& out) const;
    error get(std::vector<std::string>& out) const;
    error get(std::map<std::string, std::string>& out) const;
    error get(std::map<std::string, std::vector<std::string>>& out) const;  // http.Header
    error get(std::chrono::nanoseconds& out) const;                         // Go duration or ns
    error get(object& out) const;
    error get(array& out) const;

    // The error for "this value is not a `go_type`", in Go's words.
    std::string type_error(std::string_view go_type) const;

private:
    simdjson::dom::element el_;
    std::string path_;
};

struct member {
    std::string_view key;  // as written in the body
    value val;
};

// A JSON object, or an empty one when default-constructed.
class object {
public:
    object() = default;
    object(simdjson::dom::object o, std::string path) : obj_(o), valid_(true), path_(std::move(path)) {}

    // The member matching `name` (see the contract), nullopt if absent or null.
    std::optional<value> find(std::string_view name) const;
    bool has(std::string_view name) const { return find(name).has_value(); }

    template <class T>
    error get(std::string_view name, T& out) const {
        auto v = find(name);
        if (!v) return std::nullopt;
        return v->get(out);
    }
    error get_string(std::string_view name, std::string& out) const { return get(name, out); }
    error get_bool(std::string_view name, bool& out) const { return get(name, out); }
    error get_int(std::string_view name, int64_t& out) const { return get(name, out); }
    error get_int(std::string_view name, int& out) const { return get(name, out); }
    error get_uint(std::string_view name, uint64_t& out) const { return get(name, out); }
    error get_double(std::string_view name, double& out) const { return get(name, out); }
    error get_strings(std::string_view name, std::vector<std::string>& out) const { return get(name, out); }
    error get_string_map(std::string_view name, std::map<std::string, std::string>& out) const {
        return get(name, out);
    }
    error get_header(std::string_view name, std::map<std::string, std::vector<std::string>>& out) const {
        return get(name, out);
    }
    error get_duration(std::string_view name, std::chrono::nanoseconds& out) const { return get(name, out); }
    error get_object(std::string_view name, object& out) const { return get(name, out); }
    error get_array(std::string_view name, array& out) const { return get(name, out); }

    size_t size() const noexcept { return valid_ ? obj_.size() : 0; }
    bool empty() const noexcept { return size() == 0; }
    const std::string& path() const noexcept { return path_; }
    // Only meaningful when not default-constructed.
    simdjson::dom::object raw() const noexcept { return obj_; }

    // Members in body order, duplicates included.
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = member;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = member;
        iterator() = default;
        member operator*() const;
        iterator& operator++() {
            ++it_;
            return *this;
        }
        iterator operator++(int) {
            iterator t = *this;
            ++it_;
            return t;
        }
        bool operator==(const iterator& o) const { return owner_ == nullptr || it_ == o.it_; }

    private:
        friend class object;
        iterator(const object* owner, simdjson::dom::object::iterator it) : owner_(owner), it_(it) {}
        const object* owner_ = nullptr;  // null: the empty object's iterators, all equal
        simdjson::dom::object::iterator it_;
    };
    iterator begin() const { return valid_ ? iterator(this, obj_.begin()) : iterator(); }
    iterator end() const { return valid_ ? iterator(this, obj_.end()) : iterator(); }

private:
    simdjson::dom::object obj_;
    bool valid_ = false;
    std::string path_;
};

// A JSON array, or an empty one when default-constructed. Elements carry the
// array's path (as Go's errors do).
class array {
public:
    array() = default;
    array(simdjson::dom::array a, std::string path) : arr_(a), valid_(true), path_(std::move(path)) {}

    size_t size() const noexcept { return valid_ ? arr_.size() : 0; }
    bool empty() const noexcept { return size() == 0; }
    const std::string& path() const noexcept { return path_; }
    simdjson::dom::array raw() const noexcept { return arr_; }

    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = value;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = value;
        iterator() = default;
        value operator*() const { return value(*it_, owner_->path_); }
        iterator& operator++() {
            ++it_;
            return *this;
        }
        iterator operator++(int) {
            iterator t = *this;
            ++it_;
            return t;
        }
        bool operator==(const iterator& o) const { return owner_ == nullptr || it_ == o.it_; }

    private:
        friend class array;
        iterator(const array* owner, simdjson::dom::array::iterator it) : owner_(owner), it_(it) {}
        const array* owner_ = nullptr;
        simdjson::dom::array::iterator it_;
    };
    iterator begin() const { return valid_ ? iterator(this, arr_.begin()) : iterator(); }
    iterator end() const { return valid_ ? iterator(this, arr_.end()) : iterator(); }

private:
    simdjson::dom::array arr_;
    bool valid_ = false;
    std::string path_;
};

// One parsed request body. Not copyable; movable.
class document {
public:
    document();
    ~document();
    document(document&&) noexcept;
    document& operator=(document&&) noexcept;

    // Copies `body` into a padded buffer and parses it. On failure returns
    // Go-style text ("EOF" for an empty body, "unexpected EOF" for a cut-off
    // one); values from an earlier parse are invalid afterwards either way.
    error parse(std::string_view body);

    // The root value; path is `type_name` (default empty, so fields read ".Name").
    value root() const;
    // The root as an object. JSON null gives an empty object; anything else
    // not an object is `json: cannot unmarshal array into Go value of type T`.
    // `type_name` prefixes field paths in errors, as Go's struct name does.
    error root_object(object& out, std::string_view type_name = {}) const;

private:
    std::unique_ptr<simdjson::dom::parser> parser_;
    simdjson::dom::element root_;
    bool parsed_ = false;
};

}  // namespace pharos::json
