#pragma once
// Internal to ops/ (not installed): <immintrin.h> for the translation units compiled for AVX-512
// (ops/conv_direct_avx512.cpp, ops/vector_math_avx512.cpp), included first in each.
//
// GCC 12's header initialises the pass-through vector of _mm256_undefined_pd() and its kin with
// itself (`__m256d __Y = __Y;`), so each inlined intrinsic that passes one through
// (_mm512_extractf64x4_pd in xsimd's horizontal sum of doubles, _mm512_shuffle_f64x2,
// _mm512_permute_pd) warns that `__Y` is, or may be, used uninitialized: 228 false warnings in a
// clean build, none about xgrad's own variables (checked before silencing them). A diagnostic
// pragma holds for the rest of the file that includes it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
