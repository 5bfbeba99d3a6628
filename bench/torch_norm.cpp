// The libtorch peer of bench/norm.cpp: torch::layer_norm of x (4096, 512) over its last axis and
// torch::batch_norm in training of x (128, 256) and (32, 16, 24, 24), float32, with weight and
// bias, forward and backward for the same upstream gradient, same data (bench/norm.hpp).
//
//   torch_norm [time]   "key value" lines, microseconds of CPU time per forward+backward
//
// Single-threaded: torch::set_num_threads(1).
#include <torch/torch.h>

#include <string>
#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "bench/norm.hpp"

namespace {

using namespace bench::norm;

torch::Tensor tensor(std::vector<float> v, std::vector<long> shape, bool requires_grad) {
    return torch::from_blob(v.data(), shape, torch::kFloat32).clone().requires_grad_(requires_grad);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("torch_norm", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        if (args.size() > 1 || (args.size() == 1 && args[0] != "time"))
            throw bench::ArgError("usage: torch_norm [time]");
        torch::set_num_threads(1);
        bench::stable_heap();
        for (const Case* c : {&layer_norm, &batch_norm, &batch_norm_images}) {
            torch::Tensor x = tensor(bench::norm::x(*c), c->shape, true), g = tensor(gamma(*c), {c->params}, true),
                          b = tensor(beta(*c), {c->params}, true), gy = tensor(gout(*c), c->shape, false);
            auto body = [&] {
                x.mutable_grad() = torch::Tensor();
                g.mutable_grad() = torch::Tensor();
                b.mutable_grad() = torch::Tensor();
                torch::Tensor y = c == &layer_norm
                                      ? torch::layer_norm(x, {c->params}, g, b, eps)
                                      : torch::batch_norm(x, g, b, {}, {}, true, 0.1, eps, false);
                y.backward(gy);
            };
            const bench::Timing t = bench::median_us(body, 3, 20, 4 * bench::budget_s());
            bench::emit("torch." + std::string(c->key) + ".f32", t);
        }
        return 0;
    });
}
