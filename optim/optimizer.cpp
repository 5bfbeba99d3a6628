#include "optim/optimizer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "graph/error.hpp"

#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
#define XG_HAVE_MXCSR 1
#endif

namespace xg::optim {

namespace {
// While alive, floating-point results in the subnormal range (below 1.2e-38 in float, 2.2e-308
// in double) are flushed to zero on this thread (x86's MXCSR flush-to-zero bit; the old mode is
// restored). Why: the running averages of a parameter whose gradient stopped (a dead ReLU unit)
// decay geometrically through that range (Adam's exp_avg by 0.9 a step), and arithmetic on
// subnormals takes a microcode assist: on an Emerald Rapids Xeon, Adam at batch 32 of the bench's
// MLP took 948 us a step instead of 242 (bench/mlp_step). What is lost is below 1e-38 of a state
// that only ever divides into updates, and an update that small moves no weight above 1e-30.
class FlushSubnormalResults {
public:
#ifdef XG_HAVE_MXCSR
    FlushSubnormalResults() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | _MM_FLUSH_ZERO_ON); }
    ~FlushSubnormalResults() { _mm_setcsr(saved_); }

private:
    unsigned saved_;
#endif
};
}  // namespace

namespace detail {
void require(bool ok, std::string_view who, std::string_view what, double value, std::string_view expected) {
    if (!ok) throw ValueError(fmt::format("{}: {} must be {}, got {}", who, what, expected, value));
}
}  // namespace detail

template <class T>
Optimizer<T>::Optimizer(std::string name, std::vector<Variable<T>> params, double lr, double weight_decay,
                        WeightDecay decay, std::vector<StateSpec> state_specs)
    : name_(std::move(name)),
      state_specs_(std::move(state_specs)),
      params_(std::move(params)),
      states_(params_.size()),
      lr_(lr),
      weight_decay_(weight_decay),
      decay_(decay) {
    set_lr(lr);
    detail::require(weight_decay >= 0 && std::isfinite(weight_decay), name_, "weight_decay", weight_decay,
                    "finite and >= 0");
    std::unordered_map<const void*, std::size_t> seen;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        if (!params_[i].defined()) throw ValueError(fmt::format("{}: parameter {} is undefined", name_, i));
        // Listed twice, a parameter would be updated twice per step.
        if (auto [at, fresh] = seen.emplace(params_[i].node(), i); !fresh)
            throw ValueError(fmt::format("{}: parameters {} and {} are the same variable", name_, at->second, i));
    }
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
    detail::require(lr >= 0 && std::isfinite(lr), name_, "lr", lr, "finite and >= 0");
    lr_ = lr;
}

template <class T>
void Optimizer<T>::step() {
    // Every gradient is checked before any parameter changes: a step is applied whole or not at all.
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Variable<T>& p = params_[i];
        if (p.has_grad() && p.grad().shape() != p.shape())
            throw ShapeError(fmt::format("{}: step: parameter {}{} has shape {} but its gradient has shape {}", name_,
                                         i, p.name().empty() ? "" : " (" + p.name() + ")", shape_str(p.shape()),
                                         shape_str(p.grad().shape())));
    }
    const T wd = static_cast<T>(weight_decay_);
    const FlushSubnormalResults flush;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Variable<T>& p = params_[i];
        if (!p.has_grad()) continue;
        const Variable<T> grad = p.grad();
        const Array<T>& g = grad.data();
        Array<T>& w = p.mutable_data();
        ++states_[i].steps;
        // Plain loops (GCC vectorises them) rather than xtensor expressions: the same values,
        // a fraction of the compile time.
        T* pw = w.data();
        const T* pg = g.data();
        const std::size_t n = w.size();
        if (weight_decay_ == 0) {
            update(i, w, g);
        } else if (decay_ == WeightDecay::l2) {
            Array<T> decayed = Array<T>::from_shape(g.shape());  // g + wd * w
            T* pd = decayed.data();
            for (std::size_t k = 0; k < n; ++k) pd[k] = pg[k] + wd * pw[k];
            update(i, w, decayed);
        } else {
            const T lr_wd = static_cast<T>(lr_) * wd;  // w -= lr * wd * w
            for (std::size_t k = 0; k < n; ++k) pw[k] = pw[k] - lr_wd * pw[k];
            update(i, w, g);
        }
    }
}

template <class T>
void Optimizer<T>::zero_grad() {
    for (const Variable<T>& p : params_) p.zero_grad();
}

template <class T>
std::vector<Array<T>>& Optimizer<T>::state(std::size_t i, const Array<T>& w) {
    std::vector<Array<T>>& arrays = states_[i].arrays;
    if (arrays.empty()) {
        Array<T> zeros = Array<T>::from_shape(w.shape());
        std::fill_n(zeros.data(), zeros.size(), T(0));
        arrays.assign(state_specs_.size(), zeros);
    }
    // A parameter replaced by one of another shape (set_data) would index stale state.
    for (const Array<T>& a : arrays)
        if (a.shape() != w.shape())
            throw ShapeError(fmt::format("{}: parameter {} changed shape from {} to {} between steps", name_, i,
                                         shape_str(a.shape()), shape_str(w.shape())));
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
        for (std::size_t k = 0; k < s.arrays.size(); ++k)
            out.emplace_back(fmt::format("{}.{}", i, state_specs_[k].name), s.arrays[k]);
    }
    return out;
}

