#include "nn/layers.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <unistd.h>

#include "graph/error.hpp"
#include "graph/mode.hpp"

namespace xg::nn {

void require_memory_for_parameters(double parameters, std::size_t bytes_each, std::string_view what) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page_size <= 0) return;  // unknown: the allocation itself will tell
    const double available = static_cast<double>(pages) * static_cast<double>(page_size);
    const double needed = parameters * static_cast<double>(bytes_each);
    constexpr double gib = 1024.0 * 1024.0 * 1024.0;
    if (needed > available)
        throw ResourceError(fmt::format("{}: {:.4g} parameters need {:.4g} GiB, more than this machine's {:.4g} GiB "
                                        "of memory",
                                        what, parameters, needed / gib, available / gib));
}

template <class T>
Linear<T>::Linear(std::size_t in, std::size_t out, LinearOptions options) : init_name_(options.init.str()) {
    if (in == 0 || out == 0) throw ShapeError(fmt::format("Linear: sizes must be positive, got {} -> {}", in, out));
    const double biases = options.bias ? static_cast<double>(out) : 0.0;
    require_memory_for_parameters(static_cast<double>(in) * static_cast<double>(out) + biases, sizeof(T),
                                  fmt::format("Linear({} -> {})", in, out));
    Generator& gen = options.generator ? *options.generator : default_generator();
    Variable<T> w(Array<T>::from_shape({in, out}));
    options.init.apply(w, gen);
    weight_ = this->register_parameter("weight", w, Decay::yes);
    if (options.bias) bias_ = this->register_parameter("bias", Variable<T>(Array<T>(xt::zeros<T>({out}))));
}

template <class T>
Variable<T> Linear<T>::forward(const Variable<T>& x) {
    return linear(x, weight_, bias_);
}

template <class T>
std::string Linear<T>::repr() const {
    return fmt::format("Linear({} -> {}, init={}{})", weight_.shape()[0], weight_.shape()[1], init_name_,
                       bias_.defined() ? "" : ", no bias");
}

template <class T>
Embedding<T>::Embedding(std::size_t num, std::size_t dim, EmbeddingOptions options) {
    if (num == 0 || dim == 0)
        throw ShapeError(fmt::format("Embedding: sizes must be positive, got {} x {}", num, dim));
    require_memory_for_parameters(static_cast<double>(num) * static_cast<double>(dim), sizeof(T),
                                  fmt::format("Embedding({}, {})", num, dim));
    Generator& gen = options.generator ? *options.generator : default_generator();
    Variable<T> w(Array<T>::from_shape({num, dim}));
    init::normal_(w, 1.0, gen);
    weight_ = this->register_parameter("weight", w, Decay::yes);  // a weight matrix, as Linear's
}

template <class T>
std::string Embedding<T>::repr() const {
    return fmt::format("Embedding({}, {})", weight_.shape()[0], weight_.shape()[1]);
}

Activation parse_activation(std::string_view text) {
    for (Activation a : {Activation::sigmoid, Activation::tanh, Activation::relu, Activation::leaky_relu,
                         Activation::softplus})
        if (activation_name(a) == text) return a;
    throw ValueError(fmt::format(
        "activation: unknown activation '{}' (expected sigmoid, tanh, relu, leaky_relu or softplus)", text));
}

std::string_view activation_name(Activation a) {
    switch (a) {
        case Activation::sigmoid: return "sigmoid";
        case Activation::tanh: return "tanh";
        case Activation::relu: return "relu";
        case Activation::leaky_relu: return "leaky_relu";
        case Activation::softplus: return "softplus";
    }
    return "?";
}

template <class T>
Variable<T> ActivationLayer<T>::forward(const Variable<T>& x) {
    switch (kind_) {
        case Activation::sigmoid: return sigmoid(x);
        case Activation::tanh: return tanh(x);
        case Activation::relu: return relu(x);
        case Activation::leaky_relu: return leaky_relu(x, static_cast<T>(slope_));
        case Activation::softplus: return softplus(x);
    }
    throw ValueError("activation: invalid kind");
}

