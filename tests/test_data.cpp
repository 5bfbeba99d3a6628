// The data layer: IDX files (raw, gzip, and every kind of corruption, which must raise an
// IoError naming the file), data sets, the validation split, mini-batches and the real
// Fashion-MNIST files installed by scripts/setup.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <numeric>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>
#include <zlib.h>

#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "expect_error.hpp"
#include "fixtures.hpp"

namespace fs = std::filesystem;
namespace xd = xg::data;
using Bytes = std::vector<std::uint8_t>;

namespace {

// One scratch directory for the whole file, removed when the test program exits.
struct ScratchDir {
    fs::path path = fs::temp_directory_path() / ("xgrad-test-data-" + std::to_string(::getpid()));
    ScratchDir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string scratch(const std::string& name) {
    static ScratchDir dir;
    return (dir.path / name).string();
}

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes counting(std::size_t n, std::size_t mult = 7) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * mult % 256);
    return b;
}

// Writes `bytes` under `name` and expects read_idx to fail naming the file and each fragment.
void expect_io_error(const std::string& name, const Bytes& bytes, std::vector<std::string> fragments,
                     std::size_t max_bytes = xd::default_max_idx_bytes) {
    const std::string path = scratch(name);
    write_bytes(path, bytes);
    fragments.push_back(path);
    BOOST_TEST_CONTEXT(name) {
        xgt::expect_error<xg::IoError>([&] { xd::read_idx(path, max_bytes); }, fragments);
    }
}

Bytes header(std::uint8_t type, std::initializer_list<std::uint32_t> dims) {
    Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims)
        for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::uint8_t>(d >> shift));
    return b;
}

