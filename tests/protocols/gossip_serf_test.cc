// Serf's tag encoding in memberlist Meta, its intents, queries and user events,
// against byte vectors built by hand from serf's format (0xff + go-msgpack map;
// type byte + msgpack map of the message struct's fields, in Go field order).
#include <gtest/gtest.h>

#include "protocols/gossip/serf.hh"

using namespace pharos::gossip::serf;

namespace {
std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b) s.push_back(char(c));
    return s;
}
}  // namespace

TEST(gossip_serf, tags_encode_as_magic_byte_and_sorted_msgpack_map) {
    tags t;
    t["role"] = "node";
    t["dc"] = "dc1";
    auto meta = encode_tags(t);
    ASSERT_TRUE(meta);
    std::string want =
        bytes({0xff, 0x82, 0xa2}) + "dc" + bytes({0xa3}) + "dc1" + bytes({0xa4}) + "role" + bytes({0xa4}) + "node";
    EXPECT_EQ(*meta, want);
    EXPECT_EQ(decode_tags(*meta), t);
}

TEST(gossip_serf, tags_round_trip_long_values_in_str16) {
    tags t;
    t["id"] = "5b6f2a4e-3b1e-4f49-9a8e-1f3c2d4b5a6c";  // 36 bytes: str8 is never written, str16 is
    t["empty"] = "";
    auto meta = encode_tags(t);
    ASSERT_TRUE(meta);
    EXPECT_NE(meta->find(bytes({0xda, 0x00, 0x24})), std::string::npos);
    EXPECT_EQ(decode_tags(*meta), t);
}

TEST(gossip_serf, tags_over_512_bytes_are_refused) {
    tags t;
    t["big"] = std::string(600, 'x');
    EXPECT_FALSE(encode_tags(t));
}

TEST(gossip_serf, meta_without_magic_is_serf_protocol_2_role) {
    EXPECT_TRUE(decode_tags("").empty());
    tags t = decode_tags("web");
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t["role"], "web");
}

TEST(gossip_serf, malformed_tag_map_keeps_what_was_read) {
    std::string meta = bytes({0xff, 0x82, 0xa1}) + "a" + bytes({0xa1}) + "b" + bytes({0xa5}) + "tr";
    tags t = decode_tags(meta);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t["a"], "b");
}

TEST(gossip_serf, leave_intent_matches_serf_message_leave) {
    leave_intent l;
    l.ltime = 5;
    l.node = "n1";
    std::string want = bytes({0x00, 0x83, 0xa5}) + "LTime" + bytes({0x05, 0xa4}) + "Node" + bytes({0xa2}) + "n1" +
                       bytes({0xa5}) + "Prune" + bytes({0xc2});
    EXPECT_EQ(encode_leave(l), want);
    auto back = decode_leave(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ltime, 5u);
    EXPECT_EQ(back->node, "n1");
    EXPECT_FALSE(back->prune);
    l.prune = true;
    l.ltime = 300;
    back = decode_leave(encode_leave(l));
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->prune);
    EXPECT_EQ(back->ltime, 300u);
}

TEST(gossip_serf, other_serf_messages_are_not_leave_intents) {
    EXPECT_FALSE(decode_leave(""));
    EXPECT_FALSE(decode_leave(bytes({0x01, 0x80})));                                  // join intent
    EXPECT_FALSE(decode_leave(bytes({0x00, 0x81, 0xa5}) + "LTime" + bytes({0x05})));  // no Node
    EXPECT_FALSE(decode_leave(bytes({0x00, 0x83, 0xa5}) + "LTi"));                    // cut short
}

TEST(gossip_serf, join_intent_matches_serf_message_join) {
    join_intent j{7, "a"};
    std::string want = bytes({0x01, 0x82, 0xa5}) + "LTime" + bytes({0x07, 0xa4}) + "Node" + bytes({0xa1}) + "a";
    EXPECT_EQ(encode_join(j), want);
    auto back = decode_join(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ltime, 7u);
    EXPECT_EQ(back->node, "a");
    EXPECT_FALSE(decode_join(encode_leave(leave_intent{1, "a", false})));
}

// ------------------------------------------------------------------ queries

namespace {
std::string hdr(int b, std::string_view s) { return bytes({b}) + std::string(s); }
const std::string key16 = "0123456789abcdef";             // raw
const std::string key16_b64 = "MDEyMzQ1Njc4OWFiY2RlZg==";  // 24 chars: fixstr 0xb8
}  // namespace

