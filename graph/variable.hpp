#pragma once
// Variable: a cheap handle (one shared_ptr) to a node of the graph. Copies share the node,
// like torch::Tensor or a Python reference to a DeZero Variable.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "graph/array.hpp"

namespace xg {

template <class T>
class Function;

template <class T>
struct Node {
    Array<T> data;
    std::shared_ptr<Node> grad;                // a Variable's node, so gradients are differentiable
    std::shared_ptr<Function<T>> creator;      // null for leaves and for results made in no-grad mode
    std::shared_ptr<Node> pending;             // gradient in flight during one backward pass
    std::string name;
    int generation = 0;                        // creator's generation + 1; orders the backward pass
    bool requires_grad = false;
    bool retains_grad = false;
};

struct BackwardOptions {
    bool retain_graph = false;  // keep the graph's saved inputs so backward can run through it again
    bool create_graph = false;  // record the backward pass itself, for gradients of gradients
    bool retain_grad = false;   // keep the gradients of intermediate (non-leaf) variables too
};

template <class T>
class Variable {
public:
    using value_type = T;

    Variable() = default;  // undefined: no node
    explicit Variable(Array<T> data, bool requires_grad = false, std::string name = {});
    explicit Variable(std::shared_ptr<Node<T>> node) : node_(std::move(node)) {}

    bool defined() const { return node_ != nullptr; }

    const Array<T>& data() const;
    // Mutable access, for in-place updates outside the graph (optimizers, initialisers).
    Array<T>& data();
    void set_data(Array<T> data);

    const Shape& shape() const { return data().shape(); }
    std::size_t ndim() const { return data().dimension(); }
    std::size_t size() const { return data().size(); }
    // The single value of a one-element variable; throws otherwise.
    T item() const;

    // Gradient accumulated by backward(); undefined if none.
    Variable grad() const;
    bool has_grad() const { return defined() && node_->grad != nullptr; }
    void set_grad(const Variable& g) const;
    void zero_grad() const;  // drops the gradient (DeZero's cleargrad)

    bool requires_grad() const;
    const Variable& requires_grad_(bool on = true) const;
    // Keep this (intermediate) variable's gradient after backward.
    const Variable& retain_grad() const;

    const std::string& name() const;
    const Variable& set_name(std::string name) const;

    std::shared_ptr<Function<T>> creator() const { return node_ ? node_->creator : nullptr; }
    bool is_leaf() const { return creator() == nullptr; }

    // Reverse-mode backprop from this variable. A non-scalar output needs an explicit gradient.
    void backward(BackwardOptions options = {}) const;
    void backward(const Variable& gradient, BackwardOptions options = {}) const;

    // A new leaf holding a copy of the data, cut from the graph: gradients stop here.
    Variable detach() const;

    Node<T>* node() const { return node_.get(); }
    const std::shared_ptr<Node<T>>& node_ptr() const { return node_; }

private:
    Node<T>& checked_node() const;
    std::shared_ptr<Node<T>> node_;
};

// A scalar variable, e.g. scalar<double>(2.0, true).
template <class T>
Variable<T> scalar(T value, bool requires_grad = false, std::string name = {});

// Gradients of `output` with respect to `inputs`, returned instead of accumulated into .grad()
// (torch.autograd.grad). With create_graph the results are differentiable again.
template <class T>
std::vector<Variable<T>> grad(const Variable<T>& output, const std::vector<Variable<T>>& inputs,
                              const Variable<T>& grad_output = {}, bool create_graph = false,
                              bool retain_graph = false);

extern template class Variable<float>;
extern template class Variable<double>;

}  // namespace xg
