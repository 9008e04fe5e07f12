// state/codec: every command alternative and a whole snapshot survive an
// encode/decode round trip byte for byte; truncated or garbled bytes are refused.
#include "services/state/codec.hh"

#include <gtest/gtest.h>

using namespace pharos;
using state::command;

namespace {

std::string enc(const command& c) {
    std::string s;
    state::encode_command(c, s);
    return s;
}

void expect_round_trip(const command& c) {
    std::string a = enc(c);
    std::optional<command> back = state::decode_command(a);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->index(), c.index());
    EXPECT_EQ(enc(*back), a);
}

template <size_t I = 0>
void round_trip_every_default_alternative() {
    if constexpr (I < std::variant_size_v<command>) {
        command c{std::in_place_index<I>};
        expect_round_trip(c);
        round_trip_every_default_alternative<I + 1>();
    }
}

catalog::register_request full_register() {
    catalog::register_request r;
    r.n.id = "b3a1c0de-0000-4000-8000-000000000001";
    r.n.name = "node-a";
    r.n.address = "10.0.0.1";
    r.n.datacenter = "dc1";
    r.n.tagged_addresses.push_back({"lan", "10.0.0.1"});
    r.n.meta.push_back({"rack", "r1"});
    r.skip_node_update = true;
    catalog::service s;
    s.id = "web-1";
    s.name = "web";
    s.kind = "connect-proxy";
    s.tags.push_back("v1");
    s.tags.push_back("primary");
    s.address = "10.0.0.2";
    s.tagged_addresses.push_back({"wan", catalog::service_address{"1.2.3.4", 443}});
    s.meta.push_back({"version", "1.2"});
    s.port = 8080;
    s.weight_passing = 10;
    s.weight_warning = 0;
    s.enable_tag_override = true;
    r.svc = s;
    catalog::check c;
    c.check_id = "web-1-http";
    c.name = "HTTP";
    c.status = "warning";
    c.notes = "n";
    c.output = "out\nput";
    c.service_id = "web-1";
    c.service_name = "web";
    c.service_tags.push_back("v1");
    c.type = "http";
    c.exposed_port = -5;
    catalog::check_definition d;
    d.http = "http://127.0.0.1:8080/health";
    d.header.push_back({"X-A", std::vector<std::string>(2, "b")});
    d.method = "POST";
    d.interval_ns = 10'000'000'000;
    d.timeout_ns = -1;
    d.tls_skip_verify = true;
    c.set_definition(d);
    r.checks.push_back(c);
    return r;
}

}  // namespace

TEST(codec, every_command_alternative_round_trips_with_default_fields) { round_trip_every_default_alternative(); }

TEST(codec, kv_ops_round_trip_with_every_field_set) {
    for (auto verb : {state::kv_verb::set, state::kv_verb::cas, state::kv_verb::lock, state::kv_verb::unlock,
                      state::kv_verb::remove, state::kv_verb::remove_cas, state::kv_verb::remove_tree}) {
        state::kv_op op;
        op.verb = verb;
        op.key = "a/b/c";
        op.value = std::string("\0binary\xff", 8);
        op.flags = ~uint64_t(0);
        op.cas = 1234567890123;
        op.session = "sess";
        std::optional<command> back = state::decode_command(enc(op));
        ASSERT_TRUE(back);
        const auto& b = std::get<state::kv_op>(*back);
        EXPECT_EQ(b.verb, verb);
        EXPECT_EQ(b.key, op.key);
        EXPECT_EQ(b.value, op.value);
        EXPECT_EQ(b.flags, op.flags);
        EXPECT_EQ(b.cas, op.cas);
        EXPECT_EQ(b.session, op.session);
    }
}

