#pragma once
// Layers built from graph ops: none has a backward pass of its own.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "nn/init.hpp"
#include "nn/module.hpp"
#include "ops/ops.hpp"

namespace xg::nn {

// Refuses, before anything is allocated, `parameters` values of `bytes_each` bytes that cannot fit in
// this machine's physical memory: ResourceError naming `what` (e.g. "Linear(784 -> 99999999999)"),
// instead of std::bad_alloc, an element count that wraps around, or the out-of-memory killer.
// Counted in double, so no product of sizes can overflow on the way.
void require_memory_for_parameters(double parameters, std::size_t bytes_each, std::string_view what);

struct LinearOptions {
    Init init = Init::he();
    bool bias = true;              // zeros, as in the book
    Generator* generator = nullptr;  // default_generator() when null
};

// The book's Affine layer: x·W + b with W of shape (in, out) and b of shape (out,).
template <class T>
class Linear : public UnaryModule<T> {
public:
    Linear(std::size_t in, std::size_t out, LinearOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

    Variable<T> weight() const { return weight_; }
    Variable<T> bias() const { return bias_; }  // undefined without bias

private:
    Variable<T> weight_, bias_;
    std::string init_name_;
};

struct EmbeddingOptions {
    Generator* generator = nullptr;  // default_generator() when null
};

// torch.nn.Embedding: a table of `num` vectors of size `dim`, initialised N(0, 1) as torch's;
// forward(ids) returns the rows for ids of any shape, of shape ids.shape + (dim,). Not a
// UnaryModule (its input is an index array, not a Variable), so it is called directly.
template <class T>
class Embedding : public Module<T> {
public:
    Embedding(std::size_t num, std::size_t dim, EmbeddingOptions options = {});
    Variable<T> forward(const IndexArray& ids) { return embedding(weight_, ids); }
    Variable<T> operator()(const IndexArray& ids) { return forward(ids); }
    std::string repr() const override;

    Variable<T> weight() const { return weight_; }

private:
    Variable<T> weight_;
};

// Activations. `Activation` names them for models configured by value (MultiLayerNet, flags).
enum class Activation { sigmoid, tanh, relu, leaky_relu, softplus };
Activation parse_activation(std::string_view text);  // "sigmoid", "tanh", "relu", "leaky_relu", "softplus"
std::string_view activation_name(Activation a);

template <class T>
class ActivationLayer : public UnaryModule<T> {
public:
    explicit ActivationLayer(Activation kind, double slope = 0.01) : kind_(kind), slope_(slope) {}
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;
    Activation kind() const { return kind_; }

private:
    Activation kind_;
    double slope_;  // leaky_relu only
};

template <class T>
struct Sigmoid : ActivationLayer<T> {
    Sigmoid() : ActivationLayer<T>(Activation::sigmoid) {}
};
template <class T>
struct Tanh : ActivationLayer<T> {
    Tanh() : ActivationLayer<T>(Activation::tanh) {}
};
template <class T>
struct ReLU : ActivationLayer<T> {
    ReLU() : ActivationLayer<T>(Activation::relu) {}
};
template <class T>
struct LeakyReLU : ActivationLayer<T> {
    explicit LeakyReLU(double slope = 0.01) : ActivationLayer<T>(Activation::leaky_relu, slope) {}
};
template <class T>
struct Softplus : ActivationLayer<T> {
    Softplus() : ActivationLayer<T>(Activation::softplus) {}
};

// GELU (exact, or torch's approximate='tanh'), SiLU, ELU and the identity, as in torch.nn.
template <class T>
class GELU : public UnaryModule<T> {
public:
    explicit GELU(GeluApproximate approximate = GeluApproximate::none) : approximate_(approximate) {}
    Variable<T> forward(const Variable<T>& x) override { return gelu(x, approximate_); }
    std::string repr() const override;
    GeluApproximate approximate() const { return approximate_; }

private:
    GeluApproximate approximate_;
};

template <class T>
class SiLU : public UnaryModule<T> {
public:
    Variable<T> forward(const Variable<T>& x) override { return silu(x); }
    std::string repr() const override { return "SiLU"; }
};

template <class T>
class ELU : public UnaryModule<T> {
public:
    explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
    Variable<T> forward(const Variable<T>& x) override { return elu(x, static_cast<T>(alpha_)); }
    std::string repr() const override;
    double alpha() const { return alpha_; }

private:
    double alpha_;
};

// Returns its input (the same Variable): a placeholder, e.g. for a layer switched off by a flag.
template <class T>
class Identity : public UnaryModule<T> {
public:
    Variable<T> forward(const Variable<T>& x) override { return x; }
    std::string repr() const override { return "Identity"; }
};

// Inverted dropout (the functional xg::dropout): in training each unit is kept with probability 1 - ratio and scaled by
// 1 / (1 - ratio), so evaluation is the identity. The mask is a constant of the graph.
template <class T>
class Dropout : public UnaryModule<T> {
public:
    // The mask generator is seeded from `seed`, or from default_generator() when none is given.
    explicit Dropout(double ratio = 0.5, std::optional<std::uint64_t> seed = std::nullopt);
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;
    double ratio() const { return ratio_; }
    // Restarts the mask sequence, e.g. to draw the same masks again (gradient checks).
    void seed(std::uint64_t seed) { gen_.seed(seed); }

private:
    double ratio_;
    Generator gen_;
};

struct BatchNormOptions {
    double eps = 1e-5;
    // running = (1 - momentum) * running + momentum * batch (PyTorch's convention; the book's
    // momentum 0.9 is this 0.1).
    double momentum = 0.1;
};

// running = (1 - momentum) * running + momentum * batch, for the mean and the (biased) variance of
// a batch's channels, in place (the running buffers of BatchNorm1d, BatchNorm2d and SyncBatchNorm).
template <class T>
void update_running_statistics(const Variable<T>& running_mean, const Variable<T>& running_var, const T* batch_mean,
                               const T* batch_var, double momentum);

// Evaluation-mode batch norm of x (N, C, *) with running statistics of C channels:
// (x * inv_std + shift) * gamma + beta, inv_std = 1 / sqrt(running_var + eps) and
// shift = -running_mean * inv_std per channel, constants of the graph (BatchNorm1d, BatchNorm2d).
template <class T>
Variable<T> normalise_with_running_statistics(const Variable<T>& x, const Variable<T>& running_mean,
                                              const Variable<T>& running_var, const Variable<T>& gamma,
                                              const Variable<T>& beta, T eps);

// Batch normalisation of x (N, features) or (N, features, L) (the book's 6.3; torch.nn.BatchNorm1d),
// per feature over N (and L): x^ = (x - mean) / sqrt(var + eps), y = gamma * x^ + beta, with the
// batch's mean and (biased) variance in training and the running ones in evaluation.
template <class T>
class BatchNorm1d : public UnaryModule<T> {
public:
    explicit BatchNorm1d(std::size_t features, BatchNormOptions options = {});
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

