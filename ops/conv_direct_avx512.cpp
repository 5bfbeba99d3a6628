// ops/conv_direct.hpp's direct convolution, compiled for AVX-512 (F, CD, BW, DQ, VL: ops/meson.build)
// and called only after ops/conv.cpp has seen these instructions in the CPU. Everything here has
// internal linkage or lives in xg::direct_conv::avx512 (tests/check_simd_symbols.sh).
#include "ops/avx512_intrinsics.hpp"

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "ops/conv_direct.hpp"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512CD__)
#error "ops/conv_direct_avx512.cpp must be compiled with -mavx512f -mavx512cd -mavx512bw -mavx512dq"
#endif

namespace xg::direct_conv::avx512 {
namespace {

template <class T>
using B = xsimd::batch<T, xsimd::avx512bw>;

// a * b + c rounded once. xsimd's fma compiles to a product and a sum here (the library is built
// with -ffp-contract=off): twice the loop's arithmetic instructions.
inline B<float> fused(B<float> a, B<float> b, B<float> c) { return _mm512_fmadd_ps(a, b, c); }
inline B<double> fused(B<double> a, B<double> b, B<double> c) { return _mm512_fmadd_pd(a, b, c); }

// The same in the lanes selected by mask; c as it is in the others (whatever a and b hold there).
inline B<float> fused(B<float> a, B<float> b, B<float> c, std::uint32_t mask) {
    return _mm512_mask3_fmadd_ps(a, b, c, static_cast<__mmask16>(mask));
}
inline B<double> fused(B<double> a, B<double> b, B<double> c, std::uint32_t mask) {
    return _mm512_mask3_fmadd_pd(a, b, c, static_cast<__mmask8>(mask));
}

// The lanes of v selected by mask, stored one after the other from p.
inline void store_selected(float* p, std::uint32_t mask, B<float> v) {
    _mm512_mask_compressstoreu_ps(p, static_cast<__mmask16>(mask), v);
}
inline void store_selected(double* p, std::uint32_t mask, B<double> v) {
    _mm512_mask_compressstoreu_pd(p, static_cast<__mmask8>(mask), v);
}

// 16 floats (8 doubles) from p + index[l] into lane l, for the lanes in mask (the others zero).
inline __m512 gather(const float* p, __m512i index, std::uint32_t mask) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), static_cast<__mmask16>(mask), index, p, 4);
}
inline __m512d gather(const double* p, __m512i index, std::uint32_t mask) {
    return _mm512_mask_i32gather_pd(_mm512_setzero_pd(), static_cast<__mmask8>(mask), _mm512_castsi512_si256(index), p, 8);
}

// p[0..n) = the first n lanes of v (n at most L). A whole vector is stored without a mask: on
// Zen 5 a masked store to lines not in cache takes about 1.7 times as long as a plain one, even
// with every lane selected (docs/benchmarks.md).
inline void store_first(float* p, std::size_t n, B<float> v) {
    if (n == 16) return v.store_unaligned(p);
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((std::uint32_t(1) << n) - 1), v);
}
inline void store_first(double* p, std::size_t n, B<double> v) {
    if (n == 8) return v.store_unaligned(p);
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((std::uint32_t(1) << n) - 1), v);
}

// The lanes of a vector selected by mask set from consecutive elements at p, the others zero.
inline B<float> load_selected(const float* p, std::uint32_t mask) {
    return _mm512_maskz_expandloadu_ps(static_cast<__mmask16>(mask), p);
}
inline B<double> load_selected(const double* p, std::uint32_t mask) {
    return _mm512_maskz_expandloadu_pd(static_cast<__mmask8>(mask), p);
}

// The first n lanes of a mask of type M (n at most 2 * L splits over two).
template <class M>
M first_lanes(std::size_t n) {
    return n >= 8 * sizeof(M) ? static_cast<M>(~M(0)) : static_cast<M>((std::uint32_t(1) << n) - 1);
}

