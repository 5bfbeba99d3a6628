// dist/ under mpirun (2 and 3 ranks): data-parallel training reaches the parameters of one process
// with the whole batch; broadcast, sharding, SyncBatchNorm1d, checkpoints across world sizes,
// and the errors every rank must agree on.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include <mpi.h>

#include "expect_error.hpp"
#include "data/dataset.hpp"
#include "data/tensor_dataset.hpp"
#include "dist/data_parallel.hpp"
#include "dist/sync_batch_norm.hpp"
#include "dist_fixture.hpp"
#include "fixtures.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "train/train.hpp"

namespace fs = std::filesystem;
using namespace xg;
using xgt::world;

namespace {

enum class Norm { none, batch, sync };

// A small classifier: Linear(4, 16) [-> BatchNorm1d or SyncBatchNorm1d] -> ReLU -> Linear(16, 3).
template <class T>
struct Net : nn::Module<T> {
    std::shared_ptr<nn::Linear<T>> l1, l2;
    std::shared_ptr<nn::BatchNorm1d<T>> bn;
    Net(std::uint64_t seed, Norm norm, std::size_t hidden = 16) {
        nn::Generator gen(seed);
        // No bias before batch norm: its gradient is zero but for rounding, which Adam would
        // turn into steps of lr (noise that no two summation orders share).
        l1 = this->register_module("l1", std::make_shared<nn::Linear<T>>(
                                             4, hidden, nn::LinearOptions{.bias = norm == Norm::none, .generator = &gen}));
        if (norm == Norm::batch) bn = this->register_module("bn", std::make_shared<nn::BatchNorm1d<T>>(hidden));
        if (norm == Norm::sync)
            bn = this->register_module("bn", std::make_shared<dist::SyncBatchNorm1d<T>>(world(), hidden));
        l2 = this->register_module("l2", std::make_shared<nn::Linear<T>>(hidden, 3, nn::LinearOptions{.generator = &gen}));
    }
    Variable<T> forward(const Variable<T>& x) {
        Variable<T> h = l1->forward(x);
        if (bn) h = bn->forward(h);
        return l2->forward(relu(h));
    }
};

template <class T>
data::TensorDataset<T> blob_set(std::size_t n) {
    const data::Dataset d = xgt::blobs(n, 7);
    return data::TensorDataset<T>({Array<T>(xt::cast<T>(d.images))}, d.labels);
}

template <class T>
Variable<T> net_loss(Net<T>& net, const data::TensorBatch<T>& b) {
    return softmax_cross_entropy(net.forward(Variable<T>(b.x[0])), b.y);
}

// This rank's share of the loss of batch `rows`: the mean over its shard, weighted by
// world_size * shard rows / batch rows (docs/distributed.md), so that the mean over the ranks of
// the gradients is the whole batch's on any number of ranks (1 for an even split).
// With Reduction::sum the weight is shard rows / batch rows alone.
template <class T>
Variable<T> shard_loss(Net<T>& net, const data::TensorDataset<T>& set, const std::vector<std::size_t>& rows,
                       dist::Reduction reduction = dist::Reduction::mean) {
    const auto ranks = static_cast<std::size_t>(world().world_size());
    const auto mine = data::shard(rows, static_cast<std::size_t>(world().rank()), ranks);
    const std::size_t times = reduction == dist::Reduction::mean ? ranks : 1;
    return net_loss(net, set.batch(mine)) * (static_cast<T>(times * mine.size()) / static_cast<T>(rows.size()));
}

// max |a - b| / max |b| over every parameter and buffer of two models, all the same on every rank
// (the largest over the ranks).
template <class T>
double relative_difference(const nn::Module<T>& a, const nn::Module<T>& b) {
    const auto sa = a.state_dict(), sb = b.state_dict();
    BOOST_REQUIRE(sa.size() == sb.size());
    double worst = 0;
    for (std::size_t k = 0; k < sa.size(); ++k) {
        BOOST_REQUIRE(sa[k].first == sb[k].first);
        double diff = 0, scale = 0;
        for (std::size_t i = 0; i < sa[k].second.size(); ++i) {
            diff = std::max(diff, std::abs(double(sa[k].second.flat(i)) - double(sb[k].second.flat(i))));
            scale = std::max(scale, std::abs(double(sb[k].second.flat(i))));
        }
        const double rel = scale > 0 ? diff / scale : diff;
        if (rel > 1e-12) BOOST_TEST_MESSAGE("differs: " << sa[k].first << " by " << rel);
        worst = std::max(worst, rel);
    }
    double w[1] = {worst};
    world().all_reduce_max(w);
    return w[0];
}

// The same number on every rank?
bool same_on_every_rank(double v) {
    double m[2] = {v, -v};
    world().all_reduce_max(m);
    return m[0] == -m[1];
}

template <class T>
double tolerance() {
    return sizeof(T) == sizeof(double) ? 1e-12 : 1e-5;
}

template <class T>
std::unique_ptr<optim::Optimizer<T>> make_optimizer(const std::string& rule, const nn::Module<T>& m) {
    if (rule == "sgd") return std::make_unique<optim::SGD<T>>(m.parameters(), optim::SGDOptions{.lr = 0.1});
    return std::make_unique<optim::Adam<T>>(m.parameters(), optim::AdamOptions{.lr = 0.01});
}

// 20 steps by hand with DataParallel, per-rank batch 12 / N (an even split on 2, 3, 4 and 6
// ranks; on 5 the shards differ and shard_loss weights them), against one process with batch 12.
// The distributed model starts from a different seed on each rank: the constructor's broadcast
// makes it rank 0's.
//
// in_place_bytes: which gradients are all-reduced where they lie. The default (512 KB) takes none
// of this model's; 150 takes both weights (64 and 48 elements) and leaves the biases to buffers,
// so that the buckets run copy, in place, copy (the carrier's, all-reduced last), in place; 0
// takes every gradient, and the flags and sums travel in a buffer of their own.
//
// reduction: what finish() leaves (the mean, or the sum for losses weighted by their share alone).
template <class T>
void manual_steps_match_one_process(const std::string& rule, std::size_t in_place_bytes = std::size_t{512} << 10,
                                    dist::Reduction reduction = dist::Reduction::mean) {
    const auto set = blob_set<T>(60);
    const std::size_t batch = 12;
    Net<T> one(1, Norm::none), many(1 + static_cast<std::uint64_t>(world().rank()), Norm::none);
    auto opt_one = make_optimizer(rule, one), opt_many = make_optimizer(rule, many);
    dist::DataParallel<T> dp(world(), many,
                             {.bucket_bytes = 256, .in_place_bytes = in_place_bytes, .reduction = reduction});
    BOOST_TEST(relative_difference(one, many) == 0.0);
    for (std::size_t step = 0; step < 20; ++step) {
        std::vector<std::size_t> rows(batch);
        std::iota(rows.begin(), rows.end(), (step * batch) % set.size());
        opt_one->zero_grad();
        net_loss(one, set.batch(rows)).backward();
        opt_one->step();
        opt_many->zero_grad();
        shard_loss(many, set, rows, reduction).backward();
        dp.finish();
        opt_many->step();
    }
    BOOST_TEST(relative_difference(one, many) <= tolerance<T>(),
               rule << " " << sizeof(T) * 8 << "-bit, in place from " << in_place_bytes << " bytes, "
                    << (reduction == dist::Reduction::sum ? "sum" : "mean"));
    // Small buckets (one or two parameters each) start during backward, before finish().
    BOOST_TEST(dp.bucket_count() >= 2u);
    BOOST_TEST(dp.stats().steps == 20u);
    BOOST_TEST(dp.stats().overlapped_buckets > 0);
    // Whichever way the gradients go, a step all-reduces every element, a flag per parameter and
    // the sums' slots (max_sums, their count and its square), nothing twice.
    std::size_t elements = dist::DataParallel<T>::max_sums + 2;
    for (const auto& p : many.parameters()) elements += p.size() + 1;
    BOOST_TEST(dp.stats().bytes == 20 * elements * sizeof(T));
}

// The Trainer, 4 epochs of 59 rows in batches of 12: the last batch (11 rows) splits unevenly
// (6 + 5, 4 + 4 + 3, or 3 + 3 + 3 + 2 on 4 ranks), and the losses are weighted so that the step
// is the whole batch's. With batch norm a rank needs 2 rows of every batch, so the last batch
// is kept on up to 5 ranks, as in one process.
template <class T>
void trainer_matches_one_process(const std::string& rule, Norm norm) {
    const auto set = blob_set<T>(59), test = blob_set<T>(30);
    Net<T> one(3, norm == Norm::sync ? Norm::batch : norm), many(3, norm);
    auto opt_one = make_optimizer(rule, one), opt_many = make_optimizer(rule, many);
    const train::TrainerOptions options{.epochs = 4, .batch_size = 12, .seed = 9, .verbose = false};
    train::Trainer t_one(one, *opt_one, set, net_loss<T>, options), t_many(many, *opt_many, set, net_loss<T>, options);
    t_many.distribute(world());
    const train::History& h_one = t_one.fit();
    const train::History& h_many = t_many.fit();
    const double rel = relative_difference(one, many);
    BOOST_TEST(rel <= tolerance<T>(), rule << " " << sizeof(T) * 8 << "-bit norm " << rel << " "
                                                                      << static_cast<int>(norm));
    BOOST_REQUIRE(h_one.iteration_loss.size() == 20u);
    BOOST_REQUIRE(h_many.iteration_loss.size() == 20u);
    for (std::size_t i = 0; i < 20; ++i)
        BOOST_TEST(std::abs(h_one.iteration_loss[i] - h_many.iteration_loss[i]) <=
                   10 * tolerance<T>() * (1 + std::abs(h_one.iteration_loss[i])));
    BOOST_TEST(same_on_every_rank(h_many.epochs.back().train_loss));
}

// The value Open MPI 4's shared-memory transport (vader) took for one of its settings (e.g.
// btl_vader_single_copy_mechanism: "none", "cma", ...; btl_vader_max_send_size: a number), read
// back through the MPI tool interface; "" if there is no such variable.
std::string vader_setting(std::string_view setting) {
    int provided = 0, count = 0;
    MPI_T_init_thread(MPI_THREAD_SINGLE, &provided);
    MPI_T_cvar_get_num(&count);
    std::string value;
    for (int i = 0; i < count && value.empty(); ++i) {
        char name[256], text[1024];
        int name_len = sizeof name, text_len = sizeof text, verbosity = 0, bind = 0, scope = 0;
        MPI_Datatype type;
        MPI_T_enum kinds;
        if (MPI_T_cvar_get_info(i, name, &name_len, &verbosity, &type, &kinds, text, &text_len, &bind, &scope) !=
            MPI_SUCCESS)
            continue;
        if (std::string_view(name) != setting) continue;
        MPI_T_cvar_handle handle;
        int elements = 0;
        MPI_T_cvar_handle_alloc(i, nullptr, &handle, &elements);
        unsigned long long number = 0;  // an int variable fills the low bytes (x86-64), a size_t all
        MPI_T_cvar_read(handle, &number);
        MPI_T_cvar_handle_free(&handle);
        if (kinds == MPI_T_ENUM_NULL) {
            value = std::to_string(number);
            continue;
        }
        int items = 0;
        name_len = sizeof name;
        MPI_T_enum_get_info(kinds, &items, name, &name_len);
        for (int k = 0; k < items; ++k) {
            int item = 0;
            name_len = sizeof name;
            MPI_T_enum_get_item(kinds, k, &item, name, &name_len);
            if (item == static_cast<int>(number)) value = name;
        }
    }
    MPI_T_finalize();
    return value;
}

// Two micro-batches with set_sync, against one process; then a second backward before finish(),
// refused, and finish() bringing the ranks back in step.
void accumulate_then_refuse(std::size_t in_place_bytes) {
    const auto set = blob_set<double>(24);
    Net<double> one(4, Norm::none), many(4, Norm::none);
    dist::DataParallel<double> dp(world(), many, {.in_place_bytes = in_place_bytes});
    const auto ranks = static_cast<std::size_t>(world().world_size()), rank = static_cast<std::size_t>(world().rank());
    std::vector<std::size_t> first(12), second(12);
    std::iota(first.begin(), first.end(), 0);
    std::iota(second.begin(), second.end(), 12);
    // Two micro-batches, the all-reduce only after the second: the gradient of their sum.
    dp.set_sync(false);
    xgt::expect_error<GraphError>([&] { dp.finish(); }, {});
    shard_loss(many, set, first).backward();
    dp.set_sync(true);
    shard_loss(many, set, second).backward();
    dp.finish();
    net_loss(one, set.batch(first)).backward();
    net_loss(one, set.batch(second)).backward();
    const auto pm = many.parameters(), po = one.parameters();
    for (std::size_t k = 0; k < pm.size(); ++k)
        BOOST_TEST(xgt::close(pm[k].grad().data(), po[k].grad().data(), 1e-12));
    // A second backward before finish() completes the same gradients twice: refused on every
    // rank alike, and finish() then brings the ranks back in step.
    many.zero_grad();
    net_loss(many, set.batch(data::shard(first, rank, ranks))).backward();
    xgt::expect_error<GraphError>([&] { net_loss(many, set.batch(data::shard(first, rank, ranks))).backward(); }, {});
    dp.finish();
    for (const auto& p : many.parameters()) BOOST_TEST(same_on_every_rank(p.grad().data().flat(0)));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dist_layer)

BOOST_AUTO_TEST_CASE(context_reduces_and_broadcasts) {
    const int n = world().world_size();
    BOOST_TEST(n >= 2);
    BOOST_TEST(world().all_reduce_sum(double(world().rank())) == n * (n - 1) / 2.0);
    std::vector<double> v{1.0, double(world().rank())};
    world().all_reduce_max(v);
    BOOST_TEST(v[1] == n - 1.0);
    std::array<std::byte, 3> bytes{};
    if (world().rank() == 1) bytes = {std::byte{1}, std::byte{2}, std::byte{3}};
    world().broadcast(bytes, 1);
    BOOST_TEST(int(bytes[2]) == 3);
    // Ranks that reduce different counts are refused on every rank, before any data moves.
    std::vector<double> uneven(1 + static_cast<std::size_t>(world().rank()), 1.0);
    xgt::expect_error<dist::DistError>([&] { world().all_reduce_sum(uneven); }, {});
    xgt::expect_error<dist::DistError>([&] { world().broadcast(bytes, n); }, {});
    xgt::expect_error<dist::DistError>([&] { dist::Context second; }, {});  // one per process
}

// dist::Context makes Open MPI's two-copy shared-memory path and 256 KB fragments the defaults
// (together about two and a half times as fast here for DataParallel's messages); this suite's
// mpirun chooses nothing, so the defaults must hold wherever two ranks share a node (where no
// rank does, as with one rank on each of scripts/netns-hosts's hosts, Open MPI loads no vader).
BOOST_AUTO_TEST_CASE(context_tunes_the_shared_memory_transport) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    if (std::string_view(version, static_cast<std::size_t>(length)).find("Open MPI v4.") == std::string_view::npos) {
        BOOST_TEST_MESSAGE("not Open MPI 4 (" << version << "): the vader transport's defaults are not set");
        return;
    }
    MPI_Comm node;
    BOOST_TEST_REQUIRE(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS);
    int on_node = 0, most_on_a_node = 0;
    MPI_Comm_size(node, &on_node);
    MPI_Comm_free(&node);
    BOOST_TEST_REQUIRE(MPI_Allreduce(&on_node, &most_on_a_node, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) == MPI_SUCCESS);
    if (most_on_a_node < 2) {
        BOOST_TEST_MESSAGE("no two ranks share a node: no shared-memory transport to check");
        return;
    }
    if (on_node < 2) return;  // this rank talks to others over the network only
    const std::string mechanism = vader_setting("btl_vader_single_copy_mechanism");
    BOOST_TEST_REQUIRE(!mechanism.empty(), "Open MPI 4 without btl_vader_single_copy_mechanism");
    BOOST_TEST(mechanism == "none");
    BOOST_TEST(vader_setting("btl_vader_max_send_size") == "262144");
}