TEST(codec, catalog_commands_round_trip_with_every_field_set) {
    catalog::register_request r = full_register();
    expect_round_trip(r);
    auto back = state::decode_command(enc(r));
    ASSERT_TRUE(back);
    const auto& b = std::get<catalog::register_request>(*back);
    EXPECT_EQ(b.n.meta, r.n.meta);
    ASSERT_TRUE(b.svc);
    EXPECT_EQ(b.svc->tagged_addresses[0].second.port, 443);
    EXPECT_EQ(b.svc->tags, r.svc->tags);
    ASSERT_EQ(b.checks.size(), 1u);
    EXPECT_EQ(b.checks[0].exposed_port, -5);
    ASSERT_TRUE(b.checks[0].definition);
    EXPECT_EQ(b.checks[0].def().timeout_ns, -1);
    EXPECT_EQ(b.checks[0].def().header, r.checks[0].def().header);
    EXPECT_EQ(b.checks[0].def(), r.checks[0].def());

    // No definition (a TTL check): the bytes of an empty one, decoded back to null.
    catalog::register_request bare = r;
    bare.checks[0].definition.reset();
    catalog::register_request empty = r;
    empty.checks[0].definition = std::make_shared<const catalog::check_definition>();
    EXPECT_EQ(enc(bare), enc(empty));
    auto bare_back = state::decode_command(enc(bare));
    ASSERT_TRUE(bare_back);
    EXPECT_FALSE(std::get<catalog::register_request>(*bare_back).checks[0].definition);

    catalog::deregister_request d;
    d.node = "node-a";
    d.service_id = "web-1";
    d.check_id = "c";
    expect_round_trip(d);
    state::check_update u;
    u.node = "node-a";
    u.check_id = "c";
    u.status = "passing";
    u.output = "ok";
    expect_round_trip(u);
}

TEST(codec, truncated_or_garbled_commands_are_refused) {
    std::string a = enc(full_register());
    for (size_t n = 0; n < a.size(); ++n) EXPECT_FALSE(state::decode_command(a.substr(0, n))) << n;
    EXPECT_FALSE(state::decode_command(a + "x"));
    std::string bad_version = a;
    bad_version[0] = 9;
    EXPECT_FALSE(state::decode_command(bad_version));
    std::string bad_tag = a;
    bad_tag[1] = 100;
    EXPECT_FALSE(state::decode_command(bad_tag));
}

TEST(codec, a_snapshot_round_trips_with_tables_indexes_and_tombstones) {
    state::fsm m;
    state::change_set cs;
    uint64_t i = 2;
    auto kv = [](state::kv_verb v, std::string k, std::string val) {
        state::kv_op op;
        op.verb = v;
        op.key = std::move(k);
        op.value = std::move(val);
        return op;
    };
    (void)m.apply(kv(state::kv_verb::set, "a/1", "one"), i++, cs);
    (void)m.apply(kv(state::kv_verb::set, "a/2", "two"), i++, cs);
    (void)m.apply(kv(state::kv_verb::set, "b", std::string(1000, 'x')), i++, cs);
    (void)m.apply(kv(state::kv_verb::remove, "a/2", ""), i++, cs);
    catalog::register_request r1 = full_register();
    r1.svc->kind = "";
    r1.skip_node_update = false;
    state::result res = m.apply(r1, i++, cs);
    EXPECT_TRUE(res.ok) << res.error;
    catalog::register_request r2 = r1;
    r2.n.name = "node-b";
    res = m.apply(r2, i++, cs);
    EXPECT_TRUE(res.ok) << res.error;
    catalog::deregister_request d;
    d.node = "node-b";
    d.service_id = "web-1";
    (void)m.apply(d, i++, cs);

    std::string bytes;
    state::encode_snapshot(m.tables(), bytes);
    state::snapshot back;
    ASSERT_FALSE(state::decode_snapshot(bytes, back).has_value());
    std::string again;
    state::encode_snapshot(back, again);
    EXPECT_EQ(again, bytes);

    const state::snapshot& s = m.tables();
    EXPECT_EQ(back.index, s.index);
    EXPECT_EQ(back.kv.size(), 2u);
    EXPECT_EQ(back.kv.get("a/1")->value, "one");
    EXPECT_EQ(back.kv.prefix_index("a/"), s.kv.prefix_index("a/"));  // the tombstone of a/2
    EXPECT_EQ(back.kv.table_index(), s.kv.table_index());
    EXPECT_EQ(back.catalog.node_count(), 2u);
    EXPECT_EQ(back.catalog.service_index("web"), s.catalog.service_index("web"));
    EXPECT_EQ(back.catalog.node_index("node-b"), s.catalog.node_index("node-b"));
    EXPECT_EQ(back.catalog.services_index(), s.catalog.services_index());
    size_t instances = 0;
    back.catalog.for_each_instance("web", [&](const catalog::service& sv) {
        ++instances;
        EXPECT_EQ(sv.node, "node-a");
    });
    EXPECT_EQ(instances, 1u);

    for (size_t n : {size_t(0), size_t(1), bytes.size() / 2, bytes.size() - 1}) {
        state::snapshot junk;
        EXPECT_TRUE(state::decode_snapshot(std::string_view(bytes).substr(0, n), junk).has_value()) << n;
    }
}

