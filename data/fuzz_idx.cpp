// libFuzzer target for the IDX parser, built by scripts/fuzz (clang only, not part of meson).
// Any input must either parse into a consistent array or raise an xg::Error: a crash, a
// sanitizer report, an uncaught exception of another type or a broken invariant is a finding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "data/idx.hpp"

namespace {

// Small, so that the decompression-bomb guard is reachable from inputs of a few kilobytes.
constexpr std::size_t fuzz_limit = std::size_t{1} << 20;

void check(bool invariant) {
    if (!invariant) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    try {
        const xg::data::IdxArray parsed = xg::data::parse_idx(bytes, "fuzz-input", fuzz_limit);
        check(!parsed.shape.empty() && parsed.shape.size() <= 4);
        std::size_t count = 1;
        for (std::size_t d : parsed.shape) count *= d;  // cannot wrap: the parser bounded it
        check(count == parsed.data.size() && count <= fuzz_limit);
        // What was read writes back to the same array, raw and gzip.
        for (bool gzip : {false, true}) {
            const auto encoded = xg::data::encode_idx(parsed.shape, parsed.data, gzip);
            const xg::data::IdxArray again = xg::data::parse_idx(encoded, "round-trip", fuzz_limit);
            check(again.shape == parsed.shape && again.data == parsed.data);
        }
    } catch (const xg::Error&) {
        // Rejected with a message: the expected outcome for most inputs.
    }
    return 0;
}
