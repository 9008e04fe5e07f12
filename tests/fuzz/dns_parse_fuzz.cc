// Fuzz target for the DNS query parser and resolver. Built as a plain program
// (g++ has no libFuzzer): `dns_parse_fuzz FILE...` runs each file as one
// input; `dns_parse_fuzz -runs=N [-seed=S]` runs N seeded mutations of valid
// queries. With clang, `-fsanitize=fuzzer -DPHAROS_LIBFUZZER` uses libFuzzer's main.
#include "tests/fuzz/dns_fuzz.hh"
#include "tests/fuzz/driver.hh"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return pharos::dnsfuzz::one(data, size); }

#ifndef PHAROS_LIBFUZZER
int main(int argc, char** argv) {
    return pharos::fuzz::fuzz_main(argc, argv, "dns_parse_fuzz", pharos::dnsfuzz::seed_packet, pharos::dnsfuzz::mutate);
}
#endif
