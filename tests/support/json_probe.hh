// Small readers for JSON response bodies in tests: sizes and values at JSON
// pointers ("/0/Service/ID"), with "<missing>" / "<bad json>" instead of throwing.
#pragma once
#include <simdjson.h>

#include <string>

namespace pharos::apitest {

// Elements of an array or members of an object at `ptr`; -1 if absent or not JSON.
inline long json_size(const std::string& body, const char* ptr = "") {
    simdjson::dom::parser p;
    simdjson::dom::element root;
    if (p.parse(body).get(root)) return -1;
    simdjson::dom::element e;
    if (root.at_pointer(ptr).get(e)) return -1;
    if (e.is_array()) return long(simdjson::dom::array(e).size());
    if (e.is_object()) return long(simdjson::dom::object(e).size());
    return -1;
}

// The value at `ptr`: a string's contents, else the JSON text (numbers, true, null...).
inline std::string json_at(const std::string& body, const char* ptr) {
    simdjson::dom::parser p;
    simdjson::dom::element root;
    if (p.parse(body).get(root)) return "<bad json>";
    simdjson::dom::element e;
    if (root.at_pointer(ptr).get(e)) return "<missing>";
    if (e.is_string()) return std::string(std::string_view(e));
    return simdjson::minify(e);
}

}  // namespace pharos::apitest
