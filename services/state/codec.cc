#include "codec.hh"

#include <concepts>
#include <cstring>
#include <memory>
#include <type_traits>

namespace pharos::state {
namespace {

// --- byte level ---
struct writer {
    std::string& out;
    void u8(uint8_t v) { out.push_back(char(v)); }
    void varint(uint64_t v) {
        while (v >= 0x80) {
            out.push_back(char(uint8_t(v) | 0x80));
            v >>= 7;
        }
        out.push_back(char(v));
    }
    void bytes(std::string_view s) {
        varint(s.size());
        out.append(s);
    }
};

struct reader {
    std::string_view in;
    size_t pos = 0;
    bool ok = true;
    uint8_t u8() {
        if (pos >= in.size()) return fail(), 0;
        return uint8_t(in[pos++]);
    }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= in.size()) return fail(), 0;
            uint8_t b = uint8_t(in[pos++]);
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        return fail(), 0;
    }
    std::string bytes() {
        uint64_t n = varint();
        if (!ok || n > in.size() - pos) return fail(), std::string();
        std::string s(in.substr(pos, n));
        pos += n;
        return s;
    }
    // A count of elements that each take at least one byte: bounded by what is left.
    size_t count() {
        uint64_t n = varint();
        if (n > in.size() - pos) return fail(), 0;
        return size_t(n);
    }
    void fail() { ok = false; }
    bool done() const { return ok && pos == in.size(); }
};

// --- the fields of every encoded struct. The structured bindings name every
// member: a struct that gains one no longer compiles here. ---
template <class F>
void fields(kv_op& x, F&& f) {
    auto& [verb, key, value, flags, cas, session] = x;
    f(verb), f(key), f(value), f(flags), f(cas), f(session);
}
template <class F>
void fields(check_update& x, F&& f) {
    auto& [node, check_id, status, output] = x;
    f(node), f(check_id), f(status), f(output);
}
template <class F>
void fields(catalog::node& x, F&& f) {
    auto& [id, name, address, datacenter, tagged_addresses, meta, create_index, modify_index] = x;
    f(id), f(name), f(address), f(datacenter), f(tagged_addresses), f(meta), f(create_index), f(modify_index);
}
template <class F>
void fields(catalog::service_address& x, F&& f) {
    auto& [address, port] = x;
    f(address), f(port);
}
template <class F>
void fields(catalog::service& x, F&& f) {
    auto& [node, id, name, kind, tags, address, tagged_addresses, meta, port, weight_passing, weight_warning,
           enable_tag_override, create_index, modify_index] = x;
    f(node), f(id), f(name), f(kind), f(tags), f(address), f(tagged_addresses), f(meta), f(port), f(weight_passing);
    f(weight_warning), f(enable_tag_override), f(create_index), f(modify_index);
}
template <class F>
void fields(catalog::check_definition& x, F&& f) {
    auto& [http, header, method, body, tls_server_name, tls_skip_verify, tcp, udp, grpc, grpc_use_tls, os_service,
           interval_ns, timeout_ns, deregister_critical_service_after_ns] = x;
    f(http), f(header), f(method), f(body), f(tls_server_name), f(tls_skip_verify), f(tcp), f(udp), f(grpc);
    f(grpc_use_tls), f(os_service), f(interval_ns), f(timeout_ns), f(deregister_critical_service_after_ns);
}
template <class F>
void fields(catalog::check& x, F&& f) {
    auto& [node, check_id, name, status, notes, output, service_id, service_name, service_tags, type, exposed_port,
           definition, create_index, modify_index] = x;
    f(node), f(check_id), f(name), f(status), f(notes), f(output), f(service_id), f(service_name), f(service_tags);
    f(type), f(exposed_port), f(definition), f(create_index), f(modify_index);
}
template <class F>
void fields(catalog::register_request& x, F&& f) {
    auto& [n, skip_node_update, svc, checks] = x;
    f(n), f(skip_node_update), f(svc), f(checks);
}
template <class F>
void fields(catalog::deregister_request& x, F&& f) {
    auto& [node, service_id, check_id] = x;
    f(node), f(service_id), f(check_id);
}
template <class F>
void fields(kv::entry& x, F&& f) {
    auto& [key, value, flags, create_index, modify_index, lock_index, session] = x;
    f(key), f(value), f(flags), f(create_index), f(modify_index), f(lock_index), f(session);
}

