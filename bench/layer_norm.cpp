// layer_norm: xgrad's fused layer_norm on x (4096, 512) float32 with gamma and beta (512,),
// forward and backward for a fixed upstream gradient, against the same function composed of ops
// (mean, var, rsqrt, products), timed in turns in one process (bench/layer_norm.hpp has the sizes;
// bench/torch_layer_norm.cpp is libtorch's peer).
//
//   layer_norm [time]                 "key value" lines, microseconds of CPU time per forward+backward
//   layer_norm run fused|composed STEPS   just the steps, for a profiler
#include <algorithm>
#include <cmath>
#include <functional>
#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "bench/layer_norm.hpp"
#include "xgrad.hpp"

namespace {

using namespace bench::ln;
using V = xg::Variable<float>;

V variable(const std::vector<float>& v, const xg::Shape& shape, bool requires_grad) {
    xg::Array<float> a = xg::Array<float>::from_shape(shape);
    std::copy(v.begin(), v.end(), a.data());
    return V(std::move(a), requires_grad);
}

struct Step {
    explicit Step(bool fused) : fused(fused) {}
    V x = variable(bench::ln::x(), {rows, cols}, true), g = variable(gamma(), {cols}, true),
      b = variable(beta(), {cols}, true), gy = variable(gout(), {rows, cols}, false);
    bool fused;
    V forward() const {
        if (fused) return xg::layer_norm(x, {cols}, g, b, eps);
        const V centred = x - xg::mean(x, 1, true);
        return centred * xg::rsqrt(xg::var(x, 1, 0, true) + eps) * g + b;
    }
    void operator()() {
        x.zero_grad();
        g.zero_grad();
        b.zero_grad();
        forward().backward(gy);
    }
};

double max_abs_diff(const xg::Array<float>& a, const xg::Array<float>& b) {
    double d = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        d = std::max(d, static_cast<double>(std::abs(a.data()[i] - b.data()[i])));
    return d;
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("layer_norm", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const std::string_view mode = args.empty() ? "time" : args[0];
        bench::stable_heap();
        if (mode == "run" && args.size() == 3) {
            const std::string_view what = bench::choice_arg("what", args[1], {"fused", "composed"});
            const long steps = bench::integer_arg("STEPS", args[2], 1, 100'000'000);
            Step s(what == "fused");
            for (long i = 0; i < steps; ++i) s();
            return 0;
        }
        if (mode != "time" || args.size() > 1)
            throw bench::ArgError("usage: layer_norm [time | run fused|composed STEPS]");
        Step fused(true), composed(false);
        fused();
        composed();
        // The two agree (float32 rounding apart): largest differences of the output and x's gradient.
        bench::emit("ln.f32.max_out_diff", max_abs_diff(fused.forward().data(), composed.forward().data()));
        bench::emit("ln.f32.max_grad_diff", max_abs_diff(fused.x.grad().data(), composed.x.grad().data()));
        const std::vector<std::function<void()>> bodies = {[&] { fused(); }, [&] { composed(); }};
        const auto t = bench::interleaved_median_us(bodies, 5, 3, 20, 4 * bench::budget_s());
        bench::emit("xgrad.ln.f32", t[0]);
        bench::emit("xgrad.ln_composed.f32", t[1]);
        return 0;
    });
}