// The lanes of mask loaded from p, the others zero.
inline B<float> load_first(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
inline B<double> load_first(const double* p, __mmask8 mask) { return _mm512_maskz_loadu_pd(mask, p); }

template <class T>
using Mask = std::conditional_t<std::is_same_v<T, float>, __mmask16, __mmask8>;

// relu as the composed ops apply it, r < 0 ? 0 : r (NaN and -0 kept), in one instruction: x86's
// max returns its second operand when either is NaN or both are zeros.
inline B<float> relu_max(B<float> r) { return _mm512_max_ps(_mm512_setzero_ps(), r); }
inline B<double> relu_max(B<double> r) { return _mm512_max_pd(_mm512_setzero_pd(), r); }

// v in the lanes selected by mask, zero in the others.
inline B<float> only_lanes(__mmask16 mask, B<float> v) { return _mm512_maskz_mov_ps(mask, v); }
inline B<double> only_lanes(__mmask8 mask, B<double> v) { return _mm512_maskz_mov_pd(mask, v); }

// p[0..n) in the first n lanes (n at most L), for arrays streamed from memory, which end at end.
// On AMD's Zen 5 a masked load from memory (not in cache) takes about twice as long as a whole one,
// even with every lane selected: pad_image's rows of 14 floats took 4.5 times as long as with
// whole loads (docs/benchmarks.md). So a vector that lies inside the array is loaded whole, and
// its lanes from n on hold what follows p (callers use only the first n); only the array's last
// vectors take the mask, which reads nothing beyond the end.
template <class T>
inline B<T> load_head(const T* p, std::size_t n, const T* end) {
    constexpr std::ptrdiff_t L = B<T>::size;
    return end - p >= L ? B<T>::load_unaligned(p) : load_first(p, first_lanes<Mask<T>>(n));
}

// Asks for the cache lines of [p, p + bytes) (a hint: it changes no value). The transposes between
// the loops' (positions x channels) tiles and the ops' (channels x positions) arrays touch a row of
// each of L channels at a time: L strided streams, which the hardware prefetcher leaves waiting on
// memory. (A line no other core holds arrives exclusive, so a store to it needs nothing more; GCC
// 12 dropped the write hint, _MM_HINT_ET0, from the forward's loop.)
inline void prefetch_lines(const void* p, std::size_t bytes) {
    const char* c = static_cast<const char*>(p);
    for (std::size_t at = 0; at < bytes; at += 64) _mm_prefetch(c + at, _MM_HINT_T0);
}

// ---- L x L tiles transposed in registers (16 floats, 8 doubles) ----
//
// The loops that keep output channels in the lanes (the 3x3 forward, the weight gradient of
// kernels 3 and 5 wide, the conv-relu-pool loop) turn their inputs and outputs in (channels,
// positions) order with these tiles. Round d swaps the off-diagonal d x d blocks of
// every 2d x 2d block, one two-source permute per row: log2(L) rounds of L permutes instead of a
// gather per row (L cache lines each). In DeepConvNet's step (perf) the weight gradient's
// transpose went from 4.1% to 1.8%, image_3x3's output from 4.4% to 3.9% (there it is mostly
// the stores of y, which both pay).
struct Swaps {
    __m512i low[4], high[4];  // round r swaps blocks of d = L >> (r + 1)
    template <class T>
    static Swaps of() {
        constexpr int L = B<T>::size;
        Swaps s;
        using Index = std::conditional_t<L == 16, std::int32_t, std::int64_t>;  // the permutes' lane width
        for (int r = 0, d = L / 2; d >= 1; ++r, d /= 2) {
            alignas(64) Index lo[L], hi[L];
            for (int j = 0; j < L; ++j) {
                lo[j] = (j & d) ? L + j - d : j;
                hi[j] = (j & d) ? L + j : j + d;
            }
            s.low[r] = _mm512_load_si512(lo);
            s.high[r] = _mm512_load_si512(hi);
        }
        return s;
    }
};

inline B<float> permute2(B<float> a, __m512i index, B<float> b) { return _mm512_permutex2var_ps(a, index, b); }
inline B<double> permute2(B<double> a, __m512i index, B<double> b) { return _mm512_permutex2var_pd(a, index, b); }

// r[i] lane j <-> r[j] lane i.
template <class T>
inline void transpose_tile(const Swaps& swaps, B<T>* r) {
    constexpr int L = B<T>::size;
    int round = 0;
#pragma GCC unroll 4
    for (int d = L / 2; d >= 1; d /= 2, ++round)
#pragma GCC unroll 16
        for (int i = 0; i < L; ++i)
            if (!(i & d)) {
                const B<T> a = r[i], c = r[i + d];
                r[i] = permute2(a, swaps.low[round], c);
                r[i + d] = permute2(a, swaps.high[round], c);
            }
}

// Copies image x (ci, h, w) into the inside of its padded planes.
template <class T>
void pad_image(const Sizes& s, const T* x, T* padded) {
    constexpr std::size_t L = B<T>::size;
    const T* end = x + s.ci * s.h * s.w;
    for (std::size_t c = 0; c < s.ci; ++c)
        for (std::size_t r = 0; r < s.h; ++r) {
            const T* src = x + (c * s.h + r) * s.w;
            T* dst = padded + c * s.plane + (r + s.ph) * s.wp + s.pw;
            std::size_t j = 0;
            for (; j + L <= s.w; j += L) B<T>::load_unaligned(src + j).store_unaligned(dst + j);
            if (j < s.w) store_first(dst + j, s.w - j, load_head(src + j, s.w - j, end));
        }
}

// The inner block: KB output channels times QV vectors of wide positions from q, accumulated in
// registers over every input channel and kernel tap, then written out with the bias and relu.
// One flat loop over the taps: with three nested ones (c, i, j) GCC kept the accumulators in
// memory between rows of the kernel. w, y and bias are at the block's first output channel.
template <int KB, int QV, class T>
inline void block(const Sizes& s, const Tap* taps, const Lanes* lanes, const T* padded, const T* w, const T* bias,
                  bool relu, T* y, std::size_t q) {
    constexpr std::size_t L = B<T>::size;
    B<T> acc[KB][QV];
    for (int a = 0; a < KB; ++a)
        for (int v = 0; v < QV; ++v) acc[a][v] = B<T>(T(0));
    const T* x = padded + q;
    const std::size_t n = s.ci * s.kh * s.kw, stride = s.w_stride;
    for (std::size_t t = 0; t < n; ++t) {
        const T* xs = x + taps[t].input;
        const T* ws = w + taps[t].weight;
        B<T> xv[QV];
        for (int v = 0; v < QV; ++v) xv[v] = B<T>::load_unaligned(xs + v * L);
        for (int a = 0; a < KB; ++a) {
            const B<T> wv(ws[a * stride]);
            for (int v = 0; v < QV; ++v) acc[a][v] = fused(wv, xv[v], acc[a][v]);
        }
    }
    const std::size_t out = s.oh * s.ow;
    lanes += q / L;
    for (int a = 0; a < KB; ++a)
        for (int v = 0; v < QV; ++v) {
            if (!lanes[v].mask) continue;
            B<T> r = acc[a][v];
            if (bias) r = r + B<T>(bias[a]);
            if (relu) r = relu_max(r);
            store_selected(y + a * out + lanes[v].first, lanes[v].mask, r);
        }
}

// KB output channels over all wide positions: blocks of 3 vectors (8 x 3 accumulators of the 32
// registers), then the 1 or 2 left.
template <int KB, class T>
void channels(const Sizes& s, const Tap* taps, const Lanes* lanes, const T* padded, const T* w, const T* bias,
              bool relu, T* y) {
    constexpr std::size_t L = B<T>::size;
    const std::size_t end = s.wide;
    std::size_t q = 0;
    for (; q + 3 * L <= end; q += 3 * L) block<KB, 3>(s, taps, lanes, padded, w, bias, relu, y, q);
    if (q + 2 * L <= end) block<KB, 2>(s, taps, lanes, padded, w, bias, relu, y, q);
    else if (q + L <= end) block<KB, 1>(s, taps, lanes, padded, w, bias, relu, y, q);
}

template <class T>
void run(const Sizes& s, const Tap* taps, const Lanes* lanes, const T* x, const T* w, const T* bias, bool relu, T* y,
         T* padded) {
    pad_image(s, x, padded);
    const std::size_t out = s.oh * s.ow;
    auto at = [&](std::size_t k) { return bias ? bias + k : nullptr; };
    std::size_t k = 0;
    for (; k + 8 <= s.co; k += 8) channels<8>(s, taps, lanes, padded, w + k * s.w_stride, at(k), relu, y + k * out);
    for (; k + 4 <= s.co; k += 4) channels<4>(s, taps, lanes, padded, w + k * s.w_stride, at(k), relu, y + k * out);
    for (; k + 2 <= s.co; k += 2) channels<2>(s, taps, lanes, padded, w + k * s.w_stride, at(k), relu, y + k * out);
    for (; k < s.co; ++k) channels<1>(s, taps, lanes, padded, w + k * s.w_stride, at(k), relu, y + k * out);
}

// ---- the forward loop of a 3x3 kernel with output channels in the lanes ----
//
// For P output positions of a row and KV vectors of output channels, every kernel row (c, i)
// loads the 3 taps' weight vectors once and broadcasts the P + 2 inputs the row reads: input m
// feeds position m - j through tap j. So there is no lane of padding columns to compute, and
// the loads stay well below the multiply-adds. The results go to yt (positions x channels), and
// image_3x3 transposes them into y with the bias and relu.

// wt (ci * kh * kw, cop): the weights of each tap for all output channels, L channels per gather
// (at a stride of w_stride; a scalar loop made DeepConvNet's inference at batch 1 a third slower).
template <class T>
void transpose_weights_run(const Sizes& s, const Tap* taps, const T* w, T* wt) {
    constexpr std::size_t L = B<T>::size;
    const std::size_t cop = (s.co + L - 1) / L * L, n = s.ci * s.kh * s.kw;
    alignas(64) std::int32_t offsets[16];
    for (std::size_t l = 0; l < L; ++l) offsets[l] = static_cast<std::int32_t>(l * s.w_stride);
    const __m512i index = _mm512_load_si512(offsets);
    for (std::size_t k = 0; k < cop; k += L) {
        const std::uint32_t mask = (std::uint32_t(1) << (s.co - k < L ? s.co - k : L)) - 1;
        for (std::size_t t = 0; t < n; ++t)
            B<T>(gather(w + k * s.w_stride + taps[t].weight, index, mask)).store_aligned(wt + t * cop + k);
    }
}

template <int P, int KV, class T>
inline void block_3x3(const Sizes& s, const T* padded, const T* wt, std::size_t cop, std::size_t p, T* yt) {
    B<T> acc[P][KV];
    for (int m = 0; m < P; ++m)
        for (int v = 0; v < KV; ++v) acc[m][v] = B<T>(T(0));
    const std::size_t plane = s.plane, wp = s.wp;
    // one flat loop over the kernel rows (c, i), as in block()
    const T* x = padded + p;
    std::size_t i = 0;
    for (std::size_t r = 0, rows = s.ci * 3; r < rows; ++r, wt += 3 * cop) {
        B<T> wv[3][KV];
        for (int j = 0; j < 3; ++j)
            for (int v = 0; v < KV; ++v) wv[j][v] = B<T>::load_aligned(wt + j * cop + v * B<T>::size);
        // unrolled (GCC leaves an 18-step loop rolled, and the accumulators in memory)
#pragma GCC unroll 32
        for (int m = 0; m < P + 2; ++m) {
            const B<T> xb(x[m]);
#pragma GCC unroll 3
            for (int j = 0; j < 3; ++j)
                if (m - j >= 0 && m - j < P)
                    for (int v = 0; v < KV; ++v) acc[m - j][v] = fused(wv[j][v], xb, acc[m - j][v]);
        }
        if (++i == 3) {
            i = 0;
            x += plane - 2 * wp;
        } else {
            x += wp;
        }
    }
    for (int m = 0; m < P; ++m)
        for (int v = 0; v < KV; ++v) acc[m][v].store_aligned(yt + m * cop + v * B<T>::size);
}

// The output row oy's positions [ox, ow) of channel vectors [kv, kv + KV), P at a time, then fewer.
template <int KV, class T>
void row_3x3(const Sizes& s, const T* padded, const T* wt, std::size_t cop, std::size_t kv, std::size_t oy, T* yt) {
    constexpr std::size_t L = B<T>::size;
    const T* w = wt + kv * L;
    std::size_t ox = 0;
    const auto at = [&](std::size_t x) { return yt + (oy * s.ow + x) * cop + kv * L; };
    if constexpr (KV == 1)
        for (; ox + 16 <= s.ow; ox += 16) block_3x3<16, 1>(s, padded, w, cop, oy * s.wp + ox, at(ox));
    if (s.ow % 8 != 0 && s.ow % 7 == 0)
        for (; ox + 7 <= s.ow; ox += 7) block_3x3<7, KV>(s, padded, w, cop, oy * s.wp + ox, at(ox));
    for (; ox + 8 <= s.ow; ox += 8) block_3x3<8, KV>(s, padded, w, cop, oy * s.wp + ox, at(ox));
    if (ox + 4 <= s.ow) block_3x3<4, KV>(s, padded, w, cop, oy * s.wp + ox, at(ox)), ox += 4;
    if (ox + 2 <= s.ow) block_3x3<2, KV>(s, padded, w, cop, oy * s.wp + ox, at(ox)), ox += 2;
    if (ox < s.ow) block_3x3<1, KV>(s, padded, w, cop, oy * s.wp + ox, at(ox));
}

// The L x L tiles of src (count positions of cop elements each: positions x channels), each
// transposed in registers: f(k, q, n, channels, r) with r[i] channel k + i's values at
// positions q .. q + n (i < channels).
template <class T, class F>
inline void transposed_tiles(std::size_t co, std::size_t count, const T* src, std::size_t cop, F f) {
    constexpr std::size_t L = B<T>::size;
    const Swaps swaps = Swaps::of<T>();
    for (std::size_t k = 0; k < co; k += L) {
        const std::size_t channels = co - k < L ? co - k : L;
        for (std::size_t q = 0; q < count; q += L) {
            const std::size_t n = count - q < L ? count - q : L;
            B<T> r[L];
            for (std::size_t i = 0; i < L; ++i) r[i] = i < n ? B<T>::load_aligned(src + (q + i) * cop + k) : B<T>(T(0));
            transpose_tile(swaps, r);
            f(k, q, n, channels, r);
        }
    }
}

// y (co, q) = yt (q, cop) transposed, bias and relu added.
template <class T>
void transpose_output(const Sizes& s, const T* yt, std::size_t cop, const T* bias, bool relu, T* y) {
    const std::size_t q_count = s.oh * s.ow;
    const auto store = [&](std::size_t k, std::size_t q, std::size_t n, std::size_t channels, B<T>* r) {
        for (std::size_t i = 0; i < channels; ++i) {
            if (bias) r[i] = r[i] + B<T>(bias[k + i]);
            if (relu) r[i] = relu_max(r[i]);
            store_first(y + (k + i) * q_count + q, n, r[i]);
        }
    };
    transposed_tiles(s.co, q_count, yt, cop, store);
}

template <class T>
void image_3x3_run(const Sizes& s, const T* wt, const T* x, const T* bias, bool relu, T* y, T* padded, T* yt) {
    constexpr std::size_t L = B<T>::size;
    pad_image(s, x, padded);
    const std::size_t cop = (s.co + L - 1) / L * L, vectors = cop / L;
    for (std::size_t oy = 0; oy < s.oh; ++oy) {
        std::size_t kv = 0;
        for (; kv + 2 <= vectors; kv += 2) row_3x3<2>(s, padded, wt, cop, kv, oy, yt);
        if (kv < vectors) row_3x3<1>(s, padded, wt, cop, kv, oy, yt);
    }
    transpose_output(s, yt, cop, bias, relu, y);
}

// The weight gradient's block: KB output channels times TB taps, each a vector of partial sums
// over the wide positions of every image of the chunk, added to gw at the end. gy is the chunk's
// first image's wide gradient at the block's first channel; gw is at that channel. Only the
// lanes that are outputs take a product: the others read inputs no output of that tap reads
// (the next row's, or the padding), and 0 * inf there would make a NaN the true sum has not.
template <int KB, int TB, class T>
inline void weight_block(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const T* padded,
                         std::size_t padded_step, const T* gy, std::size_t gy_step, T* gw) {
    constexpr std::size_t L = B<T>::size;
    B<T> acc[KB][TB];
    for (int a = 0; a < KB; ++a)
        for (int b = 0; b < TB; ++b) acc[a][b] = B<T>(T(0));
    // One flat loop over images and positions, as in block().
    std::size_t q = 0;
    for (std::size_t step = 0, steps = images * (s.wide / L); step < steps; ++step) {
        const std::uint32_t mask = lanes[q / L].mask;
        B<T> g[KB];
        for (int a = 0; a < KB; ++a) g[a] = B<T>::load_unaligned(gy + a * s.wide + q);
        for (int b = 0; b < TB; ++b) {
            const B<T> xv = B<T>::load_unaligned(padded + taps[b].input + q);
            for (int a = 0; a < KB; ++a) acc[a][b] = fused(g[a], xv, acc[a][b], mask);
        }
        if ((q += L) == s.wide) q = 0, padded += padded_step, gy += gy_step;
    }
    for (int a = 0; a < KB; ++a)
        for (int b = 0; b < TB; ++b) gw[a * s.w_stride + taps[b].weight] += xsimd::hadd(acc[a][b]);
}

// KB output channels over all taps: blocks of 6 taps (4 x 6 accumulators), then 3, 2 and 1.
template <int KB, class T>
void weight_channels(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const T* padded,
                     std::size_t padded_step, const T* gy, std::size_t gy_step, T* gw) {
    const std::size_t n = s.ci * s.kh * s.kw;
    std::size_t t = 0;
    for (; t + 6 <= n; t += 6) weight_block<KB, 6>(s, taps + t, lanes, images, padded, padded_step, gy, gy_step, gw);
    for (; t + 3 <= n; t += 3) weight_block<KB, 3>(s, taps + t, lanes, images, padded, padded_step, gy, gy_step, gw);
    for (; t + 2 <= n; t += 2) weight_block<KB, 2>(s, taps + t, lanes, images, padded, padded_step, gy, gy_step, gw);
    for (; t < n; ++t) weight_block<KB, 1>(s, taps + t, lanes, images, padded, padded_step, gy, gy_step, gw);
}

// ---- the weight gradient with the output channels in the lanes (kernels 3 or 5 wide) ----
//
// The loop above puts output positions in the lanes and needs a horizontal sum per weight; it
// runs at about 100 GFLOP/s whatever its block shape or cache footprint. For kernels 3 or 5
// wide (the ConvNets' 3x3 and 5x5 layers, any height) the lanes hold output channels instead:
// the gradient is first transposed to gyt (positions, channels rounded up to whole vectors,
// zeros beyond co), and then, for every output position, a vector of KV * L channels' gradients
// is multiplied with the one input value each tap reads (a broadcast) and added to that tap's
// accumulators. Only output positions are visited, so there is no lane to mask, and each
// weight's sum runs over the chunk's images and positions in order, in one lane. The taps are
// taken a few kernel rows at a time: the rows (c, i) of all input channels in order, each row KW
// taps, as many rows as leave the accumulators in registers.

// Whether the gradient is taken with the output channels in the lanes: kernels 3 wide (any
// number of channels), and 5 wide with more output channels than half a vector. The weight
// gradient of 100 images of 28 x 28 by a 5 x 5 kernel in float, one thread, positions in the
// lanes -> channels: 30 channels 1081-1172 -> 979-1017 us, 16 channels 511-521 -> 393-409,
// 6 channels 209 -> 314. Each width is a set of instantiations (code and compile time); other
// widths are rare with stride 1.
template <class T>
bool uses_channel_lanes(const Sizes& s) {
    return s.kw == 3 || (s.kw == 5 && 2 * s.co > B<T>::size);
}

// dst (images, positions, cop) = src's (images, co, positions) transposed in L x L tiles, images
// src_step apart; the lanes at or beyond co are zeros.
template <class T>
void transpose_to_lanes(std::size_t co, std::size_t positions, std::size_t images, const T* src, std::size_t src_step,
                        std::size_t cop, T* dst) {
    constexpr std::size_t L = B<T>::size;
    const Swaps swaps = Swaps::of<T>();
    for (std::size_t n = 0; n < images; ++n)
        for (std::size_t v = 0; v < cop; v += L) {
            const std::size_t channels = co - v < L ? co - v : L;
            const T* g = src + n * src_step + v * positions;
            const T* end = src + n * src_step + co * positions;
            T* out = dst + n * positions * cop + v;
            for (std::size_t q = 0; q < positions; q += L) {
                const std::size_t m = positions - q < L ? positions - q : L;
                // lanes from m on go to rows r[m..L) of the transposed tile, which are not stored
                B<T> r[L];
                for (std::size_t i = 0; i < L; ++i) r[i] = i < channels ? load_head(g + i * positions + q, m, end) : B<T>(T(0));
                transpose_tile(swaps, r);
                for (std::size_t i = 0; i < m; ++i) r[i].store_aligned(out + (q + i) * cop);
            }
        }
}

// gw += the sums of one vector of output channels (from channel k0) for n taps from `first`:
// acc[t] holds tap t's, one lane per channel (lanes at or beyond co dropped).
template <class T>
inline void add_tap_sums(const Sizes& s, const B<T>* acc, int n, const Tap* first, std::size_t k0, T* gw) {
    constexpr std::size_t L = B<T>::size;
    alignas(64) T sums[L];
    for (int t = 0; t < n; ++t) {
        acc[t].store_aligned(sums);
        for (std::size_t l = 0; l < L && k0 + l < s.co; ++l) gw[(k0 + l) * s.w_stride + first[t].weight] += sums[l];
    }
}

// Where the weight gradient's loops read the gradient at the convolution's output, position by
// position over the chunk's images (step n * oh * ow + q): load(step, v), vector v of the
// position's output channels (cop of them, whole vectors).

// From gyt (images, oh * ow, cop), the gradient written out in that layout.
template <class T>
struct LaneRows {
    B<T> load(std::size_t step, std::size_t v) const { return B<T>::load_aligned(gyt + step * cop + v * B<T>::size); }
    const T* gyt;
    std::size_t cop;
};

// From a 2x2 max pool's gradient and places (PooledGradient, conv_direct.hpp): a position's value
// is its window's in the lanes whose maximum is there, zero in the others. The same values as
// scatter_2x2_lanes writes to gyt, read from a quarter of the memory and never written out.
template <class T>
struct PooledRows {
    // A whole load, then the mask: GCC takes a masked load for a read of any memory, and would
    // then keep the loops' accumulators in memory (stored at every step).
    B<T> load(std::size_t step, std::size_t v) const {
        const B<T> all = B<T>::load_aligned(g.values + g.window[step] + v * B<T>::size);
        return only_lanes(static_cast<Mask<T>>(g.lanes[step * vectors + v]), all);
    }
    PooledGradient<T> g;
    std::size_t vectors;
};

// KV vectors of output channels (from channel vector kv) times the KW taps of ROWS kernel rows
// (from row r0 of the ci * kh rows (c, i)), over every output position of the chunk's images;
// the sums added to gw. One flat loop over images and positions, as in block(); p is the
// position's offset in the padded planes.
template <int KV, int ROWS, int KW, class T, class Src>
inline void weight_block_rows(const Sizes& s, const Tap* taps, std::size_t images, const T* padded,
                              std::size_t padded_step, std::size_t r0, const Src src, std::size_t kv, T* gw) {
    constexpr std::size_t L = B<T>::size;
    B<T> acc[KV][ROWS * KW];
    for (int v = 0; v < KV; ++v)
        for (int t = 0; t < ROWS * KW; ++t) acc[v][t] = B<T>(T(0));
    const Tap* first = taps + r0 * KW;
    // each row's first input, c * plane + i * wp; its tap j reads j further (the taps' order)
    std::size_t rows[ROWS];
    for (int r = 0; r < ROWS; ++r) rows[r] = first[r * KW].input;
    const T* x = padded;
    const std::size_t wp = s.wp;
    std::size_t p = 0, col = 0, row = 0;
    for (std::size_t step = 0, steps = images * s.oh * s.ow; step < steps; ++step) {
        B<T> gv[KV];
        for (int v = 0; v < KV; ++v) gv[v] = src.load(step, kv + v);
        for (int r = 0; r < ROWS; ++r)
            for (int j = 0; j < KW; ++j) {
                const B<T> xb(x[rows[r] + j + p]);
                for (int v = 0; v < KV; ++v) acc[v][r * KW + j] = fused(gv[v], xb, acc[v][r * KW + j]);
            }
        ++p;
        if (++col == s.ow) {
            col = 0;
            p += wp - s.ow;
            if (++row == s.oh) row = 0, p = 0, x += padded_step;
        }
    }
    for (int v = 0; v < KV; ++v) add_tap_sums(s, acc[v], ROWS * KW, first, (kv + v) * L, gw);
}

// One vector of output channels (16 floats or fewer) times the KW taps of ROWS kernel rows, two
// output positions of a row per step: one vector each would need a broadcast per multiply-add
// (the loads then bound the loop), while positions p and p + 1 share KW - 1 of the KW + 1 inputs
// each kernel row reads. For rows of an even number of outputs.
template <int ROWS, int KW, class T, class Src>
inline void weight_block_rows_pairs(const Sizes& s, const Tap* taps, std::size_t images, const T* padded,
                                    std::size_t padded_step, std::size_t r0, const Src src, std::size_t kv, T* gw) {
    constexpr std::size_t L = B<T>::size;
    B<T> acc[ROWS * KW];
    for (int t = 0; t < ROWS * KW; ++t) acc[t] = B<T>(T(0));
    const Tap* first = taps + r0 * KW;
    std::size_t rows[ROWS];
    for (int r = 0; r < ROWS; ++r) rows[r] = first[r * KW].input;
    const T* x = padded;
    const std::size_t wp = s.wp;
    std::size_t p = 0, col = 0, row = 0;
    for (std::size_t step = 0, steps = images * s.oh * s.ow / 2; step < steps; ++step) {
        const B<T> g0 = src.load(2 * step, kv), g1 = src.load(2 * step + 1, kv);
        for (int r = 0; r < ROWS; ++r) {
            const T* in = x + rows[r] + p;
            B<T> xb[KW + 1];
            for (int j = 0; j <= KW; ++j) xb[j] = B<T>(in[j]);
            B<T>* a = acc + r * KW;
            for (int j = 0; j < KW; ++j) a[j] = fused(g1, xb[j + 1], fused(g0, xb[j], a[j]));
        }
        p += 2;
        if ((col += 2) == s.ow) {
            col = 0;
            p += wp - s.ow;
            if (++row == s.oh) row = 0, p = 0, x += padded_step;
        }
    }
    add_tap_sums(s, acc, ROWS * KW, first, kv * L, gw);
}

// All ci * kh kernel rows of a kernel KW wide. Where the output rows are of an even length, one
// channel vector at a time, two positions a step (KV1 kernel rows a block): the two positions
// share each input broadcast, and a step's fixed work (the gradient's loads, the position's
// bookkeeping) serves KV1 * KW * 2 multiply-adds. (Two vectors of KV2 rows, one position a step,
// as before: SimpleConvNet's weight and bias gradients at batch 32 took 240 us, against 193 this
// way, 2026-12-04.) Else two channel vectors at a time where there are two (KV2 rows a block),
// then one (KV1 rows). The rows left after the last whole block go in one of half that, then one
// at a time.
template <int KW, int KV2, int KV1, class T, class Src>
void weight_grad_rows(const Sizes& s, const Tap* taps, std::size_t images, const T* padded, std::size_t padded_step,
                      const Src src, std::size_t cop, T* gw) {
    constexpr std::size_t L = B<T>::size;
    constexpr int half = KV1 / 2;
    const std::size_t vectors = cop / L, rows = s.ci * s.kh;
    if (s.ow % 2 == 0) {
        for (std::size_t kv = 0; kv < vectors; ++kv) {
            std::size_t r = 0;
            for (; r + KV1 <= rows; r += KV1)
                weight_block_rows_pairs<KV1, KW>(s, taps, images, padded, padded_step, r, src, kv, gw);
            if (r + half <= rows)
                weight_block_rows_pairs<half, KW>(s, taps, images, padded, padded_step, r, src, kv, gw), r += half;
            for (; r < rows; ++r) weight_block_rows_pairs<1, KW>(s, taps, images, padded, padded_step, r, src, kv, gw);
        }
        return;
    }
    std::size_t kv = 0;
    for (; kv + 2 <= vectors; kv += 2) {
        std::size_t r = 0;
        for (; r + KV2 <= rows; r += KV2)
            weight_block_rows<2, KV2, KW>(s, taps, images, padded, padded_step, r, src, kv, gw);
        for (; r < rows; ++r) weight_block_rows<2, 1, KW>(s, taps, images, padded, padded_step, r, src, kv, gw);
    }
    if (kv == vectors) return;
    std::size_t r = 0;
    for (; r + KV1 <= rows; r += KV1) weight_block_rows<1, KV1, KW>(s, taps, images, padded, padded_step, r, src, kv, gw);
    if (r + half <= rows)
        weight_block_rows<1, half, KW>(s, taps, images, padded, padded_step, r, src, kv, gw), r += half;
    for (; r < rows; ++r) weight_block_rows<1, 1, KW>(s, taps, images, padded, padded_step, r, src, kv, gw);
}

// Rows a block: at most 28 of the 32 vector registers hold accumulators (2 x 3 x 3 and 6 x 3 for
// 3-wide rows, as the 3x3 loops had; 2 x 2 x 5 and 5 x 5 for 5-wide).
//
// The weight gradient from src, the output gradient with the channels in the lanes, for the
// kernels uses_channel_lanes takes; x's images padded into padded first.
template <class T, class Src>
void weight_grad_channel_lanes(const Sizes& s, const Tap* taps, std::size_t images, const T* x, std::size_t x_step,
                               const Src src, std::size_t cop, T* gw, T* padded) {
    const std::size_t padded_step = s.ci * s.plane + 64;
    for (std::size_t n = 0; n < images; ++n) pad_image(s, x + n * x_step, padded + n * padded_step);
    if (s.kw == 3) return weight_grad_rows<3, 3, 6>(s, taps, images, padded, padded_step, src, cop, gw);
    weight_grad_rows<5, 2, 5>(s, taps, images, padded, padded_step, src, cop, gw);
}

template <class T>
void weight_grad_lanes_run(const Sizes& s, const Tap* taps, std::size_t images, const T* x, std::size_t x_step,
                           const T* gyt, std::size_t cop, T* gw, T* padded) {
    weight_grad_channel_lanes(s, taps, images, x, x_step, LaneRows<T>{gyt, cop}, cop, gw, padded);
}

template <class T>
void run_weight_grad(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const T* x,
                     std::size_t x_step, const T* gy, std::size_t gy_step, T* gw, T* padded, T* wide) {
    constexpr std::size_t L = B<T>::size;
    const std::size_t padded_step = s.ci * s.plane + 64, wide_step = s.co * s.wide, out = s.oh * s.ow;
    if (uses_channel_lanes<T>(s)) {
        const std::size_t cop = (s.co + L - 1) / L * L;
        transpose_to_lanes(s.co, out, images, gy, gy_step, cop, wide);
        return weight_grad_lanes_run(s, taps, images, x, x_step, wide, cop, gw, padded);
    }
    for (std::size_t n = 0; n < images; ++n) pad_image(s, x + n * x_step, padded + n * padded_step);
    for (std::size_t n = 0; n < images; ++n) {
        for (std::size_t k = 0; k < s.co; ++k)
            for (std::size_t v = 0; v < s.wide / L; ++v)
                if (lanes[v].mask)
                    load_selected(gy + n * gy_step + k * out + lanes[v].first, lanes[v].mask)
                        .store_unaligned(wide + n * wide_step + k * s.wide + v * L);
    }
    std::size_t k = 0;
    for (; k + 4 <= s.co; k += 4)
        weight_channels<4>(s, taps, lanes, images, padded, padded_step, wide + k * s.wide, wide_step, gw + k * s.w_stride);
    for (; k + 2 <= s.co; k += 2)
        weight_channels<2>(s, taps, lanes, images, padded, padded_step, wide + k * s.wide, wide_step, gw + k * s.w_stride);
    for (; k < s.co; ++k)
        weight_channels<1>(s, taps, lanes, images, padded, padded_step, wide + k * s.wide, wide_step, gw + k * s.w_stride);
}

// ---- the 2x2 max pool of stride 2 and its scatter (ops/pool_2x2.hpp's rule and layout) ----

// Per element type: a vector of 2 * L consecutive elements split into its even and odd lanes,
// the two interleaved again, and a place vector (bytes) from the row and column masks.
struct PoolF {
    using V = __m512;
    using M = __mmask16;
    static constexpr std::size_t L = 16;
    static V even(V lo, V hi) {
        return _mm512_permutex2var_ps(lo, _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0), hi);
    }
    static V odd(V lo, V hi) {
        return _mm512_permutex2var_ps(lo, _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1), hi);
    }
    static V interleave_lo(V a, V b) {
        return _mm512_permutex2var_ps(a, _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0), b);
    }
    static V interleave_hi(V a, V b) {
        return _mm512_permutex2var_ps(a, _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8), b);
    }
    // take = (b > a) | (b is NaN); max = take ? b : a
    static M take(V b, V a) { return _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q); }
    static V blend(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
    static V only(M m, V v) { return only_lanes(m, B<float>(v)); }
    static M positive(V v) { return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ); }
    static V times_zero(V v) { return _mm512_mul_ps(_mm512_setzero_ps(), v); }
    // the place bytes (load_place_bytes) widened to lanes, and the lanes whose place is k
    static __m512i places(__m128i bytes) { return _mm512_cvtepu8_epi32(bytes); }
    static M place_is(__m512i places, int k) { return _mm512_cmpeq_epi32_mask(places, _mm512_set1_epi32(k)); }
    // lane places (store_lane_places): the lanes whose value passed relu (below 4), and the place
    static M passed(__m512i places) { return _mm512_cmplt_epu32_mask(places, _mm512_set1_epi32(4)); }
    static __m512i place(__m512i places) { return _mm512_and_si512(places, _mm512_set1_epi32(3)); }
    // places held as floats 0 to 3, as bytes
    static __m128i bytes(V places) { return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(places)); }
};

