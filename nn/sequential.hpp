#pragma once
// Sequential: modules applied in order, children named "0", "1", ... (torch::nn::Sequential).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>  // fmt::format; format.h costs every includer of xgrad.hpp a quarter second

#include "graph/error.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace xg::nn {

// A Linear immediately followed by a ReLU runs as one linear_relu op: the same values and
// gradients as the two layers (tested bit for bit), one pass over the activations fewer in each
// direction. Only the library's own Linear and ReLU are fused; a subclass runs as written.
template <class T>
class Sequential : public Module<T> {
public:
    Sequential() = default;
    template <class... M>
    explicit Sequential(std::shared_ptr<M>... modules) {
        (push_back(std::move(modules)), ...);
    }

    template <class M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        if (!m) throw ValueError(fmt::format("Sequential::push_back: module {} is null", layers_.size()));
        layers_.push_back(m);
        plan_fusion();
        return this->register_module(std::to_string(layers_.size() - 1), std::move(m));
    }

    Variable<T> forward(const Variable<T>& x) override;
    std::string repr() const override { return "Sequential"; }

    std::size_t size() const { return layers_.size(); }
    const std::shared_ptr<Module<T>>& operator[](std::size_t i) const { return layers_.at(i); }
    auto begin() const { return layers_.begin(); }
    auto end() const { return layers_.end(); }

private:
    // Marks the layer before the newest one when the two fuse.
    void plan_fusion();

    std::vector<std::shared_ptr<Module<T>>> layers_;
    std::vector<const Linear<T>*> fused_relu_;  // per layer: itself if it and a ReLU after it fuse
};

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace xg::nn