BOOST_AUTO_TEST_CASE(broadcast_parameters_copies_rank_0s_model) {
    Net<double> net(100 + static_cast<std::uint64_t>(world().rank()), Norm::batch), want(100, Norm::batch);
    net.bn->running_mean().mutable_data().fill(double(world().rank()));
    want.bn->running_mean().mutable_data().fill(0.0);
    dist::broadcast_parameters(world(), net);
    BOOST_TEST(relative_difference(net, want) == 0.0);
    // A model of another shape on one rank: DistError on every rank, nothing moved.
    Net<double> odd(5, Norm::none, world().rank() == 1 ? 17 : 16);
    const auto before = odd.state_dict();
    xgt::expect_error<dist::DistError>([&] { dist::broadcast_parameters(world(), odd); }, {});
    xgt::expect_error<dist::DistError>([&] { dist::DataParallel<double>(world(), odd); }, {});
    BOOST_TEST(xgt::close(odd.state_dict()[0].second, before[0].second, 0.0));
}

BOOST_AUTO_TEST_CASE(data_parallel_sgd_float64) { manual_steps_match_one_process<double>("sgd"); }
BOOST_AUTO_TEST_CASE(data_parallel_adam_float64) { manual_steps_match_one_process<double>("adam"); }
BOOST_AUTO_TEST_CASE(data_parallel_sgd_float32) { manual_steps_match_one_process<float>("sgd"); }
BOOST_AUTO_TEST_CASE(data_parallel_adam_float32) { manual_steps_match_one_process<float>("adam"); }
BOOST_AUTO_TEST_CASE(data_parallel_gradients_all_reduced_in_place) {
    for (const std::size_t bytes : {std::size_t{150}, std::size_t{0}}) {
        manual_steps_match_one_process<double>("sgd", bytes);
        manual_steps_match_one_process<double>("adam", bytes);
        manual_steps_match_one_process<float>("adam", bytes);
    }
}

