#pragma once
// Thread-local switches: whether ops record the graph, and whether NaN/Inf is checked.
#include <string_view>

namespace xg {

// Whether ops record the graph now (off inside NoGradGuard, and in a backward pass without
// create_graph).
bool grad_enabled();
bool anomaly_enabled();

// Whether the backward pass now running is being recorded: true inside an op's backward() when
// the pass was asked for with create_graph (`y.backward({.create_graph = true})`, `xg::grad(...,
// {.create_graph = true})`), so the gradients it returns must be built from ops to be
// differentiable again; false in a plain backward pass, where a backward may compute on arrays
// (or reuse what its forward saved), and false outside any backward pass. This is the question
// an op's backward asks before taking a shortcut that is not made of ops; inside a backward it
// has the same value as grad_enabled(), but says what is meant.
bool recording_backward();

// RAII: inside, ops record nothing (like torch::NoGradGuard, DeZero's no_grad()).
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// RAII: sets grad recording on or off, restoring the previous state on exit.
class GradModeGuard {
public:
    explicit GradModeGuard(bool enabled);
    ~GradModeGuard();
    GradModeGuard(const GradModeGuard&) = delete;
    GradModeGuard& operator=(const GradModeGuard&) = delete;

private:
    bool previous_;
};

// RAII: every forward and backward result is checked for NaN/Inf; the first offender throws
// ValueError naming the op. Costs one pass over each result, so it is off by default.
class AnomalyGuard {
public:
    explicit AnomalyGuard(bool enabled = true);
    ~AnomalyGuard();
    AnomalyGuard(const AnomalyGuard&) = delete;
    AnomalyGuard& operator=(const AnomalyGuard&) = delete;

private:
    bool previous_;
};

namespace detail {
// The op whose backward() is running, named in anomaly reports; empty outside backward.
std::string_view& backward_context();
// Whether an op's backward() is running on this thread (set by the backward engine).
bool& backward_running();
}  // namespace detail

}  // namespace xg
