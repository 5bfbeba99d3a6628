#pragma once
// The book's MultiLayerNet and MultiLayerNetExtend as one module: for each hidden layer
// Linear -> [BatchNorm1d] -> activation -> [Dropout], then a final Linear producing logits.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/layers.hpp"
#include "nn/loss.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"

namespace xg::nn {

struct MultiLayerNetOptions {
    std::size_t input_size = 784;
    std::vector<std::size_t> hidden_sizes = {100, 100, 100, 100};
    std::size_t output_size = 10;
    Activation activation = Activation::relu;
    Init init = Init::he();        // the book's weight_init_std: "he", "xavier" or a std
    bool use_batchnorm = false;
    double dropout = 0;            // dropout ratio after each hidden activation; 0 for none
    double weight_decay = 0;       // lambda of loss += 0.5 * lambda * sum ||W||^2
    std::optional<std::uint64_t> seed = std::nullopt;  // weights and dropout masks; default_generator() if unset
};

template <class T>
class MultiLayerNet : public UnaryModule<T> {
public:
    explicit MultiLayerNet(MultiLayerNetOptions options = {});

    // Logits (N, output_size) for x (N, input_size).
    Variable<T> forward(const Variable<T>& x) override;
    Variable<T> predict(const Variable<T>& x) { return forward(x); }
    // Mean softmax cross entropy plus the weight decay penalty: what training minimises.
    Variable<T> loss(const Variable<T>& x, const Labels& labels);
    // Fraction of rows whose arg-max logit is the label. Evaluates in eval mode, without
    // recording a graph, `batch_size` rows at a time; the module's mode is restored after.
    double accuracy(const Array<T>& x, const Labels& labels, std::size_t batch_size = 1000);

    const MultiLayerNetOptions& options() const { return options_; }
    const Sequential<T>& layers() const { return *layers_; }
    std::string repr() const override;

private:
    MultiLayerNetOptions options_;
    std::shared_ptr<Sequential<T>> layers_;
};

extern template class MultiLayerNet<float>;
extern template class MultiLayerNet<double>;

}  // namespace xg::nn