TEST(gossip_serf, query_matches_serf_message_query) {
    query q;
    q.ltime = 5;
    q.id = 0x01020304;
    q.addr = bytes({127, 0, 0, 1});
    q.port = 8301;
    q.source_node = "a1";
    q.timeout_ns = 3'200'000'000;  // 3.2 s: above int32, so int64 (0xd3) as go-msgpack v2 writes a Duration
    q.name = "_serf_list-keys";
    q.payload = encode_key_request("");
    EXPECT_EQ(q.payload, bytes({0x07, 0x81, 0xa3}) + "Key" + bytes({0xc0}));
    std::string want = bytes({0x04, 0x8b}) +                                          //
                       hdr(0xa5, "LTime") + bytes({0x05}) +                           //
                       hdr(0xa2, "ID") + bytes({0xce, 1, 2, 3, 4}) +                  //
                       hdr(0xa4, "Addr") + bytes({0xa4, 127, 0, 0, 1}) +              //
                       hdr(0xa4, "Port") + bytes({0xcd, 0x20, 0x6d}) +                //
                       hdr(0xaa, "SourceNode") + hdr(0xa2, "a1") +                    //
                       hdr(0xa7, "Filters") + bytes({0xc0}) +                         //
                       hdr(0xa5, "Flags") + bytes({0x00}) +                           //
                       hdr(0xab, "RelayFactor") + bytes({0x00}) +                     //
                       hdr(0xa7, "Timeout") + bytes({0xd3, 0, 0, 0, 0, 0xbe, 0xbc, 0x20, 0x00}) +  //
                       hdr(0xa4, "Name") + hdr(0xaf, "_serf_list-keys") +             //
                       hdr(0xa7, "Payload") + hdr(0xa7, q.payload);
    EXPECT_EQ(encode_query(q), want);
    auto back = decode_query(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ltime, 5u);
    EXPECT_EQ(back->id, 0x01020304u);
    EXPECT_EQ(back->addr, q.addr);
    EXPECT_EQ(back->port, 8301);
    EXPECT_EQ(back->source_node, "a1");
    EXPECT_TRUE(back->filters.empty());
    EXPECT_EQ(back->timeout_ns, 3'200'000'000);
    EXPECT_EQ(back->name, "_serf_list-keys");
    EXPECT_EQ(back->payload, q.payload);
    EXPECT_EQ(decode_key_request(back->payload), std::string());
}

TEST(gossip_serf, user_event_matches_serf_message_user_event) {
    user_event e;
    e.ltime = 300;
    e.name = "consul:event:deploy";
    e.payload = "abc";
    std::string want = bytes({0x03, 0x84}) +                           //
                       hdr(0xa5, "LTime") + bytes({0xcd, 0x01, 0x2c}) +  //
                       hdr(0xa4, "Name") + hdr(0xb3, e.name) +         //
                       hdr(0xa7, "Payload") + hdr(0xa3, "abc") +       //
                       hdr(0xa2, "CC") + bytes({0xc2});
    EXPECT_EQ(encode_user_event(e), want);
    auto back = decode_user_event(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ltime, 300u);
    EXPECT_EQ(back->name, e.name);
    EXPECT_EQ(back->payload, "abc");
    EXPECT_FALSE(back->coalesce);
    // An empty payload is a Go nil []byte; CC true is 0xc3.
    e.payload.clear();
    e.coalesce = true;
    e.ltime = 1;
    EXPECT_EQ(encode_user_event(e), bytes({0x03, 0x84}) + hdr(0xa5, "LTime") + bytes({0x01}) + hdr(0xa4, "Name") +
                                        hdr(0xb3, e.name) + hdr(0xa7, "Payload") + bytes({0xc0}) + hdr(0xa2, "CC") +
                                        bytes({0xc3}));
}

TEST(gossip_serf, user_event_decodes_bin_payload_any_order_and_skips_unknown_fields) {
    // A Serf 0.1 event (no CC), Payload in bin8, fields reordered, an unknown field.
    std::string msg = bytes({0x03, 0x84}) + hdr(0xa7, "Payload") + bytes({0xc4, 2, 'h', 'i'}) + hdr(0xa4, "Name") +
                      hdr(0xa1, "x") + hdr(0xa5, "Extra") + bytes({0x92, 1, 2}) + hdr(0xa5, "LTime") +
                      bytes({0xd3, 0, 0, 0, 0, 0, 0, 0, 9});
    auto e = decode_user_event(msg);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->ltime, 9u);
    EXPECT_EQ(e->name, "x");
    EXPECT_EQ(e->payload, "hi");
    EXPECT_FALSE(e->coalesce);
    EXPECT_FALSE(decode_user_event(msg.substr(0, msg.size() - 1)));  // truncated
    EXPECT_FALSE(decode_user_event(bytes({0x04, 0x80})));             // a query
    EXPECT_FALSE(decode_user_event(""));
}

