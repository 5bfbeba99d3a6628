// Convolutions: conv2d and conv_transpose2d by im2col / col2im and one BLAS GEMM per image and
// group (Caffe's layout: the columns of an image are (C/g * kh * kw, OH * OW), so W_g · col writes
// the image's NCHW output directly, with no transpose); with stride 1 and no dilation, on a CPU
// with AVX-512, by the direct loop of ops/conv_direct.hpp instead (no columns at all).
//
// Three internal ops, each the others' adjoint, so the gradients of any order are made of them:
//   conv       x (N, Ci, H, W), w (Co, Ci/g, kh, kw) [, b (Co,)] -> (N, Co, OH, OW)
//   conv_t     y (N, Co, OH, OW), w (Co, Ci/g, kh, kw) [, b (Ci,)] -> (N, Ci, H, W)   (its adjoint in y)
//   conv_w     x (N, Ci, H, W), y (N, Co, OH, OW) -> (Co, Ci/g, kh, kw)            (its adjoint in w)
// Each one is told the size of its result (conv: OH, OW; conv_t: H, W; conv_w: kh, kw) instead
// of computing it, so each is defined for any pair of spatial sizes: a window position outside
// the input reads zero, and conv_t drops what falls outside its output. That makes the three
// exact adjoints of one another for every geometry, including the rows a stride > 1 drops and
// conv_transpose2d's output_padding, without slicing.
//   d conv   = conv_t(gy, w) for x,  conv_w(x, gy) for w,  sum(gy, {0, 2, 3}) for b
//   d conv_t = conv(gy, w) for y,    conv_w(gy, y) for w,  sum(gy, {0, 2, 3}) for b
//   d conv_w = conv_t(y, gw) for x,  conv(x, gw) for y
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <xsimd/xsimd.hpp>

#include "ops/conv_direct.hpp"
#include "ops/conv_kernels.hpp"
#include "ops/gemm.hpp"
#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/vector_math.hpp"

namespace xg {

namespace {
std::atomic<bool> direct_enabled{true};
}  // namespace

bool direct_conv::available() {
#ifdef XG_DIRECT_CONV_AVX512
    return direct_enabled.load(std::memory_order_relaxed) && vmath::avx512_available();
#else
    return false;
#endif
}

void direct_conv::set_enabled(bool on) { direct_enabled.store(on, std::memory_order_relaxed); }

namespace {

using conv_kernels::Geometry;
using conv_kernels::geometry;

// The output positions [lo, hi) of one axis whose input index i * stride + offset lies in
// [0, size): the others read (im2col) or write (col2im) padding.
struct Span {
    long lo, hi;
};
Span valid_span(long out, long stride, long offset, long size) {
    long lo = offset >= 0 ? 0 : (-offset - 1) / stride + 1;  // ceil(-offset / stride), no overflow for any stride
    long hi = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
    lo = std::min(lo, out);
    hi = std::clamp(hi, lo, out);
    return {lo, hi};
}

// dst[0..n) = src[0..n) for the short rows of im2col (a few to a few dozen elements), in SIMD
// batches: std::copy's memmove call per row cost more than the copy.
template <class T>
inline void copy_row(const T* src, T* dst, long n) {
    using B = xsimd::batch<T>;
    constexpr long size = static_cast<long>(B::size);
    long i = 0;
    for (; i + size <= n; i += size) B::load_unaligned(src + i).store_unaligned(dst + i);
    for (; i < n; ++i) dst[i] = src[i];
}

// dst[0..n) += src[0..n), likewise.
template <class T>
inline void add_row(const T* src, T* dst, long n) {
    using B = xsimd::batch<T>;
    constexpr long size = static_cast<long>(B::size);
    long i = 0;
    for (; i + size <= n; i += size) (B::load_unaligned(dst + i) + B::load_unaligned(src + i)).store_unaligned(dst + i);
    for (; i < n; ++i) dst[i] += src[i];
}

// Clears columns [lo, hi) of rows [row_lo, row_hi) of a (rows, ow) block, column by column: a
// few entries per row, which a loop along the row would turn into a memset call per row.
template <class T>
inline void clear_columns(T* block, long ow, long row_lo, long row_hi, long lo, long hi) {
    for (long ox = lo; ox < hi; ++ox)
        for (long oy = row_lo; oy < row_hi; ++oy) block[oy * ow + ox] = T(0);
}

// The columns of one image and group: x (cig, h, w) -> col (cig * kh * kw, oh * ow), row
// (c, i, j) holding x[c][oy * sh - ph + i * dh][ox * sw - pw + j * dw] (zero outside x).
//
// Stride 1 and as many output columns as input columns (a "same" convolution, e.g. 3x3 with
// padding 1) make the valid part of a column row one contiguous run of x at the same pitch:
// it is copied at once, and the few entries that then hold a neighbouring row's values instead
// of padding are cleared. Otherwise each output row is copied on its own, after one clear of
// the column row when its window reaches into the padding.
template <class T>
void im2col(const T* x, T* col, const Geometry& g) {
    const long h = static_cast<long>(g.h), w = static_cast<long>(g.w);
    const long oh = static_cast<long>(g.oh), ow = static_cast<long>(g.ow);
    const bool same = g.sh == 1 && g.sw == 1 && ow == w;
    for (std::size_t c = 0; c < g.cig(); ++c, x += g.h * g.w)
        for (std::size_t i = 0; i < g.kh; ++i) {
            const long row_off = static_cast<long>(i) * g.dh - g.ph;
            const Span rows = valid_span(oh, g.sh, row_off, h);
            for (std::size_t j = 0; j < g.kw; ++j, col += oh * ow) {
                const long col_off = static_cast<long>(j) * g.dw - g.pw;
                const Span cols = valid_span(ow, g.sw, col_off, w);
                if (rows.lo == rows.hi || cols.lo == cols.hi) {  // all padding
                    std::fill_n(col, oh * ow, T(0));
                    continue;
                }
                if (same) {
                    std::fill_n(col, rows.lo * ow, T(0));
                    std::fill_n(col + rows.hi * ow, (oh - rows.hi) * ow, T(0));
                    const long first = rows.lo * ow + cols.lo, last = (rows.hi - 1) * ow + cols.hi;
                    const T* src = x + (rows.lo + row_off) * w + col_off + cols.lo;
                    std::copy(src, src + (last - first), col + first);
                    clear_columns(col, ow, rows.lo, rows.hi, 0, cols.lo);
                    clear_columns(col, ow, rows.lo, rows.hi, cols.hi, ow);
                    continue;
                }
                if (cols.lo > 0 || cols.hi < ow || rows.lo > 0 || rows.hi < oh) std::fill_n(col, oh * ow, T(0));
                for (long oy = rows.lo; oy < rows.hi; ++oy) {
                    T* dst = col + oy * ow;
                    const T* src = x + (oy * g.sh + row_off) * w + col_off;
                    if (g.sw == 1) {
                        copy_row(src + cols.lo, dst + cols.lo, cols.hi - cols.lo);
                    } else {
                        for (long ox = cols.lo; ox < cols.hi; ++ox) dst[ox] = src[ox * g.sw];
                    }
                }
            }
        }
}

// The adjoint of im2col: each column entry added to the input position it was read from
// (entries that read padding are dropped). x must hold its initial values (zeros or a bias).
// col is scratch: in a "same" convolution the entries that read padding are cleared so that a
// column row's valid part is added as one run, as im2col copies it.
template <class T>
void col2im(T* col, T* x, const Geometry& g) {
    const long h = static_cast<long>(g.h), w = static_cast<long>(g.w);
    const long oh = static_cast<long>(g.oh), ow = static_cast<long>(g.ow);
    const bool same = g.sh == 1 && g.sw == 1 && ow == w;
    for (std::size_t c = 0; c < g.cig(); ++c, x += g.h * g.w)
        for (std::size_t i = 0; i < g.kh; ++i) {
            const long row_off = static_cast<long>(i) * g.dh - g.ph;
            const Span rows = valid_span(oh, g.sh, row_off, h);
            for (std::size_t j = 0; j < g.kw; ++j, col += oh * ow) {
                const long col_off = static_cast<long>(j) * g.dw - g.pw;
                const Span cols = valid_span(ow, g.sw, col_off, w);
                if (rows.lo == rows.hi || cols.lo == cols.hi) continue;
                if (same) {
                    clear_columns(col, ow, rows.lo, rows.hi, 0, cols.lo);
                    clear_columns(col, ow, rows.lo, rows.hi, cols.hi, ow);
                    const long first = rows.lo * ow + cols.lo, last = (rows.hi - 1) * ow + cols.hi;
                    add_row(col + first, x + (rows.lo + row_off) * w + col_off + cols.lo, last - first);
                    continue;
                }
                for (long oy = rows.lo; oy < rows.hi; ++oy) {
                    T* dst = x + (oy * g.sh + row_off) * w + col_off;
                    const T* src = col + oy * ow;
                    if (g.sw == 1) {
                        add_row(src + cols.lo, dst + cols.lo, cols.hi - cols.lo);
                    } else {
                        for (long ox = cols.lo; ox < cols.hi; ++ox) dst[ox * g.sw] += src[ox];
                    }
                }
            }
        }
}

// Sets one image (channels, pixels) to bias[channel], or to zeros: each image just before its
// GEMMs add to it, while it is in cache (filling the whole output first cost a pass over memory).
template <class T>
void fill_image(T* p, std::size_t channels, std::size_t pixels, const T* bias) {
    if (!bias) {
        std::fill_n(p, channels * pixels, T(0));
        return;
    }
    for (std::size_t c = 0; c < channels; ++c, p += pixels) std::fill_n(p, pixels, bias[c]);
}

// The column buffer: one per call, reused for every image and group (none when pointwise).
template <class T>
std::unique_ptr<T[]> column_buffer(const Geometry& g) {
    return g.pointwise() ? nullptr : std::unique_ptr<T[]>(new T[g.k() * g.p()]);
}

// The direct loop's sizes for a convolution of ci channels of h x w into co channels of oh x ow
// (one group) with stride 1, no dilation and padding ph, pw, when it applies: the output is the
// standard size for that padding, the padding is below the kernel and the kernel is at most
// 16 x 16 and not 1 x 1 with no padding (that product is one GEMM on the input as it is).
// `flipped`: the kernel is conv_transpose2d's, w (ci, co, kh, kw) turned by 180 degrees.
template <class T>
std::optional<direct_conv::Sizes> direct_sizes(std::size_t ci, std::size_t h, std::size_t w, std::size_t co,
                                               std::size_t oh, std::size_t ow, const Geometry& g, long ph, long pw,
                                               bool flipped) {
    const long kh = static_cast<long>(g.kh), kw = static_cast<long>(g.kw);
    if (!direct_conv::available() || g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1) return std::nullopt;
    if (ci == 0 || co == 0 || h == 0 || w == 0 || oh == 0 || ow == 0 || kh > 16 || kw > 16) return std::nullopt;
    if (ph < 0 || pw < 0 || ph >= kh || pw >= kw || (kh == 1 && kw == 1)) return std::nullopt;
    const std::size_t hp = h + 2 * static_cast<std::size_t>(ph), wp = w + 2 * static_cast<std::size_t>(pw);
    if (hp < g.kh || wp < g.kw || hp - g.kh + 1 != oh || wp - g.kw + 1 != ow) return std::nullopt;
    constexpr std::size_t lanes = 64 / sizeof(T);  // one AVX-512 vector
    return direct_conv::Sizes{ci, h, w, co, g.kh, g.kw, static_cast<std::size_t>(ph), static_cast<std::size_t>(pw),
                              oh, ow, wp, hp * wp, (oh * wp + lanes - 1) / lanes * lanes,
                              flipped ? g.kh * g.kw : ci * g.kh * g.kw};
}

// The direct loop's buffers are AlignedVectors (graph/array.hpp): they start on a cache line, so
// the wide gradient's rows (whole vectors) are read with aligned loads, which do not straddle two
// lines.

// The tables the direct loop reads (ops/conv_direct.hpp), built once per call: the taps, with the
// weights of conv2d (co, ci, kh, kw) or, flipped, of conv_transpose2d (ci, co, kh, kw) as they
// are, and the lanes of each wide vector of T.
template <class T>
struct DirectTables {
    std::vector<direct_conv::Tap> taps;
    std::vector<direct_conv::Lanes> lanes;

