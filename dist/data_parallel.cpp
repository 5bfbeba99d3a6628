#include "dist/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <mpi.h>

#include "dist/mpi_check.hpp"
#include "graph/array.hpp"
#include "graph/shape_text.hpp"

namespace xg::dist {
namespace {

template <class T>
MPI_Datatype mpi_type() {
    return sizeof(T) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE;
}

// FNV-1a over the names and shapes: ranks compare this before moving any data.
std::uint64_t fingerprint(const auto& named) {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    for (const auto& [name, v] : named) {
        mix(name.data(), name.size() + 1);
        for (std::size_t d : v.shape()) mix(&d, sizeof d);
        const std::size_t rank = v.shape().size();
        mix(&rank, sizeof rank);
    }
    return h;
}

// DistError unless every rank holds a module with the same names and shapes.
template <class T>
void check_same_module(const Context& ctx, const nn::Module<T>& module, const char* what) {
    if (ctx.world_size() == 1) return;
    auto named = module.named_parameters();
    for (auto& b : module.named_buffers()) named.push_back(std::move(b));
    const unsigned long long mine = fingerprint(named), count = named.size();
    unsigned long long v[4] = {mine, ~mine, count, ~count};  // max of x and of ~x: min and max at once
    detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD), what);
    if (v[0] != ~v[1] || v[2] != ~v[3])
        throw DistError(fmt::format("{}: the ranks hold different models ({} here: {} parameters and buffers, "
                                    "between {} and {} across ranks; or names or shapes differ)",
                                    what, ctx.where(), count, ~v[3], v[2]));
}

template <class T>
void broadcast_all(const Context& ctx, const std::vector<nn::Named<T>>& named, int root, const char* what) {
    if (root < 0 || root >= ctx.world_size())
        throw DistError(fmt::format("{}: root {} is not a rank of a world of {}", what, root, ctx.world_size()));
    if (ctx.world_size() == 1) return;
    for (const auto& [name, v] : named) {
        Array<T>& a = v.mutable_data();
        for (std::size_t at = 0; at < a.size();) {  // MPI counts are ints
            const std::size_t n = std::min<std::size_t>(a.size() - at, std::numeric_limits<int>::max());
            detail::check_mpi(MPI_Bcast(a.data() + at, static_cast<int>(n), mpi_type<T>(), root, MPI_COMM_WORLD),
                              fmt::format("MPI_Bcast of {} ({})", name, what));
            at += n;
        }
    }
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Sums n elements at `data` over the ranks, in place: at once (blocking) or started (request).
// `what` (and the parameter's name, if any) names them in the error when n is beyond MPI's int
// count; the message is made only then, not on every step.
template <class T>
void sum_over_ranks(T* data, std::size_t n, bool blocking, MPI_Request* request, std::string_view what,
                    std::string_view param = {}) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw DistError(fmt::format("DataParallel: {}{}{}{} has {} elements, more than MPI's int count", what,
                                    param.empty() ? "" : " '", param, param.empty() ? "" : "'", n));
    if (blocking)
        detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD),
                          "MPI_Allreduce (DataParallel)");
    else
        detail::check_mpi(
            MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), mpi_type<T>(), MPI_SUM, MPI_COMM_WORLD, request),
            "MPI_Iallreduce (DataParallel)");
}

}  // namespace

template <class T>
void broadcast_parameters(const Context& ctx, const nn::Module<T>& module, int root) {
    check_same_module(ctx, module, "broadcast_parameters");
    auto named = module.named_parameters();
    for (auto& b : module.named_buffers()) named.push_back(std::move(b));
    broadcast_all<T>(ctx, named, root, "broadcast_parameters");
}

template <class T>
void broadcast_buffers(const Context& ctx, const nn::Module<T>& module, int root) {
    check_same_module(ctx, module, "broadcast_buffers");
    broadcast_all<T>(ctx, module.named_buffers(), root, "broadcast_buffers");
}

