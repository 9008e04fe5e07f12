// state::pmap: differential tests against std::map, persistence, balance,
// exception safety, and readers on another thread while the owner mutates.
#include "services/state/pmap.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using pharos::state::pmap;

namespace {

using model = std::map<std::string, int>;

testing::AssertionResult same(const pmap<int>& m, const model& want) {
    if (m.size() != want.size()) return testing::AssertionFailure() << "size " << m.size() << " want " << want.size();
    auto it = m.begin();
    for (const auto& [k, v] : want) {
        if (it == m.end()) return testing::AssertionFailure() << "ended early before " << k;
        if (it.key() != k || it.value() != v)
            return testing::AssertionFailure() << "got " << it.key() << "=" << it.value() << " want " << k << "=" << v;
        ++it;
    }
    if (it != m.end()) return testing::AssertionFailure() << "extra key " << it.key();
    if (!m.check_invariants()) return testing::AssertionFailure() << "invariants broken";
    return testing::AssertionSuccess();
}

// Keys over a small alphabet (with a high byte, to pin unsigned ordering) so
// that sets hit existing keys and prefixes share entries.
std::string random_key(std::mt19937_64& rng, size_t max_len, size_t alphabet) {
    static const char chars[] = {'a', 'b', '/', 'c', '\xff', 'd', 'e'};
    std::string k(rng() % (max_len + 1), ' ');
    for (char& c : k) c = chars[rng() % alphabet];
    return k;
}

double log2_of(size_t n) { return std::log2(static_cast<double>(n)); }

// Runs `ops` random operations on a pmap and a std::map side by side.
void differential(uint64_t seed, int ops, size_t max_len, size_t alphabet, int erase_pct) {
    std::mt19937_64 rng(seed);
    pmap<int> m;
    model want;
    std::vector<std::pair<pmap<int>, model>> kept;
    for (int i = 0; i < ops; ++i) {
        const std::string k = random_key(rng, max_len, alphabet);
        const int r = static_cast<int>(rng() % 100);
        if (r < 40) {
            const int v = static_cast<int>(rng() % 1000000);
            m.set(k, v);
            want[k] = v;
        } else if (r < 40 + erase_pct) {
            ASSERT_EQ(m.erase(k), want.erase(k) == 1) << "seed " << seed << " op " << i;
        } else if (r < 75) {
            const int* got = m.find(k);
            auto w = want.find(k);
            ASSERT_EQ(got != nullptr, w != want.end()) << "seed " << seed << " op " << i << " key " << k;
            if (got) {
                ASSERT_EQ(*got, w->second);
            }
        } else if (r < 85) {
            auto it = m.lower_bound(k);
            auto w = want.lower_bound(k);
            for (int step = 0; step < 3; ++step) {
                ASSERT_EQ(it == m.end(), w == want.end()) << "seed " << seed << " op " << i;
                if (w == want.end()) break;
                ASSERT_EQ(it.key(), w->first);
                ASSERT_EQ(it.value(), w->second);
                ++it, ++w;
            }
        } else if (r < 93) {
            const std::string prefix = k.substr(0, rng() % 3);
            const size_t stop_after = rng() % 2 ? SIZE_MAX : 1 + rng() % 5;
            std::vector<std::pair<std::string, int>> got, exp;
            if (stop_after == SIZE_MAX) {
                m.for_each_prefix(prefix, [&](const std::string& key, const int& v) { got.emplace_back(key, v); });
            } else {
                m.for_each_prefix(prefix, [&](const std::string& key, const int& v) {
                    got.emplace_back(key, v);
                    return got.size() < stop_after;
                });
            }
            for (auto w = want.lower_bound(prefix); w != want.end() && w->first.starts_with(prefix); ++w) {
                exp.emplace_back(w->first, w->second);
                if (exp.size() == stop_after) break;
            }
            ASSERT_EQ(got, exp) << "seed " << seed << " op " << i << " prefix " << prefix;
        } else if (r < 94) {
            const std::string prefix = k.substr(0, 1 + rng() % 3);
            std::vector<std::string> removed, exp;
            for (auto w = want.lower_bound(prefix); w != want.end() && w->first.starts_with(prefix);)
                exp.push_back(w->first), w = want.erase(w);
            ASSERT_EQ(m.erase_prefix(prefix, &removed), exp.size()) << "seed " << seed << " op " << i;
            ASSERT_EQ(removed, exp);
        } else if (r < 95) {
            if (kept.size() == 64) kept.erase(kept.begin() + static_cast<long>(rng() % 64));
            kept.emplace_back(m, want);
            ASSERT_TRUE(kept.back().first.same_root(m));
        }
        ASSERT_EQ(m.size(), want.size());
        ASSERT_EQ(m.empty(), want.empty());
        if (i % 1000 == 999) {
            ASSERT_TRUE(same(m, want)) << "seed " << seed << " op " << i;
        }
    }
    ASSERT_TRUE(same(m, want));
    for (const auto& [old, old_want] : kept) ASSERT_TRUE(same(old, old_want));
}

}  // namespace