struct PoolD {
    using V = __m512d;
    using M = __mmask8;
    static constexpr std::size_t L = 8;
    static V even(V lo, V hi) { return _mm512_permutex2var_pd(lo, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), hi); }
    static V odd(V lo, V hi) { return _mm512_permutex2var_pd(lo, _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1), hi); }
    static V interleave_lo(V a, V b) { return _mm512_permutex2var_pd(a, _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), b); }
    static V interleave_hi(V a, V b) { return _mm512_permutex2var_pd(a, _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4), b); }
    static M take(V b, V a) { return _mm512_cmp_pd_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_pd_mask(b, b, _CMP_UNORD_Q); }
    static V blend(M m, V a, V b) { return _mm512_mask_blend_pd(m, a, b); }
    static V only(M m, V v) { return only_lanes(m, B<double>(v)); }
    static M positive(V v) { return _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_GT_OQ); }
    static V times_zero(V v) { return _mm512_mul_pd(_mm512_setzero_pd(), v); }
    static __m512i places(__m128i bytes) { return _mm512_cvtepu8_epi64(bytes); }
    static M place_is(__m512i places, int k) { return _mm512_cmpeq_epi64_mask(places, _mm512_set1_epi64(k)); }
    static M passed(__m512i places) { return _mm512_cmplt_epu64_mask(places, _mm512_set1_epi64(4)); }
    static __m512i place(__m512i places) { return _mm512_and_si512(places, _mm512_set1_epi64(3)); }
    static __m128i bytes(V places) { return _mm256_cvtepi32_epi8(_mm512_cvttpd_epi32(places)); }
};