BOOST_AUTO_TEST_CASE(data_parallel_reduction_sum) {
    for (const std::size_t bytes : {std::size_t{512} << 10, std::size_t{150}, std::size_t{0}}) {
        manual_steps_match_one_process<double>("sgd", bytes, dist::Reduction::sum);
        manual_steps_match_one_process<double>("adam", bytes, dist::Reduction::sum);
        manual_steps_match_one_process<float>("adam", bytes, dist::Reduction::sum);
    }
}

// One step's gradients both ways, side by side: the same bits on 2^k ranks, where the share and
// the world size are powers of two (scaling by one is exact); within rounding on 3 ranks. The
// bucketed gradients, the in-place ones, and both.
BOOST_AUTO_TEST_CASE(data_parallel_reduction_sum_gives_the_mean_gradients) {
    const auto set = blob_set<double>(24);
    const int ranks = world().world_size();
    const bool power_of_two = (ranks & (ranks - 1)) == 0;
    std::vector<std::size_t> rows(12);
    std::iota(rows.begin(), rows.end(), 5);
    for (const std::size_t bytes : {std::size_t{512} << 10, std::size_t{150}, std::size_t{0}}) {
        Net<double> a(3, Norm::none), b(3, Norm::none);
        dist::DataParallel<double> mean(world(), a, {.bucket_bytes = 256, .in_place_bytes = bytes});
        dist::DataParallel<double> sum(world(), b,
                                       {.bucket_bytes = 256, .in_place_bytes = bytes, .reduction = dist::Reduction::sum});
        BOOST_TEST((sum.options().reduction == dist::Reduction::sum));
        BOOST_TEST(sum.loss_scale(0.25) == 0.25);
        BOOST_TEST(mean.loss_scale(0.25) == 0.25 * ranks);
        shard_loss(a, set, rows).backward();
        mean.finish();
        shard_loss(b, set, rows, dist::Reduction::sum).backward();
        sum.finish();
        const auto pa = a.parameters(), pb = b.parameters();
        for (std::size_t k = 0; k < pa.size(); ++k)
            BOOST_TEST(xgt::close(pb[k].grad().data(), pa[k].grad().data(), power_of_two ? 0.0 : 1e-12),
                       "parameter " << k << ", in place from " << bytes << " bytes");
    }
    // A reduction that is neither (a cast out of range) is refused before anything moves.
    Net<double> c(3, Norm::none);
    xgt::expect_error<dist::DistError>(
        [&] { dist::DataParallel<double>(world(), c, {.reduction = static_cast<dist::Reduction>(7)}); },
        {"DataParallel", "reduction", "7"});
}

