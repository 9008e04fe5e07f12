// Fuzz target for the gossip decoders (codec, LZW, msgpack bodies, push/pull,
// the memberlist engine). Built as a plain program
// (g++ has no libFuzzer): `gossip_decode_fuzz FILE...` runs each file as one
// input; `gossip_decode_fuzz -runs=N [-seed=S]` runs N seeded mutations of valid
// inputs. With clang, `-fsanitize=fuzzer -DPHAROS_LIBFUZZER` uses libFuzzer's main.
#include "tests/fuzz/driver.hh"
#include "tests/fuzz/gossip_fuzz.hh"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return pharos::gossipfuzz::one(data, size); }

#ifndef PHAROS_LIBFUZZER
int main(int argc, char** argv) {
    return pharos::fuzz::fuzz_main(argc, argv, "gossip_decode_fuzz", pharos::gossipfuzz::seed_input,
                                   pharos::gossipfuzz::mutate);
}
#endif
