#pragma once
// Function: one recorded op. forward() works on arrays; backward() is written with ops, so
// that the backward pass is itself a graph (create_graph) and gradients of gradients work.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/mode.hpp"
#include "graph/variable.hpp"

namespace xg {

// Read-only view of the input arrays handed to forward(). Up to four live inline, so an op with
// one to four inputs allocates nothing for them (this is on every op's path).
template <class T>
class ArrayRefs {
public:
    ArrayRefs() = default;
    explicit ArrayRefs(const std::vector<const Array<T>*>& arrays) {
        for (const Array<T>* a : arrays) push_back(a);
    }
    const Array<T>& operator[](std::size_t i) const { return *(many_.empty() ? few_[i] : many_[i]); }
    std::size_t size() const { return size_; }
    void push_back(const Array<T>* a) {
        if (size_ < few_.size()) {
            few_[size_] = a;
        } else {
            if (many_.empty()) many_.assign(few_.begin(), few_.end());
            many_.push_back(a);
        }
        ++size_;
    }

private:
    std::array<const Array<T>*, 4> few_{};
    std::vector<const Array<T>*> many_;  // all of them, once there are more than four
    std::size_t size_ = 0;
};

template <class T>
class Function {
public:
    using value_type = T;
    virtual ~Function() = default;

    // The op's name, used in error messages, anomaly reports and DOT export.
    virtual std::string_view name() const = 0;
    virtual Array<T> forward(const ArrayRefs<T>& xs) = 0;
    // One gradient per input, each of that input's shape; an undefined Variable means zero
    // (ops may skip inputs for which needs_input_grad(i) is false).
    virtual std::vector<Variable<T>> backward(const Variable<T>& gy) = 0;

    // Optional fast path, for backward passes that record nothing (no create_graph, no anomaly
    // mode). Before calling backward(), the engine offers `sum`, the gradient input i has
    // accumulated so far in this pass (of the input's shape; nothing else holds it). An op that
    // can add its gradient for input i straight into it does so and returns true; backward() then
    // sees needs_input_grad(i) false, and what it returns for input i is ignored. A slice adds its
    // part where backward() would build an array of its source's full shape for the engine to
    // add; a product's GEMM accumulates with beta = 1 (a recurrent weight's per-step gradients).
    virtual bool add_input_grad(std::size_t i, const Array<T>& gy, Array<T>& sum) {
        (void)i, (void)gy, (void)sum;
        return false;
    }

    // The inputs, for their shapes and requires_grad flags. Their values are read in backward
    // through input(i), which checks that they were not changed since the forward pass.
    const std::vector<Variable<T>>& inputs() const { return inputs_; }
    // Input i as the forward pass saw it; throws GraphError if it was freed by an earlier
    // backward or changed in place since (its version moved on).
    const Variable<T>& input(std::size_t i) const;
    // The variable this op produced (alive while any backward can reach this op), checked the
    // same way.
    Variable<T> output() const;
    bool needs_input_grad(std::size_t i) const {
        return inputs_.at(i).requires_grad() && !(i < 32 && (added_ >> i & 1u));
    }
    int generation() const { return generation_; }
    bool released() const { return released_; }

    // Called by the engine. Records inputs and output; the output is held weakly so the graph
    // (output -> creator -> inputs) has no reference cycle.
    void attach(std::vector<Variable<T>> inputs, const std::shared_ptr<Node<T>>& output);
    // Called by the engine: the inputs (bit i: input i, i < 32) whose gradients add_input_grad
    // has added in this pass, so that backward() skips them; 0 when backward() returns.
    void set_added_grads(std::uint32_t inputs) { added_ = inputs; }
    // Drops what the op saved for backward (inputs and any state); further backward throws.
    void release();

protected:
    // Ops that keep state besides their inputs (masks, cached softmax) free it here.
    virtual void release_saved() {}
    // gy's array, moved out for backward() to reuse as its result's (gy is left empty), when the
    // backward is not recorded and nothing but the engine holds gy: the engine hands a gradient
    // over once it needs it no more (PyTorch's engine steals such buffers too). Else nullopt: a
    // gradient that is shared (add sends one to both inputs), a caller's seed, one kept for
    // retain_grad or for xg::grad, or any gradient under create_graph.
    std::optional<Array<T>> take_gradient(const Variable<T>& gy) const;

private:
    friend struct Node<T>;  // takes the inputs when the graph is freed (iteratively)
    void check_version(const Node<T>& node, std::uint64_t saved, std::string_view what) const;

