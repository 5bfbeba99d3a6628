// Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d on NCHW inputs, with PyTorch's semantics
// (floor mode, no dilation). Every pool is described by its windows: for each output row the
// input rows [lo, hi) it covers, clipped to the input (padding is never read: it is -inf for the
// max and zeros, counted or not, for the mean), and likewise for columns. Forwards are plain
// loops over each (n, c) plane.
//
// The backwards are ops of their own, each the adjoint of the other, so gradients of gradients
// work: max_pool2d's gradient scatters gy to the argmax that the forward recorded
// (max_pool2d_backward) and that op's gradient gathers from the same argmax (max_pool2d_select),
// whose gradient is the scatter again. avg_pool2d's and adaptive_avg_pool2d's gradient spreads
// each gy over its window divided by the window's count (the adjoint of the mean), whose
// gradient is the pool again.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "ops/instantiate.hpp"
#include "ops/ops.hpp"
#include "ops/pool_2x2.hpp"

namespace xg {
namespace {

// The windows of one pool over (N, C, H, W) -> (N, C, OH, OW).
struct Windows {
    std::string_view op;
    std::size_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;  // planes = N * C
    Shape in_shape, out_shape;
    std::vector<std::size_t> row_lo, row_hi, col_lo, col_hi;  // clipped to the input
    // The mean's divisor: the kernel area (padding counted) when `fixed`, else the clipped
    // window's area.
    bool fixed = false;
    double fixed_count = 1;
    // the kernel, stride and padding of a strided pool (kernel_w 0: adaptive)
    long kernel_w = 0, stride_w = 1, pad_w = 0;
    long kernel_h = 0, stride_h = 1, pad_h = 0;

    // The common 2x2 pool of stride 2 without padding: windows side by side, inside the input.
    bool is_2x2_stride_2() const {
        return kernel_h == 2 && kernel_w == 2 && stride_h == 2 && stride_w == 2 && pad_h == 0 && pad_w == 0;
    }

    double count(std::size_t i, std::size_t j) const {
        return fixed ? fixed_count : static_cast<double>((row_hi[i] - row_lo[i]) * (col_hi[j] - col_lo[j]));
    }
};

using WindowsPtr = std::shared_ptr<const Windows>;

// For each output element, where its window's maximum is. The 2x2 pool of stride 2 keeps one
// byte, the maximum's place in its window (row * 2 + column); every other pool the flat index
// into H * W. The 2x2 pool is memory-bound, and the eight-byte index was 8 of the 28 bytes per
// window that its forward and its backward each move. Neither is zero-filled when made
// (make_shared_for_overwrite): the forward writes every entry.
struct Argmax {
    std::shared_ptr<const std::size_t[]> flat;
    std::shared_ptr<const std::uint8_t[]> in_window;
    bool empty() const { return !flat && !in_window; }
};

// ---- max_pool2d ----

using pool_2x2::pick;

template <class T>
struct MaxPoolSelect;

// gx of the input's shape, zeros except gy[o] added at argmax[o] (windows overlap when the
// stride is below the kernel, so several outputs can add to one element).
template <class T>
struct MaxPoolScatter final : Function<T> {
    MaxPoolScatter(WindowsPtr win, Argmax argmax) : win(std::move(win)), argmax(std::move(argmax)) {}
    std::string_view name() const override { return "max_pool2d_backward"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Windows& p = *win;
        if (p.is_2x2_stride_2()) return forward_2x2(xs[0].data());
        Array<T> gx = full(p.in_shape, T(0));
        const T* g = xs[0].data();
        const std::size_t* a = argmax.flat.get();
        const std::size_t in = p.h * p.w, out = p.oh * p.ow;
        for (std::size_t q = 0; q < p.planes; ++q) {
            T* dst = gx.data() + q * in;
            for (std::size_t o = 0; o < out; ++o) dst[a[q * out + o]] += g[q * out + o];
        }
        return gx;
    }
    Array<T> forward_2x2(const T* g) const {
        const Windows& p = *win;
        Array<T> gx = Array<T>::from_shape(p.in_shape);
        pool_2x2::scatter(g, static_cast<const T*>(nullptr), argmax.in_window.get(), p.planes, p.h, p.w, gx.data());
        return gx;
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override {
        return {apply<MaxPoolSelect<T>>({ggx}, win, argmax)};
    }
    WindowsPtr win;
    Argmax argmax;
};

// y[o] = x[argmax[o]]: the adjoint of MaxPoolScatter (and max_pool2d's value on its own input).
template <class T>
struct MaxPoolSelect final : Function<T> {
    MaxPoolSelect(WindowsPtr win, Argmax argmax) : win(std::move(win)), argmax(std::move(argmax)) {}
    std::string_view name() const override { return "max_pool2d_select"; }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Windows& p = *win;
        Array<T> y = Array<T>::from_shape(p.out_shape);
        const T* x = xs[0].data();
        const std::size_t in = p.h * p.w, out = p.oh * p.ow;
        if (p.is_2x2_stride_2()) {
            const std::uint8_t* k = argmax.in_window.get();
            T* dst = y.data();
            for (std::size_t q = 0; q < p.planes; ++q, x += in)
                for (std::size_t i = 0; i < p.oh; ++i)
                    for (std::size_t j = 0; j < p.ow; ++j) *dst++ = x[pool_2x2::in_window(i, j, p.w, *k++)];
            return y;
        }
        const std::size_t* a = argmax.flat.get();
        for (std::size_t q = 0; q < p.planes; ++q)
            for (std::size_t o = 0; o < out; ++o) y.data()[q * out + o] = x[q * in + a[q * out + o]];
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        return {apply<MaxPoolScatter<T>>({gy}, win, argmax)};
    }
    WindowsPtr win;
    Argmax argmax;
};

// A strided pool's windows column by column of the kernel: for kernel column v, the windows j
// whose column j * stride - padding + v is inside the input, [lo, hi), and that column for j = lo.
// Only the kernel columns that reach the input at all are listed (fewer than 2 W + 1 of them,
// however large the kernel and its padding). Each window meets its columns in kernel order, so a
// loop over rows, then runs, then windows visits every window's elements in row-major order,
// while consecutive operations belong to different windows and do not wait for each other (one
// window's elements in a row form a chain of dependent operations, about 3x slower).
struct ColumnRuns {
    struct Run {
        std::size_t lo, hi, first_column;
    };
    std::vector<Run> runs;
    std::size_t step = 1;

