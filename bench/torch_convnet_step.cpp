// The libtorch peer of bench/convnet_step.cpp: the same SimpleConvNet / DeepConvNet, initial
// weights and batch (bench/convnet.hpp), with torch's functional ops and torch::optim::Adam.
//
//   torch_convnet_step time|infer simple|deep BATCH      as convnet_step
//   torch_convnet_step memory simple|deep BATCH N        peak RSS after N training steps
//
// Single-threaded: torch::set_num_threads(1).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "bench/convnet.hpp"

namespace {

using namespace bench::cnn;
namespace F = torch::nn::functional;

torch::Tensor tensor(std::vector<float> v, std::vector<long> shape, bool requires_grad) {
    return torch::from_blob(v.data(), shape, torch::kFloat32).clone().requires_grad_(requires_grad);
}

struct Model {
    Model(std::string_view name, std::size_t batch) : layers(model(name)) {
        std::vector<torch::Tensor> params;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const Layer& l = layers[i];
            if (l.kind != Kind::conv && l.kind != Kind::linear) {
                weights.emplace_back();
                biases.emplace_back();
                continue;
            }
            std::vector<long> shape = {l.out, l.in};
            if (l.kind == Kind::conv) shape.insert(shape.end(), {l.kernel, l.kernel});
            weights.push_back(tensor(he_weight(l, i), shape, true));
            biases.push_back(torch::zeros({l.out}, torch::kFloat32).requires_grad_(true));
            params.insert(params.end(), {weights.back(), biases.back()});
        }
        const long b = static_cast<long>(batch);
        x = tensor(images(batch), {b, 1, image, image}, false);
        std::vector<std::int64_t> ys = bench::cnn::labels(batch);
        y = torch::from_blob(ys.data(), {b}, torch::kInt64).clone();
        adam = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(adam_lr));
    }

    torch::Tensor forward(bool training) {
        torch::Tensor h = x;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const Layer& l = layers[i];
            switch (l.kind) {
                case Kind::conv: h = F::conv2d(h, weights[i], F::Conv2dFuncOptions().bias(biases[i]).padding(l.pad)); break;
                case Kind::relu: h = torch::relu(h); break;
                case Kind::pool: h = torch::max_pool2d(h, {2, 2}); break;
                case Kind::dropout: h = torch::dropout(h, dropout_ratio, training); break;
                case Kind::linear: h = torch::linear(h.flatten(1), weights[i], biases[i]); break;
            }
        }
        return h;
    }

    void step() {
        adam->zero_grad();
        torch::Tensor loss = F::cross_entropy(forward(true), y);
        loss.backward();
        adam->step();
    }

    std::vector<Layer> layers;
    std::vector<torch::Tensor> weights, biases;
    torch::Tensor x, y;
    std::unique_ptr<torch::optim::Adam> adam;
};

std::string key(std::string_view name, std::size_t batch) {
    return "torch.cnn_" + std::string(name) + ".f32.b" + std::to_string(batch);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("torch_convnet_step", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const auto usage = [] {
            return bench::ArgError("usage: torch_convnet_step time|infer simple|deep BATCH | memory simple|deep BATCH STEPS");
        };
        if (args.size() < 3) throw usage();
        const std::string_view mode = bench::choice_arg("mode", args[0], {"time", "infer", "memory"});
        const std::string_view name = bench::choice_arg("model", args[1], {"simple", "deep"});
        const auto batch = static_cast<std::size_t>(bench::integer_arg("BATCH", args[2], 1, 4096));
        if (args.size() != (mode == "memory" ? 4u : 3u)) throw usage();
        torch::set_num_threads(1);

        if (mode == "memory") {
            const long steps = bench::integer_arg("STEPS", args[3], 1, 100'000'000);
            Model m(name, batch);
            for (long i = 0; i < steps; ++i) m.step();
            bench::emit(key(name, batch) + ".peak_rss_kb", static_cast<double>(bench::status_kb("VmHWM")));
            return 0;
        }
        bench::stable_heap();
        Model m(name, batch);
        if (mode == "infer") {
            const bench::Timing t = bench::median_us(
                [&] {
                    torch::NoGradGuard no_grad;
                    m.forward(false);
                },
                3, 20, 2 * bench::budget_s());
            bench::emit(key(name, batch) + ".infer", t);
            return 0;
        }
        {
            torch::NoGradGuard no_grad;
            bench::emit(key(name, batch) + ".loss0", F::cross_entropy(m.forward(false), m.y).item<double>());
        }
        const bench::Timing t = bench::median_us([&] { m.step(); }, 2, 10, 4 * bench::budget_s());
        bench::emit(key(name, batch), t);
        return 0;
    });
}
