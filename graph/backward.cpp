// The reverse-mode engine: runs each reachable Function once, in decreasing generation order
// (DeZero's scheme), which is a valid topological order of the DAG.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "graph/function.hpp"

namespace xg {
namespace {

// y = a + b for arrays of one shape (gradients of one variable; the engine checks every
// gradient's shape), y possibly a itself: a plain loop, which GCC vectorises.
template <class T>
void add_to(Array<T>& y, const Array<T>& a, const Array<T>& b) {
    if (a.shape() != b.shape())
        throw ShapeError(fmt::format("accumulate_grad: gradients of shapes {} and {}", shape_str(a.shape()),
                                     shape_str(b.shape())));
    T* py = y.data();
    const T* pa = a.data();
    const T* pb = b.data();
    for (std::size_t i = 0, n = y.size(); i < n; ++i) py[i] = pa[i] + pb[i];
}

// The gradient of a variable used more than once is the sum of what each use sends back.
// Recorded as a Function of its own so that, with create_graph, the sum is differentiable.
template <class T>
class AccumulateGrad final : public Function<T> {
public:
    std::string_view name() const override { return "accumulate_grad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        Array<T> y = Array<T>::from_shape(xs[0].shape());
        add_to(y, xs[0], xs[1]);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy, gy}; }
};

template <class T>
void accumulate(std::shared_ptr<Node<T>>& slot, const Variable<T>& g) {
    if (!slot) {
        slot = g.node_ptr();
    } else if (!grad_enabled() && !slot->creator && slot.use_count() == 1) {
        add_to(slot->data, slot->data, g.data());  // nobody else sees this gradient: add in place
    } else {
        slot = apply<AccumulateGrad<T>>({Variable<T>(slot), g}).node_ptr();
    }
}

// A copy of a gradient that stays in the graph (create_graph): d(copy)/dg = 1.
template <class T>
class CopyGrad final : public Function<T> {
public:
    std::string_view name() const override { return "copy_grad"; }
    Array<T> forward(const ArrayRefs<T>& xs) override { return xs[0]; }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {gy}; }
};

// Stores a gradient in a .grad() slot. Ops hand one gradient to several inputs (add sends gy to
// both), so a first gradient that anything else still holds is copied: an in-place change of one
// parameter's .grad() (clip_grad_norm scales them) must not reach another's.
template <class T>
void store_grad(std::shared_ptr<Node<T>>& slot, std::shared_ptr<Node<T>> g, bool create_graph) {
    if (slot || g.use_count() == 1) {
        accumulate(slot, Variable<T>(std::move(g)));
    } else if (create_graph) {
        slot = apply<CopyGrad<T>>({Variable<T>(std::move(g))}).node_ptr();
    } else {
        auto own = std::make_shared<Node<T>>();
        own->data = g->data;
        slot = std::move(own);
    }
}

template <class T>
void check_finite_grad(const Variable<T>& g, const Function<T>& fn, std::size_t i) {
    for (const T v : g.data())
        if (!std::isfinite(v))
            throw ValueError(fmt::format("anomaly: backward of {} produced {} in the gradient of input "
                                         "{} (shape {})",
                                         fn.name(), std::isnan(v) ? "NaN" : "Inf", i,
                                         shape_str(g.shape())));
}

// Names the op whose backward is running, for anomaly reports from the ops it calls, and marks
// that a backward is running (recording_backward()).
class BackwardContext {
public:
    explicit BackwardContext(std::string_view op)
        : outer_(detail::backward_context()), outer_running_(detail::backward_running()) {
        detail::backward_context() = op;
        detail::backward_running() = true;
    }
    ~BackwardContext() {
        detail::backward_context() = outer_;
        detail::backward_running() = outer_running_;
    }
    BackwardContext(const BackwardContext&) = delete;
    BackwardContext& operator=(const BackwardContext&) = delete;

private:
    std::string_view outer_;
    bool outer_running_;
};

template <class T>
struct ByGeneration {
    bool operator()(const std::shared_ptr<Function<T>>& a, const std::shared_ptr<Function<T>>& b) const {
        return a->generation() < b->generation();
    }
};

