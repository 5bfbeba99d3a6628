#pragma once
// Internal to ops/conv.cpp (not installed): direct convolution of one image for stride 1 and
// dilation 1, compiled for AVX-512 in ops/conv_direct_avx512.cpp and run only on CPUs that have
// it (elsewhere conv.cpp keeps im2col and GEMM).
//
// Why: a 3x3 "same" convolution as im2col + GEMM copies each input 9 times into the columns and,
// for the input gradient, adds the columns back (col2im) after a GEMM whose transposed operand
// BLAS packs first. The direct loop reads the zero-padded image where it is: for a block of 8
// output channels and 48 output positions it broadcasts one weight per channel and multiplies it
// with the input vectors shifted by the kernel tap, so the only copy is the padding
// (docs/benchmarks.md has the measurements).
//
// Layout: the output is computed over "wide" rows of the padded width wp = w + 2 pw, so that the
// input of tap (i, j) for output position q = oy * wp + ox is the padded input at q + i * wp + j,
// one contiguous vector for consecutive positions; the wp - ow columns of each wide row that are
// not outputs are dropped as the vectors are stored (a compressing store of the others).
//
// The AVX-512 file defines only what is its own (tests/check_simd_symbols.sh): no inline function
// here is called there, and the tables it reads are built by conv.cpp.
#include <cstddef>
#include <cstdint>

