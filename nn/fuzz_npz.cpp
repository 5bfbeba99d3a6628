// libFuzzer target for the .npz reader (nn/npz.cpp, nn/npy_header.cpp), built by
// `scripts/fuzz npz` (clang only, not part of meson). Any input must either load into arrays
// that are consistent and within the cap, or raise an xg::Error: a crash, a sanitizer report,
// an uncaught exception of another type or a broken invariant is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>

#include "graph/error.hpp"
#include "nn/npz.hpp"

namespace {

// Small, so that the cap is reachable from inputs of a few kilobytes (deflate expands 1032:1).
constexpr std::size_t fuzz_cap = std::size_t{1} << 20;

void check(bool invariant) {
    if (!invariant) __builtin_trap();
}

// load_npz reads files: each input goes to one scratch file of this process, removed at exit.
const std::string& scratch(const char* what) {
    static const std::string in = "/tmp/xgrad-fuzz-npz-" + std::to_string(::getpid()) + ".npz";
    static const std::string out = "/tmp/xgrad-fuzz-npz-" + std::to_string(::getpid()) + "-out.npz";
    static const bool cleanup = std::atexit([] {
        std::remove(scratch("in").c_str());
        std::remove(scratch("out").c_str());
    }) == 0;
    (void)cleanup;
    return std::string_view(what) == "in" ? in : out;
}

template <class T>
void load_and_round_trip(const std::string& path) {
    try {
        const xg::StateDict<T> state = xg::nn::load_npz<T>(path, fuzz_cap);
        std::size_t bytes = 0;
        std::unordered_set<std::string> names;
        for (const auto& [name, array] : state) {
            check(names.insert(name).second);
            std::size_t count = 1;
            for (std::size_t d : array.shape()) count *= d;  // cannot wrap: the reader bounded it
            check(count == array.size());
            bytes += array.size() * sizeof(T);
        }
        check(!state.empty() && bytes <= fuzz_cap);
        // What was read writes back and reads again to the same arrays (NaN payloads included:
        // compare bits).
        xg::nn::save_npz(scratch("out"), state);
        const xg::StateDict<T> again = xg::nn::load_npz<T>(scratch("out"), fuzz_cap);
        check(again.size() == state.size());
        for (std::size_t i = 0; i < state.size(); ++i) {
            check(again[i].first == state[i].first && again[i].second.shape() == state[i].second.shape());
            const std::size_t n = state[i].second.size() * sizeof(T);  // empty arrays may have no buffer
            check(n == 0 || std::memcmp(again[i].second.data(), state[i].second.data(), n) == 0);
        }
    } catch (const xg::Error&) {
        // Rejected with a message: the expected outcome for most inputs.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(scratch("in").c_str(), "wb");
    if (!f) __builtin_trap();
    check(std::fwrite(data, 1, size, f) == size);
    check(std::fclose(f) == 0);
    load_and_round_trip<float>(scratch("in"));
    load_and_round_trip<double>(scratch("in"));
    return 0;
}