template <class T>
void Optimizer<T>::load_state_dict(const StateDict<T>& state) {
    auto bad = [&](const std::string& what) { return ValueError(fmt::format("{}: load_state_dict: {}", name_, what)); };
    auto expected_names = [&] {
        std::string names = "steps";
        for (const StateSpec& spec : state_specs_) names += ", " + spec.name;
        return names;
    };
    double lr = lr_;
    bool has_lr = false;
    std::vector<State> states(params_.size());
    std::vector<std::vector<const Array<T>*>> given(params_.size(), std::vector<const Array<T>*>(state_specs_.size()));
    std::vector<bool> has_steps(params_.size(), false);
    for (const auto& [key, array] : state) {
        if (key == "lr") {
            if (has_lr) throw bad("'lr' appears twice");
            has_lr = true;
            if (array.size() != 1) throw ShapeError(fmt::format("{}: load_state_dict: 'lr' has shape {}, not one value",
                                                                name_, shape_str(array.shape())));
            const double stored = static_cast<double>(array.data()[0]);
            detail::require(std::isfinite(stored) && stored >= 0, name_, "the stored lr", stored, "finite and >= 0");
            // Stored at T's precision: keep the exact rate when it rounds to the stored one, so
            // a resumed run continues bit for bit.
            if (static_cast<T>(lr_) != array.data()[0]) lr = stored;
            continue;
        }
        // "<i>.<name>", i a parameter number in plain decimal.
        const std::size_t dot = key.find('.');
        std::size_t i = 0;
        const char* first = key.data();
        const char* last = key.data() + (dot == std::string::npos ? key.size() : dot);
        const auto [end, ec] = std::from_chars(first, last, i);
        if (dot == std::string::npos || dot == 0 || ec != std::errc() || end != last)
            throw bad(fmt::format("unexpected entry '{}' (expected 'lr' or '<parameter>.<{}>')", key,
                                  expected_names()));
        if (i >= params_.size())
            throw bad(fmt::format("entry '{}' is for parameter {}, but there are {} parameters", key, i,
                                  params_.size()));
        const std::string name = key.substr(dot + 1);
        if (name == "steps") {
            if (has_steps[i]) throw bad(fmt::format("'{}' appears twice", key));
            has_steps[i] = true;
            if (array.size() != 1)
                throw ShapeError(fmt::format("{}: load_state_dict: '{}' has shape {}, not one value", name_, key,
                                             shape_str(array.shape())));
            const double steps = static_cast<double>(array.data()[0]);
            // Whole and exactly representable in T (float holds integers up to 2^24 exactly).
            const double most = sizeof(T) == 4 ? 16777216.0 : 9007199254740992.0;
            if (!(steps >= 1 && steps <= most && steps == std::floor(steps)))
                throw bad(fmt::format("'{}' is {}, not a whole number of steps in [1, {}]", key, steps, most));
            states[i].steps = static_cast<long>(steps);
            continue;
        }
        std::size_t k = 0;
        while (k < state_specs_.size() && state_specs_[k].name != name) ++k;
        if (k == state_specs_.size())
            throw bad(fmt::format("unexpected entry '{}': {} keeps '{}' per parameter (is this state from another "
                                  "optimizer?)",
                                  key, name_, expected_names()));
        if (given[i][k]) throw bad(fmt::format("'{}' appears twice", key));
        if (array.shape() != params_[i].shape())
            throw ShapeError(fmt::format("{}: load_state_dict: '{}' has shape {} but parameter {} has shape {}", name_,
                                         key, shape_str(array.shape()), i, shape_str(params_[i].shape())));
        for (std::size_t e = 0; e < array.size(); ++e) {
            const T v = array.data()[e];
            if (!std::isfinite(v) || (state_specs_[k].non_negative && v < 0))
                throw bad(fmt::format("'{}' holds {} at element {}{}", key, v, e,
                                      state_specs_[k].non_negative ? " (must be finite and >= 0)" : " (must be finite)"));
        }
        given[i][k] = &array;
    }
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const bool any_array = std::any_of(given[i].begin(), given[i].end(), [](const Array<T>* a) { return a; });
        if (!has_steps[i] && !any_array) continue;  // never updated
        if (!has_steps[i]) throw bad(fmt::format("parameter {} has state arrays but no '{}.steps'", i, i));
        for (std::size_t k = 0; k < state_specs_.size(); ++k) {
            if (!given[i][k])
                throw bad(fmt::format("'{}.{}' is missing (parameter {} was updated {} times)", i,
                                      state_specs_[k].name, i, states[i].steps));
            states[i].arrays.push_back(*given[i][k]);
        }
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
        const T* g = grad.data().data();
        for (std::size_t k = 0, n = grad.size(); k < n; ++k)
            squares += static_cast<double>(g[k]) * static_cast<double>(g[k]);
    }
    const double norm = std::sqrt(squares);
    if (!std::isfinite(norm)) throw ValueError("clip_grad_norm: the gradient norm is not finite (NaN or Inf)");
    if (norm > max_norm) {
        const T scale = static_cast<T>(max_norm / norm);
        for (const Variable<T>& p : params)
            if (p.has_grad()) {
                Array<T>& g = p.grad().mutable_data();
                for (std::size_t k = 0, n = g.size(); k < n; ++k) g.data()[k] *= scale;
            }
    }
    return norm;
}

#define XG_INSTANTIATE(T)       \
    template class Optimizer<T>; \
    template double clip_grad_norm(const std::vector<Variable<T>>&, double);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::optim