BOOST_AUTO_TEST_CASE(trainer_uneven_batches_sgd_adam_float64) {
    trainer_matches_one_process<double>("sgd", Norm::none);
    trainer_matches_one_process<double>("adam", Norm::none);
}
BOOST_AUTO_TEST_CASE(trainer_uneven_batches_sgd_adam_float32) {
    trainer_matches_one_process<float>("sgd", Norm::none);
    trainer_matches_one_process<float>("adam", Norm::none);
}
BOOST_AUTO_TEST_CASE(sync_batch_norm_matches_whole_batch_float64) {
    trainer_matches_one_process<double>("sgd", Norm::sync);
    trainer_matches_one_process<double>("adam", Norm::sync);
}
BOOST_AUTO_TEST_CASE(sync_batch_norm_matches_whole_batch_float32) {
    trainer_matches_one_process<float>("sgd", Norm::sync);
    trainer_matches_one_process<float>("adam", Norm::sync);
}

BOOST_AUTO_TEST_CASE(unused_and_one_rank_parameters) {
    // "extra" gets no gradient anywhere: it keeps none (the optimizer skips it, as in one
    // process). "half" gets one on rank 0 only: the mean with zeros from the others. The same
    // with the gradients in buffers and all-reduced in place, and a sum carried either way.
    struct Odd : nn::Module<double> {
        Variable<double> used = register_parameter("used", Variable<double>(Array<double>{1.0, 2.0}));
        Variable<double> half = register_parameter("half", Variable<double>(Array<double>{3.0}));
        Variable<double> extra = register_parameter("extra", Variable<double>(Array<double>{4.0}));
    };
    for (const std::size_t in_place_bytes : {std::size_t{512} << 10, std::size_t{0}}) {
        Odd m;
        dist::DataParallel<double> dp(world(), m, {.in_place_bytes = in_place_bytes});
        Variable<double> loss = sum(m.used * m.used);
        if (world().is_main()) loss = loss + sum(m.half);
        loss.backward();
        std::array<double, 1> rows{1.0};
        dp.finish(rows);
        BOOST_TEST(m.used.grad().data()(1) == 4.0);
        BOOST_TEST(m.half.grad().data()(0) == 1.0 / world().world_size());
        BOOST_TEST(!m.extra.has_grad());
        BOOST_TEST(rows[0] == double(world().world_size()));
    }
}

