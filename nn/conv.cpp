#include "nn/conv.hpp"

#include <cmath>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::nn {
namespace {

// torch's reprs: "(3, 3)" for a pair, and a pooling size as given: "2" or "(2, 3)".
std::string pair(Size2 s) { return fmt::format("({}, {})", s.h, s.w); }
std::string size_str(Size2 s) { return s.h == s.w ? fmt::format("{}", s.h) : pair(s); }

// The options every convolution layer shares, checked when it is built.
void check_conv_layer(std::string_view who, std::size_t in, std::size_t out, Size2 kernel, Size2 stride,
                      Size2 padding, Size2 dilation, long groups) {
    if (in == 0 || out == 0)
        throw ShapeError(fmt::format("{}: channel counts must be positive, got {} -> {}", who, in, out));
    if (kernel.h <= 0 || kernel.w <= 0)
        throw ValueError(fmt::format("{}: kernel_size must be positive, got {}", who, pair(kernel)));
    if (stride.h <= 0 || stride.w <= 0)
        throw ValueError(fmt::format("{}: stride must be positive, got {}", who, pair(stride)));
    if (padding.h < 0 || padding.w < 0)
        throw ValueError(fmt::format("{}: padding must be >= 0, got {}", who, pair(padding)));
    if (dilation.h <= 0 || dilation.w <= 0)
        throw ValueError(fmt::format("{}: dilation must be positive, got {}", who, pair(dilation)));
    if (groups <= 0) throw ValueError(fmt::format("{}: groups must be positive, got {}", who, groups));
    const auto g = static_cast<std::size_t>(groups);
    if (in % g != 0 || out % g != 0)
        throw ShapeError(fmt::format("{}: groups {} must divide in_channels {} and out_channels {}", who, groups, in,
                                     out));
}

// A convolution weight of `shape` drawn by `init` with torch's fans (nn::conv_fan), after checking
// that it and `biases` more parameters fit in memory.
template <class T>
Variable<T> conv_weight(const Shape& shape, double biases, const Init& init, Generator* generator,
                        std::string_view who) {
    double weights = 1;
    for (std::size_t d : shape) weights *= static_cast<double>(d);
    require_memory_for_parameters(weights + biases, sizeof(T), who);
    Variable<T> w(Array<T>::from_shape(shape));
    init.apply(w, generator ? *generator : default_generator(), conv_fan(shape));
    return w;
}

// x must be (N, channels, H, W): ShapeError naming the layer (its repr, made only then).
template <class T>
void check_channels(const Variable<T>& x, std::size_t channels, const Module<T>& layer) {
    if (!x.defined()) throw GraphError(fmt::format("{}: the input is an undefined Variable", layer.repr()));
    if (x.ndim() != 4 || x.shape()[1] != channels)
        throw ShapeError(fmt::format("{}: expects input of shape (N, {}, H, W), got {}", layer.repr(), channels,
                                     shape_str(x.shape())));
}

void check_pool_options(std::string_view who, const Pool2dOptions& o) {
    const Size2 k = o.kernel, s = o.stride.value_or(o.kernel), p = o.padding;
    if (k.h <= 0 || k.w <= 0) throw ValueError(fmt::format("{}: kernel_size must be positive, got {}", who, size_str(k)));
    if (s.h <= 0 || s.w <= 0) throw ValueError(fmt::format("{}: stride must be positive, got {}", who, size_str(s)));
    if (p.h < 0 || p.w < 0 || p.h > k.h / 2 || p.w > k.w / 2)
        throw ValueError(fmt::format("{}: padding must be between 0 and half the kernel_size {}, got {}", who,
                                     size_str(k), size_str(p)));
}

std::string pool_repr(std::string_view name, const Pool2dOptions& o) {
    return fmt::format("{}(kernel_size={}, stride={}, padding={}", name, size_str(o.kernel),
                       size_str(o.stride.value_or(o.kernel)), size_str(o.padding));
}

}  // namespace

// ---- Conv2d ----

