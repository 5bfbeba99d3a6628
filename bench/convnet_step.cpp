// convnet_step: one training step (forward, softmax cross-entropy, backward, Adam) of the book's
// SimpleConvNet or DeepConvNet (bench/convnet.hpp) in float32, and, in the same process, the
// step's GEMMs alone: for each convolution and each image, the im2col products of the forward
// pass, the weight gradient and the input gradient (not for the first layer, whose input needs no
// gradient), and the three products of each affine layer, through cblas_sgemm on buffers of the
// same shapes. That limit leaves out im2col itself, pooling, activations and the optimizer.
//
//   convnet_step time simple|deep BATCH      step and limit times ("key value" lines, microseconds)
//   convnet_step infer simple|deep BATCH     no-grad forward in evaluation mode
//   convnet_step memory simple|deep BATCH N  peak RSS after N training steps (glibc's default heap)
//   convnet_step run simple|deep BATCH N     just N steps, for a profiler
//
// Run single-threaded (OPENBLAS_NUM_THREADS=1; scripts/bench sets it).
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "bench/gemm_limit.hpp"
#include "bench/convnet.hpp"
#include "xgrad.hpp"

namespace {

using namespace bench::cnn;
using V = xg::Variable<float>;

V variable(const std::vector<float>& v, const xg::Shape& shape, bool requires_grad) {
    xg::Array<float> a = xg::Array<float>::from_shape(shape);
    std::copy(v.begin(), v.end(), a.data());
    return V(std::move(a), requires_grad);
}

struct Model {
    Model(std::string_view name, std::size_t batch) : layers(model(name)) {
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const Layer& l = layers[i];
            if (l.kind != Kind::conv && l.kind != Kind::linear) {
                weights.emplace_back();
                biases.emplace_back();
                continue;
            }
            const auto in = static_cast<std::size_t>(l.in), out = static_cast<std::size_t>(l.out);
            std::vector<float> w = he_weight(l, i);
            if (l.kind == Kind::conv) {
                const auto k = static_cast<std::size_t>(l.kernel);
                weights.push_back(variable(w, {out, in, k, k}, true));
            } else {  // xgrad's affine weight is (in, out): the transpose of torch's
                std::vector<float> t(w.size());
                for (std::size_t o = 0; o < out; ++o)
                    for (std::size_t j = 0; j < in; ++j) t[j * out + o] = w[o * in + j];
                weights.push_back(variable(t, {in, out}, true));
            }
            biases.push_back(variable(std::vector<float>(out, 0.0f), {out}, true));
        }
        x = variable(images(batch), {batch, 1, image, image}, false);
        const auto ys = bench::cnn::labels(batch);
        y = xg::Labels::from_shape({batch});
        std::copy(ys.begin(), ys.end(), y.begin());
        std::vector<V> params;
        for (std::size_t i = 0; i < weights.size(); ++i)
            if (weights[i].defined()) params.insert(params.end(), {weights[i], biases[i]});
        adam = std::make_unique<xg::optim::Adam<float>>(params, xg::optim::AdamOptions{.lr = adam_lr});
    }

    // What nn::Sequential runs: a convolution followed by ReLU and a 2x2 max pool is one op
    // (conv2d_relu_max_pool2d, with the Flatten before a Linear), and so is a convolution or an
    // affine layer followed by ReLU (conv2d_relu, linear_relu).
    V forward(bool training) {
        V h = x;
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const Layer& l = layers[i];
            switch (l.kind) {
                case Kind::conv:
                    if (i + 2 < layers.size() && layers[i + 1].kind == Kind::relu && layers[i + 2].kind == Kind::pool) {
                        // flat when a Linear follows (Sequential fuses the Flatten before it)
                        const bool flat = i + 3 < layers.size() && layers[i + 3].kind == Kind::linear;
                        h = xg::conv2d_relu_max_pool2d(h, weights[i], biases[i], {.padding = l.pad}, {.kernel = 2}, flat);
                        i += 2;
                    } else if (i + 1 < layers.size() && layers[i + 1].kind == Kind::relu) {
                        h = xg::conv2d_relu(h, weights[i], biases[i], {.padding = l.pad});
                        ++i;
                    } else {
                        h = xg::conv2d(h, weights[i], biases[i], {.padding = l.pad});
                    }
                    break;
                case Kind::relu: h = xg::relu(h); break;
                case Kind::pool: h = xg::max_pool2d(h, {.kernel = 2}); break;
                case Kind::dropout: h = xg::dropout(h, dropout_ratio, training, gen); break;
                case Kind::linear:
                    if (h.ndim() != 2) h = xg::flatten(h, 1);
                    if (i + 1 < layers.size() && layers[i + 1].kind == Kind::relu) {
                        h = xg::linear_relu(h, weights[i], biases[i]);
                        ++i;
                    } else {
                        h = xg::linear(h, weights[i], biases[i]);
                    }
                    break;
            }
        }
        return h;
    }

    float step() {
        adam->zero_grad();
        const V loss = xg::softmax_cross_entropy(forward(true), y);
        loss.backward();
        adam->step();
        return loss.item();
    }

    std::vector<Layer> layers;
    std::vector<V> weights, biases;  // undefined for layers without parameters
    V x;
    xg::Labels y;
    std::mt19937_64 gen{1};
    std::unique_ptr<xg::optim::Adam<float>> adam;
};

