// norm: xgrad's fused normalisation ops against the same functions composed of ops, forward and
// backward for a fixed upstream gradient, float32, timed in turns in one process: layer_norm on
// (4096, 512) (composed: mean, var, rsqrt, products) and batch_norm in training on (128, 256) and
// on images (32, 16, 24, 24) (composed: nn::BatchNorm1d's and BatchNorm2d's ops before the fused
// op). bench/norm.hpp has the sizes and data; bench/torch_norm.cpp is libtorch's peer.
//
//   norm [time]                                 "key value" lines, microseconds of CPU time per forward+backward
//   norm run ln|bn|bn4d fused|composed STEPS    just the steps, for a profiler
#include <algorithm>
#include <cmath>
#include <functional>
#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "bench/norm.hpp"
#include "xgrad.hpp"

namespace {

using namespace bench::norm;
using V = xg::Variable<float>;

V variable(const std::vector<float>& v, const std::vector<long>& shape, bool requires_grad) {
    xg::Array<float> a = xg::Array<float>::from_shape(xg::Shape(shape.begin(), shape.end()));
    std::copy(v.begin(), v.end(), a.data());
    return V(std::move(a), requires_grad);
}

// The composed forms: what the fused ops replace.
V composed_layer_norm(const V& x, const V& g, const V& b) {
    const V centred = x - xg::mean(x, 1, true);
    return centred * xg::rsqrt(xg::var(x, 1, 0, true) + eps) * g + b;
}
V composed_batch_norm(const V& x, const V& g, const V& b) {
    std::vector<long> axes{0}, channel{1, static_cast<long>(x.shape()[1])};
    for (std::size_t a = 2; a < x.ndim(); ++a) {
        axes.push_back(static_cast<long>(a));
        channel.push_back(1);
    }
    const V centred = x - xg::mean(x, axes, true);
    const V var = xg::mean(centred * centred, axes, true);
    return centred / xg::sqrt(var + eps) * xg::reshape(g, channel) + xg::reshape(b, channel);
}

struct Step {
    Step(const Case& c, bool fused) : c(c), fused(fused) {}
    const Case& c;
    bool fused;
    V x = variable(bench::norm::x(c), c.shape, true), g = variable(gamma(c), {c.params}, true),
      b = variable(beta(c), {c.params}, true), gy = variable(gout(c), c.shape, false);
    V forward() const {
        if (&c == &layer_norm) return fused ? xg::layer_norm(x, {x.shape()[1]}, g, b, eps) : composed_layer_norm(x, g, b);
        return fused ? xg::batch_norm(x, g, b, eps) : composed_batch_norm(x, g, b);
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

const Case& case_named(std::string_view key) {
    const std::string_view k = bench::choice_arg("op", key, {"ln", "bn", "bn4d"});
    return k == "ln" ? layer_norm : k == "bn" ? batch_norm : batch_norm_images;
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("norm", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const std::string_view mode = args.empty() ? "time" : args[0];
        bench::stable_heap();
        if (mode == "run" && args.size() == 4) {
            const Case& c = case_named(args[1]);
            const std::string_view what = bench::choice_arg("what", args[2], {"fused", "composed"});
            const long steps = bench::integer_arg("STEPS", args[3], 1, 100'000'000);
            Step s(c, what == "fused");
            for (long i = 0; i < steps; ++i) s();
            return 0;
        }
        if (mode != "time" || args.size() > 2)
            throw bench::ArgError("usage: norm [time [ln|bn|bn4d] | run ln|bn|bn4d fused|composed STEPS]");
        std::vector<const Case*> cases{&layer_norm, &batch_norm, &batch_norm_images};
        if (args.size() == 2) cases = {&case_named(args[1])};
        for (const Case* c : cases) {
            Step fused(*c, true), composed(*c, false);
            fused();
            composed();
            // The two agree (float32 rounding apart): largest differences of the output and x's gradient.
            const std::string key = c->key;
            bench::emit(key + ".f32.max_out_diff", max_abs_diff(fused.forward().data(), composed.forward().data()));
            bench::emit(key + ".f32.max_grad_diff", max_abs_diff(fused.x.grad().data(), composed.x.grad().data()));
            const std::vector<std::function<void()>> bodies = {[&] { fused(); }, [&] { composed(); }};
            const auto t = bench::interleaved_median_us(bodies, 5, 3, 20, 4 * bench::budget_s());
            bench::emit("xgrad." + key + ".f32", t[0]);
            bench::emit("xgrad." + key + "_composed.f32", t[1]);
        }
        return 0;
    });
}