template <class T>
Conv2d<T>::Conv2d(std::size_t in, std::size_t out, Size2 kernel, Conv2dLayerOptions options)
    : in_(in), out_(out), conv_{options.stride, options.padding, options.dilation, options.groups},
      init_name_(options.init.str()) {
    check_conv_layer("Conv2d", in, out, kernel, options.stride, options.padding, options.dilation, options.groups);
    const Shape shape{out, in / static_cast<std::size_t>(options.groups), static_cast<std::size_t>(kernel.h),
                      static_cast<std::size_t>(kernel.w)};
    const std::string who = fmt::format("Conv2d({}, {}, kernel_size={})", in, out, pair(kernel));
    const double biases = options.bias ? static_cast<double>(out) : 0.0;
    weight_ = this->register_parameter("weight", conv_weight<T>(shape, biases, options.init, options.generator, who),
                                       Decay::yes);
    if (options.bias) bias_ = this->register_parameter("bias", Variable<T>(full<T>({out}, T(0))));
}

template <class T>
Variable<T> Conv2d<T>::forward(const Variable<T>& x) {
    check_channels(x, in_, *this);
    return conv2d(x, weight_, bias_, conv_);
}

template <class T>
Variable<T> Conv2d<T>::forward_relu(const Variable<T>& x) {
    check_channels(x, in_, *this);
    return conv2d_relu(x, weight_, bias_, conv_);
}

template <class T>
Variable<T> Conv2d<T>::forward_relu_max_pool(const Variable<T>& x, const Pool2dOptions& pool, bool flatten) {
    check_channels(x, in_, *this);
    return conv2d_relu_max_pool2d(x, weight_, bias_, conv_, pool, flatten);
}

template <class T>
std::string Conv2d<T>::repr() const {
    const Shape& w = weight_.shape();
    std::string s = fmt::format("Conv2d({}, {}, kernel_size=({}, {}), stride={}", in_, out_, w[2], w[3],
                                pair(conv_.stride));
    if (conv_.padding.h != 0 || conv_.padding.w != 0) s += ", padding=" + pair(conv_.padding);
    if (conv_.dilation.h != 1 || conv_.dilation.w != 1) s += ", dilation=" + pair(conv_.dilation);
    if (conv_.groups != 1) s += fmt::format(", groups={}", conv_.groups);
    if (!bias_.defined()) s += ", bias=False";
    return s + ", init=" + init_name_ + ")";
}

// ---- ConvTranspose2d ----

template <class T>
ConvTranspose2d<T>::ConvTranspose2d(std::size_t in, std::size_t out, Size2 kernel, ConvTranspose2dLayerOptions options)
    : in_(in), out_(out),
      conv_{options.stride, options.padding, options.output_padding, options.groups, options.dilation},
      init_name_(options.init.str()) {
    check_conv_layer("ConvTranspose2d", in, out, kernel, options.stride, options.padding, options.dilation,
                     options.groups);
    const Size2 op = options.output_padding, st = options.stride, dl = options.dilation;
    if (op.h < 0 || op.w < 0 || (op.h >= st.h && op.h >= dl.h) || (op.w >= st.w && op.w >= dl.w))
        throw ValueError(fmt::format("ConvTranspose2d: output_padding {} must be >= 0 and below stride {} or dilation {}",
                                     pair(op), pair(st), pair(dl)));
    const Shape shape{in, out / static_cast<std::size_t>(options.groups), static_cast<std::size_t>(kernel.h),
                      static_cast<std::size_t>(kernel.w)};
    const std::string who = fmt::format("ConvTranspose2d({}, {}, kernel_size={})", in, out, pair(kernel));
    const double biases = options.bias ? static_cast<double>(out) : 0.0;
    weight_ = this->register_parameter("weight", conv_weight<T>(shape, biases, options.init, options.generator, who),
                                       Decay::yes);
    if (options.bias) bias_ = this->register_parameter("bias", Variable<T>(full<T>({out}, T(0))));
}

template <class T>
Variable<T> ConvTranspose2d<T>::forward(const Variable<T>& x) {
    check_channels(x, in_, *this);
    return conv_transpose2d(x, weight_, bias_, conv_);
}