    Variable<T> gamma() const { return gamma_; }
    Variable<T> beta() const { return beta_; }
    Variable<T> running_mean() const { return running_mean_; }
    Variable<T> running_var() const { return running_var_; }

private:
    std::size_t features_;
    BatchNormOptions options_;
    Variable<T> gamma_, beta_, running_mean_, running_var_;
};

// torch.nn.LayerNorm: layer_norm over the last normalized_shape.size() axes of x, which must equal
// normalized_shape; with elementwise_affine, a scale "weight" (ones) and a shift "bias" (zeros) of
// that shape, as torch's (neither decayed).
template <class T>
class LayerNorm : public UnaryModule<T> {
public:
    explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true);
    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override;

    const Shape& normalized_shape() const { return normalized_shape_; }
    double eps() const { return eps_; }
    Variable<T> weight() const { return weight_; }  // undefined without elementwise_affine
    Variable<T> bias() const { return bias_; }

private:
    Shape normalized_shape_;
    double eps_;
    Variable<T> weight_, bias_;
};

// torch.nn.Flatten: flatten(x, start_dim, end_dim), by default every axis but the first (the
// batch): (N, C, H, W) -> (N, C * H * W). No parameters.
template <class T>
class Flatten : public UnaryModule<T> {
public:
    explicit Flatten(long start_dim = 1, long end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
    Variable<T> forward(const Variable<T>& x) override { return flatten(x, start_dim_, end_dim_); }
    std::string repr() const override {
        return "Flatten(start_dim=" + std::to_string(start_dim_) + ", end_dim=" + std::to_string(end_dim_) + ")";
    }
    long start_dim() const { return start_dim_; }
    long end_dim() const { return end_dim_; }

private:
    long start_dim_, end_dim_;
};

#define XG_NN_LAYERS_EXTERN(T)                   \
    extern template class Linear<T>;             \
    extern template class Embedding<T>;          \
    extern template class ActivationLayer<T>;    \
    extern template class GELU<T>;               \
    extern template class ELU<T>;                \
    extern template class Dropout<T>;            \
    extern template class BatchNorm1d<T>;        \
    extern template class LayerNorm<T>;
XG_NN_LAYERS_EXTERN(float)
XG_NN_LAYERS_EXTERN(double)
#undef XG_NN_LAYERS_EXTERN

}  // namespace xg::nn
