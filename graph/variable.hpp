#pragma once
// Variable: a cheap handle (one shared_ptr) to a node of the graph. Copies share the node,
// like torch::Tensor or a Python reference to a DeZero Variable.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "graph/array.hpp"

namespace xg {

template <class T>
class Function;

template <class T>
class Variable;

// Functions a leaf runs once backward() has stored its complete gradient (see
// Variable::register_post_accumulate_grad_hook). The destructor keeps the engine's count of live
// hooks, which lets passes without any hook skip the bookkeeping hooks need.
template <class T>
struct GradHooks {
    GradHooks() = default;
    GradHooks(const GradHooks&) = delete;
    GradHooks& operator=(const GradHooks&) = delete;
    ~GradHooks();
    std::vector<std::pair<std::uint64_t, std::function<void(const Variable<T>&)>>> list;  // (id, hook)
};

template <class T>
struct Node {
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    // Frees the graph behind this node without recursion (graph/function.cpp): a chain of 10
    // million ops would otherwise overflow the stack, one frame per op.
    ~Node();

    Array<T> data;
    // Bumped by every change through Variable::mutable_data() or set_data(). Ops record the
    // versions of what they read in backward and refuse to run on changed arrays.
    std::uint64_t version = 0;
    std::shared_ptr<Node> grad;                // a Variable's node, so gradients are differentiable
    std::shared_ptr<Function<T>> creator;      // null for leaves and for results made in no-grad mode
    std::shared_ptr<Node> pending;             // gradient in flight during one backward pass
    std::string name;
    std::unique_ptr<GradHooks<T>> grad_hooks;  // leaves only; null when there is none
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
    // Write access, for in-place updates outside the graph (optimizers, initialisers). It bumps
    // the variable's version: an op that saved this variable for its backward then throws
    // GraphError instead of computing gradients from the changed values.
    Array<T>& mutable_data() const;
    void set_data(Array<T> data) const;
    std::uint64_t version() const;

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

    // torch.Tensor.register_post_accumulate_grad_hook: after a backward() pass has accumulated
    // this leaf's gradient into .grad() for the last time in the pass, `hook(*this)` runs. That
    // is as soon as every op of the pass that used the leaf has run its backward, so the rest of
    // the pass is still to come: dist::DataParallel starts all-reducing gradients there. xg::grad()
    // (which does not touch .grad()) runs no hook. Returns an id for remove_hook. GraphError on a
    // variable that is not a leaf or does not require grad.
    std::uint64_t register_post_accumulate_grad_hook(std::function<void(const Variable&)> hook) const;
    // Removes the hook `id`; false if this variable has no such hook.
    bool remove_hook(std::uint64_t id) const;

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

struct GradOptions {
    bool create_graph = false;  // record the backward pass: the results are differentiable again
    bool retain_graph = false;  // keep the graph for another backward (implied by create_graph)
    // An input the output does not depend on (not reached from it through the graph) is an error,
    // as in PyTorch, unless this is set: its result is then an undefined Variable.
    bool allow_unused = false;
};

// Gradients of `output` with respect to `inputs`, returned instead of accumulated into .grad()
// (torch.autograd.grad). `grad_output` is needed when output is not a scalar. Every input must
// require grad. An input reached from the output but given no gradient (its ops pass none
// back) gets zeros.
template <class T>
std::vector<Variable<T>> grad(const Variable<T>& output, const std::vector<Variable<T>>& inputs,
                              const Variable<T>& grad_output = {}, GradOptions options = {});

// Prints the values and what the variable is, e.g.
//   Variable({{ 0.1,  0.2},
//             {-0.3,  0.4}}, shape=(2, 2), dtype=float64, name="W", requires_grad)
//   Variable({ 0.5}, shape=(1,), dtype=float32, op=tanh)
// Values print as xtensor prints them (long arrays are abridged with "...").
template <class T>
std::ostream& operator<<(std::ostream& os, const Variable<T>& v);

namespace detail {
// How many post-accumulate-grad hooks exist, over all threads: backward() counts a leaf's uses
// only when some exist.
void count_grad_hooks(long delta);
bool any_grad_hooks();
}  // namespace detail

extern template struct Node<float>;
extern template struct Node<double>;
extern template class Variable<float>;
extern template class Variable<double>;
extern template std::ostream& operator<<(std::ostream&, const Variable<float>&);
extern template std::ostream& operator<<(std::ostream&, const Variable<double>&);

}  // namespace xg
