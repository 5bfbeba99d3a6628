// mlp_step: one full training step of MultiLayerNet 784-100-100-100-100-10 (ReLU, He init) with
// SGD and with Adam, float and double, batch 32, 128 and 1024; and, in the same process, the
// practical limit: the step's GEMMs alone through cblas_?gemm with the same shapes.
//
//   mlp_step time [f32|f64] [BATCH]   step times and GEMM limits ("key value" lines, microseconds)
//   mlp_step memory N [M]    RSS after N (and M) Adam steps at batch 128, peak RSS after N
//   mlp_step run f32|f64 sgd|adam|limit|strict_limit BATCH STEPS   just the steps (or GEMMs), for a profiler
//                            (XGRAD_BENCH_DEFAULT_HEAP=1: glibc's malloc thresholds, see common.hpp)
//
// Run single-threaded (OPENBLAS_NUM_THREADS=1; scripts/bench sets it).
#include <cblas.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/common.hpp"
#include "xgrad.hpp"

namespace {

using bench::emit;

template <class T>
struct Model {
    explicit Model(std::size_t batch)
        : net({.input_size = 784, .hidden_sizes = {100, 100, 100, 100}, .output_size = 10,
               .activation = xg::nn::Activation::relu, .init = xg::nn::Init::he(), .seed = 1}) {
        std::size_t l = 0;
        for (auto& p : net.parameters()) {
            if (p.ndim() != 2) continue;  // biases: zeros
            const std::vector<T> w = bench::he_weight<T>(l++);
            std::copy(w.begin(), w.end(), p.mutable_data().begin());
        }
        const std::vector<T> xs = bench::inputs<T>(batch);
        xg::Array<T> a = xg::Array<T>::from_shape({batch, bench::layer_sizes.front()});
        std::copy(xs.begin(), xs.end(), a.begin());
        x = xg::Variable<T>(std::move(a));
        const auto ys = bench::labels(batch);
        y = xg::Labels::from_shape({batch});
        std::copy(ys.begin(), ys.end(), y.begin());
    }
    xg::nn::MultiLayerNet<T> net;
    xg::Variable<T> x;
    xg::Labels y;
};

// zero_grad, forward, softmax cross-entropy, backward, update; returns the loss.
template <class T, class Opt>
T step(Model<T>& m, Opt& opt) {
    opt.zero_grad();
    const xg::Variable<T> loss = xg::softmax_cross_entropy(m.net.forward(m.x), m.y);
    loss.backward();
    opt.step();
    return loss.item();
}

template <class T>
std::unique_ptr<xg::optim::Optimizer<T>> make_optimizer(const std::string& name, Model<T>& m) {
    if (name == "sgd") return std::make_unique<xg::optim::SGD<T>>(m.net.parameters(), xg::optim::SGDOptions{.lr = bench::sgd_lr});
    return std::make_unique<xg::optim::Adam<T>>(m.net.parameters(), xg::optim::AdamOptions{.lr = bench::adam_lr});
}

// ---- the GEMM limit ----

// How each product C = op(A)·op(B) gets a zero C. The limit is the plain call, beta = 0,
// where OpenBLAS clears C itself with a slow loop (20 of the 88 us of the first layer's weight
// gradient at batch 32). xgrad avoids it (ops/linalg.cpp clears C with memset and passes
// beta = 1), so the strict limit does the same: GEMMs timed the way xgrad calls them.
enum class Clearing { blas, memset };

void gemm(Clearing clearing, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* a, int lda,
          const float* b, int ldb, float* c, int ldc) {
    if (clearing == Clearing::memset) std::memset(c, 0, sizeof(float) * static_cast<std::size_t>(m) * ldc);
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, clearing == Clearing::memset ? 1.0f : 0.0f,
                c, ldc);
}
void gemm(Clearing clearing, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const double* a, int lda,
          const double* b, int ldb, double* c, int ldc) {
    if (clearing == Clearing::memset) std::memset(c, 0, sizeof(double) * static_cast<std::size_t>(m) * ldc);
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, clearing == Clearing::memset ? 1.0 : 0.0, c,
                ldc);
}

// The step's matrix products and nothing else: per layer x·W forward, x^T·dy and dy·W^T backward
// (no dy·W^T for the first layer: the input needs no gradient). Row-major, as xgrad's arrays.
template <class T>
struct GemmLimit {
    GemmLimit(std::size_t batch, Clearing clearing) : b(static_cast<int>(batch)), clearing(clearing) {
        act.resize(bench::n_layers + 1);
        dact.resize(bench::n_layers + 1);
        const std::vector<T> x = bench::inputs<T>(batch);
        act[0].assign(x.begin(), x.end());
        dact[0].assign(batch * bench::layer_sizes[0], T(0));
        for (std::size_t l = 0; l < bench::n_layers; ++l) {
            const std::size_t in = bench::layer_sizes[l], out = bench::layer_sizes[l + 1];
            const std::vector<T> wl = bench::he_weight<T>(l);
            w.emplace_back(wl.begin(), wl.end());
            dw.emplace_back(in * out, T(0));
            act[l + 1].assign(batch * out, T(0.5));
            dact[l + 1].assign(batch * out, T(0.01));
        }
    }
    void operator()() {
        for (std::size_t l = 0; l < bench::n_layers; ++l) {
            const int in = static_cast<int>(bench::layer_sizes[l]), out = static_cast<int>(bench::layer_sizes[l + 1]);
            gemm(clearing, CblasNoTrans, CblasNoTrans, b, out, in, act[l].data(), in, w[l].data(), out,
                 act[l + 1].data(), out);
        }
        for (std::size_t l = bench::n_layers; l-- > 0;) {
            const int in = static_cast<int>(bench::layer_sizes[l]), out = static_cast<int>(bench::layer_sizes[l + 1]);
            gemm(clearing, CblasTrans, CblasNoTrans, in, out, b, act[l].data(), in, dact[l + 1].data(), out,
                 dw[l].data(), out);
            if (l > 0)
                gemm(clearing, CblasNoTrans, CblasTrans, b, in, out, dact[l + 1].data(), out, w[l].data(), out,
                     dact[l].data(), in);
        }
    }
    int b;
    Clearing clearing;
    std::vector<xg::AlignedVector<T>> act, dact, w, dw;
};

