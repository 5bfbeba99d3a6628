// dist_scaling: data-parallel training steps on MPI ranks (dist::DataParallel), for
// scripts/bench-dist, which runs it on 1 and 2 ranks:
//
//   mpirun -np N dist_scaling --model mlp|cnn [--batch 256] [--steps 60] [--no-overlap] [--bucket-kb 1024]
//                    [--in-place-kb 512]   (0: every gradient in place; 1048576, 1 GB: none)
//                    [--reduction sum|mean]  (sum, as train::Trainer: each rank's loss weighed by
//                    its share of the batch, finish() leaving the sum; mean: finish() divides)
//
// The models are the main job's MultiLayerNet 784-256-128-10 (ReLU, batch norm, Adam) and the
// book's SimpleConvNet (conv 30 5x5, ReLU, 2x2 max pool, Linear 100, ReLU, Linear 10, Adam), on
// fixed random images; each rank takes batch / N of the global batch. After 10 warm-up steps it
// times `steps` steps (zero_grad, forward, loss, backward, DataParallel::finish, Adam) with a
// barrier before and after, and prints "key value" lines (rank 0):
//   images_per_second   global batch * steps / wall time (the slowest rank's)
//   step_ms             wall time per step
//   wait_ms             per step, the time finish() waited for all-reduces (mean over ranks)
//   bytes_per_step      bytes each rank all-reduces per step
//   buckets             all-reduces per step
//   compute_ms          per step, zero_grad + forward + loss + backward (mean over ranks; and
//   compute_slowest_ms  the slowest rank's), finish_ms (DataParallel::finish), update_ms (Adam)
//   compute_slowest_each_step_ms   per step, the compute of whichever rank was slowest in that
//                       step: above compute_ms by what the ranks' drifting apart costs finish()
// The heap is bench::stable_heap()'s, as in the other timing benches: with glibc's default
// thresholds, a change as small as one vector's growth pattern at set-up (which decides the
// adaptive mmap and trim thresholds) moved the 2-rank MLP step from 5.0 to 7.5 ms through page
// faults on every step.
// Single-threaded BLAS per rank (OPENBLAS_NUM_THREADS=1).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/common.hpp"
#include "xgrad.hpp"

namespace {

using namespace xg;
using V = Variable<float>;

std::unique_ptr<nn::Module<float>> make_model(const std::string& name) {
    if (name == "mlp")
        return std::make_unique<nn::MultiLayerNet<float>>(nn::MultiLayerNetOptions{
            .input_size = 784, .hidden_sizes = {256, 128}, .output_size = 10, .use_batchnorm = true, .seed = 1});
    auto net = std::make_unique<nn::Sequential<float>>();
    net->push_back(std::make_shared<nn::Conv2d<float>>(1, 30, 5));
    net->push_back(std::make_shared<nn::ReLU<float>>());
    net->push_back(std::make_shared<nn::MaxPool2d<float>>(Pool2dOptions{.kernel = 2}));
    net->push_back(std::make_shared<nn::Flatten<float>>());
    net->push_back(std::make_shared<nn::Linear<float>>(30 * 12 * 12, 100));
    net->push_back(std::make_shared<nn::ReLU<float>>());
    net->push_back(std::make_shared<nn::Linear<float>>(100, 10));
    return net;
}

V forward(nn::Module<float>& m, const V& x) {
    if (auto* mlp = dynamic_cast<nn::MultiLayerNet<float>*>(&m)) return mlp->forward(x);
    return static_cast<nn::Sequential<float>&>(m).forward(x);
}

int run(int argc, char** argv, const dist::Context& world) {
    std::string model = "mlp";
    std::size_t batch = 256, steps = 60, bucket_kb = 1024, in_place_kb = 512;
    bool overlap = true;
    dist::Reduction reduction = dist::Reduction::sum;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw ValueError(fmt::format("{} needs a value", a));
            return argv[++i];
        };
        auto count = [&](std::size_t lo, std::size_t hi) {
            const std::string v = value();
            std::size_t n = 0, used = 0;
            try {
                n = std::stoul(v, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != v.size() || n < lo || n > hi)
                throw ValueError(fmt::format("{} must be an integer in [{}, {}], got '{}'", a, lo, hi, v));
            return n;
        };
        if (a == "--model") {
            model = value();
            if (model != "mlp" && model != "cnn") throw ValueError(fmt::format("--model must be mlp or cnn, got '{}'", model));
        } else if (a == "--batch") {
            batch = count(1, 65536);
        } else if (a == "--steps") {
            steps = count(1, 100000);
        } else if (a == "--bucket-kb") {
            bucket_kb = count(1, 1 << 20);
        } else if (a == "--in-place-kb") {
            in_place_kb = count(0, 1 << 20);
        } else if (a == "--reduction") {
            const std::string r = value();
            if (r != "sum" && r != "mean") throw ValueError(fmt::format("--reduction must be sum or mean, got '{}'", r));
            reduction = r == "sum" ? dist::Reduction::sum : dist::Reduction::mean;
        } else if (a == "--no-overlap") {
            overlap = false;
        } else {
            throw ValueError(fmt::format("unknown argument '{}' (see the comment at the top of bench/dist_scaling.cpp)", a));
        }
    }
    const auto ranks = static_cast<std::size_t>(world.world_size()), rank = static_cast<std::size_t>(world.rank());
    if (batch < 2 * ranks) throw ValueError(fmt::format("--batch {} leaves a rank fewer than 2 rows", batch));

