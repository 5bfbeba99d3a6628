// batched_matmul: matmul of a (64, 64, 64) by b (64, 64, 64) in float32, forward and backward
// (c = a·b, then a's and b's gradients for a fixed upstream gradient), against the same 3 x 64
// GEMMs called directly through cblas_sgemm, timed in turns in one process
// (bench/batched_matmul.hpp has the sizes; bench/torch_batched_matmul.cpp is libtorch's peer).
//
//   batched_matmul [time]          "key value" lines, microseconds of CPU time per forward+backward
//   batched_matmul run xgrad|limit|strict_limit STEPS   just the steps, for a profiler
//
// Run single-threaded (OPENBLAS_NUM_THREADS=1; scripts/bench sets it).
#include <cblas.h>

#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/batched_matmul.hpp"
#include "bench/common.hpp"
#include "xgrad.hpp"

namespace {

using namespace bench::bmm;
using V = xg::Variable<float>;

V variable(std::uint64_t stream, bool requires_grad) {
    const std::vector<float> v = data(B * M * K, stream);
    xg::Array<float> a = xg::Array<float>::from_shape({B, M, K});
    std::copy(v.begin(), v.end(), a.data());
    return V(std::move(a), requires_grad);
}

struct Xgrad {
    V a = variable(0, true), b = variable(1, true), g = variable(2, false);
    void operator()() {
        a.zero_grad();
        b.zero_grad();
        xg::matmul(a, b).backward(g);
    }
};

// The limit: per batch entry c = a·b, da = g·b^T, db = a^T·g, as plain calls (beta = 0) or as
// xgrad makes them (strict: C cleared with memset, beta = 1; see bench/mlp_step.cpp).
struct Gemms {
    explicit Gemms(bool strict) : strict(strict) {}
    static xg::AlignedVector<float> aligned(const std::vector<float>& v) { return {v.begin(), v.end()}; }
    xg::AlignedVector<float> a = aligned(data(B * M * K, 0)), b = aligned(data(B * K * N, 1)),
                                g = aligned(data(B * M * N, 2));
    xg::AlignedVector<float> c = xg::AlignedVector<float>(B * M * N),
                                da = xg::AlignedVector<float>(B * M * K), db = xg::AlignedVector<float>(B * K * N);
    bool strict;
    void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* x, int ldx, const float* y,
              int ldy, float* z) const {
        if (strict) std::memset(z, 0, sizeof(float) * static_cast<std::size_t>(m) * static_cast<std::size_t>(n));
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, x, ldx, y, ldy, strict ? 1.0f : 0.0f, z, n);
    }
    void operator()() {
        const int m = M, n = N, k = K;
        for (std::size_t i = 0; i < B; ++i)
            gemm(CblasNoTrans, CblasNoTrans, m, n, k, &a[i * M * K], k, &b[i * K * N], n, &c[i * M * N]);
        for (std::size_t i = 0; i < B; ++i) {
            gemm(CblasNoTrans, CblasTrans, m, k, n, &g[i * M * N], n, &b[i * K * N], n, &da[i * M * K]);
            gemm(CblasTrans, CblasNoTrans, k, n, m, &a[i * M * K], k, &g[i * M * N], n, &db[i * K * N]);
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    return bench::guarded_main("batched_matmul", [&] {
        const std::vector<std::string_view> args(argv + 1, argv + argc);
        const std::string_view mode = args.empty() ? "time" : args[0];
        bench::stable_heap();
        if (mode == "run" && args.size() == 3) {
            const std::string_view what = bench::choice_arg("what", args[1], {"xgrad", "limit", "strict_limit"});
            const long steps = bench::integer_arg("STEPS", args[2], 1, 100'000'000);
            Xgrad x;
            Gemms plain(false), strict(true);
            for (long i = 0; i < steps; ++i) {
                if (what == "xgrad") x();
                else if (what == "limit") plain();
                else strict();
            }
            return 0;
        }
        if (mode != "time" || args.size() > 1)
            throw bench::ArgError("usage: batched_matmul [time | run xgrad|limit|strict_limit STEPS]");
        Xgrad x;
        Gemms plain(false), strict(true);
        x();
        // The values agree with the direct GEMMs: the first element of c's gradient product.
        strict();
        const float diff = x.a.grad().data().data()[0] - strict.da[0];
        bench::emit("bmm.f32.b64.max_grad_diff_at0", static_cast<double>(diff < 0 ? -diff : diff));
        const std::vector<std::function<void()>> bodies = {[&] { plain(); }, [&] { strict(); }, [&] { x(); }};
        const auto t = bench::interleaved_median_us(bodies, 10, 5, 30, 4 * bench::budget_s());
        bench::emit("bmm_limit.f32.b64", t[0]);
        bench::emit("bmm_strict_limit.f32.b64", t[1]);
        bench::emit("xgrad.bmm.f32.b64", t[2]);
        return 0;
    });
}