// The GEMM limit (both clearings), the SGD step and the Adam step of one dtype and batch, timed
// in turns.
template <class T>
void time_config(const char* dtype, std::size_t batch) {
    GemmLimit<T> limit(batch, Clearing::blas), strict(batch, Clearing::memset);
    Model<T> sgd_model(batch), adam_model(batch);
    auto sgd = make_optimizer<T>("sgd", sgd_model);
    auto adam = make_optimizer<T>("adam", adam_model);
    // The loss after 10 steps from the shared start: the libtorch peer must print the same.
    T sgd_loss = 0, adam_loss = 0;
    for (int i = 0; i < 10; ++i) {
        sgd_loss = step(sgd_model, *sgd);
        adam_loss = step(adam_model, *adam);
    }
    const std::string ks = bench::key("xgrad", dtype, "sgd", batch), ka = bench::key("xgrad", dtype, "adam", batch);
    emit(ks + ".loss10", static_cast<double>(sgd_loss));
    emit(ka + ".loss10", static_cast<double>(adam_loss));
    const std::vector<std::function<void()>> bodies = {
        [&] { limit(); }, [&] { strict(); }, [&] { step(sgd_model, *sgd); }, [&] { step(adam_model, *adam); }};
    const auto t = bench::interleaved_median_us(bodies, batch >= 1024 ? 4 : 10, batch >= 1024 ? 2 : 5, 30, 4 * bench::budget_s());
    const std::string suffix = std::string(dtype) + ".b" + std::to_string(batch);
    emit("limit." + suffix, t[0]);
    emit("strict_limit." + suffix, t[1]);
    emit(ks, t[2]);
    emit(ka, t[3]);
}

template <class T>
void run(const std::string& opt_name, std::size_t batch, long steps) {
    if (opt_name == "limit" || opt_name == "strict_limit") {
        GemmLimit<T> limit(batch, opt_name == "limit" ? Clearing::blas : Clearing::memset);
        for (long i = 0; i < steps; ++i) limit();
        return;
    }
    Model<T> m(batch);
    auto opt = make_optimizer<T>(opt_name, m);
    T loss = 0;
    for (long i = 0; i < steps; ++i) loss = step(m, *opt);
    emit("loss", static_cast<double>(loss));
}

void memory(const std::vector<long>& checkpoints) {
    Model<float> m(128);
    xg::optim::Adam<float> opt(m.net.parameters(), {.lr = bench::adam_lr});
    long done = 0;
    for (const long n : checkpoints) {
        for (; done < n; ++done) step(m, opt);
        emit("xgrad.rss_kb.after" + std::to_string(n), static_cast<double>(bench::status_kb("VmRSS")));
        emit("xgrad.peak_rss_kb.after" + std::to_string(n), static_cast<double>(bench::status_kb("VmHWM")));
    }
}

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("mlp_step", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const std::string_view mode = args.empty() ? "time" : args[0];
        if (mode == "memory") {
            std::vector<long> checkpoints;  // step counts, increasing: RSS is read after each
            for (std::size_t i = 1; i < args.size(); ++i)
                checkpoints.push_back(bench::integer_arg("N", args[i], checkpoints.empty() ? 1 : checkpoints.back() + 1,
                                                         100'000'000));
            if (checkpoints.empty()) checkpoints = {1000};
            memory(checkpoints);
            return 0;
        }
        if (mode == "run" && args.size() == 5) {
            const std::string_view dtype = bench::choice_arg("dtype", args[1], {"f32", "f64"});
            const std::string rule(bench::choice_arg("rule", args[2], {"sgd", "adam", "limit", "strict_limit"}));
            const auto batch = static_cast<std::size_t>(bench::integer_arg("BATCH", args[3], 1, 65'536));
            const long steps = bench::integer_arg("STEPS", args[4], 1, 100'000'000);
            if (!std::getenv("XGRAD_BENCH_DEFAULT_HEAP")) bench::stable_heap();
            if (dtype == "f64") run<double>(rule, batch, steps);
            else run<float>(rule, batch, steps);
            return 0;
        }
        if (mode != "time" || args.size() > 3)
            throw bench::ArgError("usage: mlp_step [time [f32|f64] [32|128|1024] | memory N [M...] | "
                                  "run f32|f64 sgd|adam|limit|strict_limit BATCH STEPS]");
        // Optional filters: mlp_step time [f32|f64] [BATCH]
        const std::string_view only_dtype = args.size() > 1 ? bench::choice_arg("dtype", args[1], {"f32", "f64"}) : "";
        const std::size_t only_batch =
            args.size() > 2 ? std::stoul(std::string(bench::choice_arg("BATCH", args[2], {"32", "128", "1024"}))) : 0;
        bench::stable_heap();
        for (const std::size_t batch : {32, 128, 1024}) {
            if (only_batch != 0 && batch != only_batch) continue;
            if (only_dtype != "f64") time_config<float>("f32", batch);
        }
        for (const std::size_t batch : {32, 128, 1024}) {
            if (only_batch != 0 && batch != only_batch) continue;
            if (only_dtype != "f32") time_config<double>("f64", batch);
        }
        return 0;
    });
}
