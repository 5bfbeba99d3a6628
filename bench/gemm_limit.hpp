#pragma once
// The limit of a training step: its GEMMs alone, through cblas_sgemm with the step's shapes (on
// buffers sized for the largest product), what the step would cost if everything that is not a
// GEMM were free. bench/convnet_step.cpp and bench/seq_step.cpp list their models' products.
#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "graph/array.hpp"

namespace bench {

struct GemmLimit {
    struct Gemm {
        CBLAS_TRANSPOSE ta, tb;
        int m, n, k;
        int repeats = 1;          // the same product this many times (images, time steps, heads)
        bool accumulate = false;  // repeats add up into one result (weight gradients): beta = 1
        // For run_own: operands that differ per repeat (one image's activations or gradients).
        bool a_each = false, b_each = false, c_each = false;
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
        for (const Gemm& g : gemms)
            for (int r = 0; r < g.repeats; ++r) multiply(g, r, a.data(), bm.data(), c.data());
    }

    // The same products on operands placed as in the step (run_own): every product its own
    // buffers, and an operand marked per repeat at a place of its own for each repeat; the
    // weights, and the columns an im2col rebuilds per image in one buffer, shared by the repeats.
    // operator() reuses three buffers for every product, so its operands stay in cache: a lower
    // bound that a step whose activations exceed the cache cannot reach. Call once the products are
    // listed.
    void prepare_own() {
        own.clear();
        for (const Gemm& g : gemms) {
            const std::size_t r = static_cast<std::size_t>(g.repeats), m = g.m, n = g.n, k = g.k;
            own.push_back({xg::AlignedVector<float>(m * k * (g.a_each ? r : 1), 0.5f),
                           xg::AlignedVector<float>(k * n * (g.b_each ? r : 1), 0.25f),
                           xg::AlignedVector<float>(m * n * (g.c_each ? r : 1), 0.0f)});
        }
    }

    void run_own() {
        for (std::size_t i = 0; i < gemms.size(); ++i) {
            const Gemm& g = gemms[i];
            Operands& o = own[i];
            const std::size_t sa = std::size_t(g.m) * g.k, sb = std::size_t(g.k) * g.n, sc = std::size_t(g.m) * g.n;
            for (int r = 0; r < g.repeats; ++r) {
                const std::size_t ru = static_cast<std::size_t>(r);
                multiply(g, r, o.a.data() + (g.a_each ? ru * sa : 0), o.b.data() + (g.b_each ? ru * sb : 0),
                         o.c.data() + (g.c_each ? ru * sc : 0));
            }
        }
    }

    // Repeat r of product g on operands at a, b and c.
    static void multiply(const Gemm& g, int r, const float* a, const float* b, float* c) {
        const int lda = g.ta == CblasNoTrans ? g.k : g.m, ldb = g.tb == CblasNoTrans ? g.n : g.k;
        cblas_sgemm(CblasRowMajor, g.ta, g.tb, g.m, g.n, g.k, 1.0f, a, lda, b, ldb, g.accumulate && r > 0 ? 1.0f : 0.0f,
                    c, g.n);
    }

    std::vector<Gemm> gemms;
    xg::AlignedVector<float> a, bm, c;
    struct Operands {
        xg::AlignedVector<float> a, b, c;
    };
    std::vector<Operands> own;
};

}  // namespace bench