// A gzip member holding `raw` (which need not be IDX), straight from zlib.
Bytes gzip_of(const Bytes& raw) {
    z_stream z{};
    BOOST_REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, raw.size()));
    z.next_in = const_cast<Bytef*>(raw.data());
    z.avail_in = static_cast<uInt>(raw.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    BOOST_REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// n samples whose label is their index and whose pixels are index + feature / 100, so any
// sample can be identified and checked against its own row.
xd::Dataset numbered(std::size_t n, std::size_t features) {
    xd::Dataset d{xg::Array<float>::from_shape({n, features}), xg::Labels::from_shape({n})};
    for (std::size_t i = 0; i < n; ++i) {
        d.labels(i) = static_cast<std::int64_t>(i);
        for (std::size_t j = 0; j < features; ++j) d.images(i, j) = static_cast<float>(i) + static_cast<float>(j) / 100;
    }
    return d;
}

// Every row of x is the row of the sample its label names.
bool rows_match_labels(const xg::Array<float>& x, const xg::Labels& y) {
    for (std::size_t r = 0; r < y.size(); ++r)
        for (std::size_t j = 0; j < x.shape(1); ++j)
            if (x(r, j) != static_cast<float>(y(r)) + static_cast<float>(j) / 100) return false;
    return true;
}

std::vector<std::int64_t> labels_of(const xg::Labels& y) { return {y.begin(), y.end()}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(data)

BOOST_AUTO_TEST_CASE(idx_round_trip_raw_and_gzip) {
    const Bytes pixels = counting(2 * 3 * 4);
    for (bool gzip : {false, true}) {
        BOOST_TEST_CONTEXT("gzip " << gzip) {
            const std::string path = scratch(gzip ? "rt.idx.gz" : "rt.idx");
            xd::write_idx(path, {2, 3, 4}, pixels, gzip);
            const Bytes file = read_bytes(path);
            BOOST_TEST(xd::is_gzip(file) == gzip);
            if (!gzip) {
                BOOST_TEST(file.size() == 16u + 24u);
                BOOST_TEST(Bytes(file.begin(), file.begin() + 16) == header(0x08, {2, 3, 4}));
            }
            const xd::IdxArray a = xd::read_idx(path);
            BOOST_TEST(a.shape == (std::vector<std::size_t>{2, 3, 4}));
            BOOST_TEST(a.data == pixels);
            BOOST_TEST(a.data[23] == 23 * 7);
        }
    }
    xd::write_idx(scratch("one.idx"), {5}, Bytes{9, 8, 7, 6, 5}, false);
    const xd::IdxArray one = xd::read_idx(scratch("one.idx"));
    BOOST_TEST(one.shape == (std::vector<std::size_t>{5}));
    BOOST_TEST(one.data == (Bytes{9, 8, 7, 6, 5}));
    // A zero dimension is a valid, empty array.
    xd::write_idx(scratch("empty.idx"), {0, 28, 28}, Bytes{}, true);
    const xd::IdxArray empty = xd::read_idx(scratch("empty.idx"));
    BOOST_TEST(empty.shape == (std::vector<std::size_t>{0, 28, 28}));
    BOOST_TEST(empty.data.empty());
}

BOOST_AUTO_TEST_CASE(idx_in_memory_and_concatenated_gzip_members) {
    const Bytes raw = xd::encode_idx({4, 2}, counting(8), false);
    const xd::IdxArray a = xd::parse_idx(raw, "memory");
    BOOST_TEST(a.shape == (std::vector<std::size_t>{4, 2}));
    BOOST_TEST(a.data == counting(8));
    BOOST_TEST(xd::gunzip(xd::encode_idx({4, 2}, counting(8), true), "memory.gz") == raw);
    // `cat head.gz data.gz` is one valid gzip file holding both parts, as gunzip reads it.
    const Bytes two_members = concat(gzip_of(Bytes(raw.begin(), raw.begin() + 12)), gzip_of(Bytes(raw.begin() + 12, raw.end())));
    const xd::IdxArray b = xd::parse_idx(two_members, "two-members.gz");
    BOOST_TEST(b.shape == (std::vector<std::size_t>{4, 2}));
    BOOST_TEST(b.data == counting(8));
}

BOOST_AUTO_TEST_CASE(idx_file_errors_name_the_file) {
    const Bytes good = concat(header(0x08, {10, 28, 28}), counting(7840));
    xgt::expect_error<xg::IoError>([&] { xd::read_idx(scratch("no-such-file")); },
                                   {scratch("no-such-file"), "cannot open", "No such file"});
    fs::create_directories(scratch("a-directory"));
    xgt::expect_error<xg::IoError>([&] { xd::read_idx(scratch("a-directory")); },
                                   {scratch("a-directory"), "cannot read", "Is a directory"});
    expect_io_error("empty", {}, {"empty", "0 bytes"});
    expect_io_error("short", {0, 0, 8}, {"too short", "3 bytes"});
    expect_io_error("magic", concat({0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1}, {5}),
                    {"not an IDX file", "magic number 0x12340801 found", "expected 0x0000080N"});
    expect_io_error("float-type", concat(header(0x0D, {2}), Bytes(8)), {"type code 0x0d", "float32", "only 0x08"});
    expect_io_error("int-type", concat(header(0x0C, {2}), Bytes(8)), {"type code 0x0c", "int32"});
    expect_io_error("ndim0", {0, 0, 8, 0, 1, 2, 3}, {"declares 0 dimensions", "1 to 4"});
    expect_io_error("ndim5", concat(header(0x08, {1, 1, 1, 1, 1}), {7}), {"declares 5 dimensions", "0x00000805"});
    expect_io_error("cut-header", Bytes(good.begin(), good.begin() + 11),
                    {"truncated IDX header", "11 bytes", "3-dimensional header needs 16"});
    expect_io_error("overflow", header(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}),
                    {"(4294967295, 4294967295, 4294967295, 4294967295)", "more than the 1073741824-byte limit"});
    expect_io_error("too-big", concat(header(0x08, {1000, 1000}), counting(10)),
                    {"(1000, 1000)", "more than the 65536-byte limit"}, 65536);
    expect_io_error("cut-data", Bytes(good.begin(), good.begin() + 16 + 100),
                    {"truncated", "(10, 28, 28)", "needs 7840 bytes", "16-byte header", "only 100"});
    expect_io_error("trailing", concat(good, {1, 2, 3, 4, 5}), {"5 trailing bytes", "7840 bytes of data"});
}

BOOST_AUTO_TEST_CASE(gzip_errors_name_the_file) {
    const Bytes gz = xd::encode_idx({10, 28, 28}, counting(7840, 13), true);
    BOOST_REQUIRE(gz.size() > 100);
    Bytes flipped = gz;
    for (std::size_t i = 20; i < 40; ++i) flipped[i] ^= 0x5A;
    expect_io_error("corrupt.gz", flipped, {"corrupt gzip stream near compressed byte"});
    Bytes bad_crc = gz;
    bad_crc[gz.size() - 6] ^= 1;  // the CRC-32 of the trailer
    expect_io_error("crc.gz", bad_crc, {"corrupt gzip stream", "incorrect data check"});
    expect_io_error("cut.gz", Bytes(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)),
                    {"truncated gzip stream", "after " + std::to_string(gz.size() / 2) + " compressed bytes"});
    expect_io_error("header-only.gz", Bytes(gz.begin(), gz.begin() + 2), {"truncated gzip stream"});
    expect_io_error("garbage.gz", concat(gz, {'a', 'b', 'c'}), {"3 trailing bytes after the gzip stream"});
    // Valid gzip around a bad IDX: the IDX checks still name the file.
    const Bytes inner = concat(header(0x08, {10, 28, 28}), counting(50));
    expect_io_error("inner.gz", gzip_of(inner), {"truncated", "needs 7840 bytes", "only 50"});
    // A bomb: 4 MiB of zeros compress to a few kB; with a 1 MiB limit inflation stops early.
    const Bytes zeros(std::size_t{4} << 20);
    const Bytes bomb = xd::encode_idx({zeros.size()}, zeros, true);
    BOOST_TEST(bomb.size() < 10000u);
    expect_io_error("bomb.gz", bomb, {"inflates to more than the 1048576-byte limit", "decompression bomb"},
                    std::size_t{1} << 20);
    BOOST_TEST(xd::read_idx(scratch("bomb.gz")).size() == zeros.size());  // the default limit admits it
}