TEST(gossip_serf, push_pull_state_matches_serf_message_push_pull) {
    push_pull_state p;
    p.ltime = 3;
    p.status_ltimes["a"] = 2;
    p.event_ltime = 9;
    push_pull_state::events_at at;
    at.ltime = 8;
    at.events.emplace_back("e", "p");
    p.events.push_back(at);
    p.query_ltime = 1;
    std::string want = bytes({0x02, 0x86}) +                                           //
                       hdr(0xa5, "LTime") + bytes({0x03}) +                            //
                       hdr(0xac, "StatusLTimes") + bytes({0x81}) + hdr(0xa1, "a") + bytes({0x02}) +  //
                       hdr(0xab, "LeftMembers") + bytes({0x90}) +                      //
                       hdr(0xaa, "EventLTime") + bytes({0x09}) +                       //
                       hdr(0xa6, "Events") + bytes({0x91, 0x82}) + hdr(0xa5, "LTime") + bytes({0x08}) +
                       hdr(0xa6, "Events") + bytes({0x91, 0x82}) + hdr(0xa4, "Name") + hdr(0xa1, "e") +
                       hdr(0xa7, "Payload") + hdr(0xa1, "p") +  //
                       hdr(0xaa, "QueryLTime") + bytes({0x01});
    EXPECT_EQ(encode_push_pull_state(p), want);
    auto back = decode_push_pull_state(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ltime, 3u);
    EXPECT_EQ(back->status_ltimes, p.status_ltimes);
    EXPECT_TRUE(back->left_members.empty());
    EXPECT_EQ(back->event_ltime, 9u);
    ASSERT_EQ(back->events.size(), 1u);
    EXPECT_EQ(back->events[0].ltime, 8u);
    EXPECT_EQ(back->events[0].events, at.events);
    EXPECT_EQ(back->query_ltime, 1u);
}

TEST(gossip_serf, push_pull_state_reads_gos_nil_buffer_slots) {
    // Go sends the whole event buffer: nil for each empty slot; and a nil map and nil slice.
    std::string msg = bytes({0x02, 0x84}) + hdr(0xac, "StatusLTimes") + bytes({0xc0}) + hdr(0xab, "LeftMembers") +
                      bytes({0x92}) + hdr(0xa1, "x") + hdr(0xa1, "y") + hdr(0xa6, "Events") + bytes({0x93, 0xc0}) +
                      bytes({0x82}) + hdr(0xa5, "LTime") + bytes({0x05}) + hdr(0xa6, "Events") + bytes({0xc0}) +
                      bytes({0xc0}) + hdr(0xaa, "EventLTime") + bytes({0xcd, 0x01, 0x00});
    auto p = decode_push_pull_state(msg);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->left_members, (std::vector<std::string>{"x", "y"}));
    ASSERT_EQ(p->events.size(), 1u);
    EXPECT_EQ(p->events[0].ltime, 5u);
    EXPECT_TRUE(p->events[0].events.empty());
    EXPECT_EQ(p->event_ltime, 256u);
    EXPECT_FALSE(decode_push_pull_state(msg.substr(0, msg.size() - 1)));
    EXPECT_FALSE(decode_push_pull_state("PSTATE"));  // a plain memberlist peer's user state
}

TEST(gossip_serf, query_timeout_in_int32_and_small_ints_as_go_msgpack_v2) {
    query q;
    q.timeout_ns = 1'000'000'000;  // 0x3b9aca00
    q.flags = query_flag_ack | query_flag_no_broadcast;
    q.relay_factor = 200;  // a uint8 above 127 is unsigned (0xcc)
    std::string e = encode_query(q);
    EXPECT_NE(e.find(hdr(0xa7, "Timeout") + bytes({0xd2, 0x3b, 0x9a, 0xca, 0x00})), std::string::npos);
    EXPECT_NE(e.find(hdr(0xa5, "Flags") + bytes({0x03})), std::string::npos);
    EXPECT_NE(e.find(hdr(0xab, "RelayFactor") + bytes({0xcc, 200})), std::string::npos);
    auto back = decode_query(e);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->timeout_ns, 1'000'000'000);
    EXPECT_EQ(back->flags, 3u);
    EXPECT_EQ(back->relay_factor, 200);
}

