#include "graph/function.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace xg {

template <class T>
void Function<T>::check_version(const Node<T>& node, std::uint64_t saved, std::string_view what) const {
    if (node.version != saved)
        throw GraphError(fmt::format("{}: {} of shape {} was changed in place (version {}, the op saved version {}) "
                                     "after the op used it; its gradients would be wrong. Change a copy, or "
                                     "make the change before the forward pass",
                                     name(), what, shape_str(node.data.shape()), node.version, saved));
}

// Freeing the last handle of a graph's output frees its creator, whose inputs free their
// creators, and so on: one stack frame per op if left to the destructors, which overflows at
// about 60k ops. Instead every node or op whose last owner is here is moved onto an explicit
// stack first, with its links to the rest of the graph taken out, so each destructor that runs
// has nothing left to recurse into. (A node or op still owned elsewhere just loses one owner.)
namespace {
// A stack whose first few entries live inline: freeing a small graph allocates nothing.
template <class P, std::size_t N = 8>
class InlineStack {
public:
    bool empty() const { return size_ == 0; }
    void push(P p) {
        if (size_ < N) few_[size_] = std::move(p);
        else more_.push_back(std::move(p));
        ++size_;
    }
    P pop() {
        --size_;
        if (size_ < N) return std::move(few_[size_]);
        P p = std::move(more_.back());
        more_.pop_back();
        return p;
    }

private:
    std::array<P, N> few_;
    std::vector<P> more_;
    std::size_t size_ = 0;
};
}  // namespace

template <class T>
Node<T>::~Node() {
    if (!creator && !grad && !pending) return;
    InlineStack<std::shared_ptr<Node<T>>> nodes;
    InlineStack<std::shared_ptr<Function<T>>> fns;
    auto take_node = [&](std::shared_ptr<Node<T>>& n) {
        if (n && n.use_count() == 1) nodes.push(std::move(n));
    };
    auto take_links = [&](Node<T>& n) {
        if (n.creator && n.creator.use_count() == 1) fns.push(std::move(n.creator));
        take_node(n.grad);
        take_node(n.pending);
    };
    take_links(*this);
    while (!nodes.empty() || !fns.empty()) {
        if (!nodes.empty()) {
            std::shared_ptr<Node<T>> n = nodes.pop();
            take_links(*n);
            continue;  // n is freed here, with nothing left to free behind it
        }
        std::shared_ptr<Function<T>> fn = fns.pop();
        for (Variable<T>& x : fn->inputs_) {
            std::shared_ptr<Node<T>> n = x.node_ptr();
            x = Variable<T>();
            take_node(n);
        }
    }
}

template <class T>
const Variable<T>& Function<T>::input(std::size_t i) const {
    if (released_)
        throw GraphError(fmt::format("{}: its saved inputs were freed by an earlier backward(); "
                                     "pass retain_graph = true to keep them",
                                     name()));
    const Variable<T>& x = inputs_.at(i);
    const std::uint64_t saved = i < few_versions_.size() ? few_versions_[i] : more_versions_[i - few_versions_.size()];
    if (x.node()->version != saved) check_version(*x.node(), saved, fmt::format("input {}", i));
    return x;
}

template <class T>
Variable<T> Function<T>::output() const {
    auto node = output_.lock();
    if (!node) throw GraphError(fmt::format("{}: its output variable no longer exists", name()));
    if (node->version != output_version_) check_version(*node, output_version_, "its output");
    return Variable<T>(std::move(node));
}

template <class T>
std::optional<Array<T>> Function<T>::take_gradient(const Variable<T>& gy) const {
    if (!gy.defined() || recording_backward() || gy.node_ptr().use_count() != 1 || gy.creator()) return std::nullopt;
    return std::move(gy.mutable_data());
}

template <class T>
void Function<T>::attach(std::vector<Variable<T>> inputs, const std::shared_ptr<Node<T>>& output) {
    int generation = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const Node<T>& x = *inputs[i].node();
        generation = std::max(generation, x.generation);
        if (i < few_versions_.size()) few_versions_[i] = x.version;
        else more_versions_.push_back(x.version);
    }
    inputs_ = std::move(inputs);
    output_ = output;
    output_version_ = output->version;
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

template <class T>
void throw_out_of_memory(std::string_view op, const ArrayRefs<T>& xs) {
    std::string shapes;
    for (std::size_t i = 0; i < xs.size(); ++i) shapes += (i ? ", " : "") + shape_str(xs[i].shape());
    throw ResourceError(fmt::format("{}: out of memory computing the result for inputs of shapes {}", op, shapes));
}

#define XG_INSTANTIATE(T)                                                                         \
    template void throw_out_of_memory(std::string_view, const ArrayRefs<T>&);                     \
    template ArrayRefs<T> input_arrays(std::string_view, const Variable<T>*, std::size_t);         \
    template bool should_record(const Variable<T>*, std::size_t);                                  \
    template void check_finite(const Array<T>&, std::string_view);                                \
    template Variable<T> finish(std::shared_ptr<Function<T>>, std::string_view,                   \
                                std::vector<Variable<T>>, Array<T>&&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace detail

template struct Node<float>;
template struct Node<double>;

template class Function<float>;
template class Function<double>;

}  // namespace xg
