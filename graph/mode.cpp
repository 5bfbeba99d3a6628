#include "graph/mode.hpp"

namespace xg {
namespace {
thread_local bool grad_mode = true;
thread_local bool anomaly_mode = false;
}  // namespace

bool grad_enabled() { return grad_mode; }
bool anomaly_enabled() { return anomaly_mode; }
bool recording_backward() { return grad_mode && detail::backward_running(); }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

GradModeGuard::GradModeGuard(bool enabled) : previous_(grad_mode) { grad_mode = enabled; }
GradModeGuard::~GradModeGuard() { grad_mode = previous_; }

AnomalyGuard::AnomalyGuard(bool enabled) : previous_(anomaly_mode) { anomaly_mode = enabled; }
AnomalyGuard::~AnomalyGuard() { anomaly_mode = previous_; }

std::string_view& detail::backward_context() {
    thread_local std::string_view context;
    return context;
}

bool& detail::backward_running() {
    thread_local bool running = false;
    return running;
}

}  // namespace xg
