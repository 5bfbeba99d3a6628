#pragma once
// The limit of a training step: its GEMMs alone, through cblas_sgemm with the step's shapes (on
// buffers sized for the largest product), what the step would cost if everything that is not a
// GEMM were free. bench/convnet_step.cpp and bench/seq_step.cpp list their models' products.
#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace bench {

struct GemmLimit {
    struct Gemm {
        CBLAS_TRANSPOSE ta, tb;
        int m, n, k;
        int repeats = 1;          // the same product this many times (images, time steps, heads)
        bool accumulate = false;  // repeats add up into one result (weight gradients): beta = 1
    };

    // Sizes the buffers for the largest product: call once the products are listed.
    void prepare() {
        std::size_t most = 0;
        for (const Gemm& g : gemms)
            most = std::max({most, static_cast<std::size_t>(g.m) * g.k, static_cast<std::size_t>(g.k) * g.n,
                             static_cast<std::size_t>(g.m) * g.n});
        a.assign(most, 0.5f);
        bm.assign(most, 0.25f);
        c.assign(most, 0.0f);
    }

    double flops() const {
        double f = 0;
        for (const Gemm& g : gemms) f += 2.0 * g.m * g.n * g.k * g.repeats;
        return f;
    }

    void operator()() {
        for (const Gemm& g : gemms) {
            const int lda = g.ta == CblasNoTrans ? g.k : g.m, ldb = g.tb == CblasNoTrans ? g.n : g.k;
            for (int r = 0; r < g.repeats; ++r)
                cblas_sgemm(CblasRowMajor, g.ta, g.tb, g.m, g.n, g.k, 1.0f, a.data(), lda, bm.data(), ldb,
                            g.accumulate && r > 0 ? 1.0f : 0.0f, c.data(), g.n);
        }
    }

    std::vector<Gemm> gemms;
    std::vector<float> a, bm, c;
};

}  // namespace bench
