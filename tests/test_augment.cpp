// data::augment_images and data::AugmentedImages: each result is the image flipped and shifted
// by one (dy, dx) within range with zeros coming in, the draw depends on (seed, epoch, row) only,
// and bad shapes and options name the function and the sizes.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "data/augment.hpp"
#include "expect_error.hpp"

namespace xd = xg::data;

namespace {

// x[r][c][i][j] = 1 + 100 c + 10 i + j + 1000 r: every pixel distinct and nonzero.
xg::Array<float> distinct_images(std::size_t rows, std::size_t channels, std::size_t h, std::size_t w) {
    xg::Array<float> x = xg::Array<float>::from_shape({rows, channels, h, w});
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < channels; ++c)
            for (std::size_t i = 0; i < h; ++i)
                for (std::size_t j = 0; j < w; ++j)
                    x(r, c, i, j) = static_cast<float>(1 + 100 * c + 10 * i + j + 1000 * r);
    return x;
}

// Channel c of image r of x, flipped if `flip`, then moved by (dy, dx) with zeros coming in: the
// reference, written out independently of the library's loop.
std::vector<float> moved(const xg::Array<float>& x, std::size_t r, std::size_t c, bool flip, long dy, long dx) {
    const long h = static_cast<long>(x.shape()[2]), w = static_cast<long>(x.shape()[3]);
    std::vector<float> out(x.shape()[2] * x.shape()[3], 0.0f);
    for (long i = 0; i < h; ++i)
        for (long j = 0; j < w; ++j) {
            const long si = i - dy, sj = j - dx;
            if (si < 0 || si >= h || sj < 0 || sj >= w) continue;
            const long src_col = flip ? w - 1 - sj : sj;
            out[static_cast<std::size_t>(i * w + j)] = x(r, c, static_cast<std::size_t>(si), static_cast<std::size_t>(src_col));
        }
    return out;
}

std::vector<float> channel(const xg::Array<float>& x, std::size_t r, std::size_t c) {
    std::vector<float> out;
    for (std::size_t i = 0; i < x.shape()[2]; ++i)
        for (std::size_t j = 0; j < x.shape()[3]; ++j) out.push_back(x(r, c, i, j));
    return out;
}

struct Move {
    bool flip;
    long dy, dx;
    bool operator<(const Move& o) const { return std::tie(flip, dy, dx) < std::tie(o.flip, o.dy, o.dx); }
};

// The one (flip, dy, dx) within the options' range that turns row r of `before` into row r of
// `after` in every channel; fails the test unless exactly one does.
Move which_move(const xg::Array<float>& before, const xg::Array<float>& after, std::size_t r,
                const xd::AugmentOptions& o) {
    std::vector<Move> found;
    const long s = static_cast<long>(o.shift);
    for (bool flip : {false, true}) {
        if (flip && !o.flip) continue;
        for (long dy = -s; dy <= s; ++dy)
            for (long dx = -s; dx <= s; ++dx) {
                bool all = true;
                for (std::size_t c = 0; c < before.shape()[1] && all; ++c)
                    all = channel(after, r, c) == moved(before, r, c, flip, dy, dx);
                if (all) found.push_back({flip, dy, dx});
            }
    }
    BOOST_TEST_REQUIRE(found.size() == 1u, "row " << r << ": " << found.size() << " moves match");
    return found[0];
}

}  // namespace

BOOST_AUTO_TEST_SUITE(augment)

BOOST_AUTO_TEST_CASE(each_image_is_flipped_and_shifted_within_range_every_channel_alike) {
    const std::size_t rows = 400;
    const xd::AugmentOptions o{.flip = true, .shift = 2, .seed = 11};
    const xg::Array<float> before = distinct_images(rows, 2, 5, 4);
    xg::Array<float> after = before;
    std::vector<std::size_t> index(rows);
    for (std::size_t r = 0; r < rows; ++r) index[r] = 3 * r + 1;
    xd::augment_images(after, index, 4, o);
    std::set<Move> seen;
    std::size_t flips = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        const Move m = which_move(before, after, r, o);
        seen.insert(m);
        flips += m.flip;
    }
    // 2 x 5 x 5 = 50 possible moves, each with probability 1/50: all seen in 400 draws (a miss
    // has probability below 50 (49/50)^400 = 1.5e-2 for one fixed seed; this seed sees them all),
    // and about half the images flipped.
    BOOST_TEST(seen.size() == 50u);
    BOOST_TEST(flips > 150u);
    BOOST_TEST(flips < 250u);
}

BOOST_AUTO_TEST_CASE(flip_only_and_shift_only_and_neither) {
    const std::size_t rows = 64;
    const xg::Array<float> before = distinct_images(rows, 1, 4, 4);
    std::vector<std::size_t> index(rows);
    for (std::size_t r = 0; r < rows; ++r) index[r] = r;
    {
        const xd::AugmentOptions o{.flip = true, .seed = 1};
        xg::Array<float> after = before;
        xd::augment_images(after, index, 0, o);
        std::size_t flips = 0;
        for (std::size_t r = 0; r < rows; ++r) flips += which_move(before, after, r, o).flip;
        BOOST_TEST(flips > 0u);
        BOOST_TEST(flips < rows);
    }
    {
        const xd::AugmentOptions o{.shift = 1, .seed = 1};
        xg::Array<float> after = before;
        xd::augment_images(after, index, 0, o);
        for (std::size_t r = 0; r < rows; ++r) BOOST_TEST(!which_move(before, after, r, o).flip);
    }
    xg::Array<float> same = before;
    xd::augment_images(same, index, 7, xd::AugmentOptions{.seed = 3});
    BOOST_TEST(same == before);
}