    DirectTables(const direct_conv::Sizes& s, bool flipped) {
        taps.reserve(s.ci * s.kh * s.kw);
        for (std::size_t c = 0; c < s.ci; ++c)
            for (std::size_t i = 0; i < s.kh; ++i)
                for (std::size_t j = 0; j < s.kw; ++j) {
                    const std::size_t weight = flipped ? (c * s.co * s.kh + s.kh - 1 - i) * s.kw + s.kw - 1 - j
                                                       : (c * s.kh + i) * s.kw + j;
                    taps.push_back({c * s.plane + i * s.wp + j, weight});
                }
        constexpr std::size_t size = 64 / sizeof(T);  // lanes of a vector
        lanes.assign(s.wide / size, direct_conv::Lanes{0, 0});
        for (std::size_t q = 0, r = 0, c = 0; q < s.wide; ++q) {  // wide position q = r * wp + c
            direct_conv::Lanes& l = lanes[q / size];
            if (r < s.oh && c < s.ow) {
                if (!l.mask) l.first = r * s.ow + c;
                l.mask |= std::uint32_t(1) << (q % size);
            }
            if (++c == s.wp) c = 0, ++r;
        }
    }
};

// The direct loop over images and groups: x (N, groups * s.ci, h, w) into y (N, groups * s.co,
// oh, ow) with the weights w of conv2d or, flipped, of conv_transpose2d. Holds the tables, the
// padded image and (a 3x3 kernel with the channels in the lanes) the weights transposed, made
// once for every run: a batch taken a chunk at a time prepares them once.
template <class T>
struct DirectImages {
    DirectImages(const direct_conv::Sizes& s, bool flipped, std::size_t groups, const T* w)
        : s(s), groups(groups), w(w), tables(s, flipped), padded(s.ci * s.plane + 64, T(0)),
          channel_lanes(direct_conv::forward_channel_lanes(s)) {
#ifdef XG_DIRECT_CONV_AVX512
        if (!channel_lanes) return;
        wt.resize(groups * wt_size());
        yt.resize(s.oh * s.ow * cop());
        for (std::size_t grp = 0; grp < groups; ++grp)
            direct_conv::avx512::transpose_weights(s, tables.taps.data(), w + grp * weights(),
                                                   wt.data() + grp * wt_size());
#endif
    }