template <class T>
using PoolOps = std::conditional_t<std::is_same_v<T, float>, PoolF, PoolD>;

// The place bytes of the first n of L lanes from p, as load_head loads (a whole 16 or 8 bytes
// where they lie before end), and stored at p as store_first stores.
template <std::size_t L>
__m128i load_place_bytes(const std::uint8_t* p, std::size_t n, const std::uint8_t* end) {
    if (end - p < std::ptrdiff_t(L)) return _mm_maskz_loadu_epi8(first_lanes<__mmask16>(n), p);
    return L == 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                   : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
}
template <std::size_t L>
void store_place_bytes(std::uint8_t* p, std::size_t n, __m128i bytes) {
    if (n < L) return _mm_mask_storeu_epi8(p, first_lanes<__mmask16>(n), bytes);
    if (L == 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bytes);
    else _mm_storel_epi64(reinterpret_cast<__m128i*>(p), bytes);
}

// L windows at a time: the even and odd columns of both rows, each pair's first maximum, then
// the second pair's if greater or NaN (the scalar rule's order); the place as row * 2 + column.
template <class T>
void max_pool_2x2_run(const T* x, std::size_t planes, std::size_t h, std::size_t w, T* y, std::uint8_t* places,
                      bool keep) {
    using P = PoolOps<T>;
    using M = typename P::M;
    constexpr std::size_t L = P::L;
    const std::size_t oh = h / 2, ow = w / 2;
    const T* end = x + planes * h * w;
    const __m128i one = _mm_set1_epi8(1), two = _mm_set1_epi8(2), three = _mm_set1_epi8(3);
    for (std::size_t q = 0; q < planes; ++q, x += h * w)
        for (std::size_t i = 0; i < oh; ++i, y += ow) {
            const T* r0 = x + 2 * i * w;
            const T* r1 = r0 + w;
            std::uint8_t* at = places + (keep ? (q * oh + i) * ow : 0);
            for (std::size_t j = 0; j < ow; j += L) {
                const std::size_t n = ow - j < L ? ow - j : L;
                // 2 n elements of each row, the first L in p0 (p2) and the rest in p1 (p3)
                const std::size_t lo = 2 * n < L ? 2 * n : L, hi = 2 * n - lo;
                const typename P::V p0 = load_head(r0 + 2 * j, lo, end), p1 = load_head(r0 + 2 * j + L, hi, end);
                const typename P::V p2 = load_head(r1 + 2 * j, lo, end), p3 = load_head(r1 + 2 * j + L, hi, end);
                const typename P::V a = P::even(p0, p1), b = P::odd(p0, p1), c = P::even(p2, p3), d = P::odd(p2, p3);
                const M take_b = P::take(b, a), take_d = P::take(d, c);
                const typename P::V ab = P::blend(take_b, a, b), cd = P::blend(take_d, c, d);
                const M take_cd = P::take(cd, ab);
                store_first(y + j, n, B<T>(P::blend(take_cd, ab, cd)));
                // the place by blending constant bytes under the masks: the same from mask
                // arithmetic in general registers (a round trip out of the mask registers and
                // back, and a broadcast from a general register each time) took the pool 1.5
                // times as long (210 planes of 24 x 24 in cache: 19 against 12 us)
                const __m128i k = _mm_mask_blend_epi8(take_cd, _mm_maskz_mov_epi8(take_b, one),
                                                      _mm_mask_blend_epi8(take_d, two, three));
                store_place_bytes<L>(at + j, n, k);
            }
        }
}