    std::vector<Variable<T>> inputs_;
    // The inputs' versions when the op ran: up to four inline (most ops), more in the vector.
    std::array<std::uint64_t, 4> few_versions_{};
    std::vector<std::uint64_t> more_versions_;
    std::weak_ptr<Node<T>> output_;
    std::uint64_t output_version_ = 0;
    int generation_ = 0;
    std::uint32_t added_ = 0;  // see set_added_grads
    bool released_ = false;
};

namespace detail {
// Validates inputs (defined, same dtype is enforced by the type system) and returns their arrays.
template <class T>
ArrayRefs<T> input_arrays(std::string_view op, const Variable<T>* inputs, std::size_t n);
template <class T>
ArrayRefs<T> input_arrays(std::string_view op, const std::vector<Variable<T>>& inputs) {
    return input_arrays(op, inputs.data(), inputs.size());
}
// True if an op on these inputs must be recorded: grad mode on and some input requires grad.
template <class T>
bool should_record(const Variable<T>* inputs, std::size_t n);
template <class T>
bool should_record(const std::vector<Variable<T>>& inputs) {
    return should_record(inputs.data(), inputs.size());
}
// Wraps a forward result: checks it (anomaly mode) and links it to `fn` when recording.
template <class T>
Variable<T> finish(std::shared_ptr<Function<T>> fn, std::string_view op, std::vector<Variable<T>> inputs,
                   Array<T>&& result);
// Throws ResourceError naming the op and its inputs' shapes (an allocation failed in forward).
template <class T>
[[noreturn]] void throw_out_of_memory(std::string_view op, const ArrayRefs<T>& xs);
// fn.forward(xs), with std::bad_alloc turned into ResourceError.
template <class F, class T>
Array<T> run_forward(F& fn, const ArrayRefs<T>& xs) {
    try {
        return fn.forward(xs);
    } catch (const std::bad_alloc&) {
        throw_out_of_memory<T>(fn.name(), xs);
    }
}
}  // namespace detail

// Runs `fn` on `inputs` and records it in the graph when gradients are needed.
template <class F>
Variable<typename F::value_type> apply(std::shared_ptr<F> fn,
                                       std::vector<Variable<typename F::value_type>> inputs) {
    using T = typename F::value_type;
    ArrayRefs<T> xs = detail::input_arrays<T>(fn->name(), inputs);
    Array<T> y = detail::run_forward(*fn, xs);
    const std::string_view op = fn->name();
    return detail::finish<T>(std::move(fn), op, std::move(inputs), std::move(y));
}

// apply<Op>({x, y}, op_args...): when nothing is recorded the op lives on the stack, so
// no-grad mode costs the array arithmetic and little else.
template <class Op, class... Args>
Variable<typename Op::value_type> apply(std::vector<Variable<typename Op::value_type>> inputs,
                                        Args&&... args) {
    using T = typename Op::value_type;
    if (detail::should_record(inputs))
        return apply(std::make_shared<Op>(std::forward<Args>(args)...), std::move(inputs));
    Op op(std::forward<Args>(args)...);
    ArrayRefs<T> xs = detail::input_arrays(op.name(), inputs);
    return detail::finish<T>(nullptr, op.name(), {}, detail::run_forward(op, xs));
}

// The same for a braced list of inputs, apply<Op>({x, y}): the inputs are copied into the graph
// only when the op is recorded (in no-grad mode and in backward passes they are not).
template <class Op, class... Args>
Variable<typename Op::value_type> apply(std::initializer_list<Variable<typename Op::value_type>> inputs,
                                        Args&&... args) {
    using T = typename Op::value_type;
    if (detail::should_record(inputs.begin(), inputs.size()))
        return apply(std::make_shared<Op>(std::forward<Args>(args)...), std::vector<Variable<T>>(inputs));
    Op op(std::forward<Args>(args)...);
    ArrayRefs<T> xs = detail::input_arrays(op.name(), inputs.begin(), inputs.size());
    return detail::finish<T>(nullptr, op.name(), {}, detail::run_forward(op, xs));
}

extern template class Function<float>;
extern template class Function<double>;

}  // namespace xg
