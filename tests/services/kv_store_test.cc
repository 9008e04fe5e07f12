// kv::store: Consul's KV semantics, as plain data (no reactor needed).
#include "services/kv/store.hh"

#include <gtest/gtest.h>

using pharos::kv::entry;
using pharos::kv::store;

TEST(kv_store, set_then_get_keeps_create_and_modify_indexes) {
    store s;
    s.set("a", "1", 7, 10);
    s.set("a", "2", 8, 12);
    const entry* e = s.get("a");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->value, "2");
    EXPECT_EQ(e->flags, 8u);
    EXPECT_EQ(e->create_index, 10u);
    EXPECT_EQ(e->modify_index, 12u);
    EXPECT_EQ(s.key_index("a"), 12u);
    EXPECT_EQ(s.get("b"), nullptr);
    EXPECT_EQ(s.key_index("b"), 12u);  // a missing key reports the table's index
}

TEST(kv_store, cas_zero_creates_only_and_cas_n_matches_modify_index) {
    store s;
    EXPECT_TRUE(s.set_cas("k", "v1", 0, 0, 5));
    EXPECT_FALSE(s.set_cas("k", "v2", 0, 0, 6));  // exists already
    EXPECT_FALSE(s.set_cas("k", "v2", 0, 4, 6));  // stale index
    EXPECT_TRUE(s.set_cas("k", "v2", 0, 5, 6));
    EXPECT_EQ(s.get("k")->value, "v2");
    EXPECT_EQ(s.get("k")->modify_index, 6u);
}

TEST(kv_store, delete_cas_needs_the_current_index_and_zero_deletes_nothing) {
    store s;
    s.set("k", "v", 0, 3);
    EXPECT_FALSE(s.remove_cas("k", 0, 4));
    EXPECT_FALSE(s.remove_cas("k", 2, 4));
    EXPECT_NE(s.get("k"), nullptr);
    EXPECT_TRUE(s.remove_cas("k", 3, 4));
    EXPECT_EQ(s.get("k"), nullptr);
    EXPECT_TRUE(s.remove("never-there", 5));  // Consul answers true
}

TEST(kv_store, list_and_keys_follow_the_prefix_and_separator) {
    store s;
    uint64_t i = 1;
    for (const char* k : {"web/a", "web/b/c", "web/b/d", "web2", "db/x"}) s.set(k, "v", 0, i++);
    auto l = s.list("web/");
    ASSERT_EQ(l.size(), 3u);
    EXPECT_EQ(l[0]->key, "web/a");
    EXPECT_EQ(l[2]->key, "web/b/d");
    EXPECT_EQ(s.keys("web", ""), (std::vector<std::string>{"web/a", "web/b/c", "web/b/d", "web2"}));
    EXPECT_EQ(s.keys("web/", "/"), (std::vector<std::string>{"web/a", "web/b/"}));
    EXPECT_EQ(s.keys("", "/"), (std::vector<std::string>{"db/", "web/", "web2"}));
    EXPECT_TRUE(s.keys("nothing", "/").empty());
}

TEST(kv_store, prefix_indexes_never_go_backwards_after_deletes) {
    store s;
    s.set("p/a", "1", 0, 10);
    s.set("p/b", "1", 0, 11);
    s.set("q", "1", 0, 12);
    EXPECT_EQ(s.prefix_index("p/"), 11u);
    s.remove("p/b", 13);
    EXPECT_EQ(s.prefix_index("p/"), 13u);  // the tombstone carries the delete's index
    EXPECT_EQ(s.remove_tree("p/", 14), 1u);
    EXPECT_TRUE(s.list("p/").empty());
    EXPECT_EQ(s.prefix_index("p/"), 14u);
    EXPECT_EQ(s.prefix_index(""), 14u);
    EXPECT_EQ(s.reap_tombstones(13), 1u);  // only p/b's tombstone is that old
    EXPECT_EQ(s.prefix_index("p/"), 14u);
    s.set("p/b", "again", 0, 15);           // re-creating a key clears its tombstone
    EXPECT_EQ(s.get("p/b")->create_index, 15u);
}

TEST(kv_store, locks_bump_lock_index_on_acquire_and_only_the_holder_releases) {
    store s;
    EXPECT_TRUE(s.acquire("lock", "me", 0, "s1", 20));
    const entry* e = s.get("lock");
    EXPECT_EQ(e->lock_index, 1u);
    EXPECT_EQ(e->session, "s1");
    EXPECT_FALSE(s.acquire("lock", "other", 0, "s2", 21));
    EXPECT_TRUE(s.acquire("lock", "me again", 0, "s1", 22));  // holder updates without a bump
    EXPECT_EQ(s.get("lock")->lock_index, 1u);
    EXPECT_EQ(s.get("lock")->value, "me again");
    EXPECT_FALSE(s.release("lock", "", 0, "s2", 23));
    EXPECT_TRUE(s.release("lock", "free", 0, "s1", 24));
    EXPECT_TRUE(s.get("lock")->session.empty());
    EXPECT_EQ(s.get("lock")->lock_index, 1u);  // release keeps it
    EXPECT_TRUE(s.acquire("lock", "", 0, "s2", 25));
    EXPECT_EQ(s.get("lock")->lock_index, 2u);
    s.set("lock", "plain put", 0, 26);  // a plain PUT overwrites even a held lock
    EXPECT_EQ(s.get("lock")->value, "plain put");
    EXPECT_EQ(s.get("lock")->session, "s2");
}

TEST(kv_store, json_matches_consuls_field_order_and_null_for_empty_values) {
    store s;
    s.set("a", "hi", 3, 5);
    s.set("b", "", 0, 6);
    s.acquire("c", "x", 0, "sess", 7);
    auto l = s.list("");
    EXPECT_EQ(pharos::kv::to_json(l),
              R"([{"LockIndex":0,"Key":"a","Flags":3,"Value":"aGk=","CreateIndex":5,"ModifyIndex":5},)"
              R"({"LockIndex":0,"Key":"b","Flags":0,"Value":null,"CreateIndex":6,"ModifyIndex":6},)"
              R"({"LockIndex":1,"Key":"c","Flags":0,"Value":"eA==","Session":"sess","CreateIndex":7,"ModifyIndex":7}])");
}