    void run(std::size_t n, const T* x, const T* bias, bool relu, T* y) {
#ifdef XG_DIRECT_CONV_AVX512
        const std::size_t in = s.ci * s.h * s.w, out = s.co * s.oh * s.ow;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t grp = 0; grp < groups; ++grp) {
                const T* xi = x + (i * groups + grp) * in;
                const T* b = bias ? bias + grp * s.co : nullptr;
                T* yi = y + (i * groups + grp) * out;
                if (channel_lanes)
                    direct_conv::avx512::image_3x3(s, wt.data() + grp * wt_size(), xi, b, relu, yi, padded.data(),
                                                   yt.data());
                else
                    direct_conv::avx512::image(s, tables.taps.data(), tables.lanes.data(), xi, w + grp * weights(), b,
                                               relu, yi, padded.data());
            }
#else
        (void)n, (void)x, (void)bias, (void)relu, (void)y;
#endif
    }

    std::size_t weights() const { return s.ci * s.co * s.kh * s.kw; }  // per group
    std::size_t cop() const { return (s.co + 64 / sizeof(T) - 1) / (64 / sizeof(T)) * (64 / sizeof(T)); }
    std::size_t wt_size() const { return s.ci * 9 * cop(); }

    direct_conv::Sizes s;
    std::size_t groups;
    const T* w;
    DirectTables<T> tables;
    AlignedVector<T> padded, wt, yt;
    bool channel_lanes;
};

// The most images a chunk of the direct weight gradient holds (relu_pool_parameter_gradients
// sizes its 32-bit offsets by it).
constexpr std::size_t max_weight_chunk = 16;

// The direct loop's weight gradient takes the images in chunks of up to max_weight_chunk whose padded inputs
// and wide gradients take at most about 2 MB (they stay in cache for the chunk's passes; a large
// image goes alone).
std::size_t direct_weight_chunk(const direct_conv::Sizes& s, std::size_t element_size) {
    const std::size_t per_image = (s.ci * s.plane + 64 + direct_conv::gradient_buffer(s, element_size)) * element_size;
    return std::clamp<std::size_t>((std::size_t(2) << 20) / per_image, 1, max_weight_chunk);
}

// conv_w by the direct loop, a chunk of images at a time: gw (groups * s.co, s.ci, kh, kw) += the
// sum over the chunk's images of each group's gy (s.co, oh, ow) times the input each tap reads.
// Holds the tables and the chunk's buffers, zeroed once (the loop writes only where they are
// not zeros).
template <class T>
struct DirectWeightGrad {
    // Without a wide buffer (with_wide false) only for the pooled gradient's loop, which reads no gyt.
    DirectWeightGrad(const direct_conv::Sizes& s, std::size_t n, std::size_t groups, bool with_wide = true)
        : s(s), groups(groups), tables(s, false), chunk(std::min(n, direct_weight_chunk(s, sizeof(T)))),
          padded(chunk * (s.ci * s.plane + 64), T(0)),
          wide(with_wide ? chunk * direct_conv::gradient_buffer(s, sizeof(T)) : 0, T(0)) {}

    // Adds the gradient of `images` (at most chunk) images of x (N, groups * s.ci, h, w) and gy
    // (N, groups * s.co, oh, ow), from the first image at x and gy.
    void add(std::size_t images, const T* x, const T* gy, T* gw) {
#ifdef XG_DIRECT_CONV_AVX512
        const std::size_t in = s.ci * s.h * s.w, out = s.co * s.oh * s.ow, wg = s.ci * s.co * s.kh * s.kw;
        for (std::size_t grp = 0; grp < groups; ++grp)
            direct_conv::avx512::weight_grad(s, tables.taps.data(), tables.lanes.data(), images, x + grp * in,
                                             groups * in, gy + grp * out, groups * out, gw + grp * wg, padded.data(),
                                             wide.data());
#else
        (void)images, (void)x, (void)gy, (void)gw;
#endif
    }

    direct_conv::Sizes s;
    std::size_t groups;
    DirectTables<T> tables;
    std::size_t chunk;
    AlignedVector<T> padded, wide;
};

// conv_w by the direct loop over all n images, chunk by chunk.
template <class T>
void direct_weight_grad(const direct_conv::Sizes& s, std::size_t n, std::size_t groups, const T* x, const T* gy,
                        T* gw) {
    if (n == 0) return;
    DirectWeightGrad<T> dw(s, n, groups);
    const std::size_t in = groups * s.ci * s.h * s.w, out = groups * s.co * s.oh * s.ow;
    for (std::size_t i = 0; i < n; i += dw.chunk) dw.add(std::min(dw.chunk, n - i), x + i * in, gy + i * out, gw);
}

// The direct loop's sizes for conv (and conv_w) on g, when it applies.
template <class T>
std::optional<direct_conv::Sizes> direct_conv_sizes(const Geometry& g) {
    return direct_sizes<T>(g.cig(), g.h, g.w, g.cog(), g.oh, g.ow, g, g.ph, g.pw, false);
}

// The direct loop's sizes for conv_t on g, when it applies: with stride 1 the adjoint is itself a
// convolution, of y padded by kh - 1 - ph, with the kernel turned by 180 degrees and its channel
// axes swapped.
template <class T>
std::optional<direct_conv::Sizes> direct_transpose_sizes(const Geometry& g) {
    return direct_sizes<T>(g.cog(), g.oh, g.ow, g.cig(), g.h, g.w, g, static_cast<long>(g.kh) - 1 - g.ph,
                           static_cast<long>(g.kw) - 1 - g.pw, true);
}

// conv: y_ng (cog, P) = w_g (cog, K) · col(x_ng) (K, P) [+ bias].
template <class T>
void conv_forward_into(const T* x, const T* w, const T* bias, const Geometry& g, bool relu, T* y) {
    const std::size_t K = g.k(), P = g.p(), cig = g.cig(), cog = g.cog();
    if (g.n * g.co * P == 0) return;
    if (const auto s = direct_conv_sizes<T>(g)) {
        DirectImages<T>(*s, false, g.groups, w).run(g.n, x, bias, relu, y);
        return;
    }
    const auto col = K == 0 ? nullptr : column_buffer<T>(g);
    for (std::size_t n = 0; n < g.n; ++n) {
        fill_image(y + n * g.co * P, g.co, P, bias);
        if (K == 0) continue;  // no input channels: the bias alone
        for (std::size_t grp = 0; grp < g.groups; ++grp) {
            const T* xg = x + (n * g.ci + grp * cig) * g.h * g.w;
            if (col) im2col(xg, col.get(), g);
            gemm_raw(false, false, cog, P, K, w + grp * cog * K, col ? col.get() : xg, y + (n * g.co + grp * cog) * P,
                     T(1));
        }
        if (relu) vmath::relu(y + n * g.co * P, y + n * g.co * P, g.co * P);
    }
    if (relu && K == 0) vmath::relu(y, y, g.n * g.co * P);
}

template <class T>
Array<T> conv_forward(const T* x, const T* w, const T* bias, const Geometry& g, bool relu = false) {
    Array<T> y = Array<T>::from_shape({g.n, g.co, g.oh, g.ow});
    conv_forward_into(x, w, bias, g, relu, y.data());
    return y;
}

// conv_t: col (K, P) = w_g^T (K, cog) · y_ng (cog, P), then col2im into x_ng [+ bias].
template <class T>
void conv_t_forward_into(const T* y, const T* w, const T* bias, const Geometry& g, T* x) {
    const std::size_t K = g.k(), P = g.p(), cig = g.cig(), cog = g.cog();
    if (g.n * g.ci * g.h * g.w == 0) return;
    if (const auto s = direct_transpose_sizes<T>(g)) {
        DirectImages<T>(*s, true, g.groups, w).run(g.n, y, bias, false, x);
        return;
    }
    const bool empty = P == 0 || cog == 0;  // nothing to add to the bias
    const auto col = empty ? nullptr : column_buffer<T>(g);
    for (std::size_t n = 0; n < g.n; ++n) {
        fill_image(x + n * g.ci * g.h * g.w, g.ci, g.h * g.w, bias);
        if (empty) continue;
        for (std::size_t grp = 0; grp < g.groups; ++grp) {
            const T* yg = y + (n * g.co + grp * cog) * P;
            T* xg = x + (n * g.ci + grp * cig) * g.h * g.w;
            if (!col) {
                gemm_raw(true, false, K, P, cog, w + grp * cog * K, yg, xg, T(1));
                continue;
            }
            // Cleared, then beta = 1: faster than BLAS's beta = 0 (see gemm_into in linalg.cpp).
            std::fill_n(col.get(), K * P, T(0));
            gemm_raw(true, false, K, P, cog, w + grp * cog * K, yg, col.get(), T(1));
            col2im(col.get(), xg, g);
        }
    }
}

template <class T>
Array<T> conv_t_forward(const T* y, const T* w, const T* bias, const Geometry& g) {
    Array<T> x = Array<T>::from_shape({g.n, g.ci, g.h, g.w});
    conv_t_forward_into(y, w, bias, g, x.data());
    return x;
}

// conv_w: gw_g (cog, K) += sum over images of y_ng (cog, P) · col(x_ng)^T (P, K).
template <class T>
void conv_w_add(const T* x, const T* y, const Geometry& g, T* gw) {
    const std::size_t K = g.k(), P = g.p(), cig = g.cig(), cog = g.cog();
    if (g.co * K == 0 || P == 0) return;
    if (const auto s = direct_conv_sizes<T>(g)) {
        direct_weight_grad(*s, g.n, g.groups, x, y, gw);
        return;
    }
    const auto col = column_buffer<T>(g);
    for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t grp = 0; grp < g.groups; ++grp) {
            const T* xg = x + (n * g.ci + grp * cig) * g.h * g.w;
            if (col) im2col(xg, col.get(), g);
            gemm_raw(false, true, cog, K, P, y + (n * g.co + grp * cog) * P, col ? col.get() : xg, gw + grp * cog * K,
                     T(1));
        }
}