// Each window's gradient at its place and zeros at the other three, L windows at a time: the
// four masked copies interleaved into the two rows. With y, relu's mask first: g where y > 0,
// else 0 * g.
template <class T>
void scatter_2x2_run(const T* g, const T* y, const std::uint8_t* places, std::size_t planes, std::size_t h,
                     std::size_t w, T* gx) {
    using P = PoolOps<T>;
    constexpr std::size_t L = P::L;
    const std::size_t oh = h / 2, ow = w / 2;
    const T* g_end = g + planes * oh * ow;
    const T* y_end = y ? y + planes * oh * ow : nullptr;
    const std::uint8_t* places_end = places + planes * oh * ow;
    for (std::size_t q = 0; q < planes; ++q, gx += h * w) {
        for (std::size_t i = 0; i < oh; ++i, g += ow, places += ow, y += y ? ow : 0) {
            T* r0 = gx + 2 * i * w;
            T* r1 = r0 + w;
            for (std::size_t j = 0; j < ow; j += L) {
                // lanes from n on (see load_head) reach only elements from 2 n on, which are not stored
                const std::size_t n = ow - j < L ? ow - j : L;
                const std::size_t lo = 2 * n < L ? 2 * n : L, hi = 2 * n - lo;  // elements of each row
                typename P::V v = load_head(g + j, n, g_end);
                if (y) v = P::blend(P::positive(load_head(y + j, n, y_end)), P::times_zero(v), v);
                const __m512i k = P::places(load_place_bytes<L>(places + j, n, places_end));
                const typename P::V a = P::only(P::place_is(k, 0), v), b = P::only(P::place_is(k, 1), v);
                const typename P::V c = P::only(P::place_is(k, 2), v), d = P::only(P::place_is(k, 3), v);
                store_first(r0 + 2 * j, lo, B<T>(P::interleave_lo(a, b)));
                store_first(r0 + 2 * j + L, hi, B<T>(P::interleave_hi(a, b)));
                store_first(r1 + 2 * j, lo, B<T>(P::interleave_lo(c, d)));
                store_first(r1 + 2 * j + L, hi, B<T>(P::interleave_hi(c, d)));
            }
            if (w > 2 * ow) r0[w - 1] = r1[w - 1] = T(0);
        }
        for (std::size_t e = 2 * oh * w; e < h * w; ++e) gx[e] = T(0);  // no std::fill: its weak symbol
    }
}

