#pragma once
// Thread-local switches: whether ops record the graph, and whether NaN/Inf is checked.
#include <string_view>

namespace xg {

bool grad_enabled();
bool anomaly_enabled();

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
}  // namespace detail

}  // namespace xg