BOOST_AUTO_TEST_CASE(in_place_gradients_shared_by_two_parameters_refused) {
    // Summed in place once for each, a gradient array two parameters share would be N times too
    // large: refused on every rank alike, naming both.
    struct Pair : nn::Module<double> {
        Variable<double> a = register_parameter("a", Variable<double>(Array<double>{1.0, 2.0}));
        Variable<double> b = register_parameter("b", Variable<double>(Array<double>{3.0, 4.0}));
    } m;
    {
        dist::DataParallel<double> dp(world(), m, {.in_place_bytes = 0});
        m.a.set_grad(Variable<double>(Array<double>{1.0, 1.0}));
        m.b.set_grad(m.a.grad());
        xgt::expect_error<dist::DistError>([&] { dp.finish(); }, {"'a'", "'b'", "share one gradient"});
    }
    m.b.set_grad(Variable<double>(Array<double>{1.0, 1.0}));
    dist::DataParallel<double> dp(world(), m, {.in_place_bytes = 0});
    dp.finish();
    BOOST_TEST(m.a.grad().data()(0) == 1.0);
    BOOST_TEST(m.b.grad().data()(1) == 1.0);
}

BOOST_AUTO_TEST_CASE(accumulation_with_set_sync_and_a_second_backward_refused) {
    // With the gradients in buffers, then all-reduced where they lie (there a refused second
    // backward must not have added into a gradient in flight).
    for (const std::size_t in_place_bytes : {std::size_t{512} << 10, std::size_t{0}}) {
        BOOST_TEST_CONTEXT("in place from " << in_place_bytes << " bytes") { accumulate_then_refuse(in_place_bytes); }
    }
}

BOOST_AUTO_TEST_CASE(no_overlap_starts_every_bucket_in_finish) {
    const auto set = blob_set<float>(12);
    Net<float> net(6, Norm::none);
    dist::DataParallel<float> dp(world(), net, {.bucket_bytes = 64, .overlap = false});
    std::vector<std::size_t> rows(12);
    std::iota(rows.begin(), rows.end(), 0);
    net_loss(net, set.batch(data::shard(rows, std::size_t(world().rank()), std::size_t(world().world_size()))))
        .backward();
    dp.finish();
    BOOST_TEST(dp.stats().overlapped_buckets == 0);
    BOOST_TEST(dp.stats().buckets == dp.bucket_count());
    // Each bucket's gradients plus one flag per parameter, in float32, and the last bucket's
    // slots for finish()'s sums (max_sums, the count and its square).
    std::size_t elements = dist::DataParallel<float>::max_sums + 2;
    for (const auto& p : net.parameters()) elements += p.size() + 1;
    BOOST_TEST(dp.stats().bytes == elements * sizeof(float));
    // Sums ride along with the last all-reduce; ranks passing different numbers of them are told.
    net.zero_grad();
    std::array<double, 2> sums{1.0, double(world().rank())};
    dp.finish(sums);
    BOOST_TEST(sums[0] == double(world().world_size()));
    BOOST_TEST(sums[1] == world().world_size() * (world().world_size() - 1) / 2.0);
    std::vector<double> uneven(world().is_main() ? 1 : 2, 1.0);
    xgt::expect_error<dist::DistError>([&] { dp.finish(uneven); }, {});
    std::vector<double> too_many(dist::DataParallel<float>::max_sums + 1, 1.0);
    xgt::expect_error<dist::DistError>([&] { dp.finish(too_many); }, {});
}

BOOST_AUTO_TEST_CASE(sharded_batches_see_every_sample_once_per_epoch) {
    const data::Dataset d = xgt::blobs(53, 3);
    // Each sample's index in its label slot, to know which rows a batch holds.
    data::Dataset tagged = d;
    for (std::size_t i = 0; i < tagged.size(); ++i) tagged.labels(i) = static_cast<std::int64_t>(i);
    tagged.num_classes = tagged.size();
    data::Batches batches(tagged, 10, 42,
                          {.rank = std::size_t(world().rank()), .world_size = std::size_t(world().world_size())});
    for (int epoch = 0; epoch < 2; ++epoch) {
        std::vector<double> seen(tagged.size(), 0.0);
        std::size_t count = 0;
        while (auto b = batches.next()) {
            ++count;
            for (std::size_t i = 0; i < b->y.size(); ++i) seen[static_cast<std::size_t>(b->y(i))] += 1;
        }
        BOOST_TEST(count == 6u);  // the same number of batches on every rank
        world().all_reduce_sum(seen);
        BOOST_TEST(std::all_of(seen.begin(), seen.end(), [](double s) { return s == 1.0; }));
    }
    xgt::expect_error<ValueError>([&] { data::Batches(tagged, 10, 1, {.rank = 3, .world_size = 3}); }, {});
}