// ---- conv2d, relu and the 2x2 max pool with the output channels in the lanes ----
//
// conv2d_relu_max_pool2d's forward for kernels 3 or 5 wide and more output channels than one
// vector: a block of two output rows times 2 PP columns (PP pooled windows) times KV channel
// vectors is summed in registers, each kernel row's KW weight vectors loaded once for both output
// rows; then bias, relu and the pool (ops/pool_2x2.hpp's rule) on the registers, and only the
// pooled values and places are stored, as (pooled positions, channels), to be transposed once per
// image. The convolution's full output is never written, and the transpose that image_3x3 makes
// of its whole output is made of the pooled quarter. The sums run over the taps (c, i, j) in the
// order of block() and block_3x3(), so the values are the composed ops' bits.

// The pool of 2x2 window values a, b (row 0) and c, d (row 1): the maximum and its place,
// row * 2 + column, as pool_2x2::max_forward decides them (first maximum of each row pair, then
// the second pair's if greater or NaN). The place comes back as a T (0 to 3) in each lane.
template <class T>
inline B<T> pool_window(B<T> a, B<T> b, B<T> c, B<T> d, B<T>& place) {
    using P = PoolOps<T>;
    const typename P::M take_b = P::take(b, a), take_d = P::take(d, c);
    const B<T> ab = P::blend(take_b, a, b), cd = P::blend(take_d, c, d);
    const typename P::M take_cd = P::take(cd, ab);
    const B<T> row0 = P::blend(take_b, B<T>(T(0)), B<T>(T(1))), row1 = P::blend(take_d, B<T>(T(2)), B<T>(T(3)));
    place = P::blend(take_cd, row0, row1);
    return P::blend(take_cd, ab, cd);
}

// Pooled windows [pc, pc + PP) of pooled row pr, channel vectors [kv, kv + KV): their values and
// places into yt and pt (pooled positions x cop).
template <int PP, int KV, int KW, class T>
inline void pool_block(const Sizes& s, const T* padded, const T* wt, std::size_t cop, std::size_t kv, std::size_t pr,
                       std::size_t pc, std::size_t pooled_w, const T* bias, T* yt, T* pt) {
    constexpr int P = 2 * PP;  // output columns
    constexpr std::size_t L = B<T>::size;
    B<T> acc[2][P][KV];
    for (int h = 0; h < 2; ++h)
        for (int m = 0; m < P; ++m)
            for (int v = 0; v < KV; ++v) acc[h][m][v] = B<T>(T(0));
    const std::size_t wp = s.wp, kh = s.kh;
    const T* x = padded + 2 * pr * wp + 2 * pc;
    const T* w = wt + kv * L;
    // One flat loop over the kernel rows (c, i), as in block(), and the taps j within a row: only
    // the accumulators, KV weight vectors and one broadcast input are live, so all stay in
    // registers. (With a row's KW x KV weight vectors loaded first and each input broadcast once
    // for the taps it feeds, GCC kept the accumulators on the stack: 145 against OpenBLAS's 217
    // GFLOP/s for the same products on the AMD EPYC, 2026-12-04.)
    std::size_t i = 0;
    for (std::size_t r = 0, rows = s.ci * kh; r < rows; ++r, w += KW * cop) {
#pragma GCC unroll 5
        for (int j = 0; j < KW; ++j) {
            B<T> wv[KV];
            for (int v = 0; v < KV; ++v) wv[v] = B<T>::load_aligned(w + j * cop + v * L);
            for (int h = 0; h < 2; ++h) {
                const T* in = x + h * wp + j;
#pragma GCC unroll 16
                for (int m = 0; m < P; ++m) {
                    const B<T> xb(in[m]);
                    for (int v = 0; v < KV; ++v) acc[h][m][v] = fused(wv[v], xb, acc[h][m][v]);
                }
            }
        }
        if (++i == kh) {
            i = 0;
            x += s.plane - (kh - 1) * wp;
        } else {
            x += wp;
        }
    }
    for (int v = 0; v < KV; ++v) {
        const std::size_t k0 = (kv + v) * L;
        const B<T> b = bias ? load_first(bias + k0, first_lanes<Mask<T>>(s.co - k0)) : B<T>(T(0));
        for (int q = 0; q < PP; ++q) {
            B<T> window[4];
            for (int k = 0; k < 4; ++k) {
                B<T> r = acc[k / 2][2 * q + k % 2][v];
                if (bias) r = r + b;
                window[k] = relu_max(r);
            }
            B<T> place;
            const std::size_t at = (pr * pooled_w + pc + q) * cop + (kv + v) * L;
            pool_window(window[0], window[1], window[2], window[3], place).store_aligned(yt + at);
            place.store_aligned(pt + at);
        }
    }
}

// Pooled row pr for channel vectors [kv, kv + KV): PB pooled windows at a time, then fewer.
template <int KV, int KW, int PB, class T>
void pool_row(const Sizes& s, const T* padded, const T* wt, std::size_t cop, std::size_t kv, std::size_t pr,
              std::size_t pooled_w, const T* bias, T* yt, T* pt) {
    std::size_t pc = 0;
    for (; pc + PB <= pooled_w; pc += PB)
        pool_block<PB, KV, KW>(s, padded, wt, cop, kv, pr, pc, pooled_w, bias, yt, pt);
    if constexpr (PB > 2)
        if (pc + PB / 2 <= pooled_w)
            pool_block<PB / 2, KV, KW>(s, padded, wt, cop, kv, pr, pc, pooled_w, bias, yt, pt), pc += PB / 2;
    for (; pc < pooled_w; ++pc) pool_block<1, KV, KW>(s, padded, wt, cop, kv, pr, pc, pooled_w, bias, yt, pt);
}