// The draw of a row does not depend on the batch it comes in, nor on the other rows; it changes
// with the epoch and the seed.
BOOST_AUTO_TEST_CASE(draws_depend_on_seed_epoch_and_row_only) {
    const xd::AugmentOptions o{.flip = true, .shift = 2, .seed = 5};
    const xg::Array<float> images = distinct_images(3, 1, 6, 6);
    // the images of data-set rows 10, 20 and 30 (images 0, 1, 2), in any selection
    auto augmented = [&](std::vector<std::size_t> which, std::size_t epoch, xd::AugmentOptions opt) {
        xg::Array<float> x = xg::Array<float>::from_shape({which.size(), std::size_t{1}, std::size_t{6}, std::size_t{6}});
        for (std::size_t i = 0; i < which.size(); ++i)
            for (std::size_t k = 0; k < 36; ++k) x.data()[i * 36 + k] = images.data()[(which[i] / 10 - 1) * 36 + k];
        xd::augment_images(x, which, epoch, opt);
        return x;
    };
    const std::vector<std::size_t> rows{10, 20, 30};
    const xg::Array<float> all = augmented(rows, 1, o);
    const xg::Array<float> alone = augmented({20}, 1, o);
    BOOST_TEST(channel(all, 1, 0) == channel(alone, 0, 0));
    const xg::Array<float> reversed = augmented({30, 20, 10}, 1, o);
    BOOST_TEST(channel(all, 0, 0) == channel(reversed, 2, 0));
    BOOST_TEST(augmented(rows, 1, o) == all);
    // Over 3 rows and 50 possible moves, another epoch or seed gives the same three moves with
    // probability 1/50^3: never for these seeds.
    BOOST_TEST(!(augmented(rows, 2, o) == all));
    xd::AugmentOptions other = o;
    other.seed = 6;
    BOOST_TEST(!(augmented(rows, 1, other) == all));
}

BOOST_AUTO_TEST_CASE(augmented_images_gathers_then_augments_for_the_epoch_set) {
    xg::Labels labels = xg::Labels::from_shape({5});
    for (std::size_t i = 0; i < 5; ++i) labels(i) = static_cast<std::int64_t>(i % 2);
    const xg::Array<float> second = distinct_images(5, 1, 1, 2);
    const xd::TensorDataset<float> d({distinct_images(5, 2, 3, 4), second}, labels);
    const std::vector<std::size_t> rows{4, 0, 2};
    // default options: the data set's own batch
    const xd::AugmentedImages<float> plain(d, {});
    BOOST_TEST(plain.size() == 5u);
    const xd::TensorBatch<float> b = plain.batch(rows);
    const xd::TensorBatch<float> want = d.batch(rows);
    BOOST_TEST(b.x[0] == want.x[0]);
    BOOST_TEST(b.y == want.y);

    const xd::AugmentOptions o{.flip = true, .shift = 1, .seed = 9};
    xd::AugmentedImages<float> aug(d, o);
    aug.set_epoch(3);
    BOOST_TEST(aug.epoch() == 3u);
    xg::Array<float> expect = want.x[0];
    xd::augment_images(expect, rows, 3, o);
    const xd::TensorBatch<float> got = aug.batch(rows);
    BOOST_TEST(got.x[0] == expect);
    BOOST_TEST(!(got.x[0] == want.x[0]));
    BOOST_TEST(got.x[1] == want.x[1]);  // only the tensor chosen
    BOOST_TEST(got.y == want.y);
    // the second tensor, (5, 1, 1, 2), takes flips (a shift of 1 would be its whole height)
    const xd::AugmentedImages<float> flips(d, {.flip = true}, 1);
    const xd::TensorBatch<float> flipped = flips.batch(rows);
    xg::Array<float> expect_second = want.x[1];
    xd::augment_images(expect_second, rows, 0, {.flip = true});
    BOOST_TEST(flipped.x[0] == want.x[0]);
    BOOST_TEST(flipped.x[1] == expect_second);
}

BOOST_AUTO_TEST_CASE(bad_shapes_and_options_name_the_function_and_sizes) {
    const std::vector<std::size_t> two{0, 1};
    xg::Array<float> flat = xg::Array<float>::from_shape({2, 9});
    xgt::expect_error<xg::ShapeError>([&] { xd::augment_images(flat, two, 0, {}); },
                                      {"augment_images", "(N, C, H, W)", "(2, 9)"});
    xg::Array<float> x = xg::Array<float>::from_shape({2, 1, 3, 5});
    xgt::expect_error<xg::ShapeError>([&] { xd::augment_images(x, std::vector<std::size_t>{0}, 0, {}); },
                                      {"augment_images", "1 row indices", "(2, 1, 3, 5)"});
    xgt::expect_error<xg::ValueError>([&] { xd::augment_images(x, two, 0, {.shift = 3}); },
                                      {"augment_images", "shift of 3", "3 x 5"});
    xg::Array<float> empty = xg::Array<float>::from_shape({0, 1, 3, 5});
    xd::augment_images(empty, std::vector<std::size_t>{}, 0, {.flip = true, .shift = 2});  // nothing to do
    const xd::TensorDataset<float> d({xg::Array<float>::from_shape({3, 4})});
    xgt::expect_error<xg::ShapeError>([&] { xd::AugmentedImages<float> a(d, {.flip = true}); },
                                      {"AugmentedImages", "(3, 4)"});
    xgt::expect_error<xg::ValueError>([&] { xd::AugmentedImages<float> a(d, {}, 1); },
                                      {"AugmentedImages", "tensor 1"});
}

BOOST_AUTO_TEST_SUITE_END()