// Nodes whose gradients xg::grad returns, with whether the pass reached each of them.
template <class T>
struct Capture {
    std::vector<Node<T>*> nodes;
    std::vector<bool> reached;
    bool allow_unused = false;

    void reach(const Node<T>* n) {
        for (std::size_t i = 0; i < nodes.size(); ++i)
            if (nodes[i] == n) reached[i] = true;
    }
    bool holds(const Node<T>* n) const { return std::find(nodes.begin(), nodes.end(), n) != nodes.end(); }
};

template <class T>
bool has_hooks(const Node<T>* n) {
    return n->grad_hooks && !n->grad_hooks->list.empty();
}

// For the leaves with post-accumulate-grad hooks: how many edges of the graph behind `root` lead
// to each (one per use of the leaf as an op's input). As the pass runs each of those ops'
// backward, the count drops; at zero the leaf's gradient is complete and its hooks run (the
// PyTorch engine's dependency count, kept only for hooked leaves). A use whose op never runs
// (nothing sends it a gradient) leaves the count above zero: such leaves get their hooks at the
// end of the pass, with the other leaves.
template <class T>
std::unordered_map<Node<T>*, std::size_t> count_hooked_uses(const Variable<T>& root) {
    std::unordered_map<Node<T>*, std::size_t> uses;
    if (!detail::any_grad_hooks() || !root.creator()) return uses;
    std::unordered_set<const Function<T>*> seen;
    std::vector<Function<T>*> stack{root.creator().get()};
    seen.insert(stack.back());
    while (!stack.empty()) {
        Function<T>* fn = stack.back();
        stack.pop_back();
        if (fn->released()) continue;  // the pass itself reports it
        for (const Variable<T>& x : fn->inputs()) {
            Node<T>* n = x.node();
            if (!n->requires_grad) continue;
            if (n->creator) {
                if (seen.insert(n->creator.get()).second) stack.push_back(n->creator.get());
            } else if (has_hooks(n)) {
                ++uses[n];
            }
        }
    }
    return uses;
}

template <class T>
void run_grad_hooks(const std::shared_ptr<Node<T>>& leaf) {
    const Variable<T> v(leaf);
    // A copy: a hook may add or remove hooks.
    const auto hooks = leaf->grad_hooks->list;
    for (const auto& [id, hook] : hooks) hook(v);
}

// Function::add_input_grad's fast path: offers fn each input's running sum that nothing else
// holds (a shared one, e.g. the gradient an add passed to both its inputs, is never changed in
// place) and returns the inputs it added into.
template <class T>
std::uint32_t add_into_sums(Function<T>& fn, const Array<T>& gy) {
    std::uint32_t added = 0;
    const auto& xs = fn.inputs();
    for (std::size_t i = 0; i < xs.size() && i < 32; ++i) {
        const std::shared_ptr<Node<T>>& sum = xs[i].node()->pending;
        if (!xs[i].requires_grad() || !sum || sum->creator || sum.use_count() != 1) continue;
        if (fn.add_input_grad(i, gy, sum->data)) added |= 1u << i;
    }
    return added;
}