// Sessions, the keys they hold and lock-delay deadlines are snapshot state;
// a log entry carries the clock reading the command was applied with.
TEST(codec, sessions_held_locks_and_lock_delays_survive_a_snapshot_and_entries_keep_their_time) {
    state::fsm m;
    state::change_set cs;
    uint64_t i = 2;
    catalog::register_request r = full_register();
    r.svc->kind = "";
    r.skip_node_update = false;
    r.checks.clear();
    state::result reg = m.apply(r, i++, cs);
    ASSERT_TRUE(reg.ok) << reg.error;
    state::session_create sc;
    sc.s.id = "11111111-2222-4333-8444-555555555555";
    sc.s.node = r.n.name;
    sc.s.lock_delay_ns = 5'000'000'000;
    state::result res = m.apply(sc, i++, cs, 1000);
    ASSERT_TRUE(res.ok) << res.error;
    state::session_create sc2 = sc;
    sc2.s.id = "11111111-2222-4333-8444-666666666666";
    ASSERT_TRUE(m.apply(sc2, i++, cs, 1000).ok);
    state::kv_op lock;
    lock.verb = state::kv_verb::lock;
    lock.key = "leader";
    lock.value = "me";
    lock.session = sc.s.id;
    ASSERT_TRUE(m.apply(lock, i++, cs, 2000).ok);
    lock.key = "other";
    lock.session = sc2.s.id;
    ASSERT_TRUE(m.apply(lock, i++, cs, 2000).ok);
    state::session_destroy sd;
    sd.id = sc2.s.id;  // releases "other" and puts it under lock-delay
    ASSERT_TRUE(m.apply(sd, i++, cs, 3000).ok);

    std::string bytes;
    state::encode_snapshot(m.tables(), bytes);
    state::snapshot back;
    ASSERT_FALSE(state::decode_snapshot(bytes, back).has_value());
    std::string again;
    state::encode_snapshot(back, again);
    EXPECT_EQ(again, bytes);
    ASSERT_NE(back.sessions.get(sc.s.id), nullptr);
    EXPECT_EQ(back.sessions.get(sc2.s.id), nullptr);
    EXPECT_EQ(back.sessions.get(sc.s.id)->node, r.n.name);
    EXPECT_EQ(back.sessions.index(), m.tables().sessions.index());
    EXPECT_EQ(back.sessions.held_keys(sc.s.id), m.tables().sessions.held_keys(sc.s.id));
    EXPECT_EQ(back.sessions.lock_delay_until("other"), 3000 + 5'000'000'000);
    size_t on_node = 0;
    back.sessions.for_each_on_node(r.n.name, [&](const session::session&) { ++on_node; });
    EXPECT_EQ(on_node, 1u);

    // The restored tables behave as the originals: the lock-delay still refuses
    // another session's acquire, from a state machine rebuilt on them.
    state::fsm restored(std::move(back));
    state::session_create sc3 = sc;
    sc3.s.id = "11111111-2222-4333-8444-777777777777";
    ASSERT_TRUE(restored.apply(sc3, i, cs, 4000).ok);
    lock.key = "other";
    lock.session = sc3.s.id;
    EXPECT_FALSE(restored.apply(lock, i + 1, cs, 5000).ok);
    EXPECT_TRUE(restored.apply(lock, i + 2, cs, 3000 + 5'000'000'001).ok);

    std::string entry;
    state::encode_entry(-42, command(lock), entry);
    auto e = state::decode_entry(entry);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->now_ns, -42);
    EXPECT_EQ(enc(e->c), enc(command(lock)));
    EXPECT_FALSE(state::decode_entry(entry.substr(0, entry.size() - 1)).has_value());
}
