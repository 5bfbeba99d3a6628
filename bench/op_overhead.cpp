// op_overhead: what the framework costs around a trivial op. A tiny graph (add of two 1x1
// variables, sum, backward) repeated; the same add in no-grad mode, forward only; and the raw
// xtensor array add that both wrap. Microseconds per iteration ("key value" lines).
#include "bench/common.hpp"
#include "xgrad.hpp"

int main(int argc, char** argv) {
    if (argc > 1) {  // it takes none: a word given would be ignored
        std::fprintf(stderr, "op_overhead: error: unexpected argument '%s' (usage: op_overhead)\n", argv[1]);
        return 1;
    }
    bench::stable_heap();
    using V = xg::Variable<float>;
    auto one_by_one = [](float v) { return xg::Array<float>(xt::zeros<float>({1, 1}) + v); };
    V a(one_by_one(1.5f), true, "a");
    V b(one_by_one(-0.5f), true, "b");
    volatile float sink = 0;
    const double budget = bench::budget_s();

    bench::emit("xgrad.tiny", bench::median_us_blocked(
                                     [&] {
                                         V s = xg::sum(a + b);
                                         s.backward();
                                     },
                                     100, 20, 50, budget));
    sink = sink + a.grad().item();

    {
        xg::NoGradGuard no_grad;
        bench::emit("xgrad.nograd_add", bench::median_us_blocked(
                                               [&] {
                                                   V c = a + b;
                                                   sink = sink + *c.data().data();
                                               },
                                               1000, 20, 50, budget));
    }
    bench::emit("raw_add", bench::median_us_blocked(
                                  [&] {
                                      xg::Array<float> c = a.data() + b.data();
                                      sink = sink + *c.data();
                                  },
                                  1000, 20, 50, budget));
    return sink == 12345.f;  // never: keeps the loops from being optimised away
}
