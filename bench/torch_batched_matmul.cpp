// The libtorch peer of bench/batched_matmul.cpp: torch::matmul of a (64, 64, 64) by b (64, 64, 64)
// in float32, forward and backward for the same upstream gradient, same data.
//
//   torch_batched_matmul [time]   "key value" lines, microseconds of CPU time per forward+backward
//
// Single-threaded: torch::set_num_threads(1), and OPENBLAS_NUM_THREADS=1 from scripts/bench.
#include <torch/torch.h>

#include <string_view>
#include <vector>

#include "bench/batched_matmul.hpp"
#include "bench/common.hpp"

namespace {

using namespace bench::bmm;

torch::Tensor tensor(std::uint64_t stream, bool requires_grad) {
    std::vector<float> v = data(B * M * K, stream);
    return torch::from_blob(v.data(), {long(B), long(M), long(K)}, torch::kFloat32).clone().requires_grad_(requires_grad);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("torch_batched_matmul", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        if (args.size() > 1 || (args.size() == 1 && args[0] != "time"))
            throw bench::ArgError("usage: torch_batched_matmul [time]");
        torch::set_num_threads(1);
        bench::stable_heap();
        torch::Tensor a = tensor(0, true), b = tensor(1, true), g = tensor(2, false);
        auto body = [&] {
            a.mutable_grad() = torch::Tensor();
            b.mutable_grad() = torch::Tensor();
            torch::matmul(a, b).backward(g);
        };
        const bench::Timing t = bench::median_us(body, 5, 30, 4 * bench::budget_s());
        bench::emit("torch.bmm.f32.b64", t);
        return 0;
    });
}