    ColumnRuns() = default;
    explicit ColumnRuns(const Windows& p) : step(static_cast<std::size_t>(p.stride_w)) {
        const long w = static_cast<long>(p.w), ow = static_cast<long>(p.ow);
        const long sw = p.stride_w, pw = p.pad_w;
        const long v0 = std::max(0L, pw - (ow - 1) * sw), v1 = std::min(p.kernel_w, w + pw);
        for (long v = v0; v < v1; ++v) {
            const long lo = std::min(ow, pw - v > 0 ? (pw - v - 1) / sw + 1 : 0);  // ceil((pw - v) / sw)
            const long last = w - 1 + pw - v;                                       // j * sw <= last
            const long hi = last < 0 ? 0 : std::min(ow, last / sw + 1);
            if (hi > lo)
                runs.push_back({static_cast<std::size_t>(lo), static_cast<std::size_t>(hi),
                                static_cast<std::size_t>(lo * sw - pw + v)});
        }
    }
};

template <class T>
struct MaxPool final : Function<T> {
    // keep_argmax: the op is recorded (its backward needs the argmax); not in no-grad mode.
    MaxPool(WindowsPtr win, bool keep_argmax) : win(std::move(win)), keep_argmax(keep_argmax) {}
    std::string_view name() const override { return "max_pool2d"; }
    // As torch's CPU kernel: the running maximum starts at -inf with the window's first element
    // as argmax and moves to an element that is greater or NaN, so the first of equal maxima
    // wins, the last NaN wins over everything, and a window of -inf (or of padding and -inf)
    // gives -inf with its first element as argmax.
    // One output row at a time, the row of windows advancing together (ColumnRuns).
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Windows& p = *win;
        Array<T> y = Array<T>::from_shape(p.out_shape);
        // the argmax of every output when it is kept, else of one row at a time
        const std::size_t kept = keep_argmax ? y.size() : p.ow;
        if (p.is_2x2_stride_2()) {
            std::shared_ptr<std::uint8_t[]> places = std::make_shared_for_overwrite<std::uint8_t[]>(kept);
            pool_2x2::max_forward(xs[0].data(), p.planes, p.h, p.w, y.data(), places.get(), keep_argmax);
            if (keep_argmax) argmax.in_window = std::move(places);
            return y;
        }
        std::shared_ptr<std::size_t[]> idx = std::make_shared_for_overwrite<std::size_t[]>(kept);
        const std::size_t in = p.h * p.w, out = p.oh * p.ow;
        const ColumnRuns runs(p);
        const T lowest = -std::numeric_limits<T>::infinity();
        for (std::size_t q = 0; q < p.planes; ++q) {
            const T* x = xs[0].data() + q * in;
            for (std::size_t i = 0; i < p.oh; ++i) {
                T* best = y.data() + q * out + i * p.ow;
                std::size_t* at = idx.get() + (keep_argmax ? q * out + i * p.ow : 0);
                const std::size_t r0 = p.row_lo[i], r1 = p.row_hi[i];
                for (std::size_t j = 0; j < p.ow; ++j) {
                    best[j] = lowest;
                    at[j] = r0 * p.w + p.col_lo[j];
                }
                for (std::size_t r = r0; r < r1; ++r) {
                    const T* row = x + r * p.w;
                    for (const ColumnRuns::Run& run : runs.runs) {
                        // locals: the stores to at[] could alias the runs' size_t fields
                        const std::size_t base = r * p.w, lo = run.lo, hi = run.hi, step = runs.step;
                        std::size_t c = run.first_column;
                        for (std::size_t j = lo; j < hi; ++j, c += step) {
                            const T val = row[c];
                            const bool take = (val > best[j]) | (val != val);
                            best[j] = pick(take, val, best[j]);
                            at[j] = pick(take, base + c, at[j]);
                        }
                    }
                }
            }
        }
        if (keep_argmax) argmax.flat = std::move(idx);
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override {
        if (argmax.empty()) throw GraphError("max_pool2d: backward without the argmax of the forward pass");
        return {apply<MaxPoolScatter<T>>({gy}, win, argmax)};
    }
    void release_saved() override { argmax = {}; }
    WindowsPtr win;
    bool keep_argmax;
    Argmax argmax;
};

// ---- avg_pool2d, adaptive_avg_pool2d ----

template <class T>
struct AvgPoolAdjoint;

// y = the mean of each window (sum / count).
template <class T>
struct AvgPool final : Function<T> {
    explicit AvgPool(WindowsPtr win) : win(std::move(win)) {}
    std::string_view name() const override { return win->op; }
    // Each window's sum in row-major order, then divided by its count. A strided pool's row of
    // windows advances together (ColumnRuns); adaptive windows are summed one by one.
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Windows& p = *win;
        Array<T> y = Array<T>::from_shape(p.out_shape);
        const std::size_t in = p.h * p.w, out = p.oh * p.ow;
        const bool strided = p.kernel_w > 0;
        const ColumnRuns runs = strided ? ColumnRuns(p) : ColumnRuns{};
        for (std::size_t q = 0; q < p.planes; ++q) {
            const T* x = xs[0].data() + q * in;
            T* yq = y.data() + q * out;
            for (std::size_t i = 0; i < p.oh; ++i) {
                T* acc = yq + i * p.ow;
                if (strided) {
                    std::fill_n(acc, p.ow, T(0));
                    for (std::size_t r = p.row_lo[i]; r < p.row_hi[i]; ++r) {
                        const T* row = x + r * p.w;
                        for (const ColumnRuns::Run& run : runs.runs) {
                            const std::size_t lo = run.lo, hi = run.hi, step = runs.step;
                            std::size_t c = run.first_column;
                            for (std::size_t j = lo; j < hi; ++j, c += step) acc[j] += row[c];
                        }
                    }
                } else {
                    for (std::size_t j = 0; j < p.ow; ++j) {
                        T s = T(0);
                        for (std::size_t r = p.row_lo[i]; r < p.row_hi[i]; ++r) {
                            const T* row = x + r * p.w;
                            for (std::size_t c = p.col_lo[j]; c < p.col_hi[j]; ++c) s += row[c];
                        }
                        acc[j] = s;
                    }
                }
                for (std::size_t j = 0; j < p.ow; ++j) acc[j] /= static_cast<T>(p.count(i, j));
            }
        }
        return y;
    }
    std::vector<Variable<T>> backward(const Variable<T>& gy) override { return {apply<AvgPoolAdjoint<T>>({gy}, win)}; }
    WindowsPtr win;
};

// gx of the input's shape: each gy / count added over its window.
template <class T>
struct AvgPoolAdjoint final : Function<T> {
    explicit AvgPoolAdjoint(WindowsPtr win) : win(std::move(win)) {}
    std::string_view name() const override {
        return win->op == "avg_pool2d" ? "avg_pool2d_backward" : "adaptive_avg_pool2d_backward";
    }
    Array<T> forward(const ArrayRefs<T>& xs) override {
        const Windows& p = *win;
        Array<T> gx = full(p.in_shape, T(0));
        const std::size_t in = p.h * p.w, out = p.oh * p.ow;
        for (std::size_t q = 0; q < p.planes; ++q) {
            const T* g = xs[0].data() + q * out;
            T* dst = gx.data() + q * in;
            for (std::size_t i = 0; i < p.oh; ++i)
                for (std::size_t j = 0; j < p.ow; ++j) {
                    const T v = g[i * p.ow + j] / static_cast<T>(p.count(i, j));
                    for (std::size_t r = p.row_lo[i]; r < p.row_hi[i]; ++r) {
                        T* row = dst + r * p.w;
                        for (std::size_t c = p.col_lo[j]; c < p.col_hi[j]; ++c) row[c] += v;
                    }
                }
        }
        return gx;
    }
    std::vector<Variable<T>> backward(const Variable<T>& ggx) override { return {apply<AvgPool<T>>({ggx}, win)}; }
    WindowsPtr win;
};

// ---- checks and windows ----

// x is (N, C, H, W) with C, H, W > 0 (N may be 0), as torch.
template <class T>
void check_input(const Variable<T>& x, std::string_view op) {
    if (!x.defined()) throw GraphError(fmt::format("{}: input 0 is an undefined Variable", op));
    const Shape& s = x.shape();
    if (s.size() != 4)
        throw ShapeError(fmt::format("{}: expects a 4-D input (N, C, H, W), got shape {}{}", op, shape_str(s),
                                     s.size() == 3 ? " (add the batch axis with unsqueeze(x, 0))" : ""));
    if (s[1] == 0 || s[2] == 0 || s[3] == 0)
        throw ShapeError(fmt::format("{}: channels, height and width must be non-empty, got shape {}", op,
                                     shape_str(s)));
}

std::string pair_str(Size2 s) { return s.h == s.w ? fmt::format("{}", s.h) : fmt::format("({}, {})", s.h, s.w); }

// The windows of a kernel/stride/padding pool, with its options checked.
Windows strided_windows(std::string_view op, const Shape& s, const Pool2dOptions& o) {
    const Size2 k = o.kernel, st = o.stride.value_or(o.kernel), pd = o.padding;
    const auto opts = [&] {
        return fmt::format("kernel {}, stride {}, padding {}, input of shape {}", pair_str(k), pair_str(st),
                           pair_str(pd), shape_str(s));
    };
    if (k.h <= 0 || k.w <= 0) throw ValueError(fmt::format("{}: kernel must be positive: {}", op, opts()));
    if (st.h <= 0 || st.w <= 0) throw ValueError(fmt::format("{}: stride must be positive: {}", op, opts()));
    if (pd.h < 0 || pd.w < 0) throw ValueError(fmt::format("{}: padding must be >= 0: {}", op, opts()));
    if (pd.h > k.h / 2 || pd.w > k.w / 2)
        throw ValueError(fmt::format("{}: padding must be at most half the kernel: {}", op, opts()));
    // (H + 2 padding - kernel) / stride + 1, in 128 bits: no size the user gives wraps around.
    const auto out_size = [](std::size_t n, long kk, long ss, long pp) -> __int128 {
        const __int128 span = static_cast<__int128>(n) + 2 * static_cast<__int128>(pp) - kk;
        return span < 0 ? 0 : span / ss + 1;
    };
    const __int128 oh = out_size(s[2], k.h, st.h, pd.h), ow = out_size(s[3], k.w, st.w, pd.w);
    if (oh <= 0 || ow <= 0)
        throw ShapeError(fmt::format("{}: the kernel is larger than the padded input: {}", op, opts()));
    Windows p;
    p.op = op;
    p.planes = s[0] * s[1];
    p.h = s[2];
    p.w = s[3];
    p.oh = static_cast<std::size_t>(oh);  // at most H + 1: padding is at most half the kernel
    p.ow = static_cast<std::size_t>(ow);
    p.in_shape = s;
    p.out_shape = {s[0], s[1], p.oh, p.ow};
    const auto clip = [](long v, std::size_t n) {
        return static_cast<std::size_t>(std::clamp<long>(v, 0, static_cast<long>(n)));
    };
    for (std::size_t i = 0; i < p.oh; ++i) {
        const long start = static_cast<long>(i) * st.h - pd.h;
        p.row_lo.push_back(clip(start, p.h));
        p.row_hi.push_back(clip(start + k.h, p.h));
    }
    for (std::size_t j = 0; j < p.ow; ++j) {
        const long start = static_cast<long>(j) * st.w - pd.w;
        p.col_lo.push_back(clip(start, p.w));
        p.col_hi.push_back(clip(start + k.w, p.w));
    }
    // In floor mode every window ends inside the padded input, so torch's count with padding
    // (the window clipped to the padded input) is the kernel's area.
    p.fixed_count = static_cast<double>(k.h) * static_cast<double>(k.w);
    p.kernel_w = k.w;
    p.stride_w = st.w;
    p.pad_w = pd.w;
    p.kernel_h = k.h;
    p.stride_h = st.h;
    p.pad_h = pd.h;
    return p;
}

}  // namespace