TEST(gossip_serf, query_decodes_other_int_and_byte_forms_and_skips_unknown_fields) {
    // go-msgpack 0.5.x forms: Timeout unsigned (0xce), Addr as bin8, a Name in str8, an unknown key.
    std::string msg = bytes({0x04, 0x86}) + hdr(0xa5, "LTime") + bytes({0xcf, 0, 0, 0, 0, 0, 0, 0x01, 0x00}) +
                      hdr(0xa4, "Addr") + bytes({0xc4, 4, 10, 0, 0, 7}) + hdr(0xa7, "Timeout") +
                      bytes({0xce, 0x3b, 0x9a, 0xca, 0x00}) + hdr(0xa4, "Name") + bytes({0xd9, 4}) + "ping" +
                      hdr(0xa5, "Extra") + bytes({0x92, 1, 2}) + hdr(0xa7, "Filters") + bytes({0x91}) +
                      hdr(0xa5, bytes({0, 0x91, 0xa2}) + "n1");
    auto q = decode_query(msg);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->ltime, 256u);
    EXPECT_EQ(q->addr, bytes({10, 0, 0, 7}));
    EXPECT_EQ(q->timeout_ns, 1'000'000'000);
    EXPECT_EQ(q->name, "ping");
    ASSERT_EQ(q->filters.size(), 1u);
    auto f = decode_filter(q->filters[0]);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->type, filter_type::node);
    EXPECT_EQ(f->nodes, std::vector<std::string>{"n1"});
    EXPECT_FALSE(decode_query(msg.substr(0, msg.size() - 2)));  // truncated
    EXPECT_FALSE(decode_query(bytes({0x05, 0x80})));            // a response, not a query
}

TEST(gossip_serf, filters_match_serf_encode_filter) {
    filter n;
    n.nodes = {"a1", "a2"};
    EXPECT_EQ(encode_filter(n), bytes({0x00, 0x92}) + hdr(0xa2, "a1") + hdr(0xa2, "a2"));
    filter t;
    t.type = filter_type::tag;
    t.tag = "role";
    t.expr = "^cons";
    std::string te = bytes({0x01, 0x82}) + hdr(0xa3, "Tag") + hdr(0xa4, "role") + hdr(0xa4, "Expr") + hdr(0xa5, "^cons");
    EXPECT_EQ(encode_filter(t), te);
    auto back = decode_filter(te);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->type, filter_type::tag);
    EXPECT_EQ(back->tag, "role");
    EXPECT_EQ(back->expr, "^cons");
    EXPECT_FALSE(decode_filter(bytes({0x02, 0x90})));
}

TEST(gossip_serf, key_response_in_query_response_matches_serf) {
    node_key_response k;
    k.result = true;
    k.keys.push_back(key16_b64);
    k.primary_key = key16_b64;
    std::string kr = bytes({0x08, 0x84}) + hdr(0xa6, "Result") + bytes({0xc3}) + hdr(0xa7, "Message") +
                     bytes({0xa0}) + hdr(0xa4, "Keys") + bytes({0x91}) + hdr(0xb8, key16_b64) +
                     hdr(0xaa, "PrimaryKey") + hdr(0xb8, key16_b64);
    ASSERT_EQ(kr.size(), 86u);
    EXPECT_EQ(encode_key_response(k), kr);

    query_response r;
    r.ltime = 5;
    r.id = 7;
    r.from = "a2";
    r.payload = kr;
    std::string want = bytes({0x05, 0x85}) + hdr(0xa5, "LTime") + bytes({0x05}) + hdr(0xa2, "ID") + bytes({0x07}) +
                       hdr(0xa4, "From") + hdr(0xa2, "a2") + hdr(0xa5, "Flags") + bytes({0x00}) +
                       hdr(0xa7, "Payload") + bytes({0xda, 0x00, 0x56}) + kr;
    EXPECT_EQ(encode_query_response(r), want);
    auto back = decode_query_response(want);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->from, "a2");
    EXPECT_EQ(back->flags, 0u);
    auto kb = decode_key_response(back->payload);
    ASSERT_TRUE(kb);
    EXPECT_TRUE(kb->result);
    EXPECT_EQ(kb->keys, std::vector<std::string>{key16_b64});
    EXPECT_EQ(kb->primary_key, key16_b64);
}

