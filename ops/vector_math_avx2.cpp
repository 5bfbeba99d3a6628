// ops/vector_math.inc compiled with -mavx2 (ops/meson.build), 8-lane float and 4-lane double
// batches; called only after ops/vector_math.cpp has seen AVX2 in the CPU. It includes xsimd and
// the formulas alone (no xtensor: its allocator's alignment follows the instruction set).
#include "ops/simd_math.hpp"
#include "ops/vector_math.hpp"

#ifndef __AVX2__
#error "ops/vector_math_avx2.cpp must be compiled with -mavx2"
#endif

namespace xg::vmath::avx2 {
#include "ops/vector_math.inc"
}  // namespace xg::vmath::avx2
