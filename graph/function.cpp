#include "graph/function.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace xg {

template <class T>
const Variable<T>& Function<T>::input(std::size_t i) const {
    if (released_)
        throw GraphError(fmt::format("{}: its saved inputs were freed by an earlier backward(); "
                                     "pass retain_graph = true to keep them",
                                     name()));
    return inputs_.at(i);
}

template <class T>
Variable<T> Function<T>::output() const {
    auto node = output_.lock();
    if (!node) throw GraphError(fmt::format("{}: its output variable no longer exists", name()));
    return Variable<T>(std::move(node));
}

template <class T>
void Function<T>::attach(std::vector<Variable<T>> inputs, const std::shared_ptr<Node<T>>& output) {
    int generation = 0;
    for (const auto& x : inputs) generation = std::max(generation, x.node()->generation);
    inputs_ = std::move(inputs);
    output_ = output;
    generation_ = generation;
    output->generation = generation + 1;
}

template <class T>
void Function<T>::release() {
    inputs_.clear();
    inputs_.shrink_to_fit();
    release_saved();
    released_ = true;
}

namespace detail {

template <class T>
ArrayRefs<T> input_arrays(std::string_view op, const Variable<T>* inputs, std::size_t n) {
    ArrayRefs<T> arrays;
    for (std::size_t i = 0; i < n; ++i) {
        if (!inputs[i].defined())
            throw GraphError(fmt::format("{}: input {} is an undefined Variable", op, i));
        arrays.push_back(&inputs[i].data());
    }
    return arrays;
}

template <class T>
bool should_record(const Variable<T>* inputs, std::size_t n) {
    if (!grad_enabled()) return false;
    return std::any_of(inputs, inputs + n, [](const Variable<T>& x) { return x.defined() && x.requires_grad(); });
}

template <class T>
void check_finite(const Array<T>& a, std::string_view what) {
    for (const T v : a)
        if (!std::isfinite(v))
            throw ValueError(fmt::format("anomaly: {} contains {} (shape {})", what,
                                         std::isnan(v) ? "NaN" : "Inf", shape_str(a.shape())));
}

template <class T>
Variable<T> finish(std::shared_ptr<Function<T>> fn, std::string_view op, std::vector<Variable<T>> inputs,
                   Array<T>&& result) {
    if (anomaly_enabled()) {
        const std::string_view context = backward_context();
        check_finite(result, context.empty() ? fmt::format("the forward result of {}", op)
                                             : fmt::format("the result of {} in the backward of {}", op, context));
    }
    auto node = std::make_shared<Node<T>>();
    node->data = std::move(result);
    if (fn && should_record(inputs)) {
        node->requires_grad = true;
        fn->attach(std::move(inputs), node);
        node->creator = std::move(fn);
    }
    return Variable<T>(std::move(node));
}

#define XG_INSTANTIATE(T)                                                                         \
    template ArrayRefs<T> input_arrays(std::string_view, const Variable<T>*, std::size_t);         \
    template bool should_record(const Variable<T>*, std::size_t);                                  \
    template void check_finite(const Array<T>&, std::string_view);                                \
    template Variable<T> finish(std::shared_ptr<Function<T>>, std::string_view,                   \
                                std::vector<Variable<T>>, Array<T>&&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace detail

template class Function<float>;
template class Function<double>;

}  // namespace xg