    bench::stable_heap();
    auto net = make_model(model);
    optim::Adam<float> adam(net->parameters(), {.lr = 1e-3});
    dist::DataParallel<float> dp(world, *net,
                                 {.bucket_bytes = bucket_kb * 1024,
                                  .in_place_bytes = in_place_kb * 1024,
                                  .overlap = overlap,
                                  .reduction = reduction});

    // Fixed random images and labels for the whole global batch; this rank's rows are its shard.
    std::vector<std::size_t> all(batch);
    for (std::size_t i = 0; i < batch; ++i) all[i] = i;
    const auto mine = data::shard(all, rank, ranks);
    std::mt19937_64 gen(20261130);
    std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
    const Shape shape = model == "mlp" ? Shape{mine.size(), 784} : Shape{mine.size(), 1, 28, 28};
    Array<float> x = Array<float>::from_shape(shape);
    for (std::size_t skip = 0; skip < mine.front() * 784; ++skip) (void)pixel(gen);
    for (float& v : x) v = pixel(gen);
    Labels y = Labels::from_shape({mine.size()});
    for (std::size_t i = 0; i < mine.size(); ++i) y(i) = static_cast<std::int64_t>((mine[i] * 7) % 10);
    const V input(std::move(x));
    const auto scale = static_cast<float>(dp.loss_scale(static_cast<double>(mine.size()) / static_cast<double>(batch)));

    // Where each step goes on this rank: forward and backward, finish(), the update.
    using Clock = std::chrono::steady_clock;
    double compute = 0, finishing = 0, update = 0;
    std::vector<double> step_compute;  // per timed step, to see how far the ranks drift apart
    auto between = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
    auto step = [&] {
        const auto t0 = Clock::now();
        adam.zero_grad();
        const V loss = softmax_cross_entropy(forward(*net, input), y) * scale;
        loss.backward();
        const auto t1 = Clock::now();
        dp.finish();
        const auto t2 = Clock::now();
        adam.step();
        const auto t3 = Clock::now();
        step_compute.push_back(between(t0, t1));
        compute += between(t0, t1);
        finishing += between(t1, t2);
        update += between(t2, t3);
    };
    for (int i = 0; i < 10; ++i) step();
    dp.reset_stats();
    compute = finishing = update = 0;
    step_compute.clear();
    world.barrier();
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < steps; ++i) step();
    world.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double wait = world.all_reduce_sum(dp.stats().wait_seconds) / static_cast<double>(ranks);
    std::vector<double> parts{compute, finishing, update};
    std::vector<double> slowest = parts;
    world.all_reduce_sum(parts);
    world.all_reduce_max(slowest);
    world.all_reduce_max(step_compute);
    double slowest_each_step = 0;
    for (double c : step_compute) slowest_each_step += c;
    if (!world.is_main()) return 0;
    const double n = static_cast<double>(steps);
    fmt::print("model {}\nranks {}\nbatch {}\noverlap {}\n", model, ranks, batch, overlap ? 1 : 0);
    fmt::print("images_per_second {:.1f}\nstep_ms {:.3f}\nwait_ms {:.3f}\n", static_cast<double>(batch) * n / seconds,
               1000 * seconds / n, 1000 * wait / n);
    fmt::print("bytes_per_step {}\nbuckets {}\n", dp.stats().bytes / steps, dp.stats().buckets / steps);
    const double r = static_cast<double>(ranks);
    fmt::print("compute_ms {:.3f}\ncompute_slowest_ms {:.3f}\nfinish_ms {:.3f}\nupdate_ms {:.3f}\n",
               1000 * parts[0] / r / n, 1000 * slowest[0] / n, 1000 * parts[1] / r / n, 1000 * parts[2] / r / n);
    fmt::print("compute_slowest_each_step_ms {:.3f}\n", 1000 * slowest_each_step / n);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return dist::run(argc, argv, [&](dist::Context& world) { return run(argc, argv, world); });
}