// A bucket: some parameters' gradients in one buffer, then one flag per parameter (1 where this
// rank has a gradient), all-reduced together; or (in_place) one large parameter's gradient,
// all-reduced in its own .grad() array, its flag carried by the carrier (below).
//
// The carrier is the end of the last copying bucket's buffer (that bucket is all-reduced last),
// or, when every bucket is in place, a small buffer of its own (tail_) all-reduced after them:
// one flag per in-place bucket, then finish()'s sums in a fixed max_sums slots, then the count of
// sums passed and its square (equal counts on every rank exactly when the sum of squares is
// world_size times the square of the mean).
template <class T>
struct DataParallel<T>::Bucket {
    std::vector<std::size_t> params;
    std::vector<std::size_t> offsets;  // each parameter's first element in `buffer`
    std::size_t flags = 0;             // where the flags start in `buffer`
    std::vector<T> buffer;
    bool in_place = false;
    std::size_t flag_slot = 0;  // in place: its flag's place in the carrier
    // In place: the gradient in flight, held so that its array outlives the all-reduce (and a
    // backward that accumulates meanwhile makes a new array instead of adding into this one).
    Variable<T> held;
    bool had_grad = false;  // in place: this rank gave a gradient
    MPI_Request request = MPI_REQUEST_NULL;
    std::size_t ready = 0;
    bool started = false;
};

template <class T>
DataParallel<T>::DataParallel(const Context& ctx, const nn::Module<T>& module, DataParallelOptions options)
    : ctx_(ctx), options_(options) {
    if (options_.bucket_bytes == 0) throw DistError("DataParallel: bucket_bytes must be positive, got 0");
    if (options_.reduction != Reduction::mean && options_.reduction != Reduction::sum)
        throw DistError(fmt::format("DataParallel: reduction must be Reduction::mean or Reduction::sum, got {}",
                                    static_cast<int>(options_.reduction)));
    broadcast_parameters(ctx_, module, options_.root);
    for (auto& [name, p] : module.named_parameters()) {
        params_.push_back(p);
        names_.push_back(name);
    }
    // Reverse registration order: the last layer's gradients are final first.
    bucket_of_.resize(params_.size());
    std::size_t bytes = 0;
    for (std::size_t k = params_.size(); k-- > 0;) {
        const std::size_t size = params_[k].size() * sizeof(T);
        const bool alone = size >= options_.in_place_bytes;
        if (alone || buckets_.empty() || buckets_.back()->in_place ||
            (bytes > 0 && bytes + size > options_.bucket_bytes)) {
            buckets_.push_back(std::make_unique<Bucket>());
            bytes = 0;
        }
        Bucket& b = *buckets_.back();
        b.params.push_back(k);
        bucket_of_[k] = buckets_.size() - 1;
        if (alone) {
            b.in_place = true;
            b.flag_slot = in_place_++;
            continue;
        }
        b.offsets.push_back(b.buffer.size());
        b.buffer.resize(b.buffer.size() + params_[k].size());
        bytes += size;
    }
    for (auto& b : buckets_) {
        if (b->in_place) continue;
        b->flags = b->buffer.size();
        b->buffer.resize(b->buffer.size() + b->params.size());
    }
    const std::size_t carried = in_place_ + max_sums + 2;
    for (std::size_t i = buckets_.size(); i-- > 0 && deferred_ == none;)
        if (!buckets_[i]->in_place) deferred_ = i;
    if (deferred_ != none) {
        carry_at_ = buckets_[deferred_]->buffer.size();
        buckets_[deferred_]->buffer.resize(carry_at_ + carried);
    } else {
        tail_.resize(carried);
    }
    ready_.assign(params_.size(), false);
    if (ctx_.world_size() == 1) return;  // nothing to average: no hooks, no copies
    for (std::size_t k = 0; k < params_.size(); ++k)
        hook_ids_.push_back(params_[k].register_post_accumulate_grad_hook([this, k](const Variable<T>&) {
            on_grad_ready(k);
        }));
}

template <class T>
DataParallel<T>::~DataParallel() {
    for (std::size_t k = 0; k < hook_ids_.size(); ++k) params_[k].remove_hook(hook_ids_[k]);
    // All-reduces still in flight (a step abandoned by an exception) write into the buffers:
    // wait for them before the buffers go.
    for (auto& b : buckets_)
        if (b->started) MPI_Wait(&b->request, MPI_STATUS_IGNORE);
}

template <class T>
std::size_t DataParallel<T>::bucket_count() const {
    return buckets_.size();
}

template <class T>
void DataParallel<T>::set_sync(bool on) {
    sync_ = on;
}

template <class T>
void DataParallel<T>::on_grad_ready(std::size_t k) {
    if (!sync_) return;
    if (ready_[k])
        throw GraphError(fmt::format("DataParallel: the gradient of '{}' was completed twice before finish(): call "
                                     "finish() after each backward(), or set_sync(false) while accumulating",
                                     names_[k]));
    ready_[k] = true;
    ++buckets_[bucket_of_[k]]->ready;
    if (!options_.overlap) return;
    start_ready_buckets();
    progress();
}

