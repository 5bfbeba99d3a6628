#include "optim/optimizer.hpp"

#include <cmath>
#include <cstdio>
#include <utility>

#include <fmt/format.h>
#include <xtensor/xnoalias.hpp>

#include "graph/error.hpp"

namespace xg::optim {

namespace detail {
void require(bool ok, std::string_view who, std::string_view what, double value, std::string_view expected) {
    if (!ok) throw ValueError(fmt::format("{}: {} must be {}, got {}", who, what, expected, value));
}
}  // namespace detail

template <class T>
Optimizer<T>::Optimizer(std::string name, std::vector<Variable<T>> params, double lr, double weight_decay,
                        WeightDecay decay)
    : name_(std::move(name)),
      params_(std::move(params)),
      states_(params_.size()),
      lr_(lr),
      weight_decay_(weight_decay),
      decay_(decay) {
    set_lr(lr);
    detail::require(weight_decay >= 0 && std::isfinite(weight_decay), name_, "weight_decay", weight_decay,
                    "finite and >= 0");
    for (std::size_t i = 0; i < params_.size(); ++i)
        if (!params_[i].defined()) throw ValueError(fmt::format("{}: parameter {} is undefined", name_, i));
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
    detail::require(lr >= 0 && std::isfinite(lr), name_, "lr", lr, "finite and >= 0");
    lr_ = lr;
}

template <class T>
void Optimizer<T>::step() {
    const T wd = static_cast<T>(weight_decay_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
        Variable<T>& p = params_[i];
        if (!p.has_grad()) continue;
        Array<T>& w = p.data();
        const Array<T>& g = p.grad().data();
        ++states_[i].steps;
        if (weight_decay_ == 0) {
            update(i, w, g);
        } else if (decay_ == WeightDecay::l2) {
            update(i, w, Array<T>(g + wd * w));
        } else {
            xt::noalias(w) -= static_cast<T>(lr_) * wd * w;
            update(i, w, g);
        }
    }
}

template <class T>
void Optimizer<T>::zero_grad() {
    for (const Variable<T>& p : params_) p.zero_grad();
}

template <class T>
std::vector<Array<T>>& Optimizer<T>::state(std::size_t i, std::size_t n, const Array<T>& w) {
    std::vector<Array<T>>& arrays = states_[i].arrays;
    if (arrays.empty()) arrays.assign(n, Array<T>(xt::zeros<T>(w.shape())));
    // A parameter replaced by one of another shape (set_data) would index stale state.
    if (arrays.front().shape() != w.shape())
        throw ShapeError(fmt::format("{}: parameter {} changed shape from {} to {} between steps", name_, i,
                                     shape_str(arrays.front().shape()), shape_str(w.shape())));
    return arrays;
}

template <class T>
StateDict<T> Optimizer<T>::state_dict() const {
    StateDict<T> out;
    out.emplace_back("lr", Array<T>(static_cast<T>(lr_)));
    for (std::size_t i = 0; i < states_.size(); ++i) {
        const State& s = states_[i];
        if (s.steps == 0) continue;
        out.emplace_back(fmt::format("{}.steps", i), Array<T>(static_cast<T>(s.steps)));
        for (std::size_t k = 0; k < s.arrays.size(); ++k) out.emplace_back(fmt::format("{}.{}", i, k), s.arrays[k]);
    }
    return out;
}

template <class T>
void Optimizer<T>::load_state_dict(const StateDict<T>& state) {
    auto bad = [&](const std::string& what) { return ValueError(fmt::format("{}: load_state_dict: {}", name_, what)); };
    double lr = lr_;
    std::vector<State> states(params_.size());
    for (const auto& [key, array] : state) {
        if (key == "lr") {
            if (array.size() != 1) throw bad(fmt::format("'lr' has shape {}", shape_str(array.shape())));
            // Stored at T's precision: keep the exact rate when it rounds to the stored one, so
            // a resumed run continues bit for bit.
            if (static_cast<T>(lr_) != array.data()[0]) lr = static_cast<double>(array.data()[0]);
            continue;
        }
        std::size_t i = 0, k = 0;
        char rest[8] = {};
        if (std::sscanf(key.c_str(), "%zu.%7s", &i, rest) != 2 || i >= params_.size())
            throw bad(fmt::format("unexpected entry '{}' for {} parameters", key, params_.size()));
        if (std::string(rest) == "steps") {
            if (array.size() != 1) throw bad(fmt::format("'{}' has shape {}", key, shape_str(array.shape())));
            states[i].steps = static_cast<long>(array.data()[0]);
            continue;
        }
        if (std::sscanf(rest, "%zu", &k) != 1 || k != states[i].arrays.size())
            throw bad(fmt::format("unexpected entry '{}' (state arrays must come in order)", key));
        if (array.shape() != params_[i].shape())
            throw bad(fmt::format("'{}' has shape {} but parameter {} has shape {}", key, shape_str(array.shape()), i,
                                  shape_str(params_[i].shape())));
        states[i].arrays.push_back(array);
    }
    set_lr(lr);
    states_ = std::move(states);
}

template <class T>
double clip_grad_norm(const std::vector<Variable<T>>& params, double max_norm) {
    detail::require(max_norm >= 0 && std::isfinite(max_norm), "clip_grad_norm", "max_norm", max_norm,
                    "finite and >= 0");
    double squares = 0;  // in double: float gradients' squares overflow and lose digits
    for (const Variable<T>& p : params) {
        if (!p.has_grad()) continue;
        const Variable<T> grad = p.grad();
        for (const T g : grad.data()) squares += static_cast<double>(g) * static_cast<double>(g);
    }
    const double norm = std::sqrt(squares);
    if (!std::isfinite(norm)) throw ValueError("clip_grad_norm: the gradient norm is not finite (NaN or Inf)");
    if (norm > max_norm) {
        const T scale = static_cast<T>(max_norm / norm);
        for (const Variable<T>& p : params)
            if (p.has_grad()) p.grad().data() *= scale;
    }
    return norm;
}

#define XG_INSTANTIATE(T)       \
    template class Optimizer<T>; \
    template double clip_grad_norm(const std::vector<Variable<T>>&, double);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
