#pragma once
// Internal to ops/ (not installed): the max pool over side-by-side 2x2 windows of stride 2 without
// padding, the pool of the book's ConvNets, and its gradient's scatter: used by max_pool2d
// (ops/pool.cpp) and by conv2d_relu_max_pool2d (ops/conv_pool.cpp), which pools each chunk of
// its convolution's output while it is in cache. Where the direct convolution runs (AVX-512,
// ops/conv_direct.hpp), so do these, 16 floats at a time, with the same bits; the loops here
// are the other CPUs' (and the tests' reference, with direct_conv::set_enabled(false)).
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ops/conv_direct.hpp"

namespace xg::pool_2x2 {

// c ? a : b without a branch: on random data a branch per element mispredicts about half the time
// (the compiler turns the conditional into one), which made the forward several times slower.
template <class V>
V pick(bool c, V a, V b) {
    using U = std::conditional_t<sizeof(V) == 8, std::uint64_t, std::uint32_t>;
    static_assert(sizeof(V) == sizeof(U));
    const U mask = U(0) - static_cast<U>(c);
    return std::bit_cast<V>(static_cast<U>((std::bit_cast<U>(a) & mask) | (std::bit_cast<U>(b) & ~mask)));
}

// The flat index (into h * w) of place k (row * 2 + column) in window (i, j) over rows of w elements.
inline std::size_t in_window(std::size_t i, std::size_t j, std::size_t w, unsigned k) {
    return 2 * i * w + 2 * j + (k & 1u) + (k >> 1) * w;
}

// y (planes, h / 2, w / 2) = the maximum of each window of x (planes, h, w), as max_pool2d's rule
// (ops/pool.cpp: the first of equal maxima wins, the last NaN wins over everything). The window
// (a b / c d) is reduced as (a b) against (c d): the first maximum of each pair, then the second
// pair's only if it is greater or NaN: the same rule in the same row-major order, with two
// independent comparisons before the third instead of a chain of three, and no select on memory.
// places[o]: the maximum's place in window o (row * 2 + column) when `keep`; otherwise places
// holds one output row and is overwritten row by row. Computed in 32 bits (so the loop
// vectorises 4 windows at a time, as wide as its floats: a one-byte result made it 16 wide,
// longer than the rows, and scalar) and narrowed to bytes per block of a row.
template <class T>
void max_forward(const T* x, std::size_t planes, std::size_t h, std::size_t w, T* y, std::uint8_t* places, bool keep) {
#ifdef XG_DIRECT_CONV_AVX512
    if (direct_conv::available()) return direct_conv::avx512::max_pool_2x2(x, planes, h, w, y, places, keep);
#endif
    const std::size_t in = h * w, oh = h / 2, ow = w / 2;
    constexpr std::size_t block = 64;
    std::uint32_t wide[block];
    for (std::size_t q = 0; q < planes; ++q, x += in) {
        for (std::size_t i = 0; i < oh; ++i, y += ow) {
            const T* r0 = x + 2 * i * w;
            const T* r1 = r0 + w;
            std::uint8_t* at = places + (keep ? (q * oh + i) * ow : 0);
            for (std::size_t j0 = 0; j0 < ow; j0 += block) {
                const std::size_t j1 = std::min(ow, j0 + block);
                for (std::size_t j = j0; j < j1; ++j) {
                    const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
                    const bool take_b = (b > a) | (b != b), take_d = (d > c) | (d != d);
                    const T ab = pick(take_b, b, a), cd = pick(take_d, d, c);
                    const bool take_cd = (cd > ab) | (cd != cd);
                    y[j] = pick(take_cd, cd, ab);
                    // the row (0 or 1) of the pair taken, and its column (0 or 1), without a branch
                    const std::uint32_t sb = take_b, sd = take_d, scd = take_cd;
                    wide[j - j0] = 2 * scd + sb + scd * (sd - sb);
                }
                for (std::size_t j = j0; j < j1; ++j) at[j] = static_cast<std::uint8_t>(wide[j - j0]);
            }
        }
    }
}

// gx (planes, h, w) = each g (planes, h / 2, w / 2) at its window's place, zeros elsewhere (an
// odd last row or column, in no window, is zeros). Each element of gx belongs to at most one
// window, so each window is written whole, without clearing gx first. With y (the pooled
// output of a relu, of g's shape), relu's backward comes first, as leaky_relu_grad computes it:
// g where y > 0, else 0 * g (NaN stays NaN).
template <class T>
void scatter(const T* g, const T* y, const std::uint8_t* places, std::size_t planes, std::size_t h, std::size_t w,
             T* gx) {
#ifdef XG_DIRECT_CONV_AVX512
    if (direct_conv::available()) return direct_conv::avx512::scatter_2x2(g, y, places, planes, h, w, gx);
#endif
    const std::size_t oh = h / 2, ow = w / 2;
    for (std::size_t q = 0; q < planes; ++q, gx += h * w) {
        for (std::size_t i = 0; i < oh; ++i, g += ow, places += ow, y += y ? ow : 0) {
            T* r0 = gx + 2 * i * w;
            T* r1 = r0 + w;
            for (std::size_t j = 0; j < ow; ++j) {
                const T v = y ? pick(y[j] > T(0), g[j], T(0) * g[j]) : g[j];
                const unsigned k = places[j];
                r0[2 * j] = pick(k == 0, v, T(0));
                r0[2 * j + 1] = pick(k == 1, v, T(0));
                r1[2 * j] = pick(k == 2, v, T(0));
                r1[2 * j + 1] = pick(k == 3, v, T(0));
            }
            if (w > 2 * ow) r0[w - 1] = r1[w - 1] = T(0);
        }
        std::fill(gx + 2 * oh * w, gx + h * w, T(0));
    }
}

}  // namespace xg::pool_2x2
