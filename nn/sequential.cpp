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
    if (layers_.size() < 2) return;
    Module<T>& prev = layers_[layers_.size() - 2].module();
    const Module<T>& last = layers_.back().module();
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
                y = conv->forward_relu_max_pool(y, pool->options());
                i += 2;  // the ReLU and the MaxPool2d
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