TEST(pmap, matches_std_map_over_random_operations_on_small_keys) {
    for (uint64_t seed : {1, 2, 3, 4}) differential(seed, 60000, 5, 4, 20);
}

TEST(pmap, matches_std_map_over_random_operations_on_a_growing_map) { differential(42, 100000, 9, 7, 5); }

TEST(pmap, old_versions_are_unchanged_by_mutations_of_copies) {
    std::mt19937_64 rng(7);
    std::vector<pmap<int>> versions(1);
    std::vector<model> wants(1);
    for (int i = 0; i < 400; ++i) {
        pmap<int> next = versions.back();
        model want = wants.back();
        EXPECT_TRUE(next.same_root(versions.back()));
        for (int j = 0; j < 5; ++j) {
            const std::string k = random_key(rng, 4, 4);
            if (rng() % 4) {
                next.set(k, i * 10 + j);
                want[k] = i * 10 + j;
            } else {
                next.erase(k);
                want.erase(k);
            }
        }
        if (i % 50 == 49) {
            next.erase_prefix("a", nullptr);
            std::erase_if(want, [](const auto& e) { return e.first.starts_with("a"); });
        }
        versions.push_back(std::move(next));
        wants.push_back(std::move(want));
    }
    for (size_t i = 0; i < versions.size(); ++i) ASSERT_TRUE(same(versions[i], wants[i])) << "version " << i;
    EXPECT_FALSE(versions[1].same_root(versions[2]));
}

TEST(pmap, set_on_a_copy_leaves_the_original_and_replaces_in_place) {
    pmap<int> a;
    a.set("x", 1);
    a.set("y", 2);
    pmap<int> b = a;
    b.set("x", 10);
    b.erase("y");
    b.set("z", 3);
    EXPECT_EQ(*a.find("x"), 1);
    EXPECT_EQ(*a.find("y"), 2);
    EXPECT_EQ(a.find("z"), nullptr);
    EXPECT_EQ(*b.find("x"), 10);
    EXPECT_EQ(b.find("y"), nullptr);
    EXPECT_EQ(b.size(), 2u);
    EXPECT_FALSE(b.erase("nope"));
    pmap<int> c = std::move(b);
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(c.size(), 2u);
    c = c;  // self-assignment keeps the version
    EXPECT_EQ(c.size(), 2u);
    c = a;
    EXPECT_TRUE(c.same_root(a));
    c.clear();
    EXPECT_TRUE(c.empty());
    EXPECT_EQ(a.size(), 2u);
}

TEST(pmap, erase_prefix_removes_exactly_the_keys_under_the_prefix_in_order) {
    pmap<int> m;
    for (const char* k : {"a", "a/", "a/x", "a/y/z", "a/y", "ab", "b", "", "a0"}) m.set(k, 1);
    pmap<int> before = m;
    std::vector<std::string> removed;
    EXPECT_EQ(m.erase_prefix("a/", &removed), 4u);
    EXPECT_EQ(removed, (std::vector<std::string>{"a/", "a/x", "a/y", "a/y/z"}));
    EXPECT_EQ(m.size(), 5u);
    EXPECT_NE(m.find("a"), nullptr);
    EXPECT_NE(m.find("ab"), nullptr);
    EXPECT_NE(m.find("a0"), nullptr);
    EXPECT_EQ(before.size(), 9u);
    EXPECT_EQ(m.erase_prefix("zzz"), 0u);
    EXPECT_TRUE(m.check_invariants());
    EXPECT_EQ(m.erase_prefix(""), 5u);  // the empty prefix takes everything
    EXPECT_TRUE(m.empty());
    EXPECT_EQ(before.size(), 9u);
}

