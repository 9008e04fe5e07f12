// Micro-benchmarks of dns::resolver::answer (parse, look up, shuffle, encode)
// over an in-process catalog: the per-query CPU cost without sockets.
#include <benchmark/benchmark.h>

#include "services/dns/resolver.hh"

using namespace pharos;

namespace {

std::string make_query(std::string_view qname, uint16_t qtype, int edns) {
    std::string p("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00", 11);
    p.push_back(edns >= 0 ? 1 : 0);
    dns::name n;
    dns::name_from_text(qname, n);
    p.append(n.wire_view());
    p.push_back(char(qtype >> 8));
    p.push_back(char(qtype & 0xFF));
    p.append("\x00\x01", 2);
    if (edns >= 0) {
        p.append("\x00\x00\x29", 3);
        p.push_back(char(edns >> 8));
        p.push_back(char(edns & 0xFF));
        p.append(std::string(6, '\0'));
    }
    return p;
}

const state::snapshot& catalog() {
    static const state::snapshot snap = [] {
        state::snapshot s;
        uint64_t index = 1;
        for (int i = 1; i <= 10; ++i) {
            catalog::register_request r;
            r.n.name = "node-" + std::to_string(i);
            r.n.address = "10.0.0." + std::to_string(i);
            catalog::service svc;
            svc.id = "web-" + std::to_string(i);
            svc.name = "web";
            svc.port = 8080;
            r.svc = svc;
            catalog::check c;
            c.check_id = "service:" + svc.id;
            c.status = "passing";
            c.service_id = svc.id;
            r.checks.push_back(c);
            s.catalog.register_(r, ++index);
        }
        for (int i = 0; i < 10000; ++i) {
            catalog::register_request r;
            r.n.name = "mix-" + std::to_string(i % 100);
            r.n.address = "10.1.0." + std::to_string(i % 100 + 1);
            catalog::service svc;
            svc.id = "svc-" + std::to_string(i);
            svc.name = svc.id;
            svc.address = "10.2." + std::to_string(i / 256) + "." + std::to_string(i % 256);
            svc.port = 9000;
            r.svc = svc;
            s.catalog.register_(r, ++index);
        }
        return s;
    }();
    return snap;
}

void run(benchmark::State& st, const char* name, uint16_t type, int edns) {
    dns::resolver r(dns::resolver_config{});
    std::string q = make_query(name, type, edns);
    std::string out;
    const state::snapshot& s = catalog();
    for (auto _ : st) {
        r.answer(q, s, true, out);
        benchmark::DoNotOptimize(out.data());
    }
}

void a_10_instances(benchmark::State& st) { run(st, "web.service.consul", dns::type::A, 4096); }
void srv_10_instances(benchmark::State& st) { run(st, "web.service.consul", dns::type::SRV, 4096); }
void a_one_of_10000(benchmark::State& st) { run(st, "svc-4242.service.consul", dns::type::A, 4096); }
void a_no_edns(benchmark::State& st) { run(st, "web.service.consul", dns::type::A, -1); }
void nxdomain(benchmark::State& st) { run(st, "nope.service.consul", dns::type::A, 4096); }

}  // namespace

BENCHMARK(a_10_instances);
BENCHMARK(srv_10_instances);
BENCHMARK(a_one_of_10000);
BENCHMARK(a_no_edns);
BENCHMARK(nxdomain);
BENCHMARK_MAIN();
