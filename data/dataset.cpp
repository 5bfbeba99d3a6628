// Data sets from IDX files, subsets, the validation split and mini-batches.
#include "data/dataset.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include <fmt/core.h>

#include "data/idx.hpp"
#include "graph/shape_text.hpp"

namespace xg::data {

namespace {

// A Dataset that the row copies below can trust: 2-D images with one row per label.
void check_consistent(const Dataset& data, std::string_view fn) {
    if (data.images.dimension() != 2 || data.images.shape(0) != data.labels.size())
        throw ShapeError(fmt::format("{}: images of shape {} do not match {} labels; expected (N, features) with "
                                     "N = {}", fn, shape_str(data.images.shape()), data.labels.size(),
                                     data.labels.size()));
}

void check_not_empty(const Dataset& data, std::string_view fn) {
    if (data.size() == 0) throw ValueError(fmt::format("{}: the data set is empty", fn));
}

Batch gather_rows(const Dataset& data, std::span<const std::size_t> indices, std::string_view fn) {
    check_consistent(data, fn);
    const std::size_t n = data.size();
    const std::size_t features = data.features();
    Batch batch{Array<float>::from_shape({indices.size(), features}), Labels::from_shape({indices.size()})};
    const float* src = data.images.data();
    float* dst = batch.x.data();
    for (std::size_t row = 0; row < indices.size(); ++row) {
        const std::size_t i = indices[row];
        if (i >= n) throw IndexError(fmt::format("{}: index {} is out of range for a data set of {} samples", fn, i, n));
        std::memcpy(dst + row * features, src + i * features, features * sizeof(float));
        batch.y.data()[row] = data.labels.data()[i];
    }
    return batch;
}

Dataset subset(const Dataset& data, std::span<const std::size_t> indices, std::string_view fn) {
    Batch rows = gather_rows(data, indices, fn);
    return Dataset{std::move(rows.x), std::move(rows.y), data.classes()};
}

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), std::size_t{0});
    return v;
}

std::size_t max_label_plus_one(const Labels& labels) {
    std::int64_t top = -1;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::int64_t label = labels.data()[i];
        if (label < 0) throw ValueError(fmt::format("Dataset::classes: label {} at index {} is negative", label, i));
        top = std::max(top, label);
    }
    return static_cast<std::size_t>(top + 1);
}

}  // namespace

std::size_t Dataset::classes() const { return num_classes != 0 ? num_classes : max_label_plus_one(labels); }

namespace {

// What a load may still take (see default_max_load_bytes): each file is charged its size on disk
// plus `cost_per_byte` for each byte it decompresses to, and may decompress to no more than what
// is left allows. Charges are never given back, so the count is an upper bound of the memory.
class LoadBudget {
public:
    explicit LoadBudget(std::size_t limit) : limit_(limit) {}