TEST(pmap, erase_prefix_of_most_or_few_of_a_large_map_keeps_it_balanced) {
    pmap<int> m;
    model want;
    char buf[32];
    for (int i = 0; i < 20000; ++i) {
        snprintf(buf, sizeof buf, "%s/%05d", i % 10 == 0 ? "few" : "many", i);
        m.set(buf, i);
        want[buf] = i;
    }
    pmap<int> orig = m;
    const model orig_want = want;
    std::vector<std::string> removed;
    EXPECT_EQ(m.erase_prefix("many/", &removed), 18000u);  // rebuilds the survivors
    EXPECT_EQ(removed.size(), 18000u);
    std::erase_if(want, [](const auto& e) { return e.first.starts_with("many/"); });
    ASSERT_TRUE(same(m, want));
    m = orig;
    want = orig_want;
    EXPECT_EQ(m.erase_prefix("few/000"), 10u);  // one by one
    std::erase_if(want, [](const auto& e) { return e.first.starts_with("few/000"); });
    ASSERT_TRUE(same(m, want));
    ASSERT_TRUE(same(orig, orig_want));
}

TEST(pmap, iterates_in_unsigned_byte_order) {
    pmap<int> m;
    const std::vector<std::string> keys = {"b", "\xff", "a\xff", "a", "", "A", "ab", "\x01", "a\x7f"};
    for (size_t i = 0; i < keys.size(); ++i) m.set(keys[i], static_cast<int>(i));
    std::vector<std::string> sorted = keys;
    std::sort(sorted.begin(), sorted.end());  // std::string compares bytes as unsigned char
    std::vector<std::string> got;
    for (auto [k, v] : m) {
        got.push_back(k);
        EXPECT_EQ(keys[static_cast<size_t>(v)], k);
    }
    EXPECT_EQ(got, sorted);
    EXPECT_EQ(got.back(), "\xff");
    EXPECT_EQ(m.lower_bound("a\x80").key(), "a\xff");
    EXPECT_EQ(m.lower_bound(std::string_view("\xff\x00", 2)), m.end());
    EXPECT_EQ(pmap<int>().begin(), pmap<int>().end());
}

TEST(pmap, height_stays_logarithmic_for_sorted_reverse_and_random_inserts) {
    constexpr int n = 100000;
    char buf[32];
    std::mt19937_64 rng(9);
    for (int order = 0; order < 3; ++order) {
        pmap<int> m;
        for (int i = 0; i < n; ++i) {
            const int x = order == 0 ? i : order == 1 ? n - i : static_cast<int>(rng() % (10 * n));
            snprintf(buf, sizeof buf, "k%08d", x);
            m.set(buf, i);
        }
        ASSERT_TRUE(m.check_invariants());
        EXPECT_LE(static_cast<double>(m.height()), 2 * log2_of(m.size()) + 2) << "order " << order;
        // Delete every other key; the tree must stay balanced.
        std::vector<std::string> keys;
        for (auto it = m.begin(); it != m.end(); ++it) keys.push_back(it.key());
        for (size_t i = 0; i < keys.size(); i += 2) ASSERT_TRUE(m.erase(keys[i]));
        ASSERT_TRUE(m.check_invariants());
        EXPECT_LE(static_cast<double>(m.height()), 2 * log2_of(m.size()) + 2) << "order " << order;
    }
}

TEST(pmap, a_million_keys_insert_and_destroy_without_deep_recursion) {
    constexpr size_t n = 1000000;
    char buf[32];
    auto m = std::make_unique<pmap<uint64_t>>();
    for (size_t i = 0; i < n; ++i) {
        const size_t x = i * 7919 % n;  // a permutation of 0..n-1
        snprintf(buf, sizeof buf, "svc/%07zu", x);
        m->set(buf, x);
    }
    ASSERT_EQ(m->size(), n);
    EXPECT_LE(static_cast<double>(m->height()), 2 * log2_of(n) + 2);
    ASSERT_NE(m->find("svc/0123456"), nullptr);
    EXPECT_EQ(*m->find("svc/0123456"), 123456u);
    pmap<uint64_t> copy = *m;
    copy.set("svc/x", 1);
    m.reset();  // the copy still holds all but the rebuilt path
    EXPECT_EQ(copy.size(), n + 1);
    size_t count = 0;
    for (auto it = copy.begin(); it != copy.end(); ++it) ++count;
    EXPECT_EQ(count, n + 1);
}

namespace {

struct counted {
    static inline int live = 0;
    static inline int copies_before_throw = -1;  // < 0: never throw
    int v;
    explicit counted(int x) : v(x) { ++live; }
    counted(const counted& o) : v(o.v) {
        if (copies_before_throw == 0) throw std::runtime_error("copy");
        if (copies_before_throw > 0) --copies_before_throw;
        ++live;
    }
    counted(counted&& o) noexcept : v(o.v) { ++live; }
    counted& operator=(const counted&) = delete;
    ~counted() { --live; }
};

}  // namespace

