// conv2d_relu_max_pool2d: max_pool2d(relu(conv2d(x, W, b)), 2x2 stride 2) as one op, what
// nn::Sequential runs for a Conv2d, a ReLU and a MaxPool2d(2) (the book's ConvNets).
//
// Why: composed, the convolution's full-size output is written, read by the pool, and its
// gradient is written by the pool's scatter, read and written again by relu's mask and read
// by the weight gradient: five passes over an array larger than the cache (SimpleConvNet's
// first layer: 6.9 MB at batch 100). This op runs the convolution over chunks of images whose
// output stays in cache and pools each chunk as it is made, or, where the direct loop can, pools
// in its registers (conv_kernels::forward_relu_pool); it keeps only the pooled output and one
// byte per window (the maximum's place). Backward, chunk by chunk: the pooled gradient where
// the pooled output is > 0 (relu's mask at the maximum: relu(max) = max(relu)) scattered to the
// places in one pass, summed per channel for the bias, and handed to the convolution's weight
// and input gradient kernels (ops/conv_kernels.hpp). Where the forward pooled in registers (one
// group), it keeps the places with the channels in the lanes, relu's mask in them, and the
// backward scatters straight into the layout of the weight gradient's loop: the full gradient
// is never transposed, only the pooled one (SimpleConvNet's step: 0.91-0.94 of the time).
//
// The values and gradients are the composed ops' bits: the same kernels per image, the same
// pooling rule (ops/pool_2x2.hpp), the same summation order for the bias, and chunks of the
// weight gradient's own size (tests/test_conv_pool.cpp). Under create_graph the backward is the
// composed ops' backward on a recomputed forward, so gradients of gradients are made of ops.
//
// With flatten, the output is flatten(pooled, 1), (N, C * OH/2 * OW/2): the pooled array is
// made in that shape, which is the same memory, so a Flatten after the pool (nn::Sequential
// fuses it too) costs no copy (SimpleConvNet's 1.7 MB a step at batch 100).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/axes.hpp"
#include "ops/conv_kernels.hpp"
#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/pool_2x2.hpp"

namespace xg {
namespace {

using conv_kernels::Geometry;

template <class T>
struct ConvReluMaxPool final : Function<T> {
    // keep_places: the op is recorded (its backward needs the maxima's places). flat: the output
    // is (N, C * OH/2 * OW/2), the pooled (N, C, OH/2, OW/2) flattened in place.
    ConvReluMaxPool(const Conv2dOptions& o, std::size_t oh, std::size_t ow, bool keep_places, bool flat)
        : o(o), oh(oh), ow(ow), keep_places(keep_places), flat(flat) {}
    std::string_view name() const override { return "conv2d_relu_max_pool2d"; }

