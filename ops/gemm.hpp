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

// c = alpha·op(a)·op(b) + beta·c for row-major matrices inside larger arrays: lda, ldb and ldc
// are the elements from one row to the next (one head's columns of an (N, L, H E) activation
// have ld = H E). Same conditions as gemm_raw.
template <class T>
void gemm_strided(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                  std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

// The largest matrix dimension BLAS's integer type can hold.
extern const std::size_t gemm_max_dim;

extern template void gemm_raw<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, const float*,
                                     float*, float);
extern template void gemm_raw<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*,
                                      const double*, double*, double);
extern template void gemm_strided<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*,
                                         std::size_t, const float*, std::size_t, float, float*, std::size_t);
extern template void gemm_strided<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                                          std::size_t, const double*, std::size_t, double, double*, std::size_t);

}  // namespace xg
