#pragma once
// Internal to ops/ (not installed): the convolution's array kernels, defined in ops/conv.cpp for
// float and double, for the ops that run a convolution over chunks of a batch (conv2d_relu's
// backward, ops/conv_pool.cpp's conv2d_relu_max_pool2d). Each works on any number of images, so
// a chunk is the same call as a whole batch.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "ops/ops.hpp"

namespace xg::conv_kernels {

// Everything about one convolution's shapes: the input side (n, ci, h, w), the output side
// (n, co, oh, ow), the kernel, and the options.
struct Geometry {
    std::size_t n, ci, h, w, co, oh, ow, kh, kw, groups;
    long sh, sw, ph, pw, dh, dw;

    std::size_t cig() const { return ci / groups; }  // input channels per group
    std::size_t cog() const { return co / groups; }  // output channels per group
    std::size_t k() const { return cig() * kh * kw; }  // rows of the columns
    std::size_t p() const { return oh * ow; }         // output pixels per image
    // A 1x1 kernel without stride, padding or cropping: the columns are the input itself.
    bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && oh == h && ow == w; }
};

inline Geometry geometry(const Conv2dOptions& o, std::size_t n, std::size_t ci, std::size_t h, std::size_t w,
                         std::size_t co, std::size_t oh, std::size_t ow, std::size_t kh, std::size_t kw) {
    return {n, ci, h, w, co, oh, ow, kh, kw, static_cast<std::size_t>(o.groups),
            o.stride.h, o.stride.w, o.padding.h, o.padding.w, o.dilation.h, o.dilation.w};
}

// How many images of image_bytes each a chunk takes so that it stays in the cache (L2, about
// 512 KB of it) while the next pass reads it: at least 1.
inline std::size_t images_in_cache(std::size_t image_bytes) {
    constexpr std::size_t budget = std::size_t(512) << 10;
    return image_bytes >= budget ? 1 : budget / (image_bytes ? image_bytes : 1);
}

// y (n, co, oh, ow) = conv2d of x (n, ci, h, w) with w [+ bias], relu'd when `relu`.
template <class T>
void forward(const T* x, const T* w, const T* bias, const Geometry& g, bool relu, T* y);
// max_pool2d(relu(conv2d(...)), 2x2, stride 2) of x's g.n images into y (n, co, oh / 2, ow / 2)
// and, when places is not null, each window's maximum's place (row * 2 + column) there, in one
// pass with the output channels in the lanes (ops/conv_direct_avx512.cpp), where the CPU and the
// geometry allow it (a direct loop, a kernel 3 or 5 wide, more output channels than a vector);
// else false, and nothing is written. The values and places are those of forward and
// pool_2x2::max_forward. With lane_places (where lane_places_channels is not 0), the places are
// kept for relu_pool_gradients_in_lanes instead: (n, oh / 2 * ow / 2, lane_places_channels) bytes.
template <class T>
bool forward_relu_pool(const T* x, const T* w, const T* bias, const Geometry& g, T* y, std::uint8_t* places,
                       bool lane_places);
// The channels of a lane place (co rounded up to whole vectors) where forward_relu_pool can keep
// them for g (the loop of forward_relu_pool runs, and one group), else 0.
template <class T>
std::size_t lane_places_channels(const Geometry& g);
// The input, weight and bias gradients of conv2d_relu_max_pool2d (as gradients_in_chunks) for the
// pooled gradient gp (n, co, oh / 2, ow / 2) from forward_relu_pool's lane places: the gradient
// at the convolution's output is scattered with the channels in the lanes, the layout of the
// weight gradient's loop, instead of transposed to it. The bits of gradients_in_chunks's, the bias
// summed in add_plane_sums's order.
template <class T>
std::vector<Variable<T>> relu_pool_gradients_in_lanes(std::size_t inputs, const T* x, const T* w, const Geometry& g,
                                                      bool want_x, bool want_w, bool want_b, const T* gp,
                                                      const std::uint8_t* places);
// Writes the output gradient of images [first, first + count) (count * co * oh * ow elements) at
// gy and, when gb is not null, adds its sums per channel to gb (co).
template <class T>
using ChunkProducer = std::function<void(std::size_t first, std::size_t count, T* gy, T* gb)>;
// The input, weight and bias gradients (undefined where not wanted, and the bias's left off when
// `inputs` is 2) of the convolution of x's g.n images with w, for an output gradient that
// `produce` writes a chunk of images at a time, each just before the input and weight gradients
// read it (while it is in cache), in chunks of the weight gradient's own size: the bits of
// conv2d's backward on the whole output gradient.
template <class T>
std::vector<Variable<T>> gradients_in_chunks(std::size_t inputs, const T* x, const T* w, const Geometry& g, bool want_x,
                                             bool want_w, bool want_b, const ChunkProducer<T>& produce);

// sums[c] += the sum of plane (i, c) of p (images, channels, n), for i = 0, 1, ... in turn, each
// plane summed in one order: vectors of lanes summed side by side, then their lanes, then the
// tail (the bias gradients of conv2d_relu and conv2d_relu_max_pool2d, so that they agree).
template <class T>
void add_plane_sums(const T* p, std::size_t images, std::size_t channels, std::size_t n, T* sums);

// conv2d's argument checks (ShapeError, ValueError, ResourceError naming `op`); the output's
// (oh, ow).
template <class T>
std::pair<std::size_t, std::size_t> output_size(std::string_view op, const Variable<T>& x, const Variable<T>& weight,
                                                const Variable<T>& bias, const Conv2dOptions& o);

}  // namespace xg::conv_kernels
