// The plain (g++, no libFuzzer) main of a fuzz target: `NAME FILE...` runs each
// file as one input; `NAME -runs=N [-seed=S]` runs N seeded mutations of valid
// inputs, `mutate(seed(i), rng)`. Each target's .cc defines
// LLVMFuzzerTestOneInput and calls fuzz_main from main (unless PHAROS_LIBFUZZER,
// where clang's -fsanitize=fuzzer brings libFuzzer's main).
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace pharos::fuzz {

template <class Seed, class Mutate>
int fuzz_main(int argc, char** argv, const char* name, Seed seed_input, Mutate mutate) {
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
        std::string p = mutate(seed_input(unsigned(i)), rng);
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(p.data()), p.size());
    }
    std::cout << name << ": " << runs << " inputs, no failure\n";
    return 0;
}

}  // namespace pharos::fuzz
