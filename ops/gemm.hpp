#pragma once
// Internal to the library's ops/*.cpp files (not installed): the one GEMM on raw row-major
// pointers, defined in ops/linalg.cpp for float and double.
#include <cstddef>

namespace xg {

// c = op(a)·op(b) + beta·c for packed row-major matrices at pointers: op(a) is (m, k), op(b)
// (k, n), c (m, n). One BLAS call, no copies. m, n and k must be positive and at most
// gemm_max_dim (BLAS's integer type); callers skip empty products.
template <class T>
void gemm_raw(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, const T* b, T* c, T beta);

// The largest matrix dimension BLAS's integer type can hold.
extern const std::size_t gemm_max_dim;

extern template void gemm_raw<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, const float*,
                                     float*, float);
extern template void gemm_raw<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*,
                                      const double*, double*, double);

}  // namespace xg
