#include "nn/sequential.hpp"

#include <typeinfo>

namespace xg::nn {

template <class T>
void Sequential<T>::append(AnyModule<T> m) {
    this->register_module(std::to_string(layers_.size()), m.ptr());
    modules_.push_back(m.ptr());
    layers_.push_back(std::move(m));
    plan_fusion();
}

template <class T>
void Sequential<T>::plan_fusion() {
    fused_relu_.resize(layers_.size(), nullptr);
    fused_conv_relu_.resize(layers_.size(), nullptr);
    fused_pool_.resize(layers_.size(), nullptr);
    fused_flatten_.resize(layers_.size(), false);
    if (layers_.size() < 2) return;
    Module<T>& prev = layers_[layers_.size() - 2].module();
    const Module<T>& last = layers_.back().module();
    if (typeid(last) == typeid(Flatten<T>) && layers_.size() >= 4 && fused_pool_[layers_.size() - 4]) {
        const auto& flatten = static_cast<const Flatten<T>&>(last);
        // the pool's output is 4-D: flatten(1, -1) and flatten(1, 3) are the one fused
        if (flatten.start_dim() == 1 && (flatten.end_dim() == -1 || flatten.end_dim() == 3))
            fused_flatten_[layers_.size() - 4] = true;
        return;
    }
    if (typeid(last) == typeid(MaxPool2d<T>) && layers_.size() >= 3 && fused_conv_relu_[layers_.size() - 3]) {
        fused_pool_[layers_.size() - 3] = static_cast<const MaxPool2d<T>*>(&last);
        return;
    }
    // Exact types: a subclass may override forward().
    const bool relu = (typeid(last) == typeid(ActivationLayer<T>) || typeid(last) == typeid(ReLU<T>)) &&
                      static_cast<const ActivationLayer<T>&>(last).kind() == Activation::relu;
    if (!relu) return;
    if (typeid(prev) == typeid(Linear<T>)) fused_relu_[layers_.size() - 2] = static_cast<const Linear<T>*>(&prev);
    if (typeid(prev) == typeid(Conv2d<T>)) fused_conv_relu_[layers_.size() - 2] = static_cast<Conv2d<T>*>(&prev);
}

template <class T>
Variable<T> Sequential<T>::forward(const Variable<T>& x) {
    Variable<T> y = x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (const Linear<T>* linear = fused_relu_[i]) {
            y = linear_relu(y, linear->weight(), linear->bias());
            ++i;  // the ReLU
        } else if (Conv2d<T>* conv = fused_conv_relu_[i]) {
            if (const MaxPool2d<T>* pool = fused_pool_[i]) {
                const bool flat = fused_flatten_[i];
                y = conv->forward_relu_max_pool(y, pool->options(), flat);
                i += flat ? 3 : 2;  // the ReLU, the MaxPool2d and the Flatten
            } else {
                y = conv->forward_relu(y);
                ++i;
            }
        } else {
            y = layers_[i].forward(y);
        }
    }
    return y;
}

template class Sequential<float>;
template class Sequential<double>;

}  // namespace xg::nn