    IdxArray read(const std::string& path, std::size_t cost_per_byte) {
        const std::size_t left = limit_ - used_;
        std::error_code ec;
        const std::uintmax_t on_disk = std::filesystem::file_size(path, ec);  // on error read_idx says why
        const std::size_t disk = ec ? 0 : static_cast<std::size_t>(on_disk);
        if (!ec && on_disk > left)
            throw IoError(fmt::format("{}: its {} bytes exceed the {} bytes left of the load's {}-byte memory limit",
                                      path, on_disk, left, limit_));
        const std::size_t max_raw = (left - disk) / cost_per_byte;
        IdxArray array;
        try {
            array = read_idx(path, std::min(max_raw, default_max_idx_bytes));
        } catch (const IoError& e) {
            // read_idx's size errors say "N-byte limit": explain where this file's N came from.
            if (max_raw >= default_max_idx_bytes || std::string_view(e.what()).find("-byte limit") == std::string_view::npos)
                throw;
            throw IoError(fmt::format("{} (the load may take {} bytes of memory; {} were left for this file: its {} "
                                      "bytes on disk and {} bytes per decompressed byte)", e.what(), limit_, left, disk,
                                      cost_per_byte));
        }
        used_ += disk + cost_per_byte * array.size();
        return array;
    }

private:
    std::size_t limit_;
    std::size_t used_ = 0;
};

Dataset load_pair(const std::string& images_path, const std::string& labels_path, LoadBudget& budget) {
    const IdxArray images = budget.read(images_path, 1 + sizeof(float));
    const IdxArray labels = budget.read(labels_path, 1 + sizeof(Labels::value_type));
    if (images.shape.size() < 2)
        throw IoError(fmt::format("{}: an images file has shape (N, rows, cols) or (N, features), found {}",
                                  images_path, shape_text(images.shape)));
    if (labels.shape.size() != 1)
        throw IoError(fmt::format("{}: a labels file has shape (N,), found {}", labels_path,
                                  shape_text(labels.shape)));
    const std::size_t n = images.shape[0];
    if (labels.shape[0] != n)
        throw IoError(fmt::format("load_idx_pair: {} holds {} images but {} holds {} labels", images_path, n,
                                  labels_path, labels.shape[0]));
    const std::size_t features = n == 0 ? 0 : images.size() / n;
    if (features == 0 && n != 0)
        throw IoError(fmt::format("{}: images of shape {} have no pixels", images_path, shape_text(images.shape)));

    // One table lookup per pixel: the same floats as b / 255.0f, without a division each.
    std::array<float, 256> scale{};
    for (std::size_t b = 0; b < scale.size(); ++b) scale[b] = static_cast<float>(b) / 255.0f;
    Dataset data{Array<float>::from_shape({n, features}), Labels::from_shape({n})};
    float* pixels = data.images.data();
    for (std::size_t i = 0; i < images.size(); ++i) pixels[i] = scale[images.data[i]];
    for (std::size_t i = 0; i < n; ++i) data.labels.data()[i] = labels.data[i];  // bytes: always 0..255
    data.num_classes = max_label_plus_one(data.labels);
    return data;
}

}  // namespace

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path, std::size_t max_bytes) {
    LoadBudget budget(max_bytes);
    return load_pair(images_path, labels_path, budget);
}

TrainTest load_mnist_dir(const std::string& dir, std::size_t max_bytes) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw IoError(fmt::format("load_mnist_dir: {} is not a directory{}", dir,
                                  fs::exists(dir, ec) ? "" : " (it does not exist)"));
    const std::array<std::string, 4> names = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    std::array<std::string, 4> paths;
    std::string missing;
    for (std::size_t i = 0; i < names.size(); ++i) {
        for (const std::string& candidate : {names[i], names[i] + ".gz"}) {
            const fs::path p = fs::path(dir) / candidate;
            if (fs::is_regular_file(p, ec)) {
                paths[i] = p.string();
                break;
            }
        }
        if (paths[i].empty()) missing += fmt::format("{}{}[.gz]", missing.empty() ? "" : ", ", names[i]);
    }
    if (!missing.empty())
        throw IoError(fmt::format("load_mnist_dir: missing in {}: {}", dir, missing));
    LoadBudget budget(max_bytes);
    Dataset train = load_pair(paths[0], paths[1], budget);
    return {std::move(train), load_pair(paths[2], paths[3], budget)};
}

std::string default_data_dir() { return "/usr/share/datasets/fashion-mnist"; }

Dataset take(const Dataset& data, std::size_t n) {
    if (n > data.size())
        throw ValueError(fmt::format("take: {} samples requested from a data set of {}", n, data.size()));
    return subset(data, iota(n), "take");
}

Dataset select(const Dataset& data, const std::vector<std::size_t>& indices) {
    return subset(data, indices, "select");
}

std::pair<Dataset, Dataset> split(const Dataset& data, double validation_fraction, std::uint64_t seed) {
    if (!(validation_fraction >= 0.0 && validation_fraction < 1.0))
        throw ValueError(fmt::format("split: validation fraction {} is not in [0, 1)", validation_fraction));
    check_consistent(data, "split");
    std::mt19937_64 rng(seed);
    const std::vector<std::size_t> order = permutation(data.size(), rng);
    const auto validation_count =
        static_cast<std::size_t>(std::floor(static_cast<double>(data.size()) * validation_fraction));
    const std::span<const std::size_t> all(order);
    Dataset validation = subset(data, all.first(validation_count), "split");
    Dataset train = subset(data, all.subspan(validation_count), "split");
    return {std::move(train), std::move(validation)};
}

