#pragma once
// Convolutional layers, pooling layers and BatchNorm2d, as torch.nn's, built from the ops
// conv2d, conv_transpose2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d and graph ops: none has a
// backward pass of its own. Inputs are NCHW.
#include <cstddef>
#include <string>

#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

struct Conv2dLayerOptions {
    Size2 stride = 1;
    Size2 padding = 0;
    Size2 dilation = 1;
    long groups = 1;                 // must divide in and out
    bool bias = true;                // zeros, as Linear's
    Init init = Init::he();          // with fan_in = in / groups * kh * kw (nn::conv_fan)
    Generator* generator = nullptr;  // default_generator() when null
};

// torch.nn.Conv2d: conv2d(x, weight, bias, {stride, padding, dilation, groups}) with weight
// (out, in / groups, kh, kw) (decayed, as Linear's) and bias (out,).
template <class T>
class Conv2d : public UnaryModule<T> {
public:
    Conv2d(std::size_t in, std::size_t out, Size2 kernel, Conv2dLayerOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    // relu(forward(x)) as one op (conv2d_relu): what Sequential runs for a Conv2d then a ReLU.
    Variable<T> forward_relu(const Variable<T>& x);
    // max_pool2d(relu(forward(x)), pool) (conv2d_relu_max_pool2d, one op for a 2x2 pool of
    // stride 2): what Sequential runs for a Conv2d, a ReLU and a MaxPool2d; flatten(that, 1)
    // with flatten, made in that shape (a Flatten after them).
    Variable<T> forward_relu_max_pool(const Variable<T>& x, const Pool2dOptions& pool, bool flatten = false);
    std::string repr() const override;

    Variable<T> weight() const { return weight_; }
    Variable<T> bias() const { return bias_; }  // undefined without bias
    std::size_t in_channels() const { return in_; }
    std::size_t out_channels() const { return out_; }
    Conv2dOptions conv_options() const { return conv_; }

private:
    std::size_t in_, out_;
    Conv2dOptions conv_;
    Variable<T> weight_, bias_;
    std::string init_name_;
};

struct ConvTranspose2dLayerOptions {
    Size2 stride = 1;
    Size2 padding = 0;
    Size2 output_padding = 0;  // below stride or dilation
    long groups = 1;
    Size2 dilation = 1;
    bool bias = true;
    Init init = Init::he();    // with torch's fans for (in, out / groups, kh, kw): fan_in = out / groups * kh * kw
    Generator* generator = nullptr;
};

// torch.nn.ConvTranspose2d: conv_transpose2d(x, weight, bias, options) with weight
// (in, out / groups, kh, kw) (decayed) and bias (out,).
template <class T>
class ConvTranspose2d : public UnaryModule<T> {
public:
    ConvTranspose2d(std::size_t in, std::size_t out, Size2 kernel, ConvTranspose2dLayerOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

    Variable<T> weight() const { return weight_; }
    Variable<T> bias() const { return bias_; }
    std::size_t in_channels() const { return in_; }
    std::size_t out_channels() const { return out_; }
    ConvTranspose2dOptions conv_options() const { return conv_; }

private:
    std::size_t in_, out_;
    ConvTranspose2dOptions conv_;
    Variable<T> weight_, bias_;
    std::string init_name_;
};

// torch.nn.MaxPool2d: max_pool2d(x, options). No parameters. The options are checked when the
// layer is built (ValueError naming it).
template <class T>
class MaxPool2d : public UnaryModule<T> {
public:
    explicit MaxPool2d(Pool2dOptions options);
    Variable<T> forward(const Variable<T>& x) override { return max_pool2d(x, options_); }
    std::string repr() const override;
    const Pool2dOptions& options() const { return options_; }

private:
    Pool2dOptions options_;
};

// torch.nn.AvgPool2d: avg_pool2d(x, options, count_include_pad). No parameters.
template <class T>
class AvgPool2d : public UnaryModule<T> {
public:
    explicit AvgPool2d(Pool2dOptions options, bool count_include_pad = true);
    Variable<T> forward(const Variable<T>& x) override { return avg_pool2d(x, options_, count_include_pad_); }
    std::string repr() const override;
    const Pool2dOptions& options() const { return options_; }
    bool count_include_pad() const { return count_include_pad_; }

private:
    Pool2dOptions options_;
    bool count_include_pad_;
};

// torch.nn.AdaptiveAvgPool2d: adaptive_avg_pool2d(x, output_size). No parameters.
template <class T>
class AdaptiveAvgPool2d : public UnaryModule<T> {
public:
    explicit AdaptiveAvgPool2d(Size2 output_size);
    Variable<T> forward(const Variable<T>& x) override { return adaptive_avg_pool2d(x, output_size_); }
    std::string repr() const override;
    Size2 output_size() const { return output_size_; }

private:
    Size2 output_size_;
};

// torch.nn.BatchNorm2d: BatchNorm1d's conventions per channel of x (N, C, H, W), the statistics
// taken over (N, H, W): x^ = (x - mean) / sqrt(var + eps), y = weight * x^ + bias, with the
// batch's mean and biased variance in training (running_mean and running_var updated with the
// same mean and biased variance, as BatchNorm1d's, with PyTorch's momentum convention) and the
// running ones in evaluation. Parameters "weight" (ones) and "bias" (zeros), buffers
// "running_mean" (zeros) and "running_var" (ones), all of shape (C,), torch's names.
template <class T>
class BatchNorm2d : public UnaryModule<T> {
public:
    explicit BatchNorm2d(std::size_t channels, BatchNormOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

    std::size_t channels() const { return channels_; }
    Variable<T> gamma() const { return gamma_; }
    Variable<T> beta() const { return beta_; }
    Variable<T> running_mean() const { return running_mean_; }
    Variable<T> running_var() const { return running_var_; }

private:
    std::size_t channels_;
    BatchNormOptions options_;
    Variable<T> gamma_, beta_, running_mean_, running_var_;
};

#define XG_NN_CONV_EXTERN(T)                   \
    extern template class Conv2d<T>;           \
    extern template class ConvTranspose2d<T>;  \
    extern template class MaxPool2d<T>;        \
    extern template class AvgPool2d<T>;        \
    extern template class AdaptiveAvgPool2d<T>; \
    extern template class BatchNorm2d<T>;
XG_NN_CONV_EXTERN(float)
XG_NN_CONV_EXTERN(double)
#undef XG_NN_CONV_EXTERN

}  // namespace xg::nn