// Runs the backward pass from `root` seeded with `seed`. With `capture` set, gradients go to
// `captured` (one per captured node) and no .grad() is touched; otherwise leaves accumulate.
template <class T>
void run_backward(const Variable<T>& root, Variable<T> seed, const BackwardOptions& opt, Capture<T>* capture,
                  std::vector<Variable<T>>* captured) {
    if (!root.defined()) throw GraphError("backward: called on an undefined Variable");
    if (!root.requires_grad())
        throw GraphError(fmt::format("backward: the output (shape {}) does not require grad: no input "
                                     "requires grad, or it was computed in no-grad mode",
                                     shape_str(root.shape())));
    if (!seed.defined()) {
        if (root.size() != 1)
            throw GraphError(fmt::format("backward: the output has shape {}, not a scalar; pass a "
                                         "gradient of that shape: y.backward(gradient)",
                                         shape_str(root.shape())));
        Array<T> one = Array<T>::from_shape(root.shape());
        one.data()[0] = T(1);
        seed = Variable<T>(std::move(one));
    } else if (seed.shape() != root.shape()) {
        throw ShapeError(fmt::format("backward: gradient of shape {} for an output of shape {}",
                                     shape_str(seed.shape()), shape_str(root.shape())));
    }

    const bool create_graph = opt.create_graph;
    const bool retain_graph = opt.retain_graph || opt.create_graph;
    GradModeGuard mode(create_graph);
    const bool anomaly = anomaly_enabled();

    // A function is queued when its output receives its first gradient: it runs once, after all
    // its consumers (they have higher generations), so no other bookkeeping is needed.
    std::vector<std::shared_ptr<Node<T>>> touched;  // nodes whose `pending` is cleared on exit
    struct ClearPending {
        std::vector<std::shared_ptr<Node<T>>>& nodes;
        ~ClearPending() {
            for (const auto& n : nodes) n->pending.reset();
        }
    } clear_pending{touched};  // also when an op's backward throws: no stale gradient survives
    std::vector<std::shared_ptr<Function<T>>> heap;
    touched.reserve(16);
    heap.reserve(16);
    std::priority_queue<std::shared_ptr<Function<T>>, std::vector<std::shared_ptr<Function<T>>>,
                        ByGeneration<T>>
        queue(ByGeneration<T>(), std::move(heap));
    auto deliver = [&](const std::shared_ptr<Node<T>>& node, const Variable<T>& g) {
        if (!node->pending) {
            touched.push_back(node);
            if (node->creator) queue.push(node->creator);
        }
        accumulate(node->pending, g);
    };

    deliver(root.node_ptr(), seed);
    if (capture) capture->reach(root.node());
    std::unordered_map<Node<T>*, std::size_t> hooked_uses;
    if (!capture) hooked_uses = count_hooked_uses(root);
    // A hooked leaf whose last use has run: its gradient is stored and its hooks run now.
    auto used = [&](const std::shared_ptr<Node<T>>& leaf) {
        auto it = hooked_uses.find(leaf.get());
        if (it == hooked_uses.end() || --it->second > 0) return;
        hooked_uses.erase(it);
        if (!leaf->pending) return;  // no gradient reached it: nothing accumulated
        store_grad(leaf->grad, std::move(leaf->pending), create_graph);
        run_grad_hooks(leaf);
    };

    while (!queue.empty()) {
        std::shared_ptr<Function<T>> fn = queue.top();
        queue.pop();
        if (fn->released())
            throw GraphError(fmt::format("backward: the graph through {} was freed by an earlier "
                                         "backward(); pass retain_graph = true to the first call",
                                         fn->name()));
        const std::shared_ptr<Node<T>> out = fn->output().node_ptr();
        // The output's gradient is handed over to gy (out->pending emptied) unless it is kept,
        // as a retained .grad() or for xg::grad: then a backward may reuse its array
        // (Function::take_gradient) when nothing else holds it.
        const bool retained = !capture && (out->retains_grad || opt.retain_grad);
        const bool captured_here = capture && capture->holds(out.get());
        const Variable<T> gy(retained || captured_here ? out->pending : std::move(out->pending));
        std::vector<Variable<T>> gxs;
        std::uint32_t added = 0;
        try {
            BackwardContext context(fn->name());
            if (!create_graph && !anomaly) added = add_into_sums(*fn, gy.data());
            struct Unmark {
                Function<T>& fn;
                ~Unmark() { fn.set_added_grads(0); }
            } unmark{*fn};
            fn->set_added_grads(added);
            gxs = fn->backward(gy);
        } catch (const std::bad_alloc&) {
            throw ResourceError(fmt::format("backward of {}: out of memory for a gradient of shape {}", fn->name(),
                                            shape_str(gy.shape())));
        }
        if (capture)
            for (const Variable<T>& x : fn->inputs()) capture->reach(x.node());
        if (gxs.size() != fn->inputs().size())
            throw GraphError(fmt::format("{}: backward returned {} gradients for {} inputs", fn->name(),
                                         gxs.size(), fn->inputs().size()));
        for (std::size_t i = 0; i < gxs.size(); ++i) {
            const Variable<T>& x = fn->inputs()[i];
            if (gxs[i].defined() && x.requires_grad() && !(i < 32 && (added >> i & 1u))) {
                if (gxs[i].shape() != x.shape())
                    throw GraphError(fmt::format("{}: backward returned a gradient of shape {} for input "
                                                 "{} of shape {}",
                                                 fn->name(), shape_str(gxs[i].shape()), i,
                                                 shape_str(x.shape())));
                if (anomaly) check_finite_grad(gxs[i], *fn, i);
                // Handed over, not shared with gxs: a hooked leaf's last use (just below) then
                // stores a gradient nothing else holds without copying it.
                deliver(x.node_ptr(), std::exchange(gxs[i], Variable<T>()));
            }
            if (!hooked_uses.empty() && !x.creator() && x.requires_grad()) used(x.node_ptr());
        }
        if (retained) store_grad(out->grad, gy.node_ptr(), create_graph);
        if (!captured_here) out->pending.reset();
        if (!retain_graph) fn->release();
    }

    if (capture) {
        captured->clear();
        for (std::size_t i = 0; i < capture->nodes.size(); ++i) {
            Node<T>* n = capture->nodes[i];
            if (n->pending) {
                captured->push_back(Variable<T>(n->pending));
            } else if (capture->reached[i]) {
                captured->push_back(Variable<T>(full(n->data.shape(), T(0))));
            } else if (capture->allow_unused) {
                captured->push_back(Variable<T>());
            } else {
                throw GraphError(fmt::format("grad: input {} (shape {}) is not reached from the output: the output "
                                             "does not depend on it (pass allow_unused = true to get an undefined "
                                             "gradient instead)",
                                             i, shape_str(n->data.shape())));
            }
        }
    } else {
        seed = Variable<T>();  // a caller's seed that becomes a leaf's gradient is then shared with the caller only
        for (const auto& n : touched) {
            if (!n->pending || n->creator) continue;
            store_grad(n->grad, std::move(n->pending), create_graph);
            if (has_hooks(n.get())) run_grad_hooks(n);
        }
    }
}

}  // namespace