// y (co, oh / 2, ow / 2) and places (the same, bytes) = yt and pt (pooled positions x cop)
// transposed.
template <class T>
void transpose_pooled(const Sizes& s, std::size_t pooled, const T* yt, const T* pt, std::size_t cop, T* y,
                      std::uint8_t* places) {
    constexpr std::size_t L = B<T>::size;
    const auto store_values = [&](std::size_t k, std::size_t q, std::size_t n, std::size_t channels, B<T>* r) {
        for (std::size_t i = 0; i < channels; ++i) store_first(y + (k + i) * pooled + q, n, r[i]);
    };
    const auto store_places = [&](std::size_t k, std::size_t q, std::size_t n, std::size_t channels, B<T>* r) {
        for (std::size_t i = 0; i < channels; ++i)
            store_place_bytes<L>(places + (k + i) * pooled + q, n, PoolOps<T>::bytes(r[i]));
    };
    transposed_tiles(s.co, pooled, yt, cop, store_values);
    if (places) transposed_tiles(s.co, pooled, pt, cop, store_places);
}

// The places of yt's pooled values in pt as bytes (pooled positions x cop) with relu's mask: 4 added
// where the value is not > 0 (its gradient is 0 * g; scatter_2x2_lanes reads them).
template <class T>
void store_lane_places(std::size_t pooled, const T* yt, const T* pt, std::size_t cop, std::uint8_t* places) {
    using P = PoolOps<T>;
    constexpr std::size_t L = B<T>::size;
    for (std::size_t e = 0; e < pooled * cop; e += L) {
        const B<T> place = B<T>::load_aligned(pt + e);
        const B<T> kept = P::blend(P::positive(B<T>::load_aligned(yt + e)), place + B<T>(T(4)), place);
        store_place_bytes<L>(places + e, L, P::bytes(kept));
    }
}

template <int KW, class T>
void conv_relu_pool_run(const Sizes& s, const T* wt, const T* x, const T* bias, T* y, std::uint8_t* places,
                        bool lane_places, T* padded, T* yt, T* pt) {
    constexpr std::size_t L = B<T>::size;
    const std::size_t cop = (s.co + L - 1) / L * L, vectors = cop / L, pooled_h = s.oh / 2, pooled_w = s.ow / 2;
    prefetch_lines(y, s.co * pooled_h * pooled_w * sizeof(T));  // written by transpose_pooled below
    pad_image(s, x, padded);
    for (std::size_t pr = 0; pr < pooled_h; ++pr) {
        std::size_t kv = 0;
        for (; kv + 2 <= vectors; kv += 2) pool_row<2, KW, 2>(s, padded, wt, cop, kv, pr, pooled_w, bias, yt, pt);
        if (kv < vectors) pool_row<1, KW, 4>(s, padded, wt, cop, kv, pr, pooled_w, bias, yt, pt);
    }
    if (places && lane_places) store_lane_places(pooled_h * pooled_w, yt, pt, cop, places);
    transpose_pooled(s, pooled_h * pooled_w, yt, pt, cop, y, lane_places ? nullptr : places);
}

// ---- conv2d_relu_max_pool2d's backward with the output channels in the lanes ----
//
// When its forward kept lane places, the gradient at the convolution's output is written straight
// in the weight gradient's layout (positions x channels): the pooled gradient, a quarter of the
// size, is transposed instead of the full one, and the scatter writes whole channel vectors.

// gyt (images, oh * ow, cop) = each pooled gradient g (images, co, oh / 2, ow / 2) at its window's
// place, 0 * g there where relu stopped it (scatter_2x2's values), zeros elsewhere; gt holds one
// image's pooled gradient transposed (oh / 2 * ow / 2 * cop, 64-byte aligned).
template <class T>
void scatter_2x2_lanes_run(const Sizes& s, std::size_t images, const T* g, const std::uint8_t* places, std::size_t cop,
                           T* gt, T* gyt) {
    using P = PoolOps<T>;
    constexpr std::size_t L = B<T>::size;
    const std::size_t pooled_h = s.oh / 2, pooled_w = s.ow / 2, pooled = pooled_h * pooled_w, ow = s.ow;
    const B<T> zero(T(0));
    for (std::size_t n = 0; n < images; ++n, g += s.co * pooled, places += pooled * cop, gyt += s.oh * ow * cop) {
        if (n + 1 < images) prefetch_lines(g + s.co * pooled, s.co * pooled * sizeof(T));  // the next image's
        transpose_to_lanes(s.co, pooled, 1, g, 0, cop, gt);
        for (std::size_t pr = 0; pr < pooled_h; ++pr) {
            T* r0 = gyt + 2 * pr * ow * cop;
            T* r1 = r0 + ow * cop;
            for (std::size_t pc = 0; pc < pooled_w; ++pc)
                for (std::size_t v = 0; v < cop; v += L) {
                    const std::size_t at = (pr * pooled_w + pc) * cop + v;
                    const __m512i k = P::places(load_place_bytes<L>(places + at, L, places + pooled * cop));
                    typename P::V gv = B<T>::load_aligned(gt + at);
                    gv = P::blend(P::passed(k), P::times_zero(gv), gv);
                    const __m512i place = P::place(k);
                    B<T>(P::only(P::place_is(place, 0), gv)).store_aligned(r0 + 2 * pc * cop + v);
                    B<T>(P::only(P::place_is(place, 1), gv)).store_aligned(r0 + (2 * pc + 1) * cop + v);
                    B<T>(P::only(P::place_is(place, 2), gv)).store_aligned(r1 + 2 * pc * cop + v);
                    B<T>(P::only(P::place_is(place, 3), gv)).store_aligned(r1 + (2 * pc + 1) * cop + v);
                }
            if (ow > 2 * pooled_w)  // an odd last column, in no window
                for (std::size_t v = 0; v < cop; v += L) {
                    zero.store_aligned(r0 + (ow - 1) * cop + v);
                    zero.store_aligned(r1 + (ow - 1) * cop + v);
                }
        }
        for (std::size_t e = 2 * pooled_h * ow * cop; e < s.oh * ow * cop; e += L) zero.store_aligned(gyt + e);
    }
}

// The gradient's tables for PooledRows (PooledGradient, conv_direct.hpp) from the pooled gradient g
// (images, co, oh / 2, ow / 2) and the forward's lane places (store_lane_places): the values and
// masks from which PooledRows gives scatter_2x2_lanes's gyt.
template <class T>
void pooled_gradient_run(const Sizes& s, std::size_t images, const T* g, const std::uint8_t* places, std::size_t cop,
                         const PooledGradient<T>& out) {
    using P = PoolOps<T>;
    constexpr std::size_t L = B<T>::size;
    const std::size_t pooled_h = s.oh / 2, pooled_w = s.ow / 2, pooled = pooled_h * pooled_w, ow = s.ow;
    const std::size_t positions = s.oh * ow, vectors = cop / L;
    for (std::size_t n = 0; n < images; ++n, g += s.co * pooled, places += pooled * cop) {
        T* values = out.values + n * pooled * cop;
        std::uint16_t* lanes = out.lanes + n * positions * vectors;
        std::uint32_t* window = out.window + n * positions;
        for (std::size_t row = 0, first = n * pooled * cop; row < s.oh; ++row)
            for (std::size_t col = 0; col < ow; ++col) {
                const bool pooled_here = row < 2 * pooled_h && col < 2 * pooled_w;
                window[row * ow + col] =
                    static_cast<std::uint32_t>(first + (pooled_here ? ((row / 2) * pooled_w + col / 2) * cop : 0));
            }
        if (n + 1 < images) prefetch_lines(g + s.co * pooled, s.co * pooled * sizeof(T));  // the next image's
        transpose_to_lanes(s.co, pooled, 1, g, 0, cop, values);
        for (std::size_t pr = 0; pr < pooled_h; ++pr)
            for (std::size_t pc = 0; pc < pooled_w; ++pc)
                for (std::size_t v = 0; v < vectors; ++v) {
                    const std::size_t at = (pr * pooled_w + pc) * cop + v * L, q = 2 * pr * ow + 2 * pc;
                    const __m512i k = P::places(load_place_bytes<L>(places + at, L, places + pooled * cop));
                    const typename P::V gv = B<T>::load_aligned(values + at);
                    B<T>(P::blend(P::passed(k), P::times_zero(gv), gv)).store_aligned(values + at);
                    const __m512i place = P::place(k);
                    lanes[q * vectors + v] = P::place_is(place, 0);
                    lanes[(q + 1) * vectors + v] = P::place_is(place, 1);
                    lanes[(q + ow) * vectors + v] = P::place_is(place, 2);
                    lanes[(q + ow + 1) * vectors + v] = P::place_is(place, 3);
                }
        // positions in no window (an odd last column, an odd last row)
        if (ow > 2 * pooled_w)
            for (std::size_t row = 0; row < 2 * pooled_h; ++row)
                for (std::size_t v = 0; v < vectors; ++v) lanes[((row + 1) * ow - 1) * vectors + v] = 0;
        for (std::size_t e = 2 * pooled_h * ow * vectors; e < positions * vectors; ++e) lanes[e] = 0;
    }
}

