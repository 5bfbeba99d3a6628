#pragma once
// Internal to the ops' .cpp files (not installed): the activations whose cost is their
// exponentials (sigmoid, tanh, gelu and its derivative, the softmaxes' contiguous rows) over
// arrays at raw pointers, run with AVX2 where the CPU has it. xsimd's exp takes 2.2 ns an element in the baseline build's 4-lane
// SSE2 batches and 0.65 ns in 8-lane AVX2 ones; gelu's erfc 5.0 and 1.7 (float, this machine).
// The same source, ops/vector_math.inc, is compiled twice: for the build's baseline
// (ops/vector_math.cpp, which also dispatches) and with -mavx2 (ops/vector_math_avx2.cpp), without
// fused multiply-add, so both give the same bits (tests/test_elementwise.cpp checks).
#include <cstddef>

// y = f(x + b) for sigmoid and tanh (b may be null: f(x)); gelu and its derivative times g;
// gelu and its derivative d together (the bits of gelu and of gelu_grad with g = 1);
// x = exp(x - shift) in place (a softmax row less its maximum).
#define XG_VECTOR_MATH_DECLARE(T)                                                      \
    void sigmoid(const T* x, const T* b, T* y, std::size_t n);                         \
    void tanh(const T* x, const T* b, T* y, std::size_t n);                            \
    void gelu(const T* x, T* y, std::size_t n, bool tanh_form);                        \
    void gelu_grad(const T* g, const T* x, T* y, std::size_t n, bool tanh_form);       \
    void gelu_with_grad(const T* x, T* y, T* d, std::size_t n, bool tanh_form);        \
    void exp_shifted(T* x, T shift, std::size_t n);

namespace xg::vmath {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
// The builds, called directly by the dispatching functions above and by the test that compares
// them; avx2_available() (avx512_available()) is false where that build was not made or the CPU
// lacks its instructions.
bool avx2_available();
bool avx512_available();
namespace baseline {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
}  // namespace baseline
namespace avx2 {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
}  // namespace avx2
namespace avx512 {
XG_VECTOR_MATH_DECLARE(float)
XG_VECTOR_MATH_DECLARE(double)
}  // namespace avx512
}  // namespace xg::vmath