namespace xg::direct_conv {

// One convolution's sizes, per group: ci input channels of h x w, co output channels, a kh x kw
// kernel, zero padding ph, pw (at most kh - 1, kw - 1), the output oh x ow with
// oh = h + 2 ph - kh + 1 and ow = w + 2 pw - kw + 1 (both at least 1); wp = w + 2 pw, plane =
// (h + 2 ph) * wp (one padded channel), and wide = oh * wp rounded up to whole vectors. The
// weight of output channel k at tap t is at k * w_stride + Tap::weight of t.
struct Sizes {
    std::size_t ci, h, w, co, kh, kw, ph, pw, oh, ow, wp, plane, wide, w_stride;
};

// One kernel tap t = (c, i, j): its input's offset in the padded image (c * plane + i * wp + j)
// and its weight's offset for output channel 0. Through this table conv_transpose2d's flipped
// kernel is read in place, as conv2d's is.
struct Tap {
    std::size_t input, weight;
};

// One vector of wide positions: the lanes that are outputs (column below ow, row below oh) and
// the output index of the first of them. Consecutive outputs of a wide vector are consecutive in
// the output (the skipped columns end one row, the next row starts right after), so the selected
// lanes are stored as one run.
struct Lanes {
    std::uint32_t mask;
    std::size_t first;
};

// The elements per image that weight_grad's `wide` buffer needs: co * wide, or the transposed
// gradient's oh * ow * co (co rounded up to whole vectors), whichever is more. Called by
// conv.cpp only (see above).
inline std::size_t gradient_buffer(const Sizes& s, std::size_t element_size) {
    const std::size_t lanes = 64 / element_size;
    const std::size_t transposed = s.oh * s.ow * ((s.co + lanes - 1) / lanes * lanes);
    return transposed > s.co * s.wide ? transposed : s.co * s.wide;
}

// Whether image_3x3 runs instead of image: a 3x3 kernel and at least 32 output channels (two
// vectors of floats; with fewer, the loads bound its loop and image is faster). Called by
// conv.cpp only.
inline bool forward_channel_lanes(const Sizes& s) {
    return s.kh == 3 && s.kw == 3 && s.co >= 32 && s.co * s.w_stride < (std::size_t(1) << 26);  // gather offsets
}

// Whether conv_relu_pool runs for conv2d_relu_max_pool2d: a kernel 3 or 5 wide and more output
// channels than one vector of T. With one vector its loop would load twice as much per
// multiply-add, which bounds image_3x3's there; such layers keep the wide-row loop (this one was
// not timed on them). Called by conv.cpp only.
template <class T>
bool pool_channel_lanes(const Sizes& s) {
    return (s.kw == 3 || s.kw == 5) && s.co > 64 / sizeof(T) && s.co * s.w_stride < (std::size_t(1) << 26);  // gathers
}

// Whether conv.cpp takes the direct loop where it applies: the AVX-512 build exists, the CPU
// runs it, and set_enabled(false) has not turned it off (the tests do, to check both paths on
// one machine).
bool available();
void set_enabled(bool on);

// conv2d_relu_max_pool2d's output gradient kept as its pool's, for a backward that needs no input
// gradient: scatter_2x2_lanes's gyt is never written, its values are read from these (pooled_gradient
// fills them; values 64-byte aligned):
// - values (images, oh / 2 * ow / 2, cop): the pooled gradient g with the channels in the lanes,
//   0 * g where relu stopped it;
// - window (images, oh * ow): the offset in values of each output position's window (of the
//   image's first window for a position in none);
// - lanes (images, oh * ow, cop / L): bit l of vector v, whether channel v * L + l has its
//   window's maximum at q (L = 16 floats, 8 doubles).
template <class T>
struct PooledGradient {
    T* values;
    std::uint32_t* window;
    std::uint16_t* lanes;
};

namespace avx512 {

// y (co, oh, ow) = the convolution of x (ci, h, w) with the weights at w (as Sizes and taps say),
// plus bias[co] when bias is not null, then relu when asked (x < 0 ? 0 : x, NaN kept). taps has
// the ci * kh * kw taps, lanes the Lanes of each wide vector (16 floats or 8 doubles). padded
// holds ci * plane elements and 64 more (what the last vectors read past the end), zero where
// the padding is; image() writes only the inside, so one buffer serves every image of a batch.
void image(const Sizes& s, const Tap* taps, const Lanes* lanes, const float* x, const float* w, const float* bias,
           bool relu, float* y, float* padded);
void image(const Sizes& s, const Tap* taps, const Lanes* lanes, const double* x, const double* w,
           const double* bias, bool relu, double* y, double* padded);

// The same for a 3x3 kernel with the output channels in the lanes (ops/conv_direct_avx512.cpp
// says why): transpose_weights writes, once per call, the weights as wt (ci * kh * kw taps, co
// rounded up to whole vectors, zeros beyond co; 64-byte aligned), then image_3x3 takes each
// image, with yt (oh * ow times co rounded up; 64-byte aligned) as scratch.
void transpose_weights(const Sizes& s, const Tap* taps, const float* w, float* wt);
void transpose_weights(const Sizes& s, const Tap* taps, const double* w, double* wt);
void image_3x3(const Sizes& s, const float* wt, const float* x, const float* bias, bool relu, float* y, float* padded,
               float* yt);
void image_3x3(const Sizes& s, const double* wt, const double* x, const double* bias, bool relu, double* y,
               double* padded, double* yt);

// max_pool2d(relu(conv2d(x, w) + bias), 2x2, stride 2) of one image, with the output channels in
// the lanes (ops/conv_direct_avx512.cpp says why), for a kernel 3 or 5 wide: y (co, oh / 2,
// ow / 2) and, when places is not null, each window's maximum's place (row * 2 + column) there,
// the values and places of the composed ops (ops/pool_2x2.hpp's rule). wt as transpose_weights
// writes it; yt and pt hold (oh / 2) (ow / 2) times co rounded up to whole vectors (64-byte
// aligned), scratch; padded as for image().
// With lane_places, places are kept as (oh / 2 * ow / 2, co rounded up to whole vectors) instead,
// 4 added where the pooled value is not > 0 (relu's mask), for scatter_2x2_lanes.
void conv_relu_pool(const Sizes& s, const float* wt, const float* x, const float* bias, float* y, std::uint8_t* places,
                    bool lane_places, float* padded, float* yt, float* pt);
void conv_relu_pool(const Sizes& s, const double* wt, const double* x, const double* bias, double* y,
                    std::uint8_t* places, bool lane_places, double* padded, double* yt, double* pt);

// conv2d_relu_max_pool2d's backward from lane places, with the output channels in the lanes
// (cop: co rounded up to whole vectors; arrays 64-byte aligned):
// - scatter_2x2_lanes: gyt (images, oh * ow, cop) = the gradient at the convolution's output for
//   the pooled gradient g (images, co, oh / 2, ow / 2), scatter_2x2's values (zeros beyond co);
//   gt is scratch for one image (oh / 2 * ow / 2 * cop).
// - chain_sums: sums (images, chains, cop) = per image and channel, gyt's positions below the last
//   multiple of `chains` (1, 2, 4, 8 or 16) summed into chain q % chains in the order of q:
//   add_plane_sums's vector lanes, for its finish.
// - lanes_to_planes: dst (images, co, positions) = src (images, positions, cop) transposed.
// - weight_grad_lanes: weight_grad for a gradient already in that layout (gyt), for a kernel 3
//   wide, or 5 wide with more output channels than half a vector.
// - pooled_gradient, pooled_chain_sums, weight_grad_pooled: the same from a PooledGradient
//   instead of gyt (the same values, the same bits).
#define XG_RELU_POOL_LANES(T)                                                                                     \
    void scatter_2x2_lanes(const Sizes& s, std::size_t images, const T* g, const std::uint8_t* places,           \
                           std::size_t cop, T* gt, T* gyt);                                                        \
    void chain_sums(std::size_t images, std::size_t positions, std::size_t cop, std::size_t chains, const T* gyt, \
                    T* sums);                                                                                     \
    void lanes_to_planes(std::size_t co, std::size_t positions, std::size_t images, const T* src, std::size_t cop, \
                         T* dst);                                                                                 \
    void weight_grad_lanes(const Sizes& s, const Tap* taps, std::size_t images, const T* x, std::size_t x_step,  \
                           const T* gyt, std::size_t cop, T* gw, T* padded);                                      \
    void pooled_gradient(const Sizes& s, std::size_t images, const T* g, const std::uint8_t* places,             \
                         std::size_t cop, const PooledGradient<T>& out);                                          \
    void pooled_chain_sums(const Sizes& s, std::size_t images, std::size_t cop, std::size_t chains,              \
                           const PooledGradient<T>& g, T* sums);                                                  \
    void weight_grad_pooled(const Sizes& s, const Tap* taps, std::size_t images, const T* x, std::size_t x_step, \
                            const PooledGradient<T>& g, std::size_t cop, T* gw, T* padded);
XG_RELU_POOL_LANES(float)
XG_RELU_POOL_LANES(double)
#undef XG_RELU_POOL_LANES

// The weight gradient of that convolution, added to gw (at k * w_stride + Tap::weight): for
// images n < `images`, the sum over output positions of gy_n (co, oh, ow) times the input x_n
// (ci, h, w) each tap reads, x_n at x + n * x_step and gy_n at gy + n * gy_step. padded holds
// images * (ci * plane + 64) elements and wide images * gradient_buffer(s) (64-byte aligned),
// both zeros where weight_grad does not write (the padding, and the wide positions that are not
// outputs), so that they serve every chunk of a batch. The gradient of a kernel 3 wide, or 5 wide
// with more output channels than half a vector, is taken with the output channels in the lanes
// (the gradient transposed to positions x channels in `wide`), any other kernel's with the output
// positions in the lanes (the gradient spread over wide rows).
void weight_grad(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const float* x,
                 std::size_t x_step, const float* gy, std::size_t gy_step, float* gw, float* padded, float* wide);
void weight_grad(const Sizes& s, const Tap* taps, const Lanes* lanes, std::size_t images, const double* x,
                 std::size_t x_step, const double* gy, std::size_t gy_step, double* gw, double* padded,
                 double* wide);

// The 2x2 max pool of stride 2 without padding and its gradient's scatter, ops/pool_2x2.hpp's
// max_forward and scatter (the same arguments, the same bits) 16 floats or 8 doubles at a time.
void max_pool_2x2(const float* x, std::size_t planes, std::size_t h, std::size_t w, float* y, std::uint8_t* places,
                  bool keep);
void max_pool_2x2(const double* x, std::size_t planes, std::size_t h, std::size_t w, double* y, std::uint8_t* places,
                  bool keep);
void scatter_2x2(const float* g, const float* y, const std::uint8_t* places, std::size_t planes, std::size_t h,
                 std::size_t w, float* gx);
void scatter_2x2(const double* g, const double* y, const std::uint8_t* places, std::size_t planes, std::size_t h,
                 std::size_t w, double* gx);

}  // namespace avx512
}  // namespace xg::direct_conv
