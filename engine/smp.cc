#include "smp.hh"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <condition_variable>
#include <chrono>
#include <mutex>

#include "log.hh"

namespace pharos::engine {

struct smp::manual_state {
    std::mutex m;
    std::vector<bool> idle;
    std::vector<deadline> next;
};

namespace {
// A one-shot rendezvous of n threads (libstdc++ 12's std::barrier can hang).
class rendezvous {
public:
    explicit rendezvous(unsigned n) : left_(n) {}
    void arrive_and_wait() {
        std::unique_lock lk(m_);
        if (--left_ == 0) cv_.notify_all();
        else cv_.wait(lk, [this] { return left_ == 0; });
    }
private:
    std::mutex m_;
    std::condition_variable cv_;
    unsigned left_;
};

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int i = 0; i < CPU_SETSIZE; ++i)
            if (CPU_ISSET(i, &set)) cpus.push_back(i);
    if (cpus.empty()) cpus.push_back(0);
    return cpus;
}
void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
}  // namespace

smp::smp(smp_config cfg) : cfg_(cfg) {
    cpus_ = allowed_cpus();
    n_ = cfg_.shards ? cfg_.shards : unsigned(cpus_.size());
    reactors_.resize(n_);
    queues_.reserve(size_t(n_) * n_);
    for (unsigned i = 0; i < n_ * n_; ++i) queues_.push_back(std::make_unique<spsc_queue<smp_message>>(1024));
    manual_ = std::make_unique<manual_state>();
    manual_->idle.assign(n_, false);
    manual_->next.assign(n_, no_deadline);
}

smp::~smp() = default;

bool smp::all_drained() const noexcept {
    for (auto& r : reactors_)
        if (!r || !r->is_drained()) return false;
    for (auto& q : queues_)
        if (!q->empty()) return false;
    return true;
}

void smp::manual_report(unsigned shard, bool idle, deadline next_timer) {
    std::lock_guard lk(manual_->m);
    manual_->idle[shard] = idle;
    manual_->next[shard] = next_timer;
    if (!idle) return;
    for (unsigned i = 0; i < n_; ++i)
        if (!manual_->idle[i]) return;
    for (auto& q : queues_)
        if (!q->empty()) return;
    deadline earliest = no_deadline;
    for (auto d : manual_->next) earliest = std::min(earliest, d);
    if (earliest == no_deadline) return;  // nothing will ever fire: stay put
    clock::advance_to(earliest);
    for (unsigned i = 0; i < n_; ++i) {
        manual_->idle[i] = false;
        if (i != shard) reactors_[i]->io().wake();
    }
}

void smp::stall_watch() {
    using namespace std::chrono;
    const int64_t threshold = cfg_.stall_threshold_ms * 1'000'000;
    std::vector<uint64_t> reported(n_, UINT64_MAX);
    while (!watch_stop_.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(milliseconds(std::max<int64_t>(1, cfg_.stall_threshold_ms / 4)));
        int64_t now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
        for (unsigned i = 0; i < n_; ++i) {
            reactor* r = reactors_[i].get();
            if (!r) continue;
            int64_t started = r->turn_started_ns.load(std::memory_order_relaxed);
            uint64_t turn = r->turns.load(std::memory_order_relaxed);
            if (started && now - started > threshold && reported[i] != turn) {
                reported[i] = turn;
                stalls_.fetch_add(1);
                if (cfg_.log_stalls)
                    log(log_level::warn, "shard %u stalled: one turn has held the reactor for %lld ms", i,
                        (long long)((now - started) / 1'000'000));
            }
        }
    }
}

int smp::run(std::function<task<int>()> main) {
    // With take_signals, a task takes them through wait_for_signal (signals.hh).
    if (cfg_.take_signals) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }
    signal(SIGPIPE, SIG_IGN);

    rendezvous ready(n_);
    rendezvous finished(n_);
    int exit_code = 0;
    auto shard_main = [&](unsigned i) {
        if (cfg_.pin && i < cpus_.size()) pin_to(cpus_[i]);
        reactors_[i] = std::make_unique<reactor>(*this, i, cfg_.reactor);
        ready.arrive_and_wait();
        reactor& r = *reactors_[i];
        if (i == 0) {
            if (!r.fallback_reason().empty() && cfg_.reactor.backend != backend_kind::epoll &&
                backend_from_env() != backend_kind::epoll)
                log(log_level::warn, "io_uring unavailable (%s): using epoll", r.fallback_reason().c_str());
            r.spawn([](smp& self, std::function<task<int>()> fn, int* code) -> task<void> {
                try {
                    *code = co_await fn();
                } catch (const std::exception& e) {
                    log(log_level::error, "main task failed: %s", e.what());
                    *code = 1;
                }
                for (unsigned k = 0; k < self.size(); ++k) self.shard(k).stop();
            }(*this, main, &exit_code));
        }
        r.run();
        finished.arrive_and_wait();  // nobody touches another shard's reactor after this
        reactors_[i].reset();
    };
    std::thread watcher;
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n_; ++i) threads.emplace_back(shard_main, i);
    if (cfg_.stall_threshold_ms > 0) watcher = std::thread([this] { stall_watch(); });
    shard_main(0);
    for (auto& t : threads) t.join();
    watch_stop_.store(true);
    if (watcher.joinable()) watcher.join();
    return exit_code;
}

}  // namespace pharos::engine
