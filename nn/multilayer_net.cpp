#include "nn/multilayer_net.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "graph/error.hpp"
#include "graph/mode.hpp"

namespace xg::nn {

namespace {

// Every option checked before anything is built, each mistake named by its option, so a C++ user
// gets what a command-line user gets from the flags (a NaN dropout must not mean "no dropout").
template <class T>
void check_options(const MultiLayerNetOptions& o) {
    if (o.input_size == 0 || o.output_size == 0)
        throw ValueError(fmt::format("MultiLayerNet: input_size and output_size must be positive, got {} and {}",
                                     o.input_size, o.output_size));
    if (std::find(o.hidden_sizes.begin(), o.hidden_sizes.end(), 0) != o.hidden_sizes.end())
        throw ValueError(fmt::format("MultiLayerNet: hidden_sizes must all be positive, got {}", o.hidden_sizes));
    if (!(o.dropout >= 0 && o.dropout < 1))
        throw ValueError(fmt::format("MultiLayerNet: dropout must be in [0, 1), got {}", o.dropout));
    if (!(o.weight_decay >= 0 && std::isfinite(o.weight_decay)))
        throw ValueError(fmt::format("MultiLayerNet: weight_decay must be finite and >= 0, got {}", o.weight_decay));
    // All layers together, before the first is allocated: Linear checks only its own size.
    const double per_unit = o.use_batchnorm ? 5 : 1;  // the bias; batch norm's gamma, beta and running statistics
    double parameters = 0;
    std::size_t in = o.input_size;
    for (const std::size_t out : o.hidden_sizes) {
        parameters += (static_cast<double>(in) + per_unit) * static_cast<double>(out);
        in = out;
    }
    parameters += static_cast<double>(in) * static_cast<double>(o.output_size) + static_cast<double>(o.output_size);
    require_memory_for_parameters(parameters, sizeof(T),
                                  fmt::format("MultiLayerNet(input_size {}, hidden_sizes {}, output_size {})",
                                              o.input_size, o.hidden_sizes, o.output_size));
}

}  // namespace

template <class T>
MultiLayerNet<T>::MultiLayerNet(MultiLayerNetOptions options)
    : options_(std::move(options)), layers_(std::make_shared<Sequential<T>>()) {
    const MultiLayerNetOptions& o = options_;
    check_options<T>(o);
    Generator own(o.seed.value_or(0));
    Generator& gen = o.seed ? own : default_generator();
    const LinearOptions linear{.init = o.init, .bias = true, .generator = &gen};
    std::size_t in = o.input_size;
    for (const std::size_t out : o.hidden_sizes) {
        layers_->push_back(std::make_shared<Linear<T>>(in, out, linear));
        if (o.use_batchnorm) layers_->push_back(std::make_shared<BatchNorm1d<T>>(out));
        layers_->push_back(std::make_shared<ActivationLayer<T>>(o.activation));
        if (o.dropout > 0) layers_->push_back(std::make_shared<Dropout<T>>(o.dropout, gen()));
        in = out;
    }
    layers_->push_back(std::make_shared<Linear<T>>(in, o.output_size, linear));
    this->register_module("layers", layers_);
}

template <class T>
Variable<T> MultiLayerNet<T>::forward(const Variable<T>& x) {
    if (x.ndim() != 2 || x.shape()[1] != options_.input_size)
        throw ShapeError(fmt::format("MultiLayerNet: expects input of shape (N, {}), got {}", options_.input_size,
                                     shape_str(x.shape())));
    return layers_->forward(x);
}

template <class T>
Variable<T> MultiLayerNet<T>::loss(const Variable<T>& x, const Labels& labels) {
    Variable<T> data_loss = softmax_cross_entropy(forward(x), labels);
    if (options_.weight_decay == 0) return data_loss;
    return data_loss + l2_penalty(this->decayed_parameters(), options_.weight_decay);
}

template <class T>
double MultiLayerNet<T>::accuracy(const Array<T>& x, const Labels& labels, std::size_t batch_size) {
    if (x.dimension() != 2 || x.shape()[0] != labels.size())
        throw ShapeError(fmt::format("MultiLayerNet::accuracy: {} rows of x (shape {}) but {} labels",
                                     x.dimension() ? x.shape()[0] : 0, shape_str(x.shape()), labels.size()));
    if (labels.size() == 0) throw ValueError("MultiLayerNet::accuracy: empty batch");
    if (batch_size == 0) throw ValueError("MultiLayerNet::accuracy: batch_size must be positive");
    const bool was_training = this->is_training();
    this->eval();
    NoGradGuard no_grad;
    const std::size_t n = x.shape()[0], d = x.shape()[1];
    std::size_t hits = 0;
    try {
        for (std::size_t start = 0; start < n; start += batch_size) {
            const std::size_t rows = std::min(batch_size, n - start);
            Array<T> xb = Array<T>::from_shape({rows, d});
            std::memcpy(xb.data(), x.data() + start * d, rows * d * sizeof(T));
            Labels yb = Labels::from_shape({rows});
            std::copy_n(labels.data() + start, rows, yb.data());
            hits += count_correct(forward(Variable<T>(std::move(xb))).data(), yb);
        }
    } catch (...) {
        this->train(was_training);
        throw;
    }
    this->train(was_training);
    return static_cast<double>(hits) / static_cast<double>(n);
}

template <class T>
std::string MultiLayerNet<T>::repr() const {
    const MultiLayerNetOptions& o = options_;
    return fmt::format("MultiLayerNet({} -> {} -> {}, {}, init={}{}{}{})", o.input_size, o.hidden_sizes,
                       o.output_size, activation_name(o.activation), o.init.str(),
                       o.use_batchnorm ? ", batchnorm" : "",
                       o.dropout > 0 ? fmt::format(", dropout={}", o.dropout) : "",
                       o.weight_decay > 0 ? fmt::format(", weight_decay={}", o.weight_decay) : "");
}

template class MultiLayerNet<float>;
template class MultiLayerNet<double>;

}  // namespace xg::nn
