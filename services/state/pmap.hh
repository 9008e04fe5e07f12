// pmap<V>: a persistent ordered map from std::string keys to V; the storage of
// the catalog and KV snapshots that an owner shard publishes with
// engine::published<T> and every shard reads.
//
// A weight-balanced tree (Adams' balance with Hirai and Yamamoto's parameters
// delta 3, gamma 2; weight = size + 1) whose nodes are immutable once built and
// shared between versions through an intrusive reference count. Copying a pmap
// is O(1); set and erase rebuild only the O(log n) nodes on the path to the key
// (plus a rotation's worth), so every other version stays intact and shares all
// untouched nodes with the new one. size() is O(1); height is at most
// log_{4/3}(n + 1) + 1 (about 2.4 log2 n) and in practice close to log2 n.
//
// Thread-safety contract: every copy, mutation and destruction of maps that
// share nodes happens on one owner thread (the owner shard). Other threads may
// concurrently call the const methods (size, find, iteration, lower_bound,
// for_each_prefix, same_root) of a version they obtained through a published
// snapshot, as long as the owner keeps that version alive (published<T> does).
// Const methods read only immutable node fields: they never touch reference
// counts or any other mutable state. The counts are atomic (relaxed increment,
// acq_rel decrement) only so that a release on another thread stays safe.
//
// Values and keys are copied into each node a mutation rebuilds, so V should be
// small and cheap to copy: an integer, or std::shared_ptr<const T> for anything
// bigger.
//
// Iterators hold raw node pointers: one stays valid while some map (this one or
// a copy) still holds the version it was taken from. Mutating the only holder
// invalidates it.
//
// Exceptions: if set, erase or erase_prefix throws (allocation, or copying a
// key or a V), the map is unchanged and nothing leaks. Releasing a tree recurses
// at most its height deep.
#pragma once
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace pharos::state {

template <class V>
class pmap {
    struct node;

    // An owning reference to a node, or null.
    class ref {
    public:
        ref() noexcept = default;
        explicit ref(const node* p) noexcept : p_(p) {}  // adopts one count
        ref(ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
        ref& operator=(ref&& o) noexcept {
            if (this != &o) release(std::exchange(p_, std::exchange(o.p_, nullptr)));
            return *this;
        }
        ~ref() { release(p_); }
        const node* get() const noexcept { return p_; }
        const node* take() noexcept { return std::exchange(p_, nullptr); }

    private:
        const node* p_ = nullptr;
    };

    struct node {
        node(std::string k, V v, ref l, ref r)
            : size(1 + size_of(l.get()) + size_of(r.get())), key(std::move(k)), value(std::move(v)) {
            left = l.take();  // only once nothing can throw any more
            right = r.take();
        }
        mutable std::atomic<uint32_t> refs{1};
        size_t size;  // nodes in this subtree
        const node* left = nullptr;
        const node* right = nullptr;
        std::string key;
        V value;
    };

public:
    class iterator {
    public:
        iterator() noexcept = default;
        const std::string& key() const noexcept { return top()->key; }
        const V& value() const noexcept { return top()->value; }
        std::pair<const std::string&, const V&> operator*() const noexcept { return {top()->key, top()->value}; }
        iterator& operator++() noexcept {
            const node* n = stack_[--depth_];
            descend_left(n->right);
            return *this;
        }
        bool operator==(const iterator& o) const noexcept { return current() == o.current(); }

    private:
        friend class pmap;
        // The height bound above keeps any tree of fewer than ~10^12 keys within this.
        static constexpr unsigned max_depth = 96;
        const node* top() const noexcept { return stack_[depth_ - 1]; }
        const node* current() const noexcept { return depth_ ? stack_[depth_ - 1] : nullptr; }
        void push(const node* n) noexcept {
            if (depth_ == max_depth) std::abort();  // unreachable for any tree that fits in memory
            stack_[depth_++] = n;
        }
        void descend_left(const node* n) noexcept {
            for (; n; n = n->left) push(n);
        }
        const node* stack_[max_depth];
        unsigned depth_ = 0;
    };

    pmap() noexcept = default;
    pmap(const pmap& o) noexcept : root_(retain(o.root_)) {}
    pmap(pmap&& o) noexcept : root_(std::exchange(o.root_, nullptr)) {}
    pmap& operator=(const pmap& o) noexcept {
        release(std::exchange(root_, retain(o.root_)));  // retain first: self-assignment is safe
        return *this;
    }
    pmap& operator=(pmap&& o) noexcept {
        if (this != &o) release(std::exchange(root_, std::exchange(o.root_, nullptr)));
        return *this;
    }
    ~pmap() { release(root_); }

    size_t size() const noexcept { return size_of(root_); }
    bool empty() const noexcept { return root_ == nullptr; }

    // The value under `key`, or nullptr.
    const V* find(std::string_view key) const noexcept {
        for (const node* n = root_; n;) {
            int c = key.compare(n->key);
            if (c == 0) return &n->value;
            n = c < 0 ? n->left : n->right;
        }
        return nullptr;
    }

    // Inserts or replaces; rebuilds only the path to `key`.
    void set(std::string_view key, V value) {
        ref next = insert_rec(root_, key, value);
        release(std::exchange(root_, next.take()));
    }

    // Returns whether `key` was present.
    bool erase(std::string_view key) {
        if (!find(key)) return false;
        ref next = erase_rec(root_, key);
        release(std::exchange(root_, next.take()));
        return true;
    }

    void clear() noexcept { release(std::exchange(root_, nullptr)); }

    iterator begin() const noexcept {
        iterator it;
        it.descend_left(root_);
        return it;
    }
    iterator end() const noexcept { return iterator(); }

    // The first key >= `key`.
    iterator lower_bound(std::string_view key) const noexcept {
        iterator it;
        for (const node* n = root_; n;) {
            if (key.compare(n->key) <= 0) {
                it.push(n);
                n = n->left;
            } else {
                n = n->right;
            }
        }
        return it;
    }

    // Calls fn(const std::string& key, const V& value) for each key that starts
    // with `prefix`, in order. fn returns void, or bool (false stops).
    template <class F>
    void for_each_prefix(std::string_view prefix, F&& fn) const {
        for (iterator it = lower_bound(prefix); it != end(); ++it) {
            const node* n = it.top();
            if (!n->key.starts_with(prefix)) break;
            if constexpr (std::is_void_v<std::invoke_result_t<F&, const std::string&, const V&>>) {
                fn(n->key, n->value);
            } else {
                if (!fn(n->key, n->value)) break;
            }
        }
    }

    // Removes every key that starts with `prefix` and returns how many. With
    // `removed`, appends the removed keys to it, in order. Removes key by key
    // when few keys go, else rebuilds the survivors into a new balanced tree.
    size_t erase_prefix(std::string_view prefix, std::vector<std::string>* removed = nullptr) {
        const iterator first = lower_bound(prefix);
        iterator last = first;
        size_t k = 0;
        while (last != end() && last.top()->key.starts_with(prefix)) ++last, ++k;
        if (k == 0) return 0;

        const size_t n = size();
        ref next;
        if (k < n && k * static_cast<size_t>(std::bit_width(n)) < n - k) {
            // Few keys: erase them one by one. The old root keeps their nodes alive.
            next = share(root_);
            for (iterator it = first; it != last; ++it) next = erase_rec(next.get(), it.top()->key);
        } else if (k < n) {
            std::vector<const node*> keep;
            keep.reserve(n - k);
            for (iterator it = begin(); it != first; ++it) keep.push_back(it.top());
            for (iterator it = last; it != end(); ++it) keep.push_back(it.top());
            next = build(keep, 0, keep.size());
        }
        if (removed) {
            removed->reserve(removed->size() + k);
            for (iterator it = first; it != last; ++it) removed->push_back(it.top()->key);
        }
        release(std::exchange(root_, next.take()));
        return k;
    }

    // Whether both maps hold the very same version (a cheap "unchanged" test).
    bool same_root(const pmap& o) const noexcept { return root_ == o.root_; }

    // --- for tests ---
    // Nodes on the longest root-to-leaf path (0 when empty).
    size_t height() const noexcept { return height_of(root_); }
    // Whether keys are strictly ordered, sizes add up and every node is weight-balanced.
    bool check_invariants() const noexcept {
        const std::string* prev = nullptr;
        return check(root_, prev);
    }

private:
    static constexpr size_t delta = 3;
    static constexpr size_t gamma = 2;

    static size_t size_of(const node* n) noexcept { return n ? n->size : 0; }
    static size_t weight(const node* n) noexcept { return size_of(n) + 1; }

    static const node* retain(const node* n) noexcept {
        if (n) n->refs.fetch_add(1, std::memory_order_relaxed);
        return n;
    }
    static ref share(const node* n) noexcept { return ref(retain(n)); }
    // Recurses into left children only, so at most the tree's height deep.
    static void release(const node* n) noexcept {
        while (n && n->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            const node* right = n->right;
            release(n->left);
            delete n;
            n = right;
        }
    }

    static ref make(std::string k, V v, ref l, ref r) {
        return ref(new node(std::move(k), std::move(v), std::move(l), std::move(r)));
    }

    // A node for (k, v, l, r) where l and r were balanced before one key was
    // inserted into or removed from one of them.
    static ref balance(std::string k, V v, ref l, ref r) {
        const size_t wl = weight(l.get()), wr = weight(r.get());
        if (wr > delta * wl) {  // r has at least 3 nodes
            const node* rn = r.get();
            if (weight(rn->left) < gamma * weight(rn->right))
                return make(rn->key, rn->value, make(std::move(k), std::move(v), std::move(l), share(rn->left)),
                            share(rn->right));
            const node* rl = rn->left;  // not null: its weight is at least 2
            return make(rl->key, rl->value, make(std::move(k), std::move(v), std::move(l), share(rl->left)),
                        make(rn->key, rn->value, share(rl->right), share(rn->right)));
        }
        if (wl > delta * wr) {
            const node* ln = l.get();
            if (weight(ln->right) < gamma * weight(ln->left))
                return make(ln->key, ln->value, share(ln->left),
                            make(std::move(k), std::move(v), share(ln->right), std::move(r)));
            const node* lr = ln->right;
            return make(lr->key, lr->value, make(ln->key, ln->value, share(ln->left), share(lr->left)),
                        make(std::move(k), std::move(v), share(lr->right), std::move(r)));
        }
        return make(std::move(k), std::move(v), std::move(l), std::move(r));
    }

    static ref insert_rec(const node* t, std::string_view k, V& v) {
        if (!t) return make(std::string(k), std::move(v), ref(), ref());
        const int c = k.compare(t->key);
        if (c < 0) return balance(t->key, t->value, insert_rec(t->left, k, v), share(t->right));
        if (c > 0) return balance(t->key, t->value, share(t->left), insert_rec(t->right, k, v));
        return make(t->key, std::move(v), share(t->left), share(t->right));
    }

    // `k` must be present under t.
    static ref erase_rec(const node* t, std::string_view k) {
        const int c = k.compare(t->key);
        if (c < 0) return balance(t->key, t->value, erase_rec(t->left, k), share(t->right));
        if (c > 0) return balance(t->key, t->value, share(t->left), erase_rec(t->right, k));
        return glue(t->left, t->right);
    }

    // Joins two subtrees that were siblings, taking the new root from the heavier one.
    static ref glue(const node* l, const node* r) {
        if (!l) return share(r);
        if (!r) return share(l);
        if (weight(l) > weight(r)) {
            const node* m = l;
            while (m->right) m = m->right;
            return balance(m->key, m->value, erase_max(l), share(r));
        }
        const node* m = r;
        while (m->left) m = m->left;
        return balance(m->key, m->value, share(l), erase_min(r));
    }
    static ref erase_min(const node* t) {
        if (!t->left) return share(t->right);
        return balance(t->key, t->value, erase_min(t->left), share(t->right));
    }
    static ref erase_max(const node* t) {
        if (!t->right) return share(t->left);
        return balance(t->key, t->value, share(t->left), erase_max(t->right));
    }

    // A perfectly balanced tree of copies of nodes[lo, hi), which are in key order.
    static ref build(const std::vector<const node*>& nodes, size_t lo, size_t hi) {
        if (lo == hi) return ref();
        const size_t mid = lo + (hi - lo) / 2;
        return make(nodes[mid]->key, nodes[mid]->value, build(nodes, lo, mid), build(nodes, mid + 1, hi));
    }

    static size_t height_of(const node* n) noexcept {
        return n ? 1 + std::max(height_of(n->left), height_of(n->right)) : 0;
    }
    static bool check(const node* n, const std::string*& prev) noexcept {
        if (!n) return true;
        if (n->size != 1 + size_of(n->left) + size_of(n->right)) return false;
        if (weight(n->left) > delta * weight(n->right) || weight(n->right) > delta * weight(n->left)) return false;
        if (!check(n->left, prev)) return false;
        if (prev && !(*prev < n->key)) return false;
        prev = &n->key;
        return check(n->right, prev);
    }

    const node* root_ = nullptr;
};

}  // namespace pharos::state