BOOST_AUTO_TEST_CASE(sync_batch_norm_with_an_empty_shard) {
    // A global batch of 2 rows over 2 or 3 ranks: some ranks hold none, the statistics are still
    // those of the 2 rows, and the gradient of the whole batch's sum reaches the rows that exist.
    dist::SyncBatchNorm1d<double> sync(world(), 3);
    nn::BatchNorm1d<double> plain(3);
    const Array<double> all{{1.0, -2.0, 0.5}, {3.0, 4.0, -1.5}};
    const std::vector<std::size_t> rows{0, 1};
    const auto mine = data::shard(rows, std::size_t(world().rank()), std::size_t(world().world_size()));
    Array<double> part = Array<double>::from_shape({mine.size(), 3});
    for (std::size_t i = 0; i < mine.size(); ++i)
        for (std::size_t j = 0; j < 3; ++j) part(i, j) = all(mine[i], j);
    Variable<double> x(part, true), xa(all, true);
    const Array<double> weights{{0.3, -1.0, 2.0}, {0.7, 0.1, -0.4}};
    Array<double> wpart = Array<double>::from_shape({mine.size(), 3});
    for (std::size_t i = 0; i < mine.size(); ++i)
        for (std::size_t j = 0; j < 3; ++j) wpart(i, j) = weights(mine[i], j);
    const Variable<double> y = sync.forward(x), ya = plain.forward(xa);
    sum(y * Variable<double>(wpart)).backward();
    sum(ya * Variable<double>(weights)).backward();
    for (std::size_t i = 0; i < mine.size(); ++i)
        for (std::size_t j = 0; j < 3; ++j) {
            BOOST_TEST(std::abs(y.data()(i, j) - ya.data()(mine[i], j)) <= 1e-12);
            BOOST_TEST(std::abs(x.grad().data()(i, j) - xa.grad().data()(mine[i], j)) <= 1e-12);
        }
    // gamma's gradient is this rank's part of the sum: all-reduced, it is the whole batch's.
    std::vector<double> g(sync.gamma().grad().data().begin(), sync.gamma().grad().data().end());
    world().all_reduce_sum(g);
    for (std::size_t j = 0; j < 3; ++j) BOOST_TEST(std::abs(g[j] - plain.gamma().grad().data()(j)) <= 1e-12);
    BOOST_TEST(xgt::close(sync.running_var().data(), plain.running_var().data(), 1e-12));
    // One row in the whole batch has no variance, on every rank alike.
    Variable<double> lone(world().is_main() ? Array<double>{{1.0, 2.0, 3.0}} : Array<double>::from_shape({0, 3}));
    xgt::expect_error<ValueError>([&] { sync.forward(lone); }, {});
}

BOOST_AUTO_TEST_CASE(sync_batch_norm1d_on_sequences) {
    // (N, features, L) split by rows over the ranks (5 rows: 3+2 or 2+2+1): the statistics per
    // feature are those of every rank's rows and positions together, as one process's BatchNorm1d.
    dist::SyncBatchNorm1d<double> sync(world(), 3);
    nn::BatchNorm1d<double> plain(3);
    const Array<double> all = xgt::random_array({5, 3, 4}, 71), weights = xgt::random_array({5, 3, 4}, 72);
    const std::vector<std::size_t> rows{0, 1, 2, 3, 4};
    const auto mine = data::shard(rows, std::size_t(world().rank()), std::size_t(world().world_size()));
    Array<double> part = Array<double>::from_shape({mine.size(), 3, 4}), wpart = part;
    for (std::size_t i = 0; i < mine.size(); ++i)
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t k = 0; k < 4; ++k) part(i, j, k) = all(mine[i], j, k), wpart(i, j, k) = weights(mine[i], j, k);
    Variable<double> x(part, true), xa(all, true);
    const Variable<double> y = sync.forward(x), ya = plain.forward(xa);
    sum(y * Variable<double>(wpart)).backward();
    sum(ya * Variable<double>(weights)).backward();
    for (std::size_t i = 0; i < mine.size(); ++i)
        for (std::size_t j = 0; j < 3; ++j)
            for (std::size_t k = 0; k < 4; ++k) {
                BOOST_TEST(std::abs(y.data()(i, j, k) - ya.data()(mine[i], j, k)) <= 1e-12);
                BOOST_TEST(std::abs(x.grad().data()(i, j, k) - xa.grad().data()(mine[i], j, k)) <= 1e-12);
            }
    std::vector<double> g(sync.gamma().grad().data().begin(), sync.gamma().grad().data().end());
    world().all_reduce_sum(g);
    for (std::size_t j = 0; j < 3; ++j) BOOST_TEST(std::abs(g[j] - plain.gamma().grad().data()(j)) <= 1e-12);
    BOOST_TEST(xgt::close(sync.running_mean().data(), plain.running_mean().data(), 1e-12));
    BOOST_TEST(xgt::close(sync.running_var().data(), plain.running_var().data(), 1e-12));
    xgt::expect_error<ShapeError>([&] { sync.forward(Variable<double>(Array<double>::from_shape({2, 3, 4, 1}))); },
                                  {"SyncBatchNorm1d", "(N, 3) or (N, 3, L)", "(2, 3, 4, 1)"});
}