BOOST_AUTO_TEST_CASE(encode_and_write_errors) {
    xgt::expect_error<xg::ShapeError>([&] { xd::encode_idx({2, 3}, counting(5), false); },
                                      {"encode_idx", "(2, 3)", "5 bytes"});
    xgt::expect_error<xg::ShapeError>([&] { xd::encode_idx({1, 1, 1, 1, 1}, counting(1), false); },
                                      {"encode_idx", "5 dimensions"});
    xgt::expect_error<xg::ShapeError>([&] { xd::encode_idx({std::size_t{1} << 33}, counting(1), false); },
                                      {"encode_idx", "8589934592", "32 bits"});
    const std::string nowhere = scratch("no-dir") + "/file.idx";
    xgt::expect_error<xg::IoError>([&] { xd::write_idx(nowhere, {1}, counting(1), false); },
                                   {nowhere, "cannot create temporary file", "No such file"});
    // The write is atomic: a temporary file next to the target, renamed, none left over.
    fs::create_directories(scratch("atomic"));
    xd::write_idx(scratch("atomic/x.idx.gz"), {3}, counting(3), true);
    xd::write_idx(scratch("atomic/x.idx.gz"), {4}, counting(4), true);  // replaces it
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(scratch("atomic"))) names.push_back(entry.path().filename());
    BOOST_TEST(names == (std::vector<std::string>{"x.idx.gz"}));
    BOOST_TEST(xd::read_idx(scratch("atomic/x.idx.gz")).data == counting(4));
}

BOOST_AUTO_TEST_CASE(load_idx_pair_flattens_and_scales) {
    // Three 2x2 images and their labels, one file raw and one gzip.
    xd::write_idx(scratch("pair-images.idx"), {3, 2, 2}, Bytes{0, 255, 51, 102, 1, 2, 3, 4, 255, 255, 0, 0}, false);
    xd::write_idx(scratch("pair-labels.idx.gz"), {3}, Bytes{7, 0, 3}, true);
    const xd::Dataset d = xd::load_idx_pair(scratch("pair-images.idx"), scratch("pair-labels.idx.gz"));
    BOOST_TEST(d.size() == 3u);
    BOOST_TEST(d.features() == 4u);
    BOOST_TEST(d.classes() == 8u);
    BOOST_TEST(d.images.shape() == (xg::Shape{3, 4}), boost::test_tools::per_element());
    BOOST_TEST(d.images(0, 0) == 0.0f);
    BOOST_TEST(d.images(0, 1) == 1.0f);
    BOOST_TEST(d.images(0, 2) == 0.2f);
    BOOST_TEST(d.images(0, 3) == 0.4f);
    BOOST_TEST(d.images(1, 3) == 4.0f / 255.0f);
    BOOST_TEST(d.images(2, 1) == 1.0f);
    BOOST_TEST(labels_of(d.labels) == (std::vector<std::int64_t>{7, 0, 3}));

    xd::write_idx(scratch("pair-labels4.idx"), {4}, Bytes{1, 2, 3, 4}, false);
    xgt::expect_error<xg::IoError>([&] { xd::load_idx_pair(scratch("pair-images.idx"), scratch("pair-labels4.idx")); },
                                   {scratch("pair-images.idx"), "3 images", scratch("pair-labels4.idx"), "4 labels"});
    xd::write_idx(scratch("pair-labels2d.idx"), {3, 1}, Bytes{1, 2, 3}, false);
    xgt::expect_error<xg::IoError>([&] { xd::load_idx_pair(scratch("pair-images.idx"), scratch("pair-labels2d.idx")); },
                                   {scratch("pair-labels2d.idx"), "(N,)", "(3, 1)"});
    xgt::expect_error<xg::IoError>([&] { xd::load_idx_pair(scratch("pair-labels4.idx"), scratch("pair-labels4.idx")); },
                                   {scratch("pair-labels4.idx"), "(N, rows, cols)", "(4,)"});
    xgt::expect_error<xg::IoError>([&] { xd::load_idx_pair(scratch("pair-images.idx"), scratch("absent")); },
                                   {scratch("absent"), "cannot open"});
}

