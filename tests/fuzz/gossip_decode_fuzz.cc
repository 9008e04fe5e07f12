// Fuzz target for the gossip decoders (codec, LZW, msgpack bodies, push/pull,
// the memberlist engine). Built as a plain program
// (g++ has no libFuzzer): `gossip_decode_fuzz FILE...` runs each file as one
// input; `gossip_decode_fuzz -runs=N [-seed=S]` runs N seeded mutations of valid
// inputs. With clang, `-fsanitize=fuzzer -DPHAROS_LIBFUZZER` uses libFuzzer's main.
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "tests/fuzz/gossip_fuzz.hh"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return pharos::gossipfuzz::one(data, size);
}

#ifndef PHAROS_LIBFUZZER
int main(int argc, char** argv) {
    uint64_t runs = 100000, seed = 1;
    int files = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "-runs=", 6) == 0)
            runs = std::stoull(argv[i] + 6);
        else if (std::strncmp(argv[i], "-seed=", 6) == 0)
            seed = std::stoull(argv[i] + 6);
        else {
            std::ifstream f(argv[i], std::ios::binary);
            std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
            ++files;
        }
    }
    if (files) return 0;
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull | 1;
    for (uint64_t i = 0; i < runs; ++i) {
        std::string p = pharos::gossipfuzz::mutate(pharos::gossipfuzz::seed_input(unsigned(i)), rng);
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
    std::cout << "gossip_decode_fuzz: " << runs << " inputs, no failure\n";
    return 0;
}
#endif