// sums (images, LANES, cop): per image and channel, src's values at positions q < the last
// multiple of LANES summed in LANES chains, position q into chain q % LANES, each in the order of q
// (add_plane_sums's vectors of LANES lanes over a plane).
template <std::size_t LANES, class T, class Src>
void chain_sums(std::size_t images, std::size_t positions, std::size_t cop, const Src src, T* sums) {
    constexpr std::size_t L = B<T>::size;
    const std::size_t end = positions / LANES * LANES;
    for (std::size_t n = 0; n < images; ++n, sums += LANES * cop) {
        for (std::size_t v = 0; v < cop / L; ++v) {
            B<T> acc[LANES];
            for (std::size_t l = 0; l < LANES; ++l) acc[l] = B<T>(T(0));
            for (std::size_t q = 0; q < end; q += LANES)
                for (std::size_t l = 0; l < LANES; ++l) acc[l] = acc[l] + src.load(n * positions + q + l, v);
            for (std::size_t l = 0; l < LANES; ++l) acc[l].store_aligned(sums + l * cop + v * L);
        }
    }
}

// dst (images, co, positions) = src (images, positions, cop) transposed.
template <class T>
void lanes_to_planes_run(std::size_t co, std::size_t positions, std::size_t images, const T* src, std::size_t cop,
                         T* dst) {
    for (std::size_t n = 0; n < images; ++n, src += positions * cop, dst += co * positions)
        transposed_tiles(co, positions, src, cop, [&](std::size_t k, std::size_t q, std::size_t m, std::size_t channels, B<T>* r) {
            for (std::size_t i = 0; i < channels; ++i) store_first(dst + (k + i) * positions + q, m, r[i]);
        });
}

template <class T, class Src>
void chain_sums_run(std::size_t images, std::size_t positions, std::size_t cop, std::size_t chains, const Src src,
                    T* sums) {
    switch (chains) {
        case 1: return chain_sums<1>(images, positions, cop, src, sums);
        case 2: return chain_sums<2>(images, positions, cop, src, sums);
        case 4: return chain_sums<4>(images, positions, cop, src, sums);
        case 8: return chain_sums<8>(images, positions, cop, src, sums);
        default: return chain_sums<16>(images, positions, cop, src, sums);
    }
}

}  // namespace

void transpose_weights(const Sizes& s, const Tap* taps, const float* w, float* wt) {
    transpose_weights_run(s, taps, w, wt);
}
void transpose_weights(const Sizes& s, const Tap* taps, const double* w, double* wt) {
    transpose_weights_run(s, taps, w, wt);
}
void image_3x3(const Sizes& s, const float* wt, const float* x, const float* bias, bool relu, float* y, float* padded,
               float* yt) {
    image_3x3_run(s, wt, x, bias, relu, y, padded, yt);
}
void image_3x3(const Sizes& s, const double* wt, const double* x, const double* bias, bool relu, double* y,
               double* padded, double* yt) {
    image_3x3_run(s, wt, x, bias, relu, y, padded, yt);
}
void conv_relu_pool(const Sizes& s, const float* wt, const float* x, const float* bias, float* y, std::uint8_t* places,
                    bool lane_places, float* padded, float* yt, float* pt) {
    if (s.kw == 3) return conv_relu_pool_run<3>(s, wt, x, bias, y, places, lane_places, padded, yt, pt);
    conv_relu_pool_run<5>(s, wt, x, bias, y, places, lane_places, padded, yt, pt);
}
void conv_relu_pool(const Sizes& s, const double* wt, const double* x, const double* bias, double* y,
                    std::uint8_t* places, bool lane_places, double* padded, double* yt, double* pt) {
    if (s.kw == 3) return conv_relu_pool_run<3>(s, wt, x, bias, y, places, lane_places, padded, yt, pt);
    conv_relu_pool_run<5>(s, wt, x, bias, y, places, lane_places, padded, yt, pt);
}
void image(const Sizes& s, const Tap* taps, const Lanes* lanes, const float* x, const float* w, const float* bias,
           bool relu, float* y, float* padded) {
    run(s, taps, lanes, x, w, bias, relu, y, padded);
}
void image(const Sizes& s, const Tap* taps, const Lanes* lanes, const double* x, const double* w,
           const double* bias, bool relu, double* y, double* padded) {
    run(s, taps, lanes, x, w, bias, relu, y, padded);
}

void weight_grad(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const float* x,
                 std::size_t x_step, const float* gy, std::size_t gy_step, float* gw, float* padded, float* wide) {
    run_weight_grad(s, taps, lanes, images, x, x_step, gy, gy_step, gw, padded, wide);
}
void weight_grad(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const double* x,
                 std::size_t x_step, const double* gy, std::size_t gy_step, double* gw, double* padded,
                 double* wide) {
    run_weight_grad(s, taps, lanes, images, x, x_step, gy, gy_step, gw, padded, wide);
}

}  // namespace xg::direct_conv::avx512

namespace xg::direct_conv::avx512 {

void max_pool_2x2(const float* x, std::size_t planes, std::size_t h, std::size_t w, float* y, std::uint8_t* places,
                  bool keep) {
    max_pool_2x2_run(x, planes, h, w, y, places, keep);
}
void max_pool_2x2(const double* x, std::size_t planes, std::size_t h, std::size_t w, double* y, std::uint8_t* places,
                  bool keep) {
    max_pool_2x2_run(x, planes, h, w, y, places, keep);
}
void scatter_2x2(const float* g, const float* y, const std::uint8_t* places, std::size_t planes, std::size_t h,
                 std::size_t w, float* gx) {
    scatter_2x2_run(g, y, places, planes, h, w, gx);
}
void scatter_2x2(const double* g, const double* y, const std::uint8_t* places, std::size_t planes, std::size_t h,
                 std::size_t w, double* gx) {
    scatter_2x2_run(g, y, places, planes, h, w, gx);
}

#define XG_RELU_POOL_LANES(T)                                                                                        \
    void scatter_2x2_lanes(const Sizes& s, std::size_t images, const T* g, const std::uint8_t* places,              \
                           std::size_t cop, T* gt, T* gyt) {                                                          \
        scatter_2x2_lanes_run(s, images, g, places, cop, gt, gyt);                                                   \
    }                                                                                                                \
    void chain_sums(std::size_t images, std::size_t positions, std::size_t cop, std::size_t chains, const T* gyt,    \
                    T* sums) {                                                                                       \
        chain_sums_run(images, positions, cop, chains, LaneRows<T>{gyt, cop}, sums);                                 \
    }                                                                                                                \
    void pooled_gradient(const Sizes& s, std::size_t images, const T* g, const std::uint8_t* places,                \
                         std::size_t cop, const PooledGradient<T>& out) {                                            \
        pooled_gradient_run(s, images, g, places, cop, out);                                                         \
    }                                                                                                                \
    void pooled_chain_sums(const Sizes& s, std::size_t images, std::size_t cop, std::size_t chains,                 \
                           const PooledGradient<T>& g, T* sums) {                                                    \
        chain_sums_run(images, s.oh * s.ow, cop, chains, PooledRows<T>{g, cop / B<T>::size}, sums);                 \
    }                                                                                                                \
    void weight_grad_pooled(const Sizes& s, const Tap* taps, std::size_t images, const T* x, std::size_t x_step,    \
                            const PooledGradient<T>& g, std::size_t cop, T* gw, T* padded) {                         \
        weight_grad_channel_lanes(s, taps, images, x, x_step, PooledRows<T>{g, cop / B<T>::size}, cop, gw, padded);  \
    }                                                                                                                \
    void lanes_to_planes(std::size_t co, std::size_t positions, std::size_t images, const T* src, std::size_t cop,  \
                         T* dst) {                                                                                   \
        lanes_to_planes_run(co, positions, images, src, cop, dst);                                                   \
    }                                                                                                                \
    void weight_grad_lanes(const Sizes& s, const Tap* taps, std::size_t images, const T* x, std::size_t x_step,     \
                           const T* gyt, std::size_t cop, T* gw, T* padded) {                                        \
        weight_grad_lanes_run(s, taps, images, x, x_step, gyt, cop, gw, padded);                                     \
    }
XG_RELU_POOL_LANES(float)
XG_RELU_POOL_LANES(double)
#undef XG_RELU_POOL_LANES

}  // namespace xg::direct_conv::avx512