BOOST_AUTO_TEST_CASE(checkpoint_written_once_and_resumed_on_another_world) {
    const auto set = blob_set<double>(48);
    const train::TrainerOptions base{.epochs = 4, .batch_size = 12, .seed = 2, .verbose = false};
    // The path is rank 0's, shared; the other ranks would write theirs under their own name.
    xgt::TempDir dir{"dist-" + std::to_string(world().world_size())};
    fs::path shared = dir.path / "ckpt.npz";
    std::string text = shared.string();
    std::vector<std::byte> bytes(512);
    std::copy_n(reinterpret_cast<const std::byte*>(text.data()), std::min(text.size(), bytes.size() - 1), bytes.begin());
    world().broadcast(bytes, 0);
    shared = reinterpret_cast<const char*>(bytes.data());

    // Uninterrupted, in one process: the reference.
    Net<double> ref(8, Norm::none);
    optim::Adam<double> opt_ref(ref.parameters(), {.lr = 0.01});
    train::Trainer t_ref(ref, opt_ref, set, net_loss<double>, base);
    t_ref.fit();

    // 2 epochs on every rank, then a checkpoint from rank 0 only.
    const fs::path mine = world().is_main() ? shared : dir.path / ("ckpt-rank" + std::to_string(world().rank()) + ".npz");
    Net<double> a(8, Norm::none);
    optim::Adam<double> opt_a(a.parameters(), {.lr = 0.01});
    train::TrainerOptions first = base;
    first.epochs = 2;
    first.checkpoint = mine.string();
    train::Trainer t_a(a, opt_a, set, net_loss<double>, first);
    t_a.distribute(world());
    t_a.fit();
    world().barrier();
    BOOST_TEST(fs::exists(shared));
    if (!world().is_main()) BOOST_TEST(!fs::exists(mine));

    // Resumed in a world of one (rank 0 alone), and on every rank: both finish as the reference.
    if (world().is_main()) {
        Net<double> solo(99, Norm::none);
        optim::Adam<double> opt_solo(solo.parameters(), {.lr = 0.01});
        train::Trainer t_solo(solo, opt_solo, set, net_loss<double>, base);
        t_solo.resume(shared.string());
        t_solo.fit();
        BOOST_TEST(t_solo.history().epochs.size() == 4u);
        double diff = 0;
        for (std::size_t k = 0; k < solo.parameters().size(); ++k)
            diff = std::max(diff, double(xt::amax(xt::abs(solo.parameters()[k].data() - ref.parameters()[k].data()))()));
        BOOST_TEST(diff <= 1e-12);
    }
    Net<double> b(99, Norm::none);
    optim::Adam<double> opt_b(b.parameters(), {.lr = 0.01});
    train::Trainer t_b(b, opt_b, set, net_loss<double>, base);
    t_b.resume(shared.string());
    t_b.distribute(world());
    t_b.fit();
    BOOST_TEST(t_b.history().epochs.size() == 4u);
    BOOST_TEST(relative_difference(b, ref) <= 1e-12);
    world().barrier();  // before rank 0's TempDir goes
}

BOOST_AUTO_TEST_CASE(trainer_metrics_are_the_whole_sets) {
    const auto set = blob_set<float>(40), test = blob_set<float>(31);
    Net<float> net(11, Norm::batch);
    optim::Adam<float> opt(net.parameters(), {.lr = 0.01});
    train::Trainer t(net, opt, set, net_loss<float>, {.epochs = 2, .batch_size = 12, .verbose = false});
    t.add_metric("loss", [](Net<float>& n, const data::TensorBatch<float>& b) { return double(net_loss(n, b).item()); });
    t.evaluate_on("test", test);
    t.distribute(world());
    BOOST_TEST(t.world_size() == world().world_size());
    const auto& h = t.fit();
    // Every rank reports the same numbers, and they are the whole test set's: what rank 0's
    // model gives on all 31 rows in one process.
    const double got = h.epochs.back().at("test_loss");
    BOOST_TEST(same_on_every_rank(got));
    net.eval();
    const double want = [&] {
        NoGradGuard no_grad;
        std::vector<std::size_t> all(31);
        std::iota(all.begin(), all.end(), 0);
        return double(net_loss(net, test.batch(all)).item());
    }();
    BOOST_TEST(std::abs(got - want) <= 1e-5 * (1 + want));
    // A batch that leaves a rank fewer than two rows (batch norm) is refused.
    Net<float> other(11, Norm::batch);
    optim::SGD<float> sgd(other.parameters(), {.lr = 0.1});
    train::Trainer small(other, sgd, set, net_loss<float>, {.epochs = 1, .batch_size = 3, .verbose = false});
    xgt::expect_error<ValueError>([&] { small.distribute(world()); }, {});
}