// Buckets start in index order, but for the carrier's (deferred_), which starts after all the
// others; the last bucket and the carrier's are never started here: see finish().
template <class T>
void DataParallel<T>::start_ready_buckets() {
    for (;;) {
        if (next_start_ == deferred_) ++next_start_;
        if (next_start_ + 1 >= buckets_.size()) return;
        Bucket& b = *buckets_[next_start_];
        if (b.ready != b.params.size()) return;
        start(b);
        ++next_start_;
    }
}

// Fills the bucket's buffer and all-reduces it: non-blocking, or (`blocking`) at once.
template <class T>
void DataParallel<T>::start(Bucket& b, bool blocking) {
    if (b.in_place) return start_in_place(b, blocking);
    T* buf = b.buffer.data();
    T* flags = buf + b.flags;
    for (std::size_t j = 0; j < b.params.size(); ++j) {
        const Variable<T>& p = params_[b.params[j]];
        const std::size_t n = p.size();
        if (p.has_grad()) {
            std::memcpy(buf + b.offsets[j], p.grad().data().data(), n * sizeof(T));
            flags[j] = T(1);
        } else {
            std::fill_n(buf + b.offsets[j], n, T(0));
            flags[j] = T(0);
        }
    }
    sum_over_ranks(buf, b.buffer.size(), blocking, &b.request, "a bucket (lower bucket_bytes)");
    b.started = true;
    ++stats_.buckets;
    stats_.bytes += b.buffer.size() * sizeof(T);
}

// The same for one parameter's gradient where it lies (zeros where this rank has none).
template <class T>
void DataParallel<T>::start_in_place(Bucket& b, bool blocking) {
    const std::size_t k = b.params[0];
    const Variable<T>& p = params_[k];
    b.had_grad = p.has_grad();
    if (!b.had_grad) p.set_grad(Variable<T>(full<T>(p.shape(), T(0))));
    b.held = p.grad();
    // Summed in place twice, a gradient shared by two parameters (set_grad) would come out N times
    // too large.
    for (std::size_t j = 0; j < params_.size(); ++j)
        if (j != k && params_[j].node()->grad.get() == b.held.node())
            throw DistError(fmt::format("DataParallel: parameters '{}' and '{}' share one gradient array (set_grad); "
                                        "give each its own",
                                        names_[k], names_[j]));
    Array<T>& g = b.held.mutable_data();
    sum_over_ranks(g.data(), g.size(), blocking, &b.request, "the gradient of", names_[k]);
    b.started = true;
    ++stats_.buckets;
    stats_.bytes += g.size() * sizeof(T);
}

template <class T>
void DataParallel<T>::progress() {
    // Open MPI moves a non-blocking collective along only inside MPI calls: test the started ones.
    for (std::size_t i = 0; i < next_start_; ++i) {
        int done = 0;
        MPI_Test(&buckets_[i]->request, &done, MPI_STATUS_IGNORE);
    }
}

