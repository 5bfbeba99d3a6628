#pragma once
// Labelled image data sets (MNIST and its relatives) and mini-batches for training.
// Randomness always comes from a std::mt19937_64 seeded by the caller, with our own bounded
// integer draw (not std::uniform_int_distribution, whose algorithm differs between standard
// libraries), so a seed gives the same shuffles and batches everywhere.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "graph/array.hpp"
#include "ops/ops.hpp"

namespace xg::data {

struct Batch;

struct Dataset {
    Array<float> images;  // (N, features), row-major, values in [0, 1]
    Labels labels;        // (N,), class indices
    // Number of classes; 0 means "max label + 1". Loaders set it from the whole file and the
    // subsets (take, select, split) keep it, so a subset that happens to miss the last class
    // still reports 10 and the network's output width does not change.
    std::size_t num_classes = 0;

    std::size_t size() const { return labels.size(); }
    std::size_t features() const { return images.dimension() == 2 ? images.shape(1) : 0; }
    std::size_t classes() const;
    // The rows `rows` as a batch (gather): what train::Trainer draws.
    Batch batch(std::span<const std::size_t> rows) const;
};

// The default bound on the memory one load_idx_pair or load_mnist_dir may take. Each file is
// charged, before it is read, its size on disk plus what each decompressed byte becomes: the raw
// byte and a float for an image (5 bytes), the raw byte and an int64 for a label (9). Whatever
// remains of the limit is the most the file may decompress to, so neither the files' headers nor
// a gzip bomb can make the load take more. Fashion-MNIST (70000 images of 784 pixels, gzip)
// counts about 306 MB by this rule.
inline constexpr std::size_t default_max_load_bytes = std::size_t{1} << 30;  // 1 GiB

// Reads an IDX images file (N, rows, cols) or (N, features) and an IDX labels file (N,), raw or
// gzip, into a Dataset with images flattened to (N, rows * cols) and scaled to [0, 1].
// Throws IoError naming both files and both counts when the counts differ, or naming the file
// that would take the load over `max_bytes` (see default_max_load_bytes).
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                      std::size_t max_bytes = default_max_load_bytes);

struct TrainTest {
    Dataset train, test;
};

// Loads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from `dir`, each with or without .gz (the uncompressed file wins when
// both exist). Throws IoError listing every missing file and the directory. The four files
// together are bounded by `max_bytes` as load_idx_pair bounds two.
TrainTest load_mnist_dir(const std::string& dir, std::size_t max_bytes = default_max_load_bytes);

// Where Debian's dataset-fashion-mnist package puts Fashion-MNIST (60000 + 10000, gzip).
std::string default_data_dir();

// The first n samples; ValueError if n > size.
Dataset take(const Dataset& data, std::size_t n);

// Samples data[indices[0]], data[indices[1]], ... (repeats allowed); ValueError for an index
// out of range.
Dataset select(const Dataset& data, const std::vector<std::size_t>& indices);

// Shuffles with `seed`, then the first floor(N * validation_fraction) samples become the
// validation set and the rest the training set, as the book's shuffle_dataset and 20% split.
// Returns {train, validation}. ValueError unless 0 <= validation_fraction < 1.
std::pair<Dataset, Dataset> split(const Dataset& data, double validation_fraction, std::uint64_t seed);

// A uniform integer in [0, n) for n > 0, by rejection: unbiased and the same on every platform.
std::size_t uniform_index(std::mt19937_64& rng, std::size_t n);

// A uniformly random permutation of 0..n-1 (Fisher-Yates with uniform_index).
std::vector<std::size_t> permutation(std::size_t n, std::mt19937_64& rng);

struct Batch {
    Array<float> x;  // (B, features)
    Labels y;        // (B,)
};

// The rows `indices` of a data set as a batch (rows copied with memcpy).
Batch gather(const Dataset& data, std::span<const std::size_t> indices);

// Rank `rank`'s part of a global batch `rows` split over `world_size` ranks (data-parallel
// training): contiguous parts as equal as can be, the first rows.size() % world_size ranks taking
// one row more; a part is empty when the batch has fewer rows than there are ranks. Every rank
// computes the same split from the same rows. ValueError unless rank < world_size.
std::span<const std::size_t> shard(std::span<const std::size_t> rows, std::size_t rank, std::size_t world_size);

// `batch` samples drawn uniformly with replacement, as the book's np.random.choice(N, batch).
// With world_size > 1, every rank draws the same global batch (same rng state) and gets its
// shard of it. ValueError naming random_batch for an empty data set, batch == 0 or a rank out of
// range.
Batch random_batch(const Dataset& data, std::size_t batch, std::mt19937_64& rng, std::size_t rank = 0,
                   std::size_t world_size = 1);

struct BatchOptions {
    bool shuffle = true;     // a new permutation each epoch; false keeps the data set's order
    bool drop_last = false;  // drop the final batch of an epoch when it is smaller than batch_size
    // Data-parallel training: each rank gets its shard (see shard()) of every global batch of
    // batch_size rows; with the same seed, the ranks' shards partition each epoch.
    std::size_t rank = 0;
    std::size_t world_size = 1;
};

// Epochs of mini-batches: within an epoch every sample appears exactly once (the last batch is
// partial unless drop_last). next() returns the epoch's batches, then nullopt once, and the call
// after that starts the next epoch with a fresh shuffle:
//
//     xg::data::Batches batches(train, 100, /*seed=*/42);
//     for (int epoch = 0; epoch < 10; ++epoch)
//         while (auto batch = batches.next()) step(batch->x, batch->y);
//
// With options.rank and world_size, next() returns this rank's shard of each global batch.
//
// Holds a reference to `data`, which must outlive it.
class Batches {
public:
    Batches(const Dataset& data, std::size_t batch_size, std::uint64_t seed, BatchOptions options = {});
    Batches(Dataset&&, std::size_t, std::uint64_t, BatchOptions = {}) = delete;  // would dangle

    std::optional<Batch> next();

    std::size_t batch_size() const { return batch_size_; }
    std::size_t batches_per_epoch() const;
    std::size_t epochs_started() const { return epochs_started_; }
    // The sample order of the current epoch (empty before the first next()).
    std::span<const std::size_t> order() const { return order_; }

private:
    void start_epoch();

    const Dataset& data_;
    std::size_t batch_size_;
    BatchOptions options_;
    std::mt19937_64 rng_;
    std::vector<std::size_t> order_;
    std::size_t cursor_ = 0;
    std::size_t epochs_started_ = 0;
    bool in_epoch_ = false;
};

}  // namespace xg::data