// SyncBatchNorm1d's statistics are the whole batch's: the Trainer gives it one row a rank (a
// batch_size of world_size) and trains as one process with BatchNorm1d on those batches (their
// last single row dropped alike), while a plain BatchNorm1d needs two rows a rank.
BOOST_AUTO_TEST_CASE(sync_batch_norm_trains_on_one_row_a_rank) {
    const auto set = blob_set<double>(25);
    const auto ranks = static_cast<std::size_t>(world().world_size());
    Net<double> one(3, Norm::batch), many(3, Norm::sync), plain(3, Norm::batch);
    auto opt_one = make_optimizer("adam", one), opt_many = make_optimizer("adam", many);
    auto opt_plain = make_optimizer("adam", plain);
    const train::TrainerOptions options{.epochs = 2, .batch_size = ranks, .seed = 5, .verbose = false};
    train::Trainer t_one(one, *opt_one, set, net_loss<double>, options);
    train::Trainer t_many(many, *opt_many, set, net_loss<double>, options);
    train::Trainer t_plain(plain, *opt_plain, set, net_loss<double>, options);
    xgt::expect_error<ValueError>([&] { t_plain.distribute(world()); }, {"BatchNorm1d", "SyncBatchNorm1d"});
    t_many.distribute(world());
    const train::History& h_one = t_one.fit();
    const train::History& h_many = t_many.fit();
    BOOST_TEST(h_many.iteration_loss.size() == h_one.iteration_loss.size());
    BOOST_TEST(h_many.iteration_loss.size() == 2 * (25 / ranks));
    BOOST_TEST(relative_difference(one, many) <= tolerance<double>());
}

BOOST_AUTO_TEST_CASE(sync_batch_norm_2d_matches_one_process) {
    // 5 images of 3 channels (2x2) over the ranks (3 + 2, or 2 + 2 + 1): outputs, input gradients,
    // the parameters' gradients (all-reduced) and the running statistics are those of BatchNorm2d on
    // all 5 in one process.
    dist::SyncBatchNorm2d<double> sync(world(), 3);
    nn::BatchNorm2d<double> plain(3);
    Array<double> all = Array<double>::from_shape({5, 3, 2, 2}), weights = Array<double>::from_shape({5, 3, 2, 2});
    std::mt19937_64 gen(4);
    std::normal_distribution<double> normal(0.0, 2.0);
    for (double& v : all) v = normal(gen);
    for (double& v : weights) v = normal(gen);
    const std::vector<std::size_t> rows{0, 1, 2, 3, 4};
    const auto mine = data::shard(rows, std::size_t(world().rank()), std::size_t(world().world_size()));
    auto part_of = [&](const Array<double>& a) {
        Array<double> p = Array<double>::from_shape({mine.size(), 3, 2, 2});
        for (std::size_t i = 0; i < mine.size(); ++i)
            std::copy_n(a.data() + mine[i] * 12, 12, p.data() + i * 12);
        return p;
    };
    Variable<double> x(part_of(all), true), xa(all, true);
    const Variable<double> y = sync.forward(x), ya = plain.forward(xa);
    sum(y * Variable<double>(part_of(weights))).backward();
    sum(ya * Variable<double>(weights)).backward();
    BOOST_TEST(xgt::close(y.data(), part_of(ya.data()), 1e-12));
    BOOST_TEST(xgt::close(x.grad().data(), part_of(xa.grad().data()), 1e-12));
    for (const auto& [mine_p, whole_p] : {std::pair{sync.gamma(), plain.gamma()}, std::pair{sync.beta(), plain.beta()}}) {
        std::vector<double> g(mine_p.grad().data().begin(), mine_p.grad().data().end());
        world().all_reduce_sum(g);
        for (std::size_t c = 0; c < 3; ++c) BOOST_TEST(std::abs(g[c] - whole_p.grad().data()(c)) <= 1e-12);
    }
    BOOST_TEST(xgt::close(sync.running_mean().data(), plain.running_mean().data(), 1e-12));
    BOOST_TEST(xgt::close(sync.running_var().data(), plain.running_var().data(), 1e-12));
    // Evaluation uses the running statistics, locally, as BatchNorm2d does.
    sync.eval();
    plain.eval();
    BOOST_TEST(xgt::close(sync.forward(Variable<double>(all)).data(), plain.forward(Variable<double>(all)).data(), 1e-12));
    xgt::expect_error<ShapeError>([&] { sync.forward(Variable<double>(Array<double>::from_shape({1, 2, 2, 2}))); }, {});
}

BOOST_AUTO_TEST_CASE(a_stop_on_one_rank_stops_every_rank_after_the_same_batch) {
    // A callback on the last rank asks to stop after batch 3 of epoch 1, then (a second trainer)
    // after the last batch of epoch 1: every rank stops there, with the same history.
    const auto set = blob_set<double>(48);
    for (const std::size_t at : {std::size_t{3}, std::size_t{4}}) {
        Net<double> net(12, Norm::none);
        optim::SGD<double> sgd(net.parameters(), {.lr = 0.1});
        train::Trainer t(net, sgd, set, net_loss<double>, {.epochs = 3, .batch_size = 12, .verbose = false});
        auto stopper = std::make_shared<train::LambdaCallback>();
        stopper->batch_end = [&](train::TrainerBase& tb, const train::BatchEnd& b) {
            if (world().rank() == world().world_size() - 1 && b.iteration == at) tb.stop("asked by the last rank");
        };
        t.add_callback(stopper);
        t.distribute(world());
        const train::History& h = t.fit();
        BOOST_TEST(h.iteration_loss.size() == at, "stop after batch " << at);
        BOOST_TEST(h.epochs.size() == 1u);  // the stopped epoch is recorded, as in one process
        BOOST_TEST(same_on_every_rank(h.iteration_loss.back()));
    }
}

BOOST_AUTO_TEST_SUITE_END()