template <class T>
std::string ActivationLayer<T>::repr() const {
    if (kind_ == Activation::leaky_relu) return fmt::format("LeakyReLU(slope={})", slope_);
    constexpr std::string_view names[] = {"Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus"};
    return std::string(names[static_cast<int>(kind_)]);
}

template <class T>
Dropout<T>::Dropout(double ratio, std::optional<std::uint64_t> seed)
    : ratio_(ratio), gen_(seed ? *seed : default_generator()()) {
    if (!(ratio >= 0 && ratio < 1)) throw ValueError(fmt::format("Dropout: ratio must be in [0, 1), got {}", ratio));
}

template <class T>
Variable<T> Dropout<T>::forward(const Variable<T>& x) {
    return dropout(x, ratio_, this->is_training(), gen_);
}

template <class T>
std::string Dropout<T>::repr() const {
    return fmt::format("Dropout(ratio={})", ratio_);
}

template <class T>
std::string GELU<T>::repr() const {
    return approximate_ == GeluApproximate::tanh ? "GELU(approximate=tanh)" : "GELU";
}

template <class T>
std::string ELU<T>::repr() const {
    return fmt::format("ELU(alpha={})", alpha_);
}

template <class T>
void update_running_statistics(const Variable<T>& running_mean, const Variable<T>& running_var, const T* batch_mean,
                               const T* batch_var, double momentum) {
    const T m = static_cast<T>(momentum);
    T* rm = running_mean.mutable_data().data();
    T* rv = running_var.mutable_data().data();
    for (std::size_t i = 0, k = running_mean.size(); i < k; ++i) {
        rm[i] = (T(1) - m) * rm[i] + m * batch_mean[i];
        rv[i] = (T(1) - m) * rv[i] + m * batch_var[i];
    }
}

template <class T>
Variable<T> normalise_with_running_statistics(const Variable<T>& x, const Variable<T>& running_mean,
                                              const Variable<T>& running_var, const Variable<T>& gamma,
                                              const Variable<T>& beta, T eps) {
    const std::size_t channels = running_mean.size();
    Shape per_channel(x.ndim(), 1);  // (1, C, 1, ...): broadcast over the batch and the positions
    per_channel[1] = channels;
    Array<T> inv_std = Array<T>::from_shape(per_channel), shift = Array<T>::from_shape(per_channel);
    const T* rm = running_mean.data().data();
    const T* rv = running_var.data().data();
    for (std::size_t i = 0; i < channels; ++i) {
        inv_std.data()[i] = T(1) / std::sqrt(rv[i] + eps);
        shift.data()[i] = -rm[i] * inv_std.data()[i];
    }
    std::vector<long> affine(x.ndim(), 1);
    affine[1] = static_cast<long>(channels);
    return (x * Variable<T>(std::move(inv_std)) + Variable<T>(std::move(shift))) * reshape(gamma, affine) +
           reshape(beta, affine);
}

template <class T>
BatchNorm1d<T>::BatchNorm1d(std::size_t features, BatchNormOptions options)
    : features_(features), options_(options) {
    if (features == 0) throw ShapeError("BatchNorm1d: the number of features must be positive");
    if (!(options.eps > 0)) throw ValueError(fmt::format("BatchNorm1d: eps must be > 0, got {}", options.eps));
    if (!(options.momentum >= 0 && options.momentum <= 1))
        throw ValueError(fmt::format("BatchNorm1d: momentum must be in [0, 1], got {}", options.momentum));
    gamma_ = this->register_parameter("weight", Variable<T>(Array<T>(xt::ones<T>({features}))));
    beta_ = this->register_parameter("bias", Variable<T>(Array<T>(xt::zeros<T>({features}))));
    running_mean_ = this->register_buffer("running_mean", Variable<T>(Array<T>(xt::zeros<T>({features}))));
    running_var_ = this->register_buffer("running_var", Variable<T>(Array<T>(xt::ones<T>({features}))));
}

