#pragma once
// Internal to optim/ (not installed): the adaptive rules' loops with AVX2 or AVX-512 where the CPU
// has them, chosen at run time (the library is built for baseline x86-64). The rules are bound by
// the divider and the square root, and each wider form does twice the work per instruction: for
// the benchmark model's 109k parameters Adam took 100 us with SSE2 and 50 with AVX2, and at batch
// 32 a training step 26 us shorter again with AVX-512 on a CPU with full-width AVX-512 units
// (bench/mlp_step); AdaGrad and RMSProp over 432k floats, in cache, 220 -> 63 us (docs/optim.md).
//
// Each updates the first elements of its arrays, as many as whole vectors cover, bit for bit as
// the scalar rule in its caller would, and returns how many: 0 where the CPU has neither set or
// off x86-64. The caller runs its scalar (or baseline SIMD) loop from there.
#include <cstddef>

namespace xg::optim::simd {

// Adam (optim/adam.cpp): m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g*g;
// w <- w - step * m / (sqrt(v) * inv_sqrt_c2 + eps).
std::size_t adam(float* w, const float* g, float* m, float* v, std::size_t n, float b1, float b2, float step,
                 float inv_sqrt_c2, float eps);
std::size_t adam(double* w, const double* g, double* m, double* v, std::size_t n, double b1, double b2, double step,
                 double inv_sqrt_c2, double eps);

// AdaGrad (optim/adaptive.cpp): h <- h + g*g; w <- w - lr*g / (sqrt(h) + eps).
std::size_t adagrad(float* w, const float* g, float* h, std::size_t n, float lr, float eps);
std::size_t adagrad(double* w, const double* g, double* h, std::size_t n, double lr, double eps);

// RMSProp (optim/adaptive.cpp): h <- alpha*h + (1-alpha)*g*g; w <- w - lr*g / (sqrt(h) + eps).
std::size_t rmsprop(float* w, const float* g, float* h, std::size_t n, float alpha, float lr, float eps);
std::size_t rmsprop(double* w, const double* g, double* h, std::size_t n, double alpha, double lr, double eps);

}  // namespace xg::optim::simd