template <class F>
void fields(check_updates& x, F&& f) {
    auto& [updates] = x;
    f(updates);
}
template <class F>
void fields(session::service_check& x, F&& f) {
    auto& [id, ns] = x;
    f(id), f(ns);
}
template <class F>
void fields(session::session& x, F&& f) {
    auto& [id, name, node, node_checks, node_checks_null, service_checks, service_checks_null, checks, lock_delay_ns,
           behavior, ttl, create_index, modify_index] = x;
    f(id), f(name), f(node), f(node_checks), f(node_checks_null), f(service_checks), f(service_checks_null);
    f(checks), f(lock_delay_ns), f(behavior), f(ttl), f(create_index), f(modify_index);
}
template <class F>
void fields(session_create& x, F&& f) {
    auto& [sess] = x;
    f(sess);
}
template <class F>
void fields(session_destroy& x, F&& f) {
    auto& [id] = x;
    f(id);
}
template <class F>
void fields(txn::kv_op& x, F&& f) {
    auto& [verb, key, value, flags, index, session] = x;
    f(verb), f(key), f(value), f(flags), f(index), f(session);
}
template <class F>
void fields(txn::node_op& x, F&& f) {
    auto& [verb, n] = x;
    f(verb), f(n);
}
template <class F>
void fields(txn::service_op& x, F&& f) {
    auto& [verb, node, svc] = x;
    f(verb), f(node), f(svc);
}
template <class F>
void fields(txn::check_op& x, F&& f) {
    auto& [verb, c] = x;
    f(verb), f(c);
}
template <class F>
void fields(txn::request& x, F&& f) {
    auto& [ops] = x;
    f(ops);
}

template <class T>
struct shared_of : std::false_type {};
template <class E>
struct shared_of<std::shared_ptr<const E>> : std::true_type {
    using element = E;
};

struct noop_field {
    template <class T>
    void operator()(T&) const {}
};
template <class T>
concept has_fields = requires(T& t) { fields(t, noop_field{}); };

// --- values ---
template <class T>
void put(writer& w, const T& v);
template <class T>
void get(reader& r, T& v);

// Decodes alternative `tag` of variant `v` (false if `tag` is out of range).
template <class V, size_t I = 0>
bool get_alternative(reader& r, uint64_t tag, V& v) {
    if constexpr (I < std::variant_size_v<V>) {
        if (tag != I) return get_alternative<V, I + 1>(r, tag, v);
        std::variant_alternative_t<I, V> alt;
        get(r, alt);
        v = std::move(alt);
        return true;
    } else {
        return false;
    }
}

template <class T>
void put(writer& w, const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
        w.u8(v ? 1 : 0);
    } else if constexpr (std::is_enum_v<T>) {
        w.varint(uint64_t(std::underlying_type_t<T>(v)));
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        int64_t s = int64_t(v);
        w.varint((uint64_t(s) << 1) ^ uint64_t(s >> 63));  // zigzag
    } else if constexpr (std::is_integral_v<T>) {
        w.varint(uint64_t(v));
    } else if constexpr (std::is_same_v<T, std::string>) {
        w.bytes(v);
    } else if constexpr (std::is_same_v<T, catalog::cstr>) {
        w.bytes(v.view());  // as a std::string
    } else if constexpr (requires { typename T::first_type; }) {
        put(w, v.first);
        put(w, v.second);
    } else if constexpr (requires { v.valueless_by_exception(); }) {
        w.varint(v.index());
        std::visit([&w](const auto& alt) { put(w, alt); }, v);
    } else if constexpr (requires { v.has_value(); *v; }) {
        w.u8(v ? 1 : 0);
        if (v) put(w, *v);
    } else if constexpr (requires { v.size(); v.begin(); }) {
        w.varint(v.size());
        for (const auto& e : v) put(w, e);
    } else if constexpr (shared_of<T>::value) {
        // A shared immutable value (a check's definition): encoded as the value
        // itself, null as the default value, so the bytes are those of the value
        // held inline (the format did not change when it moved out of line).
        using E = typename shared_of<T>::element;
        static const E empty{};
        put(w, v ? *v : empty);
    } else {
        static_assert(has_fields<T>, "codec: no encoding for this type; add a fields() overload");
        auto f = [&w](auto& m) { put(w, m); };
        fields(const_cast<T&>(v), f);
    }
}