template <class T>
Array<T> conv_w_forward(const T* x, const T* y, const Geometry& g) {
    Array<T> gw = full<T>({g.co, g.cig(), g.kh, g.kw}, T(0));
    conv_w_add(x, y, g, gw.data());
    return gw;
}

template <class T> Variable<T> conv_op(const Variable<T>&, const Variable<T>&, const Variable<T>&, const Conv2dOptions&,
                                       std::size_t, std::size_t);
template <class T> Variable<T> conv_t_op(const Variable<T>&, const Variable<T>&, const Variable<T>&,
                                         const Conv2dOptions&, std::size_t, std::size_t);
template <class T> Variable<T> conv_w_op(const Variable<T>&, const Variable<T>&, const Conv2dOptions&, std::size_t,
                                         std::size_t);

// sum(gy, {0, 2, 3}), as sum over the images first (whole images added elementwise, vectorised),
// then over the pixels of the small (O, OH, OW) rest: the one call sum(gy, {0, 2, 3}) adds one
// element at a time and took 13% of a SimpleConvNet first layer's forward and backward.
template <class T>
Variable<T> bias_grad(const Variable<T>& gy) {
    return sum(sum(gy, 0), std::vector<long>{1, 2});
}

// conv2d, or relu(conv2d) as one op (conv2d_relu) when `relu`: then the output y is relu's, and
// y > 0 exactly where the convolution is > 0, so relu's mask comes from y and no pre-activation
// is kept.
template <class T>
struct Conv final : Function<T> {
    Conv(const Conv2dOptions& o, std::size_t oh, std::size_t ow, bool relu = false)
        : o(o), oh(oh), ow(ow), relu(relu) {}
    std::string_view name() const override { return relu ? "conv2d_relu" : "conv2d"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const auto &x = xs[0].shape(), &w = xs[1].shape();
        const Geometry g = geometry(o, x[0], x[1], x[2], x[3], w[0], oh, ow, w[2], w[3]);
        return conv_forward(xs[0].data(), xs[1].data(), xs.size() > 2 ? xs[2].data() : nullptr, g, relu);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (relu && !recording_backward()) return relu_backward_in_chunks(gy);
        const Variable<T>& x = this->input(0);
        const Variable<T>& w = this->input(1);
        const bool bias = this->inputs().size() > 2 && this->needs_input_grad(2);
        Variable<T> gh = gy, gb;  // the gradient at the convolution's output, the bias's
        if (!relu) {
            if (bias) gb = bias_grad(gy);
        } else {  // create_graph: the backward is recorded, so it is made of ops
            gh = leaky_relu_grad(gy, this->output(), T(0));
            if (bias) gb = bias_grad(gh);
        }
        std::vector<Variable<T>> g(this->inputs().size());
        if (this->needs_input_grad(0)) g[0] = conv_t_op(gh, w, Variable<T>(), o, x.shape()[2], x.shape()[3]);
        if (this->needs_input_grad(1)) g[1] = conv_w_op(x, gh, o, w.shape()[2], w.shape()[3]);
        if (bias) g[2] = gb;
        return g;
    }
    // relu(conv2d)'s backward, not recorded: relu's mask and the bias's sums a chunk of images at
    // a time into a gradient at the convolution's output that stays in cache while the input and
    // weight gradients read it (as conv2d_relu_max_pool2d's backward), instead of a whole batch's
    // written once and read twice from memory (DeepConvNet at batch 100: the relu pass, the padding
    // and the transposes of the gradient 14% -> 11% of the step's profile; medians of interleaved
    // steps 34.0 -> 33.5 ms). The same kernels on the same images in the same order: the bits of
    // the unchunked backward.
    std::vector<Variable<T>> relu_backward_in_chunks(const Variable<T>& gy) {
        const Shape &x = this->input(0).shape(), &w = this->input(1).shape();
        const std::size_t out = w[0] * oh * ow;
        const T *g = gy.data().data(), *y = this->output().data().data();
        return conv_kernels::gradients_in_chunks<T>(
            this->inputs().size(), this->input(0).data().data(), this->input(1).data().data(),
            geometry(o, x[0], x[1], x[2], x[3], w[0], oh, ow, w[2], w[3]), this->needs_input_grad(0),
            this->needs_input_grad(1), this->inputs().size() > 2 && this->needs_input_grad(2),
            [&](std::size_t i, std::size_t m, T* gh, T* gb) {
                vmath::relu_grad_rows(g + i * out, y + i * out, gh, 1, m * out, nullptr);
                if (gb) conv_kernels::add_plane_sums(gh, m, w[0], oh * ow, gb);
            });
    }
    Conv2dOptions o;
    std::size_t oh, ow;
    bool relu;
};