BOOST_AUTO_TEST_CASE(load_mnist_dir_finds_raw_or_gzip_and_lists_missing_files) {
    const std::string dir = scratch("mnist-like");
    fs::create_directories(dir);
    xd::write_idx(dir + "/train-images-idx3-ubyte.gz", {5, 2, 3}, counting(30), true);
    xd::write_idx(dir + "/train-labels-idx1-ubyte", {5}, Bytes{0, 1, 2, 1, 0}, false);
    xgt::expect_error<xg::IoError>([&] { xd::load_mnist_dir(dir); },
                                   {"load_mnist_dir", "missing in " + dir,
                                    "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"});
    xd::write_idx(dir + "/t10k-images-idx3-ubyte", {2, 2, 3}, counting(12, 3), false);
    xd::write_idx(dir + "/t10k-labels-idx1-ubyte.gz", {2}, Bytes{2, 2}, true);
    const xd::TrainTest tt = xd::load_mnist_dir(dir);
    BOOST_TEST(tt.train.images.shape() == (xg::Shape{5, 6}), boost::test_tools::per_element());
    BOOST_TEST(tt.test.images.shape() == (xg::Shape{2, 6}), boost::test_tools::per_element());
    BOOST_TEST(tt.train.images(4, 5) == static_cast<float>(29 * 7) / 255.0f);
    BOOST_TEST(tt.test.images(1, 2) == 24.0f / 255.0f);
    BOOST_TEST(labels_of(tt.train.labels) == (std::vector<std::int64_t>{0, 1, 2, 1, 0}));
    BOOST_TEST(tt.test.classes() == 3u);
    xgt::expect_error<xg::IoError>([&] { xd::load_mnist_dir(scratch("nowhere")); },
                                   {scratch("nowhere"), "does not exist"});
    BOOST_TEST(xd::default_data_dir() == "/usr/share/datasets/fashion-mnist");
}

BOOST_AUTO_TEST_CASE(take_and_select) {
    const xd::Dataset d = numbered(10, 3);
    const xd::Dataset first = xd::take(d, 4);
    BOOST_TEST(labels_of(first.labels) == (std::vector<std::int64_t>{0, 1, 2, 3}));
    BOOST_TEST(rows_match_labels(first.images, first.labels));
    BOOST_TEST(first.classes() == 10u);  // the parent's, not max label + 1 of the subset
    BOOST_TEST(xd::take(d, 0).images.shape() == (xg::Shape{0, 3}), boost::test_tools::per_element());
    const xd::Dataset some = xd::select(d, {9, 2, 2, 5});
    BOOST_TEST(labels_of(some.labels) == (std::vector<std::int64_t>{9, 2, 2, 5}));
    BOOST_TEST(rows_match_labels(some.images, some.labels));
    xgt::expect_error<xg::ValueError>([&] { xd::take(d, 11); }, {"take", "11", "of 10"});
    xgt::expect_error<xg::IndexError>([&] { xd::select(d, {1, 10}); }, {"select", "index 10", "10 samples"});
    xd::Dataset broken = numbered(3, 2);
    broken.labels = xg::Labels{1, 2};
    xgt::expect_error<xg::ShapeError>([&] { xd::take(broken, 1); }, {"take", "(3, 2)", "2 labels"});
}