TEST(gossip_serf, failed_key_response_has_nil_keys_and_an_ack_has_no_payload) {
    node_key_response k;
    k.message = "Removing the primary key is not allowed";
    std::string e = encode_key_response(k);
    EXPECT_NE(e.find(hdr(0xa4, "Keys") + bytes({0xc0})), std::string::npos);
    EXPECT_NE(e.find(hdr(0xa6, "Result") + bytes({0xc2})), std::string::npos);
    auto back = decode_key_response(e);
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->result);
    EXPECT_TRUE(back->keys.empty());
    EXPECT_EQ(back->message, k.message);
    EXPECT_FALSE(decode_key_response(e.substr(1)));  // no type byte

    query_response ack;
    ack.ltime = 1;
    ack.id = 2;
    ack.from = "x";
    ack.flags = query_flag_ack;
    EXPECT_EQ(encode_query_response(ack), bytes({0x05, 0x85}) + hdr(0xa5, "LTime") + bytes({1}) + hdr(0xa2, "ID") +
                                              bytes({2}) + hdr(0xa4, "From") + hdr(0xa1, "x") + hdr(0xa5, "Flags") +
                                              bytes({1}) + hdr(0xa7, "Payload") + bytes({0xc0}));
}

TEST(gossip_serf, key_request_carries_the_raw_key) {
    std::string e = encode_key_request(key16);
    EXPECT_EQ(e, bytes({0x07, 0x81}) + hdr(0xa3, "Key") + hdr(0xb0, key16));
    EXPECT_EQ(decode_key_request(e), key16);
    EXPECT_FALSE(decode_key_request(""));
    EXPECT_FALSE(decode_key_request(bytes({0x07, 0x81, 0xa3})));
}

TEST(gossip_serf, query_decoders_survive_every_truncation_and_byte_flip) {
    query q;
    q.ltime = 300;
    q.id = 9;
    q.addr = bytes({127, 0, 0, 1});
    q.port = 8301;
    q.source_node = "node-1";
    filter f;
    f.nodes = {"a", "b"};
    q.filters.push_back(encode_filter(f));
    q.timeout_ns = 3'200'000'000;
    q.name = "_serf_install-key";
    q.payload = encode_key_request(key16);
    node_key_response k;
    k.result = true;
    k.keys.push_back(key16_b64);
    k.primary_key = key16_b64;
    query_response r;
    r.from = "n";
    r.payload = encode_key_response(k);
    std::vector<std::string> inputs;
    inputs.push_back(encode_query(q));
    inputs.push_back(encode_query_response(r));
    inputs.push_back(r.payload);
    inputs.push_back(q.filters[0]);
    inputs.push_back(q.payload);
    user_event ev;
    ev.ltime = 70000;
    ev.name = "consul:event:x";
    ev.payload = "payload";
    inputs.push_back(encode_user_event(ev));
    push_pull_state pp;
    pp.ltime = 4;
    pp.status_ltimes["n"] = 3;
    pp.left_members.push_back("gone");
    pp.events.resize(2);
    pp.events[0].ltime = 70;
    pp.events[0].events.emplace_back("a", "b");
    inputs.push_back(encode_push_pull_state(pp));
    int decoded = 0;
    for (const auto& in : inputs) {
        for (size_t n = 0; n <= in.size(); ++n) {
            std::string cut = in.substr(0, n);
            decoded += bool(decode_query(cut)) + bool(decode_query_response(cut)) + bool(decode_key_response(cut)) +
                       bool(decode_filter(cut)) + bool(decode_key_request(cut)) + bool(decode_user_event(cut)) +
                       bool(decode_push_pull_state(cut));
        }
        for (size_t i = 0; i < in.size(); ++i)
            for (int bit = 0; bit < 8; ++bit) {
                std::string m = in;
                m[i] = char(uint8_t(m[i]) ^ (1 << bit));
                decoded += bool(decode_query(m)) + bool(decode_query_response(m)) + bool(decode_key_response(m)) +
                           bool(decode_filter(m)) + bool(decode_key_request(m)) + bool(decode_user_event(m)) +
                           bool(decode_push_pull_state(m));
            }
    }
    EXPECT_GT(decoded, 0);  // the whole inputs decode; the point is no crash / no read past the end (ASan)
}
