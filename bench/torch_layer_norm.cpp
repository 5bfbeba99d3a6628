// The libtorch peer of bench/layer_norm.cpp: torch::layer_norm of x (4096, 512) float32 over its
// last axis with weight and bias (512,), forward and backward for the same upstream gradient,
// same data.
//
//   torch_layer_norm [time]   "key value" lines, microseconds of CPU time per forward+backward
//
// Single-threaded: torch::set_num_threads(1).
#include <torch/torch.h>

#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "bench/layer_norm.hpp"

namespace {

using namespace bench::ln;

torch::Tensor tensor(std::vector<float> v, std::vector<long> shape, bool requires_grad) {
    return torch::from_blob(v.data(), shape, torch::kFloat32).clone().requires_grad_(requires_grad);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("torch_layer_norm", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        if (args.size() > 1 || (args.size() == 1 && args[0] != "time"))
            throw bench::ArgError("usage: torch_layer_norm [time]");
        torch::set_num_threads(1);
        bench::stable_heap();
        const long r = static_cast<long>(rows), c = static_cast<long>(cols);
        torch::Tensor x = tensor(bench::ln::x(), {r, c}, true), g = tensor(gamma(), {c}, true),
                      b = tensor(beta(), {c}, true), gy = tensor(gout(), {r, c}, false);
        auto body = [&] {
            x.mutable_grad() = torch::Tensor();
            g.mutable_grad() = torch::Tensor();
            b.mutable_grad() = torch::Tensor();
            torch::layer_norm(x, {c}, g, b, eps).backward(gy);
        };
        const bench::Timing t = bench::median_us(body, 3, 20, 4 * bench::budget_s());
        bench::emit("torch.ln.f32", t);
        return 0;
    });
}
