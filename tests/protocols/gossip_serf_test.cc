// Serf's tag encoding in memberlist Meta and its leave intent message, against
// byte vectors built by hand from serf's format (0xff + go-msgpack map; type 0 +
// msgpack {LTime, Node, Prune}).
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
