#pragma once
// Sequential: modules applied in order, children named "0", "1", ... (torch::nn::Sequential).
// Any module with a forward(const Variable<T>&) can join (held as an AnyModule).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>  // fmt::format; format.h costs every includer of xgrad.hpp a quarter second

#include "graph/error.hpp"
#include "nn/any_module.hpp"
#include "nn/conv.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace xg::nn {

// A Linear or a Conv2d immediately followed by a ReLU runs as one op (linear_relu, conv2d_relu),
// and a Conv2d, a ReLU and a MaxPool2d as one (conv2d_relu_max_pool2d), with a Flatten(1, -1)
// after them too (the op then makes its output flat, no copy): the same values and gradients as
// the layers one by one (tested bit for bit), with fewer passes over the activations in each
// direction. Only the library's own Linear, Conv2d, ReLU, MaxPool2d and Flatten are fused; a
// subclass runs as written.
template <class T>
class Sequential : public UnaryModule<T> {
public:
    Sequential() = default;
    template <class... M>
    explicit Sequential(std::shared_ptr<M>... modules) {
        (push_back(std::move(modules)), ...);
    }

    // Appends `m` and returns it. ValueError if it is null.
    template <OneInputModule<T> M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        if (!m) throw ValueError(fmt::format("Sequential::push_back: module {} is null", layers_.size()));
        append(AnyModule<T>(m));
        return m;
    }
    void push_back(AnyModule<T> m) {
        if (m.empty()) throw ValueError(fmt::format("Sequential::push_back: module {} is empty", layers_.size()));
        append(std::move(m));
    }

    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override { return "Sequential"; }

    std::size_t size() const { return layers_.size(); }
    const std::shared_ptr<Module<T>>& operator[](std::size_t i) const { return modules_.at(i); }
    // Layer i as an M; null when it is not one.
    template <class M>
    std::shared_ptr<M> get(std::size_t i) const {
        return layers_.at(i).template get<M>();
    }
    // The layers as modules, in order.
    auto begin() const { return modules_.begin(); }
    auto end() const { return modules_.end(); }

private:
    void append(AnyModule<T> m);
    // Marks the layer before the newest one when the two fuse.
    void plan_fusion();

    std::vector<AnyModule<T>> layers_;
    std::vector<std::shared_ptr<Module<T>>> modules_;  // the same, for iteration
    // Per layer: itself if it and a ReLU after it fuse (one of the two is set), else nulls.
    std::vector<const Linear<T>*> fused_relu_;
    std::vector<Conv2d<T>*> fused_conv_relu_;
    // Per layer: the MaxPool2d two layers on, when the layer is a fused Conv2d and ReLU that the
    // pool joins.
    std::vector<const MaxPool2d<T>*> fused_pool_;
    // Per layer: whether a Flatten(1, -1) three layers on joins its fused Conv2d, ReLU and pool.
    std::vector<bool> fused_flatten_;
};

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace xg::nn