BOOST_AUTO_TEST_CASE(split_is_a_seeded_partition) {
    const xd::Dataset d = numbered(103, 2);
    const auto [train, validation] = xd::split(d, 0.2, 42);
    BOOST_TEST(validation.size() == 20u);  // floor(103 * 0.2), as int(N * rate) in the book
    BOOST_TEST(train.size() == 83u);
    BOOST_TEST(rows_match_labels(train.images, train.labels));
    BOOST_TEST(rows_match_labels(validation.images, validation.labels));
    std::set<std::int64_t> seen;
    for (auto l : train.labels) seen.insert(l);
    for (auto l : validation.labels) BOOST_TEST(seen.insert(l).second);  // disjoint
    BOOST_TEST(seen.size() == 103u);                                        // union = all
    BOOST_TEST(labels_of(train.labels) != labels_of(xd::take(d, 83).labels));  // shuffled
    BOOST_TEST(train.classes() == 103u);

    const auto [train2, validation2] = xd::split(d, 0.2, 42);
    BOOST_TEST(labels_of(train2.labels) == labels_of(train.labels));
    BOOST_TEST(labels_of(validation2.labels) == labels_of(validation.labels));
    const auto [train3, validation3] = xd::split(d, 0.2, 43);
    BOOST_TEST(labels_of(validation3.labels) != labels_of(validation.labels));

    BOOST_TEST(xd::split(d, 0.0, 1).second.size() == 0u);
    xgt::expect_error<xg::ValueError>([&] { xd::split(d, 1.0, 1); }, {"split", "validation fraction 1"});
    xgt::expect_error<xg::ValueError>([&] { xd::split(d, -0.1, 1); }, {"split", "-0.1"});
    xgt::expect_error<xg::ValueError>([&] { xd::split(d, std::nan(""), 1); }, {"split", "nan"});
}

BOOST_AUTO_TEST_CASE(permutation_is_reproducible_everywhere) {
    // mt19937_64 is fully specified and uniform_index is ours: these numbers hold on any platform.
    std::mt19937_64 rng(2024);
    const std::vector<std::size_t> p = xd::permutation(10, rng);
    std::vector<std::size_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> identity(10);
    std::iota(identity.begin(), identity.end(), std::size_t{0});
    BOOST_TEST(sorted == identity);
    BOOST_TEST(p == (std::vector<std::size_t>{1, 3, 6, 0, 2, 8, 7, 5, 9, 4}));
    std::mt19937_64 a(7), b(7);
    for (std::size_t n : {1u, 2u, 3u, 1000u, 60000u}) {
        const std::size_t i = xd::uniform_index(a, n);
        BOOST_TEST(i < n);
        BOOST_TEST(i == xd::uniform_index(b, n));
    }
    xgt::expect_error<xg::ValueError>([&] { xd::uniform_index(a, 0); }, {"uniform_index"});
}

BOOST_AUTO_TEST_CASE(epoch_batches_cover_each_sample_once) {
    const xd::Dataset d = numbered(10, 3);
    xd::Batches batches(d, 3, 99);
    BOOST_TEST(batches.batches_per_epoch() == 4u);
    std::vector<std::vector<std::int64_t>> epochs;
    for (int epoch = 0; epoch < 3; ++epoch) {
        std::vector<std::int64_t> seen;
        std::vector<std::size_t> sizes;
        while (auto batch = batches.next()) {
            BOOST_TEST(batch->x.shape(1) == 3u);
            BOOST_TEST(batch->x.shape(0) == batch->y.size());
            BOOST_TEST(rows_match_labels(batch->x, batch->y));
            sizes.push_back(batch->y.size());
            for (auto l : batch->y) seen.push_back(l);
        }
        BOOST_TEST(sizes == (std::vector<std::size_t>{3, 3, 3, 1}));
        BOOST_TEST(std::vector<std::int64_t>(batches.order().begin(), batches.order().end()) == seen);
        epochs.push_back(seen);
        std::sort(seen.begin(), seen.end());
        BOOST_TEST(seen == labels_of(d.labels));  // every sample exactly once
    }
    BOOST_TEST(batches.epochs_started() == 3u);
    BOOST_TEST(epochs[0] != epochs[1]);  // reshuffled each epoch
    BOOST_TEST(epochs[1] != epochs[2]);
    xd::Batches again(d, 3, 99);
    std::vector<std::int64_t> first;
    while (auto batch = again.next())
        for (auto l : batch->y) first.push_back(l);
    BOOST_TEST(first == epochs[0]);  // same seed, same epoch

    xd::Batches dropping(d, 3, 5, {.drop_last = true});
    std::size_t count = 0, samples = 0;
    while (auto batch = dropping.next()) {
        ++count;
        samples += batch->y.size();
    }
    BOOST_TEST(count == 3u);
    BOOST_TEST(samples == 9u);
    xd::Batches ordered(d, 4, 5, {.shuffle = false});
    BOOST_TEST(labels_of(ordered.next()->y) == (std::vector<std::int64_t>{0, 1, 2, 3}));
    BOOST_TEST(labels_of(ordered.next()->y) == (std::vector<std::int64_t>{4, 5, 6, 7}));
    BOOST_TEST(labels_of(ordered.next()->y) == (std::vector<std::int64_t>{8, 9}));
    BOOST_TEST(!ordered.next().has_value());

    xgt::expect_error<xg::ValueError>([&] { xd::Batches(d, 0, 1); }, {"Batches", "batch size is 0"});
    const xd::Dataset none = xd::take(d, 0);
    xgt::expect_error<xg::ValueError>([&] { xd::Batches(none, 2, 1); }, {"Batches", "empty"});
    xgt::expect_error<xg::ValueError>([&] { xd::Batches(d, 11, 1, {.drop_last = true}); },
                                      {"Batches", "11", "10 samples"});
}