template <class T>
struct ConvT final : Function<T> {
    ConvT(const Conv2dOptions& o, std::size_t h, std::size_t w) : o(o), h(h), w(w) {}
    std::string_view name() const override { return "conv_transpose2d"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const auto &y = xs[0].shape(), &wt = xs[1].shape();
        const Geometry g = geometry(o, y[0], wt[1] * static_cast<std::size_t>(o.groups), h, w, y[1], y[2], y[3], wt[2],
                                    wt[3]);
        return conv_t_forward(xs[0].data(), xs[1].data(), xs.size() > 2 ? xs[2].data() : nullptr, g);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gx) override {
        const Variable<T>& y = this->input(0);
        const Variable<T>& wt = this->input(1);
        std::vector<Variable<T>> g(this->inputs().size());
        if (this->needs_input_grad(0)) g[0] = conv_op(gx, wt, Variable<T>(), o, y.shape()[2], y.shape()[3]);
        if (this->needs_input_grad(1)) g[1] = conv_w_op(gx, y, o, wt.shape()[2], wt.shape()[3]);
        if (g.size() > 2 && this->needs_input_grad(2)) g[2] = bias_grad(gx);
        return g;
    }
    Conv2dOptions o;
    std::size_t h, w;
};

template <class T>
struct ConvW final : Function<T> {
    ConvW(const Conv2dOptions& o, std::size_t kh, std::size_t kw) : o(o), kh(kh), kw(kw) {}
    std::string_view name() const override { return "conv2d_weight"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const auto &x = xs[0].shape(), &y = xs[1].shape();
        const Geometry g = geometry(o, x[0], x[1], x[2], x[3], y[1], y[2], y[3], kh, kw);
        return conv_w_forward(xs[0].data(), xs[1].data(), g);
    }
    std::vector<Variable<T>> backward(const Variable<T>& gw) override {
        const Variable<T>& x = this->input(0);
        const Variable<T>& y = this->input(1);
        Variable<T> gx, gy;
        if (this->needs_input_grad(0)) gx = conv_t_op(y, gw, Variable<T>(), o, x.shape()[2], x.shape()[3]);
        if (this->needs_input_grad(1)) gy = conv_op(x, gw, Variable<T>(), o, y.shape()[2], y.shape()[3]);
        return {gx, gy};
    }
    Conv2dOptions o;
    std::size_t kh, kw;
};

template <class T>
Variable<T> conv_op(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, const Conv2dOptions& o,
                    std::size_t oh, std::size_t ow) {
    if (b.defined()) return apply<Conv<T>>({x, w, b}, o, oh, ow);
    return apply<Conv<T>>({x, w}, o, oh, ow);
}

template <class T>
Variable<T> conv_t_op(const Variable<T>& y, const Variable<T>& w, const Variable<T>& b, const Conv2dOptions& o,
                      std::size_t h, std::size_t wd) {
    if (b.defined()) return apply<ConvT<T>>({y, w, b}, o, h, wd);
    return apply<ConvT<T>>({y, w}, o, h, wd);
}

template <class T>
Variable<T> conv_w_op(const Variable<T>& x, const Variable<T>& y, const Conv2dOptions& o, std::size_t kh,
                      std::size_t kw) {
    return apply<ConvW<T>>({x, y}, o, kh, kw);
}

// ---- argument checks (the public ops) ----

// a + b, a * b on sizes given by the user: ResourceError instead of wrapping around.
struct Checked {
    std::string_view op;
    const std::string& context;
    long add(long a, long b) const {
        long r;
        if (__builtin_add_overflow(a, b, &r)) overflow();
        return r;
    }
    long mul(long a, long b) const {
        long r;
        if (__builtin_mul_overflow(a, b, &r)) overflow();
        return r;
    }
    [[noreturn]] void overflow() const {
        throw ResourceError(fmt::format("{}: the sizes of {} overflow", op, context));
    }
};

std::string pair_str(const Size2& s) { return fmt::format("({}, {})", s.h, s.w); }

void check_options(std::string_view op, const std::string& context, const Size2& stride, const Size2& padding,
                   const Size2& dilation, long groups) {
    if (groups <= 0) throw ValueError(fmt::format("{}: groups must be positive, got {} ({})", op, groups, context));
    if (stride.h <= 0 || stride.w <= 0)
        throw ValueError(fmt::format("{}: stride must be positive, got {} ({})", op, pair_str(stride), context));
    if (padding.h < 0 || padding.w < 0)
        throw ValueError(fmt::format("{}: padding must be non-negative, got {} ({})", op, pair_str(padding), context));
    if (dilation.h <= 0 || dilation.w <= 0)
        throw ValueError(fmt::format("{}: dilation must be positive, got {} ({})", op, pair_str(dilation), context));
}

void check_4d(std::string_view op, const Shape& x, const Shape& w, std::string_view weight_layout) {
    if (x.size() != 4)
        throw ShapeError(fmt::format("{}: expects a 4-D input (N, C, H, W), got shape {}{}", op, shape_str(x),
                                     x.size() == 3 ? " (an unbatched input: add the batch axis with unsqueeze(x, 0))"
                                                   : ""));
    if (w.size() != 4)
        throw ShapeError(fmt::format("{}: expects a 4-D weight {}, got shape {} (input {})", op, weight_layout,
                                     shape_str(w), shape_str(x)));
    if (w[2] == 0 || w[3] == 0)
        throw ShapeError(fmt::format("{}: weight of shape {} has an empty kernel (input {})", op, shape_str(w),
                                     shape_str(x)));
}

void check_bias(std::string_view op, const std::string& context, const Shape* b, std::size_t channels) {
    if (b && (b->size() != 1 || (*b)[0] != channels))
        throw ShapeError(fmt::format("{}: bias of shape {} for {} output channels ({}); expected ({},)", op,
                                     shape_str(*b), channels, context, channels));
}

// The element counts and GEMM sizes of the internal ops on this geometry, checked once here:
// the output, the column buffer and the BLAS dimensions.
void check_sizes(std::string_view op, const std::string& context, const Geometry& g) {
    shape_size(Shape{g.n, g.co, g.oh, g.ow}, op);
    shape_size(Shape{g.n, g.ci, g.h, g.w}, op);
    shape_size(Shape{g.cig(), g.kh, g.kw, g.oh, g.ow}, op);  // the columns
    if (g.k() > gemm_max_dim || g.p() > gemm_max_dim || g.cog() > gemm_max_dim)
        throw ResourceError(fmt::format("{}: the matrices of {} exceed BLAS's {} rows or columns", op, context,
                                        gemm_max_dim));
}

}  // namespace

