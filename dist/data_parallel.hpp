#pragma once
// Data-parallel training (PyTorch's DistributedDataParallel, on MPI): every rank holds the whole
// model, computes gradients on its own part of each batch, and the gradients are averaged over
// the ranks before the optimizer steps, so every rank takes the same step.
//
//     xg::dist::DataParallel<float> dp(ctx, model);      // rank 0's parameters go to every rank
//     for (...) {
//         optimizer.zero_grad();
//         loss.backward();     // buckets are all-reduced while the backward pass goes on
//         dp.finish();         // waits for them: every .grad() is now the mean over the ranks
//         optimizer.step();
//     }
//
// The gradients are packed into buckets of about options.bucket_bytes, in the reverse order of
// the parameters' registration (roughly the order in which backward completes them). A hook on
// each parameter (Variable::register_post_accumulate_grad_hook) tells when its gradient is final;
// when all of a bucket's are, the bucket is copied into one buffer and handed to MPI_Iallreduce,
// so the transfer overlaps the rest of backward. Buckets start in the same order on every rank (a
// bucket whose gradients are final waits for those before it), as collectives must. The last
// bucket (the first layers' gradients, which backward completes last) is all-reduced in finish()
// with a blocking MPI_Allreduce, faster than the non-blocking one when nothing is left to overlap.
// A large gradient (options.in_place_bytes) is a bucket of its own, all-reduced in its .grad()
// array, without the copies; the last bucket that is copied then goes last, carrying the flags.
//
// Averaging is the mean over ranks of each rank's gradient: with unequal parts of a batch (an
// uneven last batch), scale each rank's loss by world_size * rows_here / rows_in_batch before
// backward for the gradient of the whole batch's mean loss. With options.reduction = sum,
// finish() leaves the sum instead: scale the loss by rows_here / rows_in_batch (train::Trainer
// does), and finish() has no mean to take. loss_scale(share) gives the factor either way.
//
// A parameter no rank gave a gradient keeps none (the optimizer skips it, as in one process); one
// that some ranks gave a gradient gets the mean with zeros from the others. One backward() per
// finish(): a second would finish buckets twice (GraphError); to accumulate several backward
// passes, set_sync(false) for all but the last.
//
// In a world of one it does nothing (no hooks, no copies): the same program runs alone at full
// speed. Not thread-safe; the thread that made the Context calls it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dist/context.hpp"
#include "graph/variable.hpp"
#include "nn/module.hpp"

namespace xg::dist {

// What finish() leaves in every .grad(): the mean of the ranks' gradients, or their sum.
enum class Reduction { mean, sum };

struct DataParallelOptions {
    // Bucket size cap. Smaller buckets start sooner (more overlap) but cost one MPI latency each.
    std::size_t bucket_bytes = std::size_t{1} << 20;
    // A gradient of at least this many bytes is a bucket of its own, all-reduced where it lies
    // (in its .grad() array) instead of copied into a bucket's buffer and back: two passes over
    // it less per step. The main job's MLP: its 800 KB first-layer weight. SIZE_MAX: none. Each
    // such gradient costs one all-reduce of its own: between hosts a message costs tens of
    // microseconds (alpha), which can be saved by raising it above bucket_bytes so that only
    // gradients alone in a bucket anyway go in place; on 2 hosts of scripts/netns-hosts at 10 Gb/s
    // that made no measurable difference (docs/distributed.md).
    std::size_t in_place_bytes = std::size_t{512} << 10;
    // Start each bucket's all-reduce as soon as its gradients are final; false: all of them in
    // finish() (to measure what the overlap hides).
    bool overlap = true;
    // mean: finish() divides the all-reduced sums by the world size. sum: it leaves the sums, for
    // a loss already scaled by this rank's share of the global batch (rows here / rows in the
    // batch; train::Trainer does so): the sum is then the gradient of the whole batch's mean
    // loss, and finish() makes no pass over the gradients all-reduced in place (the main job's
    // 800 KB first-layer weight) and only copies the others out of their buckets. For a world of
    // 2^k ranks the two give the same bits: scaling by a power of two is exact.
    Reduction reduction = Reduction::mean;
    int root = 0;  // the rank whose parameters and buffers the constructor broadcasts
};

// Time and traffic of the all-reduces since construction (or reset_stats()).
struct CommStats {
    std::size_t steps = 0;            // finish() calls
    std::size_t buckets = 0;          // all-reduces started
    std::size_t bytes = 0;            // bytes all-reduced (each rank's buffer, summed over buckets)
    double wait_seconds = 0;          // time finish() spent in all-reduces (starting and waiting)
    double overlapped_buckets = 0;    // buckets started before finish() (during backward)
};

// Copies rank `root`'s parameters and buffers into every rank's module. DistError (before any
// data moves) when the ranks' modules differ in parameter names, count or shapes.
template <class T>
void broadcast_parameters(const Context& ctx, const nn::Module<T>& module, int root = 0);
// The buffers alone (batch-norm running statistics), e.g. before evaluating on every rank.
template <class T>
void broadcast_buffers(const Context& ctx, const nn::Module<T>& module, int root = 0);

template <class T>
class DataParallel {
public:
    DataParallel(const Context& ctx, const nn::Module<T>& module, DataParallelOptions options = {});
    ~DataParallel();
    DataParallel(const DataParallel&) = delete;
    DataParallel& operator=(const DataParallel&) = delete;

