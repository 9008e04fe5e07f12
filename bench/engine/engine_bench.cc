// Engine micro-benchmarks (Google Benchmark).
//
// Benchmarks that need a reactor build a fresh group of shards inside the
// benchmark function and run the measured loop as the main task on shard 0 (the
// benchmark's own thread); the group is stopped and joined when the loop ends,
// outside the timed region. The rest (timer_heap, cancellation) run bare.
//
// GCC 12 coroutine rules followed throughout (it miscompiles the alternatives):
// closures are named before they are passed into a co_await expression, coroutine
// lambdas have no captures (the bodies here are free functions), no braced init
// lists in coroutine bodies, no ?: between task temporaries.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "engine/cancel.hh"
#include "engine/combinators.hh"
#include "engine/smp.hh"
#include "engine/snapshot.hh"
#include "engine/task.hh"
#include "engine/timer.hh"

using namespace pharos::engine;
using namespace std::chrono_literals;

namespace {

using body_fn = task<int> (*)(benchmark::State*);

// Runs `body` as the main task of a fresh group of `shards` shards.
void run_in_group(benchmark::State& state, body_fn body, unsigned shards = 2) {
    clock::use_real();
    smp_config cfg;
    cfg.shards = shards;
    cfg.pin = false;               // pinning would leave the benchmark thread pinned afterwards
    cfg.stall_threshold_ms = 0;    // a measured loop may hold one reactor turn for the whole run
    cfg.log_stalls = false;
    smp group(cfg);
    benchmark::State* st = &state;
    int rc = group.run([st, body]() { return body(st); });
    if (rc != 0) state.SkipWithError("benchmark body failed");
}

// ---------------------------------------------------------------------------
// task<T>: create + resume

task<int> trivial(int v) { co_return v; }

task<int> trivial_caller(int v) { co_return co_await trivial(v) + 1; }

task<int> task_create_resume_body(benchmark::State* state) {
    int i = 0;
    for (auto _ : *state) {
        int v = co_await trivial(i++);
        benchmark::DoNotOptimize(v);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_task_create_resume(benchmark::State& state) { run_in_group(state, &task_create_resume_body); }
BENCHMARK(BM_task_create_resume);

// Two frames per iteration: a task that itself awaits a synchronous task.
task<int> task_nested_body(benchmark::State* state) {
    int i = 0;
    for (auto _ : *state) {
        int v = co_await trivial_caller(i++);
        benchmark::DoNotOptimize(v);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_task_nested2_create_resume(benchmark::State& state) { run_in_group(state, &task_nested_body); }
BENCHMARK(BM_task_nested2_create_resume);

// when_all over 64 synchronous tasks: the join machinery's cost per child.
task<int> when_all_trivial_body(benchmark::State* state) {
    const int n = int(state->range(0));
    for (auto _ : *state) {
        std::vector<task<int>> ts;
        ts.reserve(size_t(n));
        for (int k = 0; k < n; ++k) ts.push_back(trivial(k));
        auto rs = co_await when_all(std::move(ts));
        benchmark::DoNotOptimize(rs.data());
    }
    state->SetItemsProcessed(state->iterations() * n);
    co_return 0;
}
void BM_when_all_trivial(benchmark::State& state) { run_in_group(state, &when_all_trivial_body); }
BENCHMARK(BM_when_all_trivial)->Arg(64);

// ---------------------------------------------------------------------------
// submit_to

// Local path: submit_to(this_shard(), fn) calls fn directly.
task<int> submit_local_body(benchmark::State* state) {
    for (auto _ : *state) {
        auto fn = [] { return 1; };
        int r = co_await submit_to(0, fn);
        benchmark::DoNotOptimize(r);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_submit_to_local(benchmark::State& state) { run_in_group(state, &submit_local_body); }
BENCHMARK(BM_submit_to_local);

// One call in flight: shard 0 -> shard 1 -> shard 0, latency per round trip.
task<int> submit_roundtrip_body(benchmark::State* state) {
    for (auto _ : *state) {
        auto fn = [] { return 1; };
        int r = co_await submit_to(1, fn);
        benchmark::DoNotOptimize(r);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_submit_to_roundtrip(benchmark::State& state) { run_in_group(state, &submit_roundtrip_body); }
BENCHMARK(BM_submit_to_roundtrip)->UseRealTime();

// The same, but fn returns a task: the target spawns it and replies when it ends.
task<int> submit_task_roundtrip_body(benchmark::State* state) {
    for (auto _ : *state) {
        auto fn = [] { return trivial(1); };
        int r = co_await submit_to(1, fn);
        benchmark::DoNotOptimize(r);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_submit_to_task_roundtrip(benchmark::State& state) { run_in_group(state, &submit_task_roundtrip_body); }
BENCHMARK(BM_submit_to_task_roundtrip)->UseRealTime();

// range(0) calls in flight at once through when_all; items/s counts calls.
task<int> submit_batch_body(benchmark::State* state) {
    const int n = int(state->range(0));
    for (auto _ : *state) {
        std::vector<task<int>> calls;
        calls.reserve(size_t(n));
        for (int k = 0; k < n; ++k) {
            auto fn = [] { return 1; };
            calls.push_back(submit_to(1, fn));
        }
        auto rs = co_await when_all(std::move(calls));
        benchmark::DoNotOptimize(rs.data());
    }
    state->SetItemsProcessed(state->iterations() * n);
    co_return 0;
}
void BM_submit_to_batch(benchmark::State& state) { run_in_group(state, &submit_batch_body); }
BENCHMARK(BM_submit_to_batch)->Arg(64)->Arg(512)->UseRealTime();

// ---------------------------------------------------------------------------
// timer_heap (no reactor)

// N pending timers with random deadlines; per op: insert one node with a random
// deadline and erase it again.
void BM_timer_heap_insert_erase(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int64_t> dist(0, 10'000'000'000);  // within 10 s
    std::vector<timer_node> nodes(n);
    timer_heap heap;
    heap.reserve(n + 1);
    for (auto& t : nodes) {
        t.when = clock::time_point(clock::duration(dist(rng)));
        heap.insert(&t);
    }
    constexpr size_t kDeadlines = 4096;
    std::vector<clock::time_point> when(kDeadlines);
    for (auto& w : when) w = clock::time_point(clock::duration(dist(rng)));
    timer_node probe;
    size_t k = 0;
    for (auto _ : state) {
        probe.when = when[k++ & (kDeadlines - 1)];
        heap.insert(&probe);
        heap.erase(&probe);
    }
    benchmark::DoNotOptimize(heap.top());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_timer_heap_insert_erase)->Arg(1000)->Arg(1'000'000);

// The request-timeout pattern: N pending timers armed in FIFO order with growing
// deadlines; per op: cancel the oldest (near the top of the heap) and arm a new one
// with the latest deadline.
void BM_timer_heap_churn(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    std::vector<timer_node> nodes(n);
    timer_heap heap;
    heap.reserve(n);
    int64_t next = 0;
    for (auto& t : nodes) {
        t.when = clock::time_point(clock::duration(next++));
        heap.insert(&t);
    }
    size_t oldest = 0;
    for (auto _ : state) {
        timer_node& t = nodes[oldest];
        heap.erase(&t);
        t.when = clock::time_point(clock::duration(next++));
        heap.insert(&t);
        if (++oldest == n) oldest = 0;
    }
    benchmark::DoNotOptimize(heap.top());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_timer_heap_churn)->Arg(1000)->Arg(1'000'000);

// Random cancellation: N pending timers with random deadlines; per op: erase a
// random pending node and re-arm it with a new random deadline (touches random
// parts of the heap, so at 1M it pays cache misses that the two above do not).
void BM_timer_heap_churn_random(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int64_t> dist(0, 10'000'000'000);
    std::vector<timer_node> nodes(n);
    timer_heap heap;
    heap.reserve(n);
    for (auto& t : nodes) {
        t.when = clock::time_point(clock::duration(dist(rng)));
        heap.insert(&t);
    }
    constexpr size_t kOps = 1 << 16;
    std::vector<uint32_t> pick(kOps);
    std::vector<clock::time_point> when(kOps);
    std::uniform_int_distribution<uint32_t> any(0, uint32_t(n - 1));
    for (size_t k = 0; k < kOps; ++k) {
        pick[k] = any(rng);
        when[k] = clock::time_point(clock::duration(dist(rng)));
    }
    size_t k = 0;
    for (auto _ : state) {
        size_t j = k++ & (kOps - 1);
        timer_node& t = nodes[pick[j]];
        heap.erase(&t);
        t.when = when[j];
        heap.insert(&t);
    }
    benchmark::DoNotOptimize(heap.top());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_timer_heap_churn_random)->Arg(1000)->Arg(1'000'000);

// ---------------------------------------------------------------------------
// Reactor turns and sleeping

// clock::now() (real mode): the baseline for everything that reads time.
void BM_clock_now(benchmark::State& state) {
    clock::use_real();
    for (auto _ : state) benchmark::DoNotOptimize(clock::now());
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_clock_now);

// sleep_for(0): the deadline has passed, so await_ready is true and nothing suspends;
// costs two clock reads (one in sleep_for to form the deadline, one in await_ready).
task<int> sleep_zero_body(benchmark::State* state) {
    for (auto _ : *state) {
        auto r = co_await sleep_for(0ns);
        benchmark::DoNotOptimize(r);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_reactor_sleep_for_0(benchmark::State& state) { run_in_group(state, &sleep_zero_body); }
BENCHMARK(BM_reactor_sleep_for_0);

// yield(): one full reactor turn (ready queue, incoming queues, timers, backend poll).
task<int> yield_body(benchmark::State* state) {
    for (auto _ : *state) co_await yield();
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_reactor_yield(benchmark::State& state) { run_in_group(state, &yield_body); }
BENCHMARK(BM_reactor_yield);

// sleep_for(range(0) us): the real suspend path: insert a timer, block in the
// backend until it is due, fire it. Time per op minus the requested sleep is the
// wake-up overshoot (the backend's timeout resolution plus the kernel's timer slack).
task<int> sleep_us_body(benchmark::State* state) {
    const auto d = std::chrono::microseconds(state->range(0));
    for (auto _ : *state) {
        auto r = co_await sleep_for(d);
        benchmark::DoNotOptimize(r);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_reactor_sleep_for_us(benchmark::State& state) { run_in_group(state, &sleep_us_body); }
BENCHMARK(BM_reactor_sleep_for_us)->Arg(1)->Arg(50)->UseRealTime();

// An operation that beats its timeout: when_any(sleep 1h, immediate). The sleeper
// arms a timer and a cancel callback, the immediate task wins, the sleeper's timer
// is cancelled and it ends on the next turn.
task<int> sleeper_1h() {
    auto r = co_await sleep_for(1h);
    co_return r.ok() ? 1 : 0;
}
task<int> timeout_race_body(benchmark::State* state) {
    for (auto _ : *state) {
        auto r = co_await when_any(sleeper_1h(), trivial(2));
        benchmark::DoNotOptimize(r.index);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_reactor_timeout_race(benchmark::State& state) { run_in_group(state, &timeout_race_body); }
BENCHMARK(BM_reactor_timeout_race);

// ---------------------------------------------------------------------------
// published<T>

struct payload {
    uint64_t a = 0, b = 0, c = 0, d = 0;
};

// Owner shard publishes a new version per iteration; every range(0) iterations it
// yields so that the reactor turn reclaims the retired versions (amortised in).
task<int> publish_body(benchmark::State* state) {
    const int64_t every = state->range(0);
    published<payload> pub(std::make_unique<payload>());
    int64_t i = 0;
    for (auto _ : *state) {
        auto next = std::make_unique<payload>();
        next->a = uint64_t(i);
        pub.publish(std::move(next));
        if (++i % every == 0) co_await yield();
    }
    benchmark::DoNotOptimize(pub.version());
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_published_publish(benchmark::State& state) { run_in_group(state, &publish_body); }
BENCHMARK(BM_published_publish)->ArgName("yield_every")->Arg(1)->Arg(1024);

// read() of an unchanging version, dereferenced.
task<int> read_body(benchmark::State* state) {
    published<payload> pub(std::make_unique<payload>());
    for (auto _ : *state) {
        const payload* p = pub.read();
        benchmark::DoNotOptimize(p->a);
    }
    state->SetItemsProcessed(state->iterations());
    co_return 0;
}
void BM_published_read(benchmark::State& state) { run_in_group(state, &read_body); }
BENCHMARK(BM_published_read);

// read() on shard 0 while shard 1 (the owner) publishes continuously: the reader
// pays for the cache line of the pointer and of each fresh version. The reader
// yields every 1024 reads so that the owner can reclaim.
struct contended_pub {
    std::atomic<published<payload>*> pub{nullptr};
    std::atomic<bool> stop{false};
    std::atomic<bool> done{false};
    std::atomic<uint64_t> published_count{0};
};

task<void> publisher_loop(contended_pub* s) {
    published<payload> pub(std::make_unique<payload>());
    s->pub.store(&pub, std::memory_order_release);
    uint64_t i = 0;
    while (!s->stop.load(std::memory_order_acquire)) {
        auto next = std::make_unique<payload>();
        next->a = ++i;
        pub.publish(std::move(next));
        co_await yield();
    }
    s->published_count.store(i, std::memory_order_relaxed);
    s->pub.store(nullptr, std::memory_order_release);
    s->done.store(true, std::memory_order_release);
}

task<int> contended_read_body(benchmark::State* state) {
    contended_pub s;
    contended_pub* sp = &s;
    auto start = [sp] { this_reactor().spawn(publisher_loop(sp)); };
    co_await submit_to(1, start);
    while (!s.pub.load(std::memory_order_acquire)) co_await sleep_for(10us);
    published<payload>* pub = s.pub.load(std::memory_order_acquire);
    uint64_t n = 0;
    for (auto _ : *state) {
        const payload* p = pub->read();
        benchmark::DoNotOptimize(p->a);
        if ((++n & 1023) == 0) co_await yield();
    }
    s.stop.store(true, std::memory_order_release);
    while (!s.done.load(std::memory_order_acquire)) co_await sleep_for(10us);
    state->SetItemsProcessed(state->iterations());
    state->counters["publishes"] = double(s.published_count.load(std::memory_order_relaxed));
    co_return 0;
}
void BM_published_read_while_publishing(benchmark::State& state) { run_in_group(state, &contended_read_body); }
BENCHMARK(BM_published_read_while_publishing)->UseRealTime();

// ---------------------------------------------------------------------------
// cancel_source / cancel_callback (no reactor)

void noop_cb(void* ctx) { benchmark::DoNotOptimize(ctx); }

// arm + reset on a source with range(0) other callbacks registered (O(1) either way).
void BM_cancel_callback_arm_reset(benchmark::State& state) {
    const size_t others = size_t(state.range(0));
    cancel_source src;
    std::vector<cancel_callback> regs(others);
    for (auto& r : regs) r.arm(&src, &noop_cb, nullptr);
    cancel_callback cb;
    for (auto _ : state) {
        cb.arm(&src, &noop_cb, &cb);
        cb.reset();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cancel_callback_arm_reset)->Arg(0)->Arg(64);

// A child source per iteration (what when_any builds): construct linked to a
// parent, destroy (unlinks).
void BM_cancel_child_source(benchmark::State& state) {
    cancel_source parent;
    for (auto _ : state) {
        cancel_source child(&parent);
        benchmark::DoNotOptimize(&child);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cancel_child_source);

// request_cancel fan-out: arm range(0) callbacks on a fresh source, cancel it.
// Items are callbacks fired.
void BM_cancel_request_fanout(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    std::vector<cancel_callback> cbs(n);
    uint64_t fired = 0;
    auto count = [](void* ctx) { ++*static_cast<uint64_t*>(ctx); };
    for (auto _ : state) {
        cancel_source src;
        for (auto& c : cbs) c.arm(&src, count, &fired);
        src.request_cancel();
    }
    benchmark::DoNotOptimize(fired);
    state.SetItemsProcessed(state.iterations() * int64_t(n));
}
BENCHMARK(BM_cancel_request_fanout)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