template <class T>
Variable<T> BatchNorm1d<T>::forward(const Variable<T>& x) {
    if (!x.defined()) throw GraphError("BatchNorm1d: the input is an undefined Variable");
    if ((x.ndim() != 2 && x.ndim() != 3) || x.shape()[1] != features_)
        throw ShapeError(fmt::format("BatchNorm1d: expects input of shape (N, {0}) or (N, {0}, L), got {1}", features_,
                                     shape_str(x.shape())));
    const T eps = static_cast<T>(options_.eps);
    if (!this->is_training()) return normalise_with_running_statistics(x, running_mean_, running_var_, gamma_, beta_, eps);
    if (x.shape()[0] * (x.ndim() == 3 ? x.shape()[2] : 1) < 2)
        throw ValueError(fmt::format("BatchNorm1d: training needs more than one value per feature in a batch, got shape {}",
                                     shape_str(x.shape())));
    BatchStatistics<T> batch;
    Variable<T> y = batch_norm(x, gamma_, beta_, eps, &batch);
    update_running_statistics(running_mean_, running_var_, batch.mean.data(), batch.var.data(), options_.momentum);
    return y;
}

template <class T>
std::string BatchNorm1d<T>::repr() const {
    return fmt::format("BatchNorm1d({}, eps={}, momentum={})", features_, options_.eps, options_.momentum);
}

template <class T>
LayerNorm<T>::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine)
    : normalized_shape_(std::move(normalized_shape)), eps_(eps) {
    if (normalized_shape_.empty())
        throw ShapeError("LayerNorm: normalized_shape is empty (it needs at least one axis)");
    if (std::find(normalized_shape_.begin(), normalized_shape_.end(), 0) != normalized_shape_.end())
        throw ShapeError(fmt::format("LayerNorm: sizes must be positive, got normalized_shape {}",
                                     shape_str(normalized_shape_)));
    if (!(eps > 0) || !std::isfinite(eps))
        throw ValueError(fmt::format("LayerNorm: eps must be positive and finite, got {}", eps));
    if (!elementwise_affine) return;
    double count = 2;
    for (std::size_t d : normalized_shape_) count *= static_cast<double>(d);
    require_memory_for_parameters(count, sizeof(T), fmt::format("LayerNorm({})", shape_str(normalized_shape_)));
    weight_ = this->register_parameter("weight", Variable<T>(full<T>(normalized_shape_, T(1))));
    bias_ = this->register_parameter("bias", Variable<T>(full<T>(normalized_shape_, T(0))));
}

template <class T>
Variable<T> LayerNorm<T>::forward(const Variable<T>& x) {
    return layer_norm(x, normalized_shape_, weight_, bias_, static_cast<T>(eps_));
}

template <class T>
std::string LayerNorm<T>::repr() const {
    return fmt::format("LayerNorm({}, eps={}, elementwise_affine={})", shape_str(normalized_shape_), eps_,
                       weight_.defined());
}

#define XG_INSTANTIATE(T)              \
    template class Linear<T>;          \
    template class Embedding<T>;       \
    template class ActivationLayer<T>; \
    template class GELU<T>;            \
    template class ELU<T>;             \
    template class Dropout<T>;         \
    template class BatchNorm1d<T>;     \
    template class LayerNorm<T>;
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
template void update_running_statistics(const Variable<float>&, const Variable<float>&, const float*, const float*,
                                        double);
template void update_running_statistics(const Variable<double>&, const Variable<double>&, const double*,
                                        const double*, double);
template Variable<float> normalise_with_running_statistics(const Variable<float>&, const Variable<float>&,
                                                          const Variable<float>&, const Variable<float>&,
                                                          const Variable<float>&, float);
template Variable<double> normalise_with_running_statistics(const Variable<double>&, const Variable<double>&,
                                                           const Variable<double>&, const Variable<double>&,
                                                           const Variable<double>&, double);

}  // namespace xg::nn