    // Waits for this step's all-reduces (starting those not yet started) and writes the mean
    // gradients (or their sum: options.reduction) into the parameters' .grad(). Every rank must
    // call it once per step, also a rank that ran no backward (it contributes zeros).
    //
    // `sums` (at most max_sums values, e.g. this rank's share of the batch's loss) are summed over
    // the ranks in place, carried by the last all-reduce (in T's precision), so that such numbers
    // cost no collective, and no wait, of their own. DistError when the ranks pass different
    // numbers of them (noticed after the all-reduce, whose size never depends on them).
    void finish(std::span<double> sums = {});
    static constexpr std::size_t max_sums = 4;
    // Whether backward passes start all-reduces (true). With false, gradients only accumulate
    // locally, and finish() must not be called until it is true again and a backward has run.
    void set_sync(bool on);

    const DataParallelOptions& options() const { return options_; }
    // What to multiply this rank's loss (the mean over its rows) by before backward, given its
    // share of the global batch (rows here / rows in the batch), for finish() to give the
    // gradient of the whole batch's mean loss: the share, times the world size under
    // Reduction::mean.
    double loss_scale(double share) const {
        return options_.reduction == Reduction::mean ? share * static_cast<double>(ctx_.world_size()) : share;
    }
    const CommStats& stats() const { return stats_; }
    void reset_stats() { stats_ = {}; }
    std::size_t bucket_count() const;
    const Context& context() const { return ctx_; }

private:
    struct Bucket;
    void on_grad_ready(std::size_t param);
    void start_ready_buckets();
    void start(Bucket& b, bool blocking = false);
    void start_in_place(Bucket& b, bool blocking);
    void progress();

    const Context& ctx_;
    DataParallelOptions options_;
    std::vector<Variable<T>> params_;
    std::vector<std::string> names_;
    std::vector<std::uint64_t> hook_ids_;
    std::vector<std::size_t> bucket_of_;  // parameter -> bucket
    std::vector<std::unique_ptr<Bucket>> buckets_;
    std::vector<bool> ready_;             // parameter's gradient final in this step
    std::size_t in_place_ = 0;            // buckets all-reduced in place
    static constexpr std::size_t none = static_cast<std::size_t>(-1);
    std::size_t deferred_ = none;         // the last bucket that is not in place: it carries the carrier
    std::size_t carry_at_ = 0;            // where the carrier starts in that bucket's buffer
    std::vector<T> tail_;                 // the carrier when every bucket is in place
    std::size_t next_start_ = 0;          // buckets start in index order
    bool sync_ = true;
    CommStats stats_;
};

extern template class DataParallel<float>;
extern template class DataParallel<double>;

}  // namespace xg::dist
