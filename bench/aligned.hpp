#pragma once
// The GEMM limits' buffers, 64-byte aligned as xgrad's arrays are (graph/array.hpp), so that a
// limit and the step it bounds see the same alignment (OpenBLAS's packing moved by about 4% with
// it on the AMD EPYC: docs/benchmarks.md).
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>

namespace bench {

template <class T>
using AlignedVector = std::vector<T, xsimd::aligned_allocator<T, 64>>;

}  // namespace bench