BOOST_AUTO_TEST_CASE(random_batch_draws_with_replacement_reproducibly) {
    const xd::Dataset d = numbered(50, 4);
    std::mt19937_64 a(3), b(3), c(4);
    const xd::Batch x = xd::random_batch(d, 100, a);  // larger than the data set: with replacement
    BOOST_TEST(x.x.shape() == (xg::Shape{100, 4}), boost::test_tools::per_element());
    BOOST_TEST(x.y.size() == 100u);
    BOOST_TEST(rows_match_labels(x.x, x.y));
    std::set<std::int64_t> distinct(x.y.begin(), x.y.end());
    BOOST_TEST(distinct.size() < 50u);  // repeats: 100 draws from 50 cover about 43 distinct
    BOOST_TEST(distinct.size() > 30u);
    BOOST_TEST(*distinct.begin() >= 0);
    BOOST_TEST(*distinct.rbegin() < 50);
    BOOST_TEST(labels_of(xd::random_batch(d, 100, b).y) == labels_of(x.y));
    BOOST_TEST(labels_of(xd::random_batch(d, 100, c).y) != labels_of(x.y));
    BOOST_TEST(labels_of(xd::random_batch(d, 100, a).y) != labels_of(x.y));  // the generator moved on
    xgt::expect_error<xg::ValueError>([&] { xd::random_batch(d, 0, a); }, {"random_batch", "batch size is 0"});
    xgt::expect_error<xg::ValueError>([&] { xd::random_batch(xd::take(d, 0), 5, a); }, {"random_batch", "empty"});
}

namespace {
// Loaded once for the whole file: reading and inflating Fashion-MNIST takes about half a second.
const xd::TrainTest& fashion_mnist() {
    static const xd::TrainTest data = xd::load_mnist_dir(xd::default_data_dir());
    return data;
}

void check_fashion_part(const xd::Dataset& d, std::size_t n) {
    BOOST_TEST(d.images.shape() == (xg::Shape{n, 784}), boost::test_tools::per_element());
    BOOST_TEST(d.labels.size() == n);
    BOOST_TEST(d.classes() == 10u);
    const auto [lo, hi] = std::minmax_element(d.images.data(), d.images.data() + d.images.size());
    BOOST_TEST(*lo == 0.0f);
    BOOST_TEST(*hi == 1.0f);
    // Fashion-MNIST is balanced: every class has exactly a tenth of the samples.
    std::vector<std::size_t> per_class(10);
    std::size_t out_of_range = 0;
    for (auto l : d.labels) {
        if (l >= 0 && l <= 9) ++per_class[static_cast<std::size_t>(l)];
        else ++out_of_range;
    }
    BOOST_TEST(out_of_range == 0u);
    BOOST_TEST(per_class == std::vector<std::size_t>(10, n / 10));
}
}  // namespace