    // The convolution's geometry on n images of x's shape with weight w's.
    Geometry geometry(std::size_t n, const Shape& x, const Shape& w) const {
        return conv_kernels::geometry(o, n, x[1], x[2], x[3], w[0], oh, ow, w[2], w[3]);
    }

    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Shape &x = xs[0].shape(), &w = xs[1].shape();
        const std::size_t n = x[0], co = w[0], in = x[1] * x[2] * x[3], conv_out = co * oh * ow;
        const std::size_t pooled = co * (oh / 2) * (ow / 2);
        Array<T> y = flat ? Array<T>::from_shape({n, pooled}) : Array<T>::from_shape({n, co, oh / 2, ow / 2});
        const Geometry g = geometry(n, x, w);
        lane_channels = keep_places ? conv_kernels::lane_places_channels<T>(g) : 0;  // 0 for no images
        const std::size_t kept_size = lane_channels ? n * (oh / 2) * (ow / 2) * lane_channels : y.size();
        std::shared_ptr<std::uint8_t[]> kept =
            std::make_shared_for_overwrite<std::uint8_t[]>(keep_places ? kept_size : ow / 2);
        if (keep_places) places = kept;
        if (y.size() == 0) return y;
        if (conv_kernels::forward_relu_pool(xs[0].data(), xs[1].data(), xs.size() > 2 ? xs[2].data() : nullptr, g,
                                            y.data(), keep_places ? kept.get() : nullptr, lane_channels != 0))
            return y;
        lane_channels = 0;
        const std::size_t chunk = std::min(n, conv_kernels::images_in_cache(conv_out * sizeof(T)));
        const auto out = std::make_unique_for_overwrite<T[]>(chunk * conv_out);
        const T* bias = xs.size() > 2 ? xs[2].data() : nullptr;
        for (std::size_t i = 0; i < n; i += chunk) {
            const std::size_t m = std::min(chunk, n - i);
            conv_kernels::forward(xs[0].data() + i * in, xs[1].data(), bias, geometry(m, x, w), true, out.get());
            pool_2x2::max_forward(out.get(), m * co, oh, ow, y.data() + i * pooled,
                                  kept.get() + (keep_places ? i * pooled : 0), keep_places);
        }
        return y;
    }

    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (recording_backward()) return composed_backward(gy);
        if (!places) throw GraphError("conv2d_relu_max_pool2d: backward without the maxima's places of the forward pass");
        const Shape &x = this->input(0).shape(), &w = this->input(1).shape();
        const std::size_t co = w[0], plane = oh * ow, pooled = co * (oh / 2) * (ow / 2);
        const T *g = gy.data().data(), *p = this->output().data().data();
        if (lane_channels)
            return conv_kernels::relu_pool_gradients_in_lanes<T>(
                this->inputs().size(), this->input(0).data().data(), this->input(1).data().data(),
                geometry(x[0], x, w), this->needs_input_grad(0), this->needs_input_grad(1),
                this->inputs().size() > 2 && this->needs_input_grad(2), g, places.get());
        // The gradient at the convolution's output for images [i, i + m) and the bias's sums.
        return conv_kernels::gradients_in_chunks<T>(
            this->inputs().size(), this->input(0).data().data(), this->input(1).data().data(), geometry(x[0], x, w),
            this->needs_input_grad(0), this->needs_input_grad(1),
            this->inputs().size() > 2 && this->needs_input_grad(2), [&](std::size_t i, std::size_t m, T* gh, T* gb) {
                pool_2x2::scatter(g + i * pooled, p + i * pooled, places.get() + i * pooled, m * co, oh, ow, gh);
                if (gb) conv_kernels::add_plane_sums(gh, m, co, plane, gb);
            });
    }

    // The composed ops on the inputs again, and their backwards in turn: recorded, so the
    // gradients are made of ops (create_graph).
    std::vector<Variable<T>> composed_backward(const Variable<T>& gy) {
        const Variable<T> bias = this->inputs().size() > 2 ? this->input(2) : Variable<T>();
        const Variable<T> h = conv2d_relu(this->input(0), this->input(1), bias, o);
        const Variable<T> pooled = max_pool2d(h, {.kernel = 2});
        const Variable<T> gh = pooled.creator()->backward(flat ? reshape(gy, as_long(pooled.shape())) : gy)[0];
        return h.creator()->backward(gh);
    }

    void release_saved() override { places.reset(); }

    Conv2dOptions o;
    std::size_t oh, ow;  // the convolution's output
    bool keep_places, flat;
    // per pooled element: its maximum's place in the window, as (n, co, oh / 2, ow / 2), or, where
    // lane_channels is not 0, as (n, oh / 2 * ow / 2, lane_channels) with relu's mask (forward_relu_pool)
    std::shared_ptr<const std::uint8_t[]> places;
    std::size_t lane_channels = 0;
};

}  // namespace

template <class T>
Variable<T> conv2d_relu_max_pool2d(const Variable<T>& x, const Variable<T>& weight, const Variable<T>& bias,
                                   Conv2dOptions conv, Pool2dOptions pool, bool flatten) {
    const bool two_by_two = pool.kernel.h == 2 && pool.kernel.w == 2 && pool.padding.h == 0 && pool.padding.w == 0 &&
                            (!pool.stride || (pool.stride->h == 2 && pool.stride->w == 2));
    if (!x.defined() || !weight.defined()) return apply<ConvReluMaxPool<T>>({x, weight}, conv, 0, 0, false, false);  // names it
    const auto composed = [&] {
        const Variable<T> y = max_pool2d(conv2d_relu(x, weight, bias, conv), pool);
        return flatten ? xg::flatten(y, 1) : y;
    };
    if (!two_by_two) return composed();
    const auto [oh, ow] = conv_kernels::output_size("conv2d_relu_max_pool2d", x, weight, bias, conv);
    // a pool with no window, or no channels: max_pool2d's error
    if (oh < 2 || ow < 2 || weight.shape()[0] == 0) return composed();
    std::vector<Variable<T>> inputs{x, weight};
    if (bias.defined()) inputs.push_back(bias);
    const bool recorded = detail::should_record(inputs);
    return apply<ConvReluMaxPool<T>>(std::move(inputs), conv, oh, ow, recorded, flatten);
}

XG_INSTANTIATE_OP(conv2d_relu_max_pool2d)

}  // namespace xg
