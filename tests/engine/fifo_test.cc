// engine::fifo: order, draining, compaction and immediate destruction on pop.
#include "engine/fifo.hh"

#include <gtest/gtest.h>

#include <memory>

using pharos::engine::fifo;

TEST(fifo, keeps_order_across_interleaved_pushes_and_pops) {
    fifo<int> q;
    EXPECT_TRUE(q.empty());
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 1000; ++round) {
        for (int i = 0; i < round % 7 + 1; ++i) q.push_back(next_in++);
        for (int i = 0; i < round % 5 + 1 && !q.empty(); ++i) {
            EXPECT_EQ(q.front(), next_out++);
            q.pop_front();
        }
        EXPECT_EQ(q.size(), size_t(next_in - next_out));
    }
    while (!q.empty()) {
        EXPECT_EQ(q.front(), next_out++);
        q.pop_front();
    }
    EXPECT_EQ(next_in, next_out);
}

TEST(fifo, pop_destroys_the_item_at_once) {
    fifo<std::shared_ptr<int>> q;
    auto p = std::make_shared<int>(1);
    q.push_back(p);
    q.push_back(std::make_shared<int>(2));
    EXPECT_EQ(p.use_count(), 2);
    q.pop_front();
    EXPECT_EQ(p.use_count(), 1);  // not kept in a consumed slot
    EXPECT_EQ(*q.front(), 2);
    q.clear();
    EXPECT_TRUE(q.empty());
}