BOOST_AUTO_TEST_CASE(fashion_mnist_loads) {
    const xd::TrainTest& fm = fashion_mnist();
    check_fashion_part(fm.train, 60000);
    check_fashion_part(fm.test, 10000);
    BOOST_TEST(fm.train.labels(0) == 9);  // an ankle boot, the first image of both files
    BOOST_TEST(fm.test.labels(0) == 9);
    BOOST_TEST(labels_of(xd::take(fm.train, 10).labels) == (std::vector<std::int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
    BOOST_TEST(fm.train.labels(59999) == 5);
    // Pixel sums of two images, from the raw bytes (76247 and 24390) over 255.
    auto row_sum = [](const xd::Dataset& d, std::size_t i) {
        double s = 0;
        for (std::size_t j = 0; j < 784; ++j) s += d.images(i, j);
        return s;
    };
    BOOST_TEST(row_sum(fm.train, 0) == 76247.0 / 255.0, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(row_sum(fm.test, 9999) == 24390.0 / 255.0, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(fm.train.images(0, 387) == 217.0f / 255.0f);
}

BOOST_AUTO_TEST_CASE(fashion_mnist_split_and_batches) {
    const xd::Dataset& train = fashion_mnist().train;
    const auto [fit, validation] = xd::split(train, 0.2, 1);
    BOOST_TEST(fit.size() == 48000u);
    BOOST_TEST(validation.size() == 12000u);
    BOOST_TEST(validation.classes() == 10u);
    std::mt19937_64 rng(0);
    const xd::Batch batch = xd::random_batch(fit, 100, rng);
    BOOST_TEST(batch.x.shape() == (xg::Shape{100, 784}), boost::test_tools::per_element());
    xd::Batches batches(validation, 1000, 7, {.drop_last = true});
    std::size_t rows = 0;
    while (auto b = batches.next()) rows += b->y.size();
    BOOST_TEST(rows == 12000u);
}

BOOST_AUTO_TEST_CASE(shard_splits_a_batch_over_ranks) {
    const std::vector<std::size_t> rows{10, 11, 12, 13, 14, 15, 16};
    // 7 rows over 3 ranks: 3, 2, 2, contiguous, in order.
    BOOST_TEST((std::vector<std::size_t>(xd::shard(rows, 0, 3).begin(), xd::shard(rows, 0, 3).end()) ==
                std::vector<std::size_t>{10, 11, 12}));
    BOOST_TEST(xd::shard(rows, 1, 3).front() == 13u);
    BOOST_TEST(xd::shard(rows, 2, 3).size() == 2u);
    BOOST_TEST(xd::shard(rows, 0, 1).size() == 7u);
    // Fewer rows than ranks: the last ranks get none.
    BOOST_TEST(xd::shard(std::span(rows).first(2), 2, 3).empty());
    BOOST_TEST(xd::shard(std::span<const std::size_t>(), 0, 2).empty());
    xgt::expect_error<xg::ValueError>([&] { xd::shard(rows, 3, 3); }, {});
    xgt::expect_error<xg::ValueError>([&] { xd::shard(rows, 0, 0); }, {});
    // Every rank's Batches, side by side in one process: each epoch is partitioned.
    xd::Dataset d = xgt::blobs(23, 1);
    for (std::size_t i = 0; i < d.size(); ++i) d.labels(i) = static_cast<std::int64_t>(i);
    d.num_classes = d.size();
    std::vector<int> seen(d.size(), 0);
    for (std::size_t r = 0; r < 4; ++r) {
        xd::Batches b(d, 8, 5, {.rank = r, .world_size = 4});
        while (auto batch = b.next())
            for (std::size_t i = 0; i < batch->y.size(); ++i) ++seen[static_cast<std::size_t>(batch->y(i))];
    }
    BOOST_TEST(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
    // The same random draw on every rank, each its shard.
    std::mt19937_64 g0(3), g1(3), whole(3);
    const xd::Batch b0 = xd::random_batch(d, 5, g0, 0, 2), b1 = xd::random_batch(d, 5, g1, 1, 2);
    const xd::Batch all = xd::random_batch(d, 5, whole);
    BOOST_TEST(b0.y.size() == 3u);
    BOOST_TEST(b1.y.size() == 2u);
    BOOST_TEST(b1.y(1) == all.y(4));
    xgt::expect_error<xg::ValueError>([&] { xd::random_batch(d, 5, g0, 2, 2); }, {});
}

BOOST_AUTO_TEST_SUITE_END()