template <class T>
void get(reader& r, T& v) {
    if constexpr (std::is_same_v<T, bool>) {
        uint8_t b = r.u8();
        if (b > 1) r.fail();
        v = b == 1;
    } else if constexpr (std::is_enum_v<T>) {
        v = T(std::underlying_type_t<T>(r.varint()));
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        uint64_t z = r.varint();
        v = T(int64_t(z >> 1) ^ -int64_t(z & 1));
    } else if constexpr (std::is_integral_v<T>) {
        v = T(r.varint());
    } else if constexpr (std::is_same_v<T, std::string>) {
        v = r.bytes();
    } else if constexpr (std::is_same_v<T, catalog::cstr>) {
        v = std::string_view(r.bytes());
    } else if constexpr (requires { typename T::first_type; }) {
        get(r, v.first);
        get(r, v.second);
    } else if constexpr (requires { v.valueless_by_exception(); }) {
        uint64_t tag = r.varint();
        if (!r.ok || !get_alternative(r, tag, v)) r.fail();
    } else if constexpr (requires { v.has_value(); v.emplace(); }) {
        uint8_t present = r.u8();
        v.reset();
        if (present == 1) get(r, v.emplace());
        else if (present != 0) r.fail();
    } else if constexpr (requires { v.size(); v.emplace_back(); }) {
        size_t n = r.count();
        v.clear();
        v.reserve(n);
        for (size_t i = 0; i < n && r.ok; ++i) get(r, v.emplace_back());
    } else if constexpr (shared_of<T>::value) {
        using E = typename shared_of<T>::element;
        E x{};
        get(r, x);
        if (x == E{})
            v.reset();  // the default value is held as null
        else
            v = std::make_shared<const E>(std::move(x));
    } else {
        static_assert(has_fields<T>, "codec: no decoding for this type; add a fields() overload");
        auto f = [&r](auto& m) { get(r, m); };
        fields(v, f);
    }
}

// Decodes alternative `tag` of `command`: one case per alternative, generated,
// so an alternative without a fields() overload fails to compile.
template <size_t I = 0>
bool decode_alternative(reader& r, uint64_t tag, command& out) {
    if constexpr (I < std::variant_size_v<command>) {
        if (tag != I) return decode_alternative<I + 1>(r, tag, out);
        std::variant_alternative_t<I, command> v;
        get(r, v);
        out = std::move(v);
        return r.ok;
    } else {
        return false;
    }
}

}  // namespace

void encode_command(const command& c, std::string& out) {
    writer w{out};
    w.u8(codec_version);
    w.varint(c.index());
    auto enc = [&w](const auto& alt) { put(w, alt); };
    std::visit(enc, c);
}

std::optional<command> decode_command(std::string_view bytes) {
    reader r{bytes};
    if (r.u8() != codec_version || !r.ok) return std::nullopt;
    uint64_t tag = r.varint();
    command c;
    if (!r.ok || !decode_alternative(r, tag, c) || !r.done()) return std::nullopt;
    return c;
}

void encode_entry(int64_t now_ns, const command& c, std::string& out) {
    writer w{out};
    w.u8(codec_version);
    put(w, now_ns);
    w.varint(c.index());
    auto enc = [&w](const auto& alt) { put(w, alt); };
    std::visit(enc, c);
}

std::optional<log_entry> decode_entry(std::string_view bytes) {
    reader r{bytes};
    if (r.u8() != codec_version || !r.ok) return std::nullopt;
    log_entry e;
    get(r, e.now_ns);
    uint64_t tag = r.varint();
    if (!r.ok || !decode_alternative(r, tag, e.c) || !r.done()) return std::nullopt;
    return e;
}