namespace {

// conv2d's (and conv2d_relu's) argument checks; the output's (OH, OW).
template <class T>
std::pair<std::size_t, std::size_t> conv2d_output_size(std::string_view op, const Variable<T>& x,
                                                       const Variable<T>& weight, const Variable<T>& bias,
                                                       const Conv2dOptions& o) {
    const Shape &xs = x.shape(), &ws = weight.shape();
    const std::string context = fmt::format("input {}, weight {}", shape_str(xs), shape_str(ws));
    check_4d(op, xs, ws, "(out_channels, in_channels / groups, kh, kw)");
    check_options(op, context, o.stride, o.padding, o.dilation, o.groups);
    const std::size_t groups = static_cast<std::size_t>(o.groups);
    if (xs[1] % groups != 0 || ws[0] % groups != 0)
        throw ShapeError(fmt::format("{}: groups {} does not divide the {} input channels and the {} output channels "
                                     "({})",
                                     op, groups, xs[1], ws[0], context));
    if (xs[1] / groups != ws[1])
        throw ShapeError(fmt::format("{}: input with {} channels for a weight of {} input channels per group times {} "
                                     "groups ({})",
                                     op, xs[1], ws[1], groups, context));
    check_bias(op, context, bias.defined() ? &bias.shape() : nullptr, ws[0]);
    // OH = (H + 2 padding - dilation (kh - 1) - 1) / stride + 1, in checked arithmetic.
    const Checked c{op, context};
    auto out_size = [&](std::size_t in, long pad, long dil, std::size_t k, long stride) -> long {
        const long padded = c.add(static_cast<long>(in), c.mul(2, pad));
        const long span = c.add(c.mul(dil, static_cast<long>(k) - 1), 1);
        if (padded < span)
            throw ShapeError(fmt::format("{}: the kernel ({}, {}) with dilation {} spans more than the padded input "
                                         "({}, {}) ({}, padding {})",
                                         op, ws[2], ws[3], pair_str(o.dilation),
                                         c.add(static_cast<long>(xs[2]), c.mul(2, o.padding.h)),
                                         c.add(static_cast<long>(xs[3]), c.mul(2, o.padding.w)), context,
                                         pair_str(o.padding)));
        return (padded - span) / stride + 1;
    };
    const long oh = out_size(xs[2], o.padding.h, o.dilation.h, ws[2], o.stride.h);
    const long ow = out_size(xs[3], o.padding.w, o.dilation.w, ws[3], o.stride.w);
    check_sizes(op, context,
                geometry(o, xs[0], xs[1], xs[2], xs[3], ws[0], static_cast<std::size_t>(oh),
                         static_cast<std::size_t>(ow), ws[2], ws[3]));
    return {static_cast<std::size_t>(oh), static_cast<std::size_t>(ow)};
}

}  // namespace

template <class T>
Variable<T> conv2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias, Conv2dOptions o) {
    if (!x.defined() || !weight.defined()) return conv_op(x, weight, bias, o, 0, 0);  // names the undefined input
    const auto [oh, ow] = conv2d_output_size("conv2d", x, weight, bias, o);
    return conv_op(x, weight, bias, o, oh, ow);
}

template <class T>
Variable<T> conv2d_relu(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias, Conv2dOptions o) {
    if (!x.defined() || !weight.defined()) return apply<Conv<T>>({x, weight}, o, 0, 0, true);  // names the undefined input
    const auto [oh, ow] = conv2d_output_size("conv2d_relu", x, weight, bias, o);
    if (bias.defined()) return apply<Conv<T>>({x, weight, bias}, o, oh, ow, true);
    return apply<Conv<T>>({x, weight}, o, oh, ow, true);
}

template <class T>
Variable<T> conv_transpose2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias,
                             ConvTranspose2dOptions t) {
    constexpr std::string_view op = "conv_transpose2d";
    const Conv2dOptions o{t.stride, t.padding, t.dilation, t.groups};
    if (!x.defined() || !weight.defined()) return conv_t_op(x, weight, bias, o, 0, 0);
    const Shape &xs = x.shape(), &ws = weight.shape();
    const std::string context = fmt::format("input {}, weight {}", shape_str(xs), shape_str(ws));
    check_4d(op, xs, ws, "(in_channels, out_channels / groups, kh, kw)");
    check_options(op, context, t.stride, t.padding, t.dilation, t.groups);
    const Size2& op_pad = t.output_padding;
    if (op_pad.h < 0 || op_pad.w < 0 || op_pad.h >= std::max(t.stride.h, t.dilation.h) ||
        op_pad.w >= std::max(t.stride.w, t.dilation.w))
        throw ValueError(fmt::format("{}: output_padding {} must be non-negative and smaller than stride {} or "
                                     "dilation {} ({})",
                                     op, pair_str(op_pad), pair_str(t.stride), pair_str(t.dilation), context));
    const std::size_t groups = static_cast<std::size_t>(t.groups);
    if (xs[1] % groups != 0)
        throw ShapeError(fmt::format("{}: groups {} does not divide the {} input channels ({})", op, groups, xs[1],
                                     context));
    if (xs[1] != ws[0])
        throw ShapeError(fmt::format("{}: input with {} channels for a weight of {} input channels ({})", op, xs[1],
                                     ws[0], context));
    const Checked c{op, context};
    const std::size_t out_channels = static_cast<std::size_t>(c.mul(static_cast<long>(ws[1]), t.groups));
    check_bias(op, context, bias.defined() ? &bias.shape() : nullptr, out_channels);
    // OH = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.
    auto out_size = [&](std::size_t in, long stride, long pad, long dil, std::size_t k, long extra) -> long {
        long s = c.mul(static_cast<long>(in) - 1, stride);
        s = c.add(s, -c.mul(2, pad));
        s = c.add(s, c.mul(dil, static_cast<long>(k) - 1));
        return c.add(s, extra + 1);
    };
    const long oh = out_size(xs[2], t.stride.h, t.padding.h, t.dilation.h, ws[2], op_pad.h);
    const long ow = out_size(xs[3], t.stride.w, t.padding.w, t.dilation.w, ws[3], op_pad.w);
    if (oh <= 0 || ow <= 0)
        throw ShapeError(fmt::format("{}: the output size ({}, {}) is not positive ({}, stride {}, padding {}, "
                                     "dilation {}, output_padding {})",
                                     op, oh, ow, context, pair_str(t.stride), pair_str(t.padding),
                                     pair_str(t.dilation), pair_str(op_pad)));
    // The adjoint convolution maps the output (N, out_channels, OH, OW) to x.
    check_sizes(op, context,
                geometry(o, xs[0], out_channels, static_cast<std::size_t>(oh), static_cast<std::size_t>(ow), xs[1],
                         xs[2], xs[3], ws[2], ws[3]));
    return conv_t_op(x, weight, bias, o, static_cast<std::size_t>(oh), static_cast<std::size_t>(ow));
}