template <class T>
void Variable<T>::backward(BackwardOptions options) const {
    run_backward<T>(*this, Variable<T>(), options, nullptr, nullptr);
}

template <class T>
void Variable<T>::backward(const Variable& gradient, BackwardOptions options) const {
    if (!gradient.defined()) throw GraphError("backward: the given gradient is an undefined Variable");
    run_backward<T>(*this, gradient, options, nullptr, nullptr);
}

template <class T>
std::vector<Variable<T>> grad(const Variable<T>& output, const std::vector<Variable<T>>& inputs,
                              const Variable<T>& grad_output, GradOptions options) {
    Capture<T> capture;
    capture.allow_unused = options.allow_unused;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].defined()) throw GraphError(fmt::format("grad: input {} is undefined", i));
        if (!inputs[i].requires_grad())
            throw GraphError(fmt::format("grad: input {} (shape {}) does not require grad", i,
                                         shape_str(inputs[i].shape())));
        capture.nodes.push_back(inputs[i].node());
    }
    capture.reached.assign(inputs.size(), false);
    std::vector<Variable<T>> result;
    BackwardOptions opt{.retain_graph = options.retain_graph, .create_graph = options.create_graph};
    run_backward<T>(output, grad_output, opt, &capture, &result);
    return result;
}

template void Variable<float>::backward(BackwardOptions) const;
template void Variable<double>::backward(BackwardOptions) const;
template void Variable<float>::backward(const Variable<float>&, BackwardOptions) const;
template void Variable<double>::backward(const Variable<double>&, BackwardOptions) const;
template std::vector<Variable<float>> grad(const Variable<float>&, const std::vector<Variable<float>>&,
                                           const Variable<float>&, GradOptions);
template std::vector<Variable<double>> grad(const Variable<double>&, const std::vector<Variable<double>>&,
                                            const Variable<double>&, GradOptions);

}  // namespace xg