template <class T>
void DataParallel<T>::finish(std::span<double> sums) {
    if (!sync_) throw GraphError("DataParallel::finish: set_sync(true) first (gradients are only accumulating)");
    if (sums.size() > max_sums)
        throw DistError(fmt::format("DataParallel::finish: {} sums, at most {}", sums.size(), max_sums));
    if (ctx_.world_size() == 1) {  // the gradients are already the mean over the one rank
        ++stats_.steps;
        return;
    }
    if (buckets_.empty()) {  // no parameter: the sums travel alone
        ctx_.all_reduce_sum(sums);
        ++stats_.steps;
        return;
    }
    std::size_t early = 0;
    for (const auto& b : buckets_) early += b->started ? 1 : 0;
    stats_.overlapped_buckets += static_cast<double>(early);
    // The last bucket holds the gradients backward completes last (the first layers'): starting
    // it before finish() would hide nothing, and Open MPI's blocking all-reduce is about twice as
    // fast as its non-blocking one (0.20 against 0.37 ms for 940 KB on 2 ranks here). The
    // carrier's bucket follows it, blocking too. The order is the same on every rank, as
    // collectives need: index order, the carrier's bucket (or the carrier alone) last.
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < buckets_.size(); ++i)
        if (i != deferred_ && !buckets_[i]->started) start(*buckets_[i], i + 1 == buckets_.size());
    T* const carrier = deferred_ != none ? buckets_[deferred_]->buffer.data() + carry_at_ : tail_.data();
    for (const auto& b : buckets_)  // every in-place bucket has started: their flags are known
        if (b->in_place) carrier[b->flag_slot] = b->had_grad ? T(1) : T(0);
    T* const slots = carrier + in_place_;
    std::fill_n(slots, max_sums, T(0));
    for (std::size_t i = 0; i < sums.size(); ++i) slots[i] = static_cast<T>(sums[i]);
    slots[max_sums] = static_cast<T>(sums.size());
    slots[max_sums + 1] = static_cast<T>(sums.size() * sums.size());
    if (deferred_ != none) {
        start(*buckets_[deferred_], true);
    } else {
        sum_over_ranks(tail_.data(), tail_.size(), true, nullptr, "the flags and sums");
        stats_.bytes += tail_.size() * sizeof(T);
    }
    for (auto& b : buckets_) detail::check_mpi(MPI_Wait(&b->request, MPI_STATUS_IGNORE), "MPI_Wait (DataParallel)");
    stats_.wait_seconds += seconds_since(t0);
    ++stats_.steps;
    const T ranks = static_cast<T>(ctx_.world_size());
    // x / 2^k and x * 2^-k round the same exact number, so for such worlds the mean takes a
    // multiply, not a divide: the library is built for baseline x86-64, four floats to a divps,
    // and the divides bounded this loop (finish() 0.27 -> 0.21 ms for the main job's MLP).
    const bool power_of_two = (ctx_.world_size() & (ctx_.world_size() - 1)) == 0;
    const T inverse = T(1) / ranks;
    const bool sum_only = options_.reduction == Reduction::sum;
    // The ranks' sum into a gradient: its mean, or (Reduction::sum) itself.
    auto from_sum = [&](const T* src, T* dst, std::size_t n) {
        if (sum_only) {
            if (src != dst) std::copy_n(src, n, dst);
        } else if (power_of_two)
            for (std::size_t i = 0; i < n; ++i) dst[i] = src[i] * inverse;
        else
            for (std::size_t i = 0; i < n; ++i) dst[i] = src[i] / ranks;
    };
    for (auto& bp : buckets_) {
        Bucket& b = *bp;
        b.ready = 0;
        b.started = false;
        if (b.in_place) {
            const Variable<T>& p = params_[b.params[0]];
            const Variable<T> g = std::exchange(b.held, Variable<T>());
            if (carrier[b.flag_slot] == T(0)) {  // no rank had a gradient: drop the zeros
                p.zero_grad();
                continue;
            }
            if (!sum_only) {
                T* sum = g.mutable_data().data();
                from_sum(sum, sum, g.size());
            }
            // A backward run again before finish() (refused) left a new gradient in .grad()
            if (!p.has_grad() || p.grad().node() != g.node()) p.set_grad(g);
            continue;
        }
        const T* flags = b.buffer.data() + b.flags;
        for (std::size_t j = 0; j < b.params.size(); ++j) {
            const Variable<T>& p = params_[b.params[j]];
            if (flags[j] == T(0)) continue;  // no rank has a gradient for it
            const T* src = b.buffer.data() + b.offsets[j];
            if (!p.has_grad()) p.set_grad(Variable<T>(Array<T>::from_shape(p.shape())));
            from_sum(src, p.grad().mutable_data().data(), p.size());
        }
    }
    std::fill(ready_.begin(), ready_.end(), false);
    next_start_ = 0;
    {  // checked last: the step is complete and the next one can start, whatever the sums
        const double world = ctx_.world_size(), count = slots[max_sums], squares = slots[max_sums + 1];
        if (count != world * static_cast<double>(sums.size()) || squares * world != count * count)
            throw DistError(fmt::format("DataParallel::finish: the ranks passed different numbers of sums ({} here, "
                                        "{} over {} ranks)",
                                        sums.size(), count, ctx_.world_size()));
        for (std::size_t i = 0; i < sums.size(); ++i) sums[i] = static_cast<double>(slots[i]);
    }
}

template void broadcast_parameters(const Context&, const nn::Module<float>&, int);
template void broadcast_parameters(const Context&, const nn::Module<double>&, int);
template void broadcast_buffers(const Context&, const nn::Module<float>&, int);
template void broadcast_buffers(const Context&, const nn::Module<double>&, int);
template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace xg::dist
