// Seeded simulated network; see sim.hh.
#include "services/membership/sim.hh"

namespace pharos::membership {

struct sim_network::endpoint final : transport {
    sim_network* net = nullptr;
    size_t index = 0;
    bool dead = false;
    time_point woken = time_point::max();
    std::unique_ptr<memberlist> ml;

    time_point now() override { return net->now_; }
    void send_packet(const address& to, std::string bytes) override {
        if (dead) return;
        ++net->packets_;
        net->bytes_ += bytes.size();
        size_t dst = net->index_of(to);
        if (dst >= net->nodes_.size() || !net->reachable(index, dst)) return;
        int copies = 1 + (net->opt_.duplicate > 0 && std::uniform_real_distribution<>(0, 1)(net->rng_) < net->opt_.duplicate);
        auto shared = std::make_shared<std::string>(std::move(bytes));
        address from = net->addr(index);
        for (int c = 0; c < copies; ++c) {
            if (net->opt_.loss > 0 && std::uniform_real_distribution<>(0, 1)(net->rng_) < net->opt_.loss) continue;
            net->post(net->now_ + net->delay(), [n = net, dst, from, shared] {
                auto& e = *n->nodes_[dst];
                if (!e.dead) e.ml->handle_packet(from, *shared);
            });
        }
    }
    void stream(const address& to, std::string request, bool want_reply, time_point deadline,
                std::function<void(std::optional<std::string>)> done) override {
        stream_with_refusal(to, std::move(request), want_reply, deadline,
                            [done = std::move(done)](std::optional<std::string> r, bool) { done(std::move(r)); });
    }
    void stream_with_refusal(const address& to, std::string request, bool want_reply, time_point deadline,
                             std::function<void(std::optional<std::string>, bool)> done) override {
        size_t dst = net->index_of(to);
        auto cb = std::make_shared<std::function<void(std::optional<std::string>, bool)>>(std::move(done));
        auto fail_at = [&](time_point t) { net->post(t, [cb] { (*cb)(std::nullopt, false); }); };
        if (dead) return;
        if (dst >= net->nodes_.size() || !net->reachable(index, dst)) return fail_at(deadline);  // SYN lost
        if (net->nodes_[dst]->dead) {  // nothing listens on a killed node's port: RST, connection refused
            time_point rst = net->now_ + net->delay() * 2;
            if (rst > deadline) return fail_at(deadline);
            return net->post(rst, [cb] { (*cb)(std::nullopt, true); });
        }
        net->bytes_ += request.size();
        net->stream_bytes_ += request.size();
        address from = net->addr(index);
        time_point arrive = net->now_ + net->delay() * 2;  // handshake + request
        if (arrive > deadline) return fail_at(deadline);
        auto req = std::make_shared<std::string>(std::move(request));
        size_t src = index;
        net->post(arrive, [n = net, src, dst, from, req, want_reply, deadline, cb] {
            auto& e = *n->nodes_[dst];
            if (e.dead || !n->reachable(src, dst)) return n->post(deadline, [cb] { (*cb)(std::nullopt, false); });
            std::string reply = e.ml->handle_stream(from, *req);
            if (!want_reply) return n->post(n->now_, [cb] { (*cb)(std::nullopt, false); });
            n->bytes_ += reply.size();
            n->stream_bytes_ += reply.size();
            time_point back = n->now_ + n->delay();
            if (reply.empty() || back > deadline)
                return n->post(std::min(back, deadline), [cb] { (*cb)(std::nullopt, false); });
            n->post(back, [cb, r = std::move(reply)]() mutable { (*cb)(std::move(r), false); });
        });
    }
    void wake_at(time_point t) override {
        if (dead || t >= woken) return;  // an earlier or equal wakeup is already queued
        woken = t;
        net->post(t, [this, t] {
            if (woken == t) woken = time_point::max();
            if (dead) return;
            ml->run_timers();
        });
    }
};

memberlist& sim_network::node(size_t i) { return *nodes_[i]->ml; }
bool sim_network::killed(size_t i) const { return nodes_[i]->dead; }

sim_network::sim_network(options o) : opt_(o), rng_(o.seed) {}
sim_network::~sim_network() = default;

void sim_network::post(time_point at, std::function<void()> fn) { q_.push(event{at, ++seq_, std::move(fn)}); }

address sim_network::addr(size_t i) const { return address::v4(10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i), 7946); }

size_t sim_network::index_of(const address& a) const {
    if (a.ip.size() != 4 || uint8_t(a.ip[0]) != 10) return size_t(-1);
    return (size_t(uint8_t(a.ip[1])) << 16) | (size_t(uint8_t(a.ip[2])) << 8) | uint8_t(a.ip[3]);
}

config sim_network::named(config c, size_t i) {
    c.name = "n" + std::to_string(i);
    c.advertise = address::v4(10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i), 7946);
    return c;
}

gossip::push_pull sim_network::everyone_alive(const config& base, size_t n) {
    gossip::push_pull pp;
    pp.header.join = true;
    pp.nodes.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        gossip::push_node_state st;
        config c = named(base, i);
        st.name = c.name;
        st.addr = c.advertise.ip;
        st.port = c.advertise.port;
        st.incarnation = 1;
        st.state = node_state::alive;
        st.vsn = std::string{char(1), char(5), char(base.protocol_version), 0, 0, 0};
        pp.nodes.push_back(std::move(st));
    }
    return pp;
}

size_t sim_network::add(config cfg, delegate d) {
    size_t i = nodes_.size();
    auto e = std::make_unique<endpoint>();
    e->net = this;
    e->index = i;
    e->ml = std::make_unique<memberlist>(named(std::move(cfg), i), *e, std::move(d), rng_());
    nodes_.push_back(std::move(e));
    return i;
}

void sim_network::kill(size_t i) {
    nodes_[i]->dead = true;
    nodes_[i]->ml->shutdown();
}

void sim_network::partition(std::function<int(size_t)> group) {
    group_.resize(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) group_[i] = group(i);
}

bool sim_network::reachable(size_t a, size_t b) const { return group_.empty() || group_[a] == group_[b]; }

duration sim_network::delay() {
    auto span = (opt_.max_delay - opt_.min_delay).count();
    return opt_.min_delay + duration(span > 0 ? int64_t(rng_() % uint64_t(span)) : 0);
}

void sim_network::run_until(time_point t) {
    while (!q_.empty() && q_.top().at <= t) {
        auto ev = std::move(const_cast<event&>(q_.top()));
        q_.pop();
        now_ = std::max(now_, ev.at);
        ev.fn();
    }
    now_ = std::max(now_, t);
}

bool sim_network::run_until(const std::function<bool()>& pred, time_point limit, duration step) {
    while (now_ < limit) {
        if (pred()) return true;
        run_until(std::min(limit, now_ + step));
    }
    return pred();
}

}  // namespace pharos::membership