// Friend of kv::store and catalog::store: reads and rebuilds their private tables.
struct snapshot_codec {
    static void put_kv(writer& w, const kv::store& s) {
        w.varint(s.table_index_);
        w.varint(s.entries_.size());
        s.entries_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const kv::entry>& e) { put(w, *e); });
        w.varint(s.tombstones_.size());
        s.tombstones_.for_each_prefix("", [&](const std::string& k, uint64_t i) {
            w.bytes(k);
            w.varint(i);
        });
    }
    static void get_kv(reader& r, kv::store& s) {
        s = kv::store();
        s.table_index_ = r.varint();
        size_t n = r.count();
        for (size_t i = 0; i < n && r.ok; ++i) {
            kv::entry e;
            get(r, e);
            std::string key = e.key;
            s.entries_.set(key, std::make_shared<const kv::entry>(std::move(e)));
        }
        n = r.count();
        for (size_t i = 0; i < n && r.ok; ++i) {
            std::string k = r.bytes();
            uint64_t idx = r.varint();
            s.tombstones_.set(k, idx);
        }
    }
    template <class Row>
    static void put_rows(writer& w, const state::pmap<std::shared_ptr<const Row>>& m) {
        w.varint(m.size());
        m.for_each_prefix("", [&](const std::string& k, const std::shared_ptr<const Row>& row) {
            w.bytes(k);
            put(w, *row);
        });
    }
    template <class Row>
    static void get_rows(reader& r, state::pmap<std::shared_ptr<const Row>>& m) {
        size_t n = r.count();
        for (size_t i = 0; i < n && r.ok; ++i) {
            std::string k = r.bytes();
            Row row;
            get(r, row);
            m.set(k, std::make_shared<const Row>(std::move(row)));
        }
    }
    static void put_indexes(writer& w, const state::pmap<uint64_t>& m) {
        w.varint(m.size());
        m.for_each_prefix("", [&](const std::string& k, uint64_t i) {
            w.bytes(k);
            w.varint(i);
        });
    }
    static void get_indexes(reader& r, state::pmap<uint64_t>& m) {
        size_t n = r.count();
        for (size_t i = 0; i < n && r.ok; ++i) {
            std::string k = r.bytes();
            uint64_t idx = r.varint();
            m.set(k, idx);
        }
    }
    static void put_catalog(writer& w, const catalog::store& s) {
        w.varint(s.nodes_index_);
        w.varint(s.services_index_);
        w.varint(s.checks_index_);
        put_rows(w, s.nodes_);
        put_rows(w, s.services_);
        put_rows(w, s.checks_);
        put_indexes(w, s.service_idx_);
        put_indexes(w, s.node_idx_);
    }
    static void get_catalog(reader& r, catalog::store& s) {
        s = catalog::store();
        s.nodes_index_ = r.varint();
        s.services_index_ = r.varint();
        s.checks_index_ = r.varint();
        get_rows(r, s.nodes_);
        get_rows(r, s.services_);
        get_rows(r, s.checks_);
        get_indexes(r, s.service_idx_);
        get_indexes(r, s.node_idx_);
        if (!r.ok) return;
        // by_name_ is derived: the same rows, keyed by service name.
        s.services_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const catalog::service>& row) {
            s.by_name_.set(catalog::store::name_key(row->name, row->node, row->id), row);
        });
    }
    static void put_sessions(writer& w, const session::table& t) {
        w.varint(t.index_);
        put_rows(w, t.by_id_);
        w.varint(t.held_.size());
        t.held_.for_each_prefix("", [&](const std::string& k, uint8_t) { w.bytes(k); });
        w.varint(t.delays_.size());
        t.delays_.for_each_prefix("", [&](const std::string& k, int64_t until) {
            w.bytes(k);
            put(w, until);
        });
    }
    static void get_sessions(reader& r, session::table& t) {
        t = session::table();
        t.index_ = r.varint();
        get_rows(r, t.by_id_);
        size_t n = r.count();
        for (size_t i = 0; i < n && r.ok; ++i) t.held_.set(r.bytes(), uint8_t(1));
        n = r.count();
        for (size_t i = 0; i < n && r.ok; ++i) {
            std::string k = r.bytes();
            int64_t until = 0;
            get(r, until);
            t.delays_.set(k, until);
        }
        if (!r.ok) return;
        // by_node_ is derived: the same rows, keyed node\0id.
        t.by_id_.for_each_prefix("", [&](const std::string&, const std::shared_ptr<const session::session>& row) {
            t.by_node_.set(session::table::pair_key(row->node, row->id), row);
        });
    }
};

void encode_snapshot(const snapshot& s, std::string& out) {
    writer w{out};
    w.u8(codec_version);
    w.varint(s.index);
    snapshot_codec::put_kv(w, s.kv);
    snapshot_codec::put_catalog(w, s.catalog);
    snapshot_codec::put_sessions(w, s.sessions);
}

std::optional<std::string> decode_snapshot(std::string_view bytes, snapshot& out) {
    reader r{bytes};
    uint8_t v = r.u8();
    if (!r.ok) return "empty snapshot";
    if (v != codec_version) return "snapshot format version " + std::to_string(v) + " is not supported";
    snapshot s;
    s.index = r.varint();
    snapshot_codec::get_kv(r, s.kv);
    snapshot_codec::get_catalog(r, s.catalog);
    snapshot_codec::get_sessions(r, s.sessions);
    if (!r.done()) return "snapshot body is truncated or malformed";
    out = std::move(s);
    return std::nullopt;
}

}  // namespace pharos::state
