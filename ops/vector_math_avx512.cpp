// ops/vector_math.inc compiled for AVX-512 (F, CD, BW, DQ, VL: ops/meson.build), 16-lane float and
// 8-lane double batches, with -ffp-contract=off: AVX-512 has fused multiply-add, which would change
// the bits. Called only after ops/vector_math.cpp has seen these instructions in the CPU. Like
// ops/vector_math_avx2.cpp, it includes xsimd and the formulas alone.
#include "ops/avx512_intrinsics.hpp"
#include "ops/simd_math.hpp"
#include "ops/vector_math.hpp"

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512CD__)
#error "ops/vector_math_avx512.cpp must be compiled with -mavx512f -mavx512cd -mavx512bw -mavx512dq"
#endif

namespace xg::vmath::avx512 {
#include "ops/vector_math.inc"
}  // namespace xg::vmath::avx512