namespace conv_kernels {

template <class T>
void forward(const T* x, const T* w, const T* bias, const Geometry& g, bool relu, T* y) {
    conv_forward_into(x, w, bias, g, relu, y);
}

// The direct loop's sizes when conv_relu_pool runs for g (AVX-512 only), else none.
template <class T>
std::optional<direct_conv::Sizes> relu_pool_sizes(const Geometry& g) {
#ifdef XG_DIRECT_CONV_AVX512
    const auto s = g.n * g.co == 0 ? std::nullopt : direct_conv_sizes<T>(g);
    if (!s || s->oh < 2 || s->ow < 2 || !direct_conv::pool_channel_lanes<T>(*s)) return std::nullopt;
    return s;
#else
    (void)g;
    return std::nullopt;
#endif
}

// output channels rounded up to whole vectors of the AVX-512 loops
template <class T>
std::size_t whole_vectors(std::size_t channels) {
    constexpr std::size_t lanes = 64 / sizeof(T);
    return (channels + lanes - 1) / lanes * lanes;
}

template <class T>
std::size_t lane_places_channels(const Geometry& g) {
    // add_plane_sums's lanes must be a chain count chain_sums knows
    constexpr std::size_t chains = xsimd::batch<T>::size;
    static_assert(chains == 1 || chains == 2 || chains == 4 || chains == 8 || chains == 16);
    return g.groups == 1 && relu_pool_sizes<T>(g) ? whole_vectors<T>(g.co) : 0;
}

template <class T>
bool forward_relu_pool(const T* x, const T* w, const T* bias, const Geometry& g, T* y, std::uint8_t* places,
                       bool lane_places) {
#ifdef XG_DIRECT_CONV_AVX512
    const auto s = relu_pool_sizes<T>(g);
    if (!s) return false;
    const std::size_t cop = whole_vectors<T>(s->co), taps = s->ci * s->kh * s->kw;
    const std::size_t pooled = (s->oh / 2) * (s->ow / 2), in = s->ci * s->h * s->w, out = s->co * pooled;
    const DirectTables<T> tables(*s, false);
    AlignedVector<T> wt(g.groups * taps * cop), padded(s->ci * s->plane + 64, T(0)), yt(pooled * cop), pt(pooled * cop);
    for (std::size_t grp = 0; grp < g.groups; ++grp)
        direct_conv::avx512::transpose_weights(*s, tables.taps.data(), w + grp * s->co * taps,
                                               wt.data() + grp * taps * cop);
    for (std::size_t i = 0; i < g.n * g.groups; ++i) {
        const std::size_t grp = i % g.groups;
        direct_conv::avx512::conv_relu_pool(*s, wt.data() + grp * taps * cop, x + i * in,
                                            bias ? bias + grp * s->co : nullptr, y + i * out,
                                            places ? places + i * (lane_places ? pooled * cop : out) : nullptr,
                                            lane_places, padded.data(), yt.data(), pt.data());
    }
    return true;
#else
    (void)x, (void)w, (void)bias, (void)g, (void)y, (void)places, (void)lane_places;
    return false;
#endif
}

// The input gradient's loop for a chunk of output gradients: the direct one where it applies
// (prepared once for all chunks), else conv_t's GEMMs.
template <class T>
struct InputGradient {
    InputGradient(const Geometry& g, const T* w) : w(w) {
        if (const auto ts = g.n * g.ci * g.h * g.w > 0 ? direct_transpose_sizes<T>(g) : std::nullopt)
            transposed.emplace(*ts, true, g.groups, w);
    }
    // gx of part's images from their output gradient gy
    void run(const Geometry& part, const T* gy, T* gx) {
        if (transposed)
            transposed->run(part.n, gy, nullptr, false, gx);
        else
            conv_t_forward_into(gy, w, static_cast<const T*>(nullptr), part, gx);
    }
    const T* w;
    std::optional<DirectImages<T>> transposed;
};

template <class T>
std::vector<Variable<T>> gradients_in_chunks(std::size_t inputs, const T* x, const T* w, const Geometry& g, bool want_x,
                                             bool want_w, bool want_b, const ChunkProducer<T>& produce) {
    std::vector<Variable<T>> grads(inputs);
    if (!want_x && !want_w && !want_b) return grads;
    Array<T> gx = want_x ? Array<T>::from_shape({g.n, g.ci, g.h, g.w}) : Array<T>();
    Array<T> gw = want_w ? full<T>({g.co, g.cig(), g.kh, g.kw}, T(0)) : Array<T>();
    Array<T> gb = want_b ? full<T>({g.co}, T(0)) : Array<T>();
    const std::size_t in = g.ci * g.h * g.w, out = g.co * g.oh * g.ow;
    const auto s = !want_w || g.co * g.k() == 0 || g.p() == 0 ? std::nullopt : direct_conv_sizes<T>(g);
    std::optional<DirectWeightGrad<T>> dw;
    if (s) dw.emplace(*s, g.n, g.groups);
    // The GEMMs add image by image: any chunk gives the same bits; the direct loop's own chunks.
    const std::size_t chunk = dw ? dw->chunk : std::min(std::max<std::size_t>(g.n, 1), images_in_cache(out * sizeof(T)));
    std::optional<InputGradient<T>> input;
    if (want_x) input.emplace(g, w);
    const auto gy = std::make_unique_for_overwrite<T[]>(chunk * out);
    for (std::size_t i = 0; i < g.n; i += chunk) {
        Geometry part = g;
        part.n = std::min(chunk, g.n - i);
        produce(i, part.n, gy.get(), want_b ? gb.data() : nullptr);
        if (input) input->run(part, gy.get(), gx.data() + i * in);
        if (dw)
            dw->add(part.n, x + i * in, gy.get(), gw.data());
        else if (want_w)
            conv_w_add(x + i * in, gy.get(), part, gw.data());
    }
    if (want_x) grads[0] = Variable<T>(std::move(gx));
    if (want_w) grads[1] = Variable<T>(std::move(gw));
    if (want_b) grads[2] = Variable<T>(std::move(gb));
    return grads;
}

// gb[c] += add_plane_sums's finish of each image's chain sums (images, chains, cop; chain_sums):
// the chains' hadd, then value(n, q, c) at each position q after the last whole vector of chains.
template <class T, class Value>
void finish_chain_sums(std::size_t images, std::size_t co, std::size_t cop, std::size_t positions, const T* sums,
                       const Value& value, T* gb) {
    constexpr std::size_t chains = xsimd::batch<T>::size;  // add_plane_sums's lanes
    alignas(64) T chain[chains];
    for (std::size_t n = 0; n < images; ++n)
        for (std::size_t c = 0; c < co; ++c) {
            for (std::size_t l = 0; l < chains; ++l) chain[l] = sums[(n * chains + l) * cop + c];
            T sum = xsimd::hadd(xsimd::batch<T>::load_aligned(chain));
            for (std::size_t q = positions / chains * chains; q < positions; ++q) sum += value(n, q, c);
            gb[c] += sum;
        }
}

// relu_pool_gradients_in_lanes's weight and bias gradients when no input gradient is wanted (a
// first layer): read from the pooled gradient through direct_conv::PooledGradient, so the
// gradient at the convolution's output (four times the pooled one's size, three quarters zeros)
// is never written and read back. In SimpleConvNet's step at batch 32 that was a 1.2 MB buffer
// per chunk of 16 images, zeroed, written by the scatter and read by the bias sums and three
// times by the weight gradient's loops. The same values in the same order: the same bits.
template <class T>
void relu_pool_parameter_gradients(const direct_conv::Sizes& s, const Geometry& g, const T* x, const T* gp,
                                   const std::uint8_t* places, T* gw, T* gb) {
#ifdef XG_DIRECT_CONV_AVX512
    constexpr std::size_t chains = xsimd::batch<T>::size, L = 64 / sizeof(T);
    const std::size_t cop = whole_vectors<T>(g.co), positions = g.oh * g.ow, pooled = (g.oh / 2) * (g.ow / 2);
    const std::size_t in = g.ci * g.h * g.w, vectors = cop / L;
    DirectWeightGrad<T> dw(s, g.n, 1, false);
    const std::size_t chunk = dw.chunk;
    AlignedVector<T> values(chunk * pooled * cop), sums(gb ? chunk * chains * cop : 0);
    std::vector<std::uint32_t> window(chunk * positions);
    std::vector<std::uint16_t> lanes(chunk * positions * vectors);
    const direct_conv::PooledGradient<T> pg{values.data(), window.data(), lanes.data()};
    const auto value = [&](std::size_t n, std::size_t q, std::size_t c) {
        const bool here = lanes[(n * positions + q) * vectors + c / L] >> (c % L) & 1u;
        return here ? values[window[n * positions + q] + c] : T(0);
    };
    for (std::size_t i = 0; i < g.n; i += chunk) {
        const std::size_t images = std::min(chunk, g.n - i);
        direct_conv::avx512::pooled_gradient(s, images, gp + i * g.co * pooled, places + i * pooled * cop, cop, pg);
        if (gb) {
            direct_conv::avx512::pooled_chain_sums(s, images, cop, chains, pg, sums.data());
            finish_chain_sums(images, g.co, cop, positions, sums.data(), value, gb);
        }
        if (gw)
            direct_conv::avx512::weight_grad_pooled(s, dw.tables.taps.data(), images, x + i * in, in, pg, cop, gw,
                                                    dw.padded.data());
    }
#else
    (void)s, (void)g, (void)x, (void)gp, (void)places, (void)gw, (void)gb;
#endif
}

template <class T>
std::vector<Variable<T>> relu_pool_gradients_in_lanes(std::size_t inputs, const T* x, const T* w, const Geometry& g,
                                                      bool want_x, bool want_w, bool want_b, const T* gp,
                                                      const std::uint8_t* places) {
    std::vector<Variable<T>> grads(inputs);
#ifdef XG_DIRECT_CONV_AVX512
    if (!want_x && !want_w && !want_b) return grads;
    const direct_conv::Sizes s = relu_pool_sizes<T>(g).value();
    Array<T> gx = want_x ? Array<T>::from_shape({g.n, g.ci, g.h, g.w}) : Array<T>();
    Array<T> gw = want_w ? full<T>({g.co, g.ci, g.kh, g.kw}, T(0)) : Array<T>();
    Array<T> gb = want_b ? full<T>({g.co}, T(0)) : Array<T>();
    constexpr std::size_t chains = xsimd::batch<T>::size;  // add_plane_sums's lanes
    const std::size_t cop = whole_vectors<T>(g.co), positions = g.oh * g.ow, pooled = (g.oh / 2) * (g.ow / 2);
    const std::size_t in = g.ci * g.h * g.w, out = g.co * positions;
    // PooledGradient's offsets are 32 bits: a chunk's pooled gradient must fit
    if (!want_x && max_weight_chunk * pooled * cop <= std::numeric_limits<std::uint32_t>::max()) {
        relu_pool_parameter_gradients(s, g, x, gp, places, want_w ? gw.data() : nullptr, want_b ? gb.data() : nullptr);
        if (want_w) grads[1] = Variable<T>(std::move(gw));
        if (want_b) grads[2] = Variable<T>(std::move(gb));
        return grads;
    }
    // its buffers: the chunk's padded images and its gradient at the output (gyt)
    DirectWeightGrad<T> dw(s, g.n, 1);
    const std::size_t chunk = dw.chunk;
    T* gyt = dw.wide.data();
    AlignedVector<T> gt(pooled * cop), sums(want_b ? chunk * chains * cop : 0);
    std::optional<InputGradient<T>> input;
    if (want_x) input.emplace(g, w);
    const auto gy = want_x ? std::make_unique_for_overwrite<T[]>(chunk * out) : nullptr;
    for (std::size_t i = 0; i < g.n; i += chunk) {
        Geometry part = g;
        part.n = std::min(chunk, g.n - i);
        direct_conv::avx512::scatter_2x2_lanes(s, part.n, gp + i * g.co * pooled, places + i * pooled * cop, cop,
                                               gt.data(), gyt);
        if (want_b) {  // add_plane_sums's order: its lanes' chains, their hadd, the positions after them
            direct_conv::avx512::chain_sums(part.n, positions, cop, chains, gyt, sums.data());
            const auto value = [&](std::size_t n, std::size_t q, std::size_t c) { return gyt[(n * positions + q) * cop + c]; };
            finish_chain_sums(part.n, g.co, cop, positions, sums.data(), value, gb.data());
        }
        if (input) {
            direct_conv::avx512::lanes_to_planes(g.co, positions, part.n, gyt, cop, gy.get());
            input->run(part, gy.get(), gx.data() + i * in);
        }
        if (want_w)
            direct_conv::avx512::weight_grad_lanes(s, dw.tables.taps.data(), part.n, x + i * in, in, gyt, cop,
                                                   gw.data(), dw.padded.data());
    }
    if (want_x) grads[0] = Variable<T>(std::move(gx));
    if (want_w) grads[1] = Variable<T>(std::move(gw));
    if (want_b) grads[2] = Variable<T>(std::move(gb));
#else
    (void)x, (void)w, (void)g, (void)want_x, (void)want_w, (void)want_b, (void)gp, (void)places;
#endif
    return grads;
}

template <class T>
void add_plane_sums(const T* p, std::size_t images, std::size_t channels, std::size_t n, T* sums) {
    using B = xsimd::batch<T>;
    const std::size_t planes = images * channels, j_end = n / B::size * B::size;
    // Each plane's sum in the one order (finish); G planes side by side, each its own chain of
    // adds: one plane at a time was bound by the add's latency (SimpleConvNet's bias gradient:
    // 5.1% of its step's profile, now 2.3%).
    const auto finish = [&](std::size_t k, B acc) {
        T s = xsimd::hadd(acc);
        for (std::size_t j = j_end; j < n; ++j) s += p[k * n + j];
        sums[k % channels] += s;
    };
    constexpr std::size_t G = 4;
    std::size_t k = 0;
    for (; k + G <= planes; k += G) {
        const T* q = p + k * n;
        B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
        for (std::size_t j = 0; j < j_end; j += B::size) {
            a0 += B::load_unaligned(q + j);
            a1 += B::load_unaligned(q + n + j);
            a2 += B::load_unaligned(q + 2 * n + j);
            a3 += B::load_unaligned(q + 3 * n + j);
        }
        finish(k, a0), finish(k + 1, a1), finish(k + 2, a2), finish(k + 3, a3);
    }
    for (; k < planes; ++k) {
        B acc(T(0));
        for (std::size_t j = 0; j < j_end; j += B::size) acc += B::load_unaligned(p + k * n + j);
        finish(k, acc);
    }
}

template <class T>
std::pair<std::size_t, std::size_t> output_size(std::string_view op, const Variable<T>& x, const Variable<T>& weight,
                                                const Variable<T>& bias, const Conv2dOptions& o) {
    return conv2d_output_size(op, x, weight, bias, o);
}

#define XG_CONV_KERNELS(T)                                                                                  \
    template void forward(const T*, const T*, const T*, const Geometry&, bool, T*);                      \
    template std::size_t lane_places_channels<T>(const Geometry&);                                        \
    template bool forward_relu_pool(const T*, const T*, const T*, const Geometry&, T*, std::uint8_t*, bool); \
    template std::vector<Variable<T>> relu_pool_gradients_in_lanes(std::size_t, const T*, const T*,         \
                                                                   const Geometry&, bool, bool, bool,     \
                                                                   const T*, const std::uint8_t*);        \
    template std::vector<Variable<T>> gradients_in_chunks(std::size_t, const T*, const T*, const Geometry&, \
                                                          bool, bool, bool, const ChunkProducer<T>&);      \
    template void add_plane_sums(const T*, std::size_t, std::size_t, std::size_t, T*);                   \
    template std::pair<std::size_t, std::size_t> output_size(std::string_view, const Variable<T>&,       \
                                                             const Variable<T>&, const Variable<T>&,      \
                                                             const Conv2dOptions&);
XG_CONV_KERNELS(float)
XG_CONV_KERNELS(double)
#undef XG_CONV_KERNELS

}  // namespace conv_kernels

XG_INSTANTIATE_OP(conv2d)
XG_INSTANTIATE_OP(conv2d_relu)
XG_INSTANTIATE_OP(conv_transpose2d)

}  // namespace xg