// The step's GEMMs, on buffers allocated once (contents fixed, finite).
struct Limit : bench::GemmLimit {
    Limit(std::string_view name, std::size_t batch) {
        const int b = static_cast<int>(batch);
        long size = image;
        bool first = true;
        for (const Layer& l : model(name)) {
            if (l.kind == Kind::pool) size /= 2;
            if (l.kind == Kind::conv) {
                size = conv_out(size, l);
                const int o = static_cast<int>(l.out), k = static_cast<int>(l.in * l.kernel * l.kernel),
                          p = static_cast<int>(size * size);
                // per image n (run_own: y_n and gy_n at places of their own, one col buffer)
                gemms.push_back({CblasNoTrans, CblasNoTrans, o, p, k, b, false, false, false, true});  // y_n = W col_n
                gemms.push_back({CblasNoTrans, CblasTrans, o, k, p, b, true, true});  // gW += gy_n col_n^T
                if (!first)  // gcol_n = W^T gy_n
                    gemms.push_back({CblasTrans, CblasNoTrans, k, p, o, b, false, false, true});
            }
            if (l.kind == Kind::linear) {
                const int in = static_cast<int>(l.in), out = static_cast<int>(l.out);
                gemms.push_back({CblasNoTrans, CblasNoTrans, b, out, in, 1, false});  // y = x W
                gemms.push_back({CblasTrans, CblasNoTrans, in, out, b, 1, false});    // gW = x^T gy
                gemms.push_back({CblasNoTrans, CblasTrans, b, in, out, 1, false});    // gx = gy W^T
            }
            if (l.kind == Kind::conv || l.kind == Kind::linear) first = false;
        }
        prepare();
        prepare_own();
    }
};

std::string key(std::string_view what, std::string_view name, std::size_t batch) {
    return std::string(what) + ".cnn_" + std::string(name) + ".f32.b" + std::to_string(batch);
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("convnet_step", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const auto usage = [] {
            return bench::ArgError(
                "usage: convnet_step time|infer simple|deep BATCH | memory|run simple|deep BATCH STEPS");
        };
        if (args.size() < 3) throw usage();
        const std::string_view mode = bench::choice_arg("mode", args[0], {"time", "infer", "memory", "run"});
        const std::string_view name = bench::choice_arg("model", args[1], {"simple", "deep"});
        const auto batch = static_cast<std::size_t>(bench::integer_arg("BATCH", args[2], 1, 4096));
        const bool with_steps = mode == "memory" || mode == "run";
        if (args.size() != (with_steps ? 4u : 3u)) throw usage();
        const long steps = with_steps ? bench::integer_arg("STEPS", args[3], 1, 100'000'000) : 0;

        if (mode == "memory") {  // glibc's default heap: what a user's program gets
            Model m(name, batch);
            for (long i = 0; i < steps; ++i) m.step();
            bench::emit(key("xgrad", name, batch) + ".peak_rss_kb", static_cast<double>(bench::status_kb("VmHWM")));
            return 0;
        }
        bench::stable_heap();
        Model m(name, batch);
        if (mode == "run") {
            for (long i = 0; i < steps; ++i) m.step();
            return 0;
        }
        if (mode == "infer") {
            const bench::Timing t = bench::median_us(
                [&] {
                    xg::NoGradGuard no_grad;
                    m.forward(false);
                },
                3, 20, 2 * bench::budget_s());
            bench::emit(key("xgrad", name, batch) + ".infer", t);
            return 0;
        }
        // The first loss, before any update: the same weights and batch give libtorch's value
        // (dropout aside, which draws different masks).
        {
            xg::NoGradGuard no_grad;
            bench::emit(key("xgrad", name, batch) + ".loss0",
                        static_cast<double>(xg::softmax_cross_entropy(m.forward(false), m.y).item()));
        }
        Limit limit(name, batch);
        const std::vector<std::function<void()>> bodies = {[&] { m.step(); }, [&] { limit(); },
                                                           [&] { limit.run_own(); }};
        const auto t = bench::interleaved_median_us(bodies, 3, 2, 10, 4 * bench::budget_s());
        bench::emit(key("xgrad", name, batch), t[0]);
        bench::emit(key("limit", name, batch), t[1]);
        bench::emit(key("own_limit", name, batch), t[2]);
        return 0;
    });
}