TEST(pmap, a_throwing_value_copy_leaves_the_map_unchanged_and_leaks_nothing) {
    {
        pmap<counted> m;
        model want;
        for (int i = 0; i < 1000; ++i) {
            const std::string k = "k" + std::to_string(i * 37 % 1000);
            m.set(k, counted(i));
            want[k] = i;
        }
        pmap<counted> copy = m;
        for (int attempt = 0; attempt < 40; ++attempt) {
            counted::copies_before_throw = attempt % 5;  // every path here copies more values than that
            try {
                if (attempt < 20)
                    m.set("k500x", counted(-1));
                else
                    m.erase("k" + std::to_string(attempt * 11));
                counted::copies_before_throw = -1;
                FAIL() << "no throw at attempt " << attempt;
            } catch (const std::runtime_error&) {
            }
            counted::copies_before_throw = -1;
            ASSERT_TRUE(m.same_root(copy)) << attempt;
        }
        ASSERT_EQ(m.size(), want.size());
        for (const auto& [k, v] : want) ASSERT_EQ(m.find(k)->v, v);
        ASSERT_TRUE(m.check_invariants());
        m.erase_prefix("k1");
        m.set("k2", counted(5));
    }
    EXPECT_EQ(counted::live, 0);
}

TEST(pmap, shared_pointer_values_are_released_with_the_last_version) {
    auto obj = std::make_shared<const std::string>("payload");
    {
        pmap<std::shared_ptr<const std::string>> a;
        for (int i = 0; i < 100; ++i) a.set(std::to_string(i), obj);
        auto b = a;
        b.erase_prefix("1");
        EXPECT_EQ(**b.find("42"), "payload");
        EXPECT_GT(obj.use_count(), 100);
    }
    EXPECT_EQ(obj.use_count(), 1);
}

// One owner thread mutates its map and publishes copies; a reader thread checks
// each published copy while the owner keeps mutating (run under ASan/TSan to
// catch a const method touching shared state).
TEST(pmap, a_reader_thread_sees_consistent_snapshots_while_the_owner_mutates) {
    struct snapshot {
        int version = 0;
        pmap<int> map;
        std::vector<std::pair<std::string, int>> expected;
    };
    constexpr int versions = 300;
    std::vector<std::unique_ptr<snapshot>> all;  // kept alive until the reader is done
    all.reserve(versions);
    std::atomic<const snapshot*> current{nullptr};
    std::atomic<int> mismatches{0};
    std::atomic<int> checked{0};

    std::thread reader([&] {
        int last = -1;
        while (last != versions - 1) {
            const snapshot* s = current.load(std::memory_order_acquire);
            if (!s) continue;
            size_t i = 0;
            for (auto it = s->map.begin(); it != s->map.end(); ++it, ++i) {
                if (i >= s->expected.size() || it.key() != s->expected[i].first || it.value() != s->expected[i].second)
                    ++mismatches;
            }
            if (i != s->expected.size() || s->map.size() != s->expected.size()) ++mismatches;
            for (const auto& [k, v] : s->expected) {
                const int* got = s->map.find(k);
                if (!got || *got != v) ++mismatches;
            }
            size_t under = 0;
            s->map.for_each_prefix("k1", [&](const std::string&, const int&) { ++under; });
            size_t want_under = 0;
            for (const auto& e : s->expected) want_under += e.first.starts_with("k1");
            if (under != want_under) ++mismatches;
            last = s->version;
            checked.fetch_add(1);
        }
    });

    std::mt19937_64 rng(11);
    pmap<int> m;
    model want;
    for (int v = 0; v < versions; ++v) {
        for (int j = 0; j < 50; ++j) {
            const std::string k = "k" + std::to_string(rng() % 3000);
            if (rng() % 3) {
                m.set(k, v);
                want[k] = v;
            } else {
                m.erase(k);
                want.erase(k);
            }
        }
        if (v % 60 == 59) {
            m.erase_prefix("k2");
            std::erase_if(want, [](const auto& e) { return e.first.starts_with("k2"); });
        }
        auto s = std::make_unique<snapshot>();
        s->version = v;
        s->map = m;
        s->expected.assign(want.begin(), want.end());
        current.store(s.get(), std::memory_order_release);
        all.push_back(std::move(s));
    }
    // Keep mutating (and dropping nodes the snapshots share) while the reader runs.
    for (int j = 0; j < 20000; ++j) {
        const std::string k = "k" + std::to_string(rng() % 3000);
        if (j % 2)
            m.set(k, j);
        else
            m.erase(k);
    }
    m.clear();
    reader.join();
    EXPECT_EQ(mismatches.load(), 0);
    EXPECT_GE(checked.load(), 1);
}