template <class T>
Variable<T> max_pool2d(const Variable<T>& x, Pool2dOptions options) {
    check_input(x, "max_pool2d");
    auto win = std::make_shared<Windows>(strided_windows("max_pool2d", x.shape(), options));
    return apply<MaxPool<T>>({x}, WindowsPtr(std::move(win)), detail::should_record(&x, 1));
}

template <class T>
Variable<T> avg_pool2d(const Variable<T>& x, Pool2dOptions options, bool count_include_pad) {
    check_input(x, "avg_pool2d");
    auto win = std::make_shared<Windows>(strided_windows("avg_pool2d", x.shape(), options));
    win->fixed = count_include_pad;
    return apply<AvgPool<T>>({x}, WindowsPtr(std::move(win)));
}

template <class T>
Variable<T> adaptive_avg_pool2d(const Variable<T>& x, Size2 output) {
    constexpr std::string_view op = "adaptive_avg_pool2d";
    check_input(x, op);
    const Shape& s = x.shape();
    if (output.h <= 0 || output.w <= 0)
        throw ValueError(fmt::format("{}: output size must be positive, got {} for an input of shape {}", op,
                                     pair_str(output), shape_str(s)));
    auto p = std::make_shared<Windows>();
    p->op = op;
    p->planes = s[0] * s[1];
    p->h = s[2];
    p->w = s[3];
    p->oh = static_cast<std::size_t>(output.h);
    p->ow = static_cast<std::size_t>(output.w);
    p->in_shape = s;
    p->out_shape = {s[0], s[1], p->oh, p->ow};
    shape_size(p->out_shape, op);  // ResourceError for an output too large to exist
    // Rows floor(i H / OH) to ceil((i + 1) H / OH), in 128 bits.
    const auto windows = [](std::size_t n, std::size_t on, std::vector<std::size_t>& lo, std::vector<std::size_t>& hi) {
        lo.resize(on);
        hi.resize(on);
        for (std::size_t i = 0; i < on; ++i) {
            const unsigned __int128 a = static_cast<unsigned __int128>(i) * n, b = static_cast<unsigned __int128>(i + 1) * n;
            lo[i] = static_cast<std::size_t>(a / on);
            hi[i] = static_cast<std::size_t>((b + on - 1) / on);
        }
    };
    try {
        windows(p->h, p->oh, p->row_lo, p->row_hi);
        windows(p->w, p->ow, p->col_lo, p->col_hi);
    } catch (const std::bad_alloc&) {
        throw ResourceError(fmt::format("{}: no memory for the windows of output size {} (input of shape {})", op,
                                        pair_str(output), shape_str(s)));
    }
    return apply<AvgPool<T>>({x}, WindowsPtr(std::move(p)));
}

XG_INSTANTIATE_OP(max_pool2d)
XG_INSTANTIATE_OP(avg_pool2d)
XG_INSTANTIATE_OP(adaptive_avg_pool2d)

}  // namespace xg