template <class T>
std::string ConvTranspose2d<T>::repr() const {
    const Shape& w = weight_.shape();
    std::string s = fmt::format("ConvTranspose2d({}, {}, kernel_size=({}, {}), stride={}", in_, out_, w[2], w[3],
                                pair(conv_.stride));
    if (conv_.padding.h != 0 || conv_.padding.w != 0) s += ", padding=" + pair(conv_.padding);
    if (conv_.output_padding.h != 0 || conv_.output_padding.w != 0)
        s += ", output_padding=" + pair(conv_.output_padding);
    if (conv_.dilation.h != 1 || conv_.dilation.w != 1) s += ", dilation=" + pair(conv_.dilation);
    if (conv_.groups != 1) s += fmt::format(", groups={}", conv_.groups);
    if (!bias_.defined()) s += ", bias=False";
    return s + ", init=" + init_name_ + ")";
}

// ---- pooling ----

template <class T>
MaxPool2d<T>::MaxPool2d(Pool2dOptions options) : options_(options) {
    check_pool_options("MaxPool2d", options_);
}

template <class T>
std::string MaxPool2d<T>::repr() const {
    return pool_repr("MaxPool2d", options_) + ")";
}

template <class T>
AvgPool2d<T>::AvgPool2d(Pool2dOptions options, bool count_include_pad)
    : options_(options), count_include_pad_(count_include_pad) {
    check_pool_options("AvgPool2d", options_);
}

template <class T>
std::string AvgPool2d<T>::repr() const {
    return pool_repr("AvgPool2d", options_) + (count_include_pad_ ? ")" : ", count_include_pad=False)");
}

template <class T>
AdaptiveAvgPool2d<T>::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {
    if (output_size.h <= 0 || output_size.w <= 0)
        throw ValueError(fmt::format("AdaptiveAvgPool2d: output_size must be positive, got {}", size_str(output_size)));
}

template <class T>
std::string AdaptiveAvgPool2d<T>::repr() const {
    return fmt::format("AdaptiveAvgPool2d(output_size={})", size_str(output_size_));
}

// ---- BatchNorm2d ----

template <class T>
BatchNorm2d<T>::BatchNorm2d(std::size_t channels, BatchNormOptions options) : channels_(channels), options_(options) {
    if (channels == 0) throw ShapeError("BatchNorm2d: the number of channels must be positive");
    if (!(options.eps > 0)) throw ValueError(fmt::format("BatchNorm2d: eps must be > 0, got {}", options.eps));
    if (!(options.momentum >= 0 && options.momentum <= 1))
        throw ValueError(fmt::format("BatchNorm2d: momentum must be in [0, 1], got {}", options.momentum));
    gamma_ = this->register_parameter("weight", Variable<T>(full<T>({channels}, T(1))));
    beta_ = this->register_parameter("bias", Variable<T>(full<T>({channels}, T(0))));
    running_mean_ = this->register_buffer("running_mean", Variable<T>(full<T>({channels}, T(0))));
    running_var_ = this->register_buffer("running_var", Variable<T>(full<T>({channels}, T(1))));
}

template <class T>
Variable<T> BatchNorm2d<T>::forward(const Variable<T>& x) {
    check_channels(x, channels_, *this);
    const T eps = static_cast<T>(options_.eps);
    if (!this->is_training()) return normalise_with_running_statistics(x, running_mean_, running_var_, gamma_, beta_, eps);
    const Shape& s = x.shape();
    if (s[0] * s[2] * s[3] < 2)
        throw ValueError(fmt::format("{}: training needs more than one value per channel, got input of shape {}",
                                     repr(), shape_str(s)));
    BatchStatistics<T> batch;
    Variable<T> y = batch_norm(x, gamma_, beta_, eps, &batch);
    update_running_statistics(running_mean_, running_var_, batch.mean.data(), batch.var.data(), options_.momentum);
    return y;
}

template <class T>
std::string BatchNorm2d<T>::repr() const {
    return fmt::format("BatchNorm2d({}, eps={}, momentum={})", channels_, options_.eps, options_.momentum);
}

#define XG_INSTANTIATE(T)                    \
    template class Conv2d<T>;                \
    template class ConvTranspose2d<T>;       \
    template class MaxPool2d<T>;             \
    template class AvgPool2d<T>;             \
    template class AdaptiveAvgPool2d<T>;     \
    template class BatchNorm2d<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
