// The peer: the same benchmarks with libtorch's C++ frontend (Debian's libtorch 1.13), the same
// model, initial weights and batch as mlp_step and op_overhead (bench/common.hpp).
//
//   torch_step time [f32|f64] [BATCH]   training step times, as mlp_step time
//   torch_step overhead      the tiny graph (add of two 1x1 tensors, sum, backward)
//   torch_step memory N      peak RSS after N Adam steps at batch 128
//
// Single-threaded: torch::set_num_threads(1), and OPENBLAS_NUM_THREADS=1 from scripts/bench.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common.hpp"

namespace {

using bench::emit;

struct Model {
    Model(std::size_t batch, torch::Dtype dtype) {
        for (std::size_t l = 0; l < bench::n_layers; ++l) {
            const auto in = static_cast<long>(bench::layer_sizes[l]), out = static_cast<long>(bench::layer_sizes[l + 1]);
            auto linear = torch::nn::Linear(in, out);
            {
                torch::NoGradGuard no_grad;
                // bench::he_weight is (in, out) row-major; torch's Linear holds (out, in).
                std::vector<double> w = bench::he_weight<double>(l);
                linear->weight.copy_(torch::from_blob(w.data(), {in, out}, torch::kFloat64).t());
                linear->bias.zero_();
            }
            net->push_back(linear);
            if (l + 1 < bench::n_layers) net->push_back(torch::nn::ReLU());
        }
        net->to(dtype);
        std::vector<double> xs = bench::inputs<double>(batch);
        x = torch::from_blob(xs.data(), {static_cast<long>(batch), static_cast<long>(bench::layer_sizes.front())},
                             torch::kFloat64)
                .to(dtype)
                .clone();  // .to() of the same dtype aliases `xs`, which dies here
        std::vector<std::int64_t> ys = bench::labels(batch);
        y = torch::from_blob(ys.data(), {static_cast<long>(batch)}, torch::kInt64).clone();
    }
    torch::nn::Sequential net;
    torch::Tensor x, y;
};

double step(Model& m, torch::optim::Optimizer& opt) {
    opt.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(m.net->forward(m.x), m.y);
    loss.backward();
    opt.step();
    return loss.item<double>();
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, Model& m) {
    if (name == "sgd")
        return std::make_unique<torch::optim::SGD>(m.net->parameters(), torch::optim::SGDOptions(bench::sgd_lr));
    return std::make_unique<torch::optim::Adam>(m.net->parameters(), torch::optim::AdamOptions(bench::adam_lr));
}

// The SGD step and the Adam step of one dtype and batch, timed in turns (as mlp_step does).
void time_config(const char* dtype_name, torch::Dtype dtype, std::size_t batch) {
    Model sgd_model(batch, dtype), adam_model(batch, dtype);
    auto sgd = make_optimizer("sgd", sgd_model);
    auto adam = make_optimizer("adam", adam_model);
    double sgd_loss = 0, adam_loss = 0;
    for (int i = 0; i < 10; ++i) {
        sgd_loss = step(sgd_model, *sgd);
        adam_loss = step(adam_model, *adam);
    }
    const std::string ks = bench::key("torch", dtype_name, "sgd", batch);
    const std::string ka = bench::key("torch", dtype_name, "adam", batch);
    emit(ks + ".loss10", sgd_loss);
    emit(ka + ".loss10", adam_loss);
    const std::vector<std::function<void()>> bodies = {[&] { step(sgd_model, *sgd); },
                                                       [&] { step(adam_model, *adam); }};
    const auto t = bench::interleaved_median_us(bodies, batch >= 1024 ? 4 : 10, batch >= 1024 ? 2 : 5, 30, 2 * bench::budget_s());
    emit(ks, t[0]);
    emit(ka, t[1]);
}

void overhead() {
    torch::Tensor a = torch::full({1, 1}, 1.5f, torch::requires_grad());
    torch::Tensor b = torch::full({1, 1}, -0.5f, torch::requires_grad());
    emit("torch.tiny", bench::median_us_blocked(
                              [&] {
                                  torch::Tensor s = (a + b).sum();
                                  s.backward();
                              },
                              100, 20, 50, bench::budget_s()));
    torch::NoGradGuard no_grad;
    volatile float sink = 0;
    emit("torch.nograd_add", bench::median_us_blocked(
                                    [&] {
                                        torch::Tensor c = a + b;
                                        sink = sink + c.data_ptr<float>()[0];
                                    },
                                    1000, 20, 50, bench::budget_s()));
}

void memory(long steps) {
    Model m(128, torch::kFloat32);
    torch::optim::Adam opt(m.net->parameters(), torch::optim::AdamOptions(bench::adam_lr));
    for (long i = 0; i < steps; ++i) step(m, opt);
    emit("torch.rss_kb.after" + std::to_string(steps), static_cast<double>(bench::status_kb("VmRSS")));
    emit("torch.peak_rss_kb.after" + std::to_string(steps), static_cast<double>(bench::status_kb("VmHWM")));
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("torch_step", [&] {
        torch::set_num_threads(1);
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const std::string_view mode = args.empty() ? "time" : args[0];
        const std::size_t most = mode == "time" ? 3 : mode == "memory" ? 2 : 1;  // words, the mode included
        if ((mode != "overhead" && mode != "memory" && mode != "time") || args.size() > most)
            throw bench::ArgError("usage: torch_step [time [f32|f64] [32|128|1024] | overhead | memory N]");
        if (mode == "overhead") {
            bench::stable_heap();
            overhead();
        } else if (mode == "memory") {
            memory(args.size() > 1 ? bench::integer_arg("N", args[1], 1, 100'000'000) : 1000);
        } else {
            // Optional filters, as mlp_step's: torch_step time [f32|f64] [BATCH]
            const std::string_view only_dtype = args.size() > 1 ? bench::choice_arg("dtype", args[1], {"f32", "f64"}) : "";
            const std::size_t only_batch =
                args.size() > 2 ? std::stoul(std::string(bench::choice_arg("BATCH", args[2], {"32", "128", "1024"}))) : 0;
            bench::stable_heap();
            for (const std::size_t batch : {32, 128, 1024}) {
                if (only_batch != 0 && batch != only_batch) continue;
                if (only_dtype != "f64") time_config("f32", torch::kFloat32, batch);
            }
            for (const std::size_t batch : {32, 128, 1024}) {
                if (only_batch != 0 && batch != only_batch) continue;
                if (only_dtype != "f32") time_config("f64", torch::kFloat64, batch);
            }
        }
        return 0;
    });
}