std::size_t uniform_index(std::mt19937_64& rng, std::size_t n) {
    if (n == 0) throw ValueError("uniform_index: empty range [0, 0)");
    static_assert(std::mt19937_64::min() == 0 && std::mt19937_64::max() == UINT64_MAX);
    const std::uint64_t bound = n;
    // Draws below 2^64 mod n would make the low residues more likely: redraw them.
    const std::uint64_t threshold = (0 - bound) % bound;
    std::uint64_t r = rng();
    while (r < threshold) r = rng();
    return static_cast<std::size_t>(r % bound);
}

std::vector<std::size_t> permutation(std::size_t n, std::mt19937_64& rng) {
    std::vector<std::size_t> p = iota(n);
    for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[uniform_index(rng, i)]);
    return p;
}

Batch gather(const Dataset& data, std::span<const std::size_t> indices) { return gather_rows(data, indices, "gather"); }

Batch Dataset::batch(std::span<const std::size_t> rows) const { return gather_rows(*this, rows, "Dataset::batch"); }

namespace {
void check_rank(std::size_t rank, std::size_t world_size, const char* where) {
    if (world_size == 0 || rank >= world_size)
        throw ValueError(fmt::format("{}: rank {} is not in a world of {}", where, rank, world_size));
}
}  // namespace

std::span<const std::size_t> shard(std::span<const std::size_t> rows, std::size_t rank, std::size_t world_size) {
    check_rank(rank, world_size, "shard");
    const std::size_t base = rows.size() / world_size, extra = rows.size() % world_size;
    const std::size_t first = rank * base + std::min(rank, extra);
    return rows.subspan(first, base + (rank < extra ? 1 : 0));
}

Batch random_batch(const Dataset& data, std::size_t batch, std::mt19937_64& rng, std::size_t rank,
                   std::size_t world_size) {
    if (batch == 0) throw ValueError("random_batch: batch size is 0");
    check_not_empty(data, "random_batch");
    check_rank(rank, world_size, "random_batch");
    std::vector<std::size_t> indices(batch);
    for (std::size_t& i : indices) i = uniform_index(rng, data.size());
    return gather_rows(data, shard(indices, rank, world_size), "random_batch");
}

Batches::Batches(const Dataset& data, std::size_t batch_size, std::uint64_t seed, BatchOptions options)
    : data_(data), batch_size_(batch_size), options_(options), rng_(seed) {
    if (batch_size == 0) throw ValueError("Batches: batch size is 0");
    check_not_empty(data, "Batches");
    check_consistent(data, "Batches");
    check_rank(options.rank, options.world_size, "Batches");
    if (options.drop_last && batch_size > data.size())
        throw ValueError(fmt::format("Batches: batch size {} with drop_last leaves no batch from {} samples",
                                     batch_size, data.size()));
}

std::size_t Batches::batches_per_epoch() const {
    const std::size_t n = data_.size();
    return options_.drop_last ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void Batches::start_epoch() {
    order_ = options_.shuffle ? permutation(data_.size(), rng_) : iota(data_.size());
    cursor_ = 0;
    in_epoch_ = true;
    ++epochs_started_;
}

std::optional<Batch> Batches::next() {
    if (!in_epoch_) start_epoch();
    const std::size_t end = batches_per_epoch() * batch_size_;  // past the last batch's start
    if (cursor_ >= std::min(end, order_.size())) {
        in_epoch_ = false;
        return std::nullopt;
    }
    const std::size_t count = std::min(batch_size_, order_.size() - cursor_);
    const std::span<const std::size_t> indices = std::span<const std::size_t>(order_).subspan(cursor_, count);
    cursor_ += count;
    return gather_rows(data_, shard(indices, options_.rank, options_.world_size), "Batches::next");
}

}  // namespace xg::data
