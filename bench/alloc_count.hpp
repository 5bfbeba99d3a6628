#pragma once
// Counts heap allocations: include in exactly one file of a benchmark binary (it defines malloc,
// calloc, realloc, posix_memalign, aligned_alloc and memalign, which then stand in for glibc's in
// the whole process, shared libraries included: C++'s operator new, xtensor's aligned allocator,
// OpenBLAS, libtorch's CPU allocator). Each forwards to glibc's own (__libc_malloc...) after
// adding one to a counter: a relaxed atomic increment, a few nanoseconds per allocation. free is
// left alone. bench::allocations() reads the count: the difference around a step is the number
// of allocations the step made. Under AddressSanitizer or ThreadSanitizer, whose own malloc must
// see every allocation and free, nothing is replaced and counting_allocations is false.
#include <atomic>
#include <cerrno>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define XG_BENCH_COUNT_ALLOCATIONS 0
#else
#define XG_BENCH_COUNT_ALLOCATIONS 1
#endif

#if XG_BENCH_COUNT_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}
#endif

namespace bench {
inline constexpr bool counting_allocations = XG_BENCH_COUNT_ALLOCATIONS;
namespace detail {
inline std::atomic<unsigned long> allocation_count{0}, allocated_bytes{0};
inline void count_allocation(std::size_t bytes) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    allocated_bytes.fetch_add(bytes, std::memory_order_relaxed);
}
}  // namespace detail

// Allocations (calls of malloc and its kin, realloc included) and bytes asked for, since the start.
inline unsigned long allocations() { return detail::allocation_count.load(std::memory_order_relaxed); }
inline unsigned long allocated_bytes() { return detail::allocated_bytes.load(std::memory_order_relaxed); }
}  // namespace bench

#if XG_BENCH_COUNT_ALLOCATIONS
extern "C" {
void* malloc(std::size_t size) noexcept {
    bench::detail::count_allocation(size);
    return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
    bench::detail::count_allocation(n * size);
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) noexcept {
    bench::detail::count_allocation(size);
    return __libc_realloc(p, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
    bench::detail::count_allocation(size);
    return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
    bench::detail::count_allocation(size);
    return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
    if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
    bench::detail::count_allocation(size);
    void* p = __libc_memalign(alignment, size);
    if (p == nullptr && size != 0) return ENOMEM;
    *out = p;
    return 0;
}
}
#endif
