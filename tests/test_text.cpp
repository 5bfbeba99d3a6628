// Text corpora for the character-level language model (data/text.hpp): reading files (errors name
// the file), the fortunes directory layout, the byte vocabulary, the fixed split, the batches of
// next-character targets, and the unigram and bigram baselines against hand-computed values.
// Every text is a small string or a temporary file: never the network, never the installed
// fortunes.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/text.hpp"
#include "expect_error.hpp"
#include "fixtures.hpp"

namespace xd = xg::data;
using Ids = std::vector<std::int64_t>;
using xgt::expect_error;

BOOST_AUTO_TEST_SUITE(text)

BOOST_AUTO_TEST_CASE(read_text_file_and_its_errors) {
    xgt::TempDir dir("text");
    const std::string good = dir / "good.txt", empty = dir / "empty.txt";
    xgt::write_all(good, "caf\xc3\xa9\n");  // UTF-8 bytes kept as they are
    xgt::write_all(empty, "");
    BOOST_TEST(xd::read_text_file(good) == "caf\xc3\xa9\n");
    expect_error<xg::IoError>([&] { xd::read_text_file(empty); }, {empty, "empty"});
    expect_error<xg::IoError>([&] { xd::read_text_file(dir / "missing.txt"); }, {dir / "missing.txt", "no such file"});
    expect_error<xg::IoError>([&] { xd::read_text_file(dir.path.string()); }, {dir.path.string(), "not a regular file"});
    expect_error<xg::IoError>([&] { xd::read_text_file(good, 3); }, {good, "6 bytes", "limit of 3"});
}

BOOST_AUTO_TEST_CASE(fortune_files_skip_indexes_and_links) {
    xgt::TempDir dir("fortunes");
    xgt::write_all(dir / "b", "second\n%\n");
    xgt::write_all(dir / "a", "first\n%\n");
    xgt::write_all(dir / "a.dat", "\x01\x02");
    std::filesystem::create_symlink(dir / "a", dir / "a.u8");
    std::filesystem::create_directory(dir / "sub");
    const std::vector<std::string> files = xd::fortune_files(dir.path.string());
    BOOST_TEST(files == (std::vector<std::string>{dir / "a", dir / "b"}), boost::test_tools::per_element());
    BOOST_TEST(xd::load_fortunes(dir.path.string()) == "first\n%\nsecond\n%\n");
    expect_error<xg::IoError>([&] { xd::load_fortunes(dir.path.string(), 10); }, {"limit of 10"});
    xgt::write_all(dir / "c", "");
    expect_error<xg::IoError>([&] { xd::load_fortunes(dir.path.string()); }, {dir / "c", "empty"});

    xgt::TempDir bare("fortunes-bare");
    xgt::write_all(bare / "x.dat", "idx");
    expect_error<xg::IoError>([&] { xd::fortune_files(bare.path.string()); }, {bare.path.string(), "fortunes package"});
    expect_error<xg::IoError>([&] { xd::fortune_files(bare / "nowhere"); }, {bare / "nowhere", "not a directory"});
}

BOOST_AUTO_TEST_CASE(vocabulary_of_bytes) {
    const xd::Vocabulary v("hello, h\xc3\xa9");
    // Distinct bytes in increasing order: ' ' ',' 'e' 'h' 'l' 'o' 0xa9 0xc3.
    BOOST_TEST(v.size() == 8u);
    BOOST_TEST(v.symbols() == std::string(" ,ehlo\xa9\xc3"));
    BOOST_TEST(v.id('h') == 3);
    BOOST_TEST(v.symbol(0) == ' ');
    const Ids ids = v.encode("hole");
    BOOST_TEST(ids == (Ids{3, 5, 4, 2}), boost::test_tools::per_element());
    BOOST_TEST(v.decode(ids) == "hole");
    BOOST_TEST(v.decode(v.encode("h\xc3\xa9")) == "h\xc3\xa9");
    BOOST_TEST(!v.contains('z'));
    expect_error<xg::ValueError>([&] { v.encode("hez"); }, {"'z'", "8 symbols"});
    expect_error<xg::ValueError>([&] { v.id(0x01); }, {"\\x01"});
    expect_error<xg::IndexError>([&] { v.symbol(8); }, {"id 8", "[0, 8)"});
    expect_error<xg::ValueError>([] { xd::Vocabulary(""); }, {"empty"});
    const xd::Vocabulary same = xd::Vocabulary::from_symbols(v.symbols());
    BOOST_TEST(same.encode("hello") == v.encode("hello"), boost::test_tools::per_element());
    expect_error<xg::ValueError>([] { xd::Vocabulary::from_symbols("abca"); }, {"'a' twice"});
}

BOOST_AUTO_TEST_CASE(split_is_fixed_and_interleaved) {
    Ids ids(105);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
    // 10 blocks of 10 (the last 15): blocks 4 and 9 (every 5th) are validation.
    const xd::TextSplit s = xd::split_text(ids, {.blocks = 10, .validation_every = 5});
    Ids validation;
    for (std::int64_t i = 40; i < 50; ++i) validation.push_back(i);
    for (std::int64_t i = 90; i < 105; ++i) validation.push_back(i);
    BOOST_TEST(s.validation == validation, boost::test_tools::per_element());
    BOOST_TEST(s.train.size() == 80u);
    BOOST_TEST(s.train.front() == 0);
    BOOST_TEST(s.train[40] == 50);  // block 5 follows block 3
    // The defaults: 10% held out.
    Ids big(1000, 0);
    const xd::TextSplit d = xd::split_text(big);
    BOOST_TEST(d.validation.size() == 100u);
    BOOST_TEST(d.train.size() == 900u);
    expect_error<xg::ValueError>([&] { xd::split_text(Ids(5, 0), {.blocks = 10, .validation_every = 5}); },
                                 {"5 ids", "10 blocks"});
    expect_error<xg::ValueError>([&] { xd::split_text(ids, {.blocks = 3, .validation_every = 5}); },
                                 {"blocks 3", "validation_every 5"});
}

BOOST_AUTO_TEST_CASE(random_windows_have_next_character_targets) {
    Ids ids(50);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
    std::mt19937_64 rng(7);
    const xd::SequenceBatch b = xd::random_windows(ids, 4, 6, rng);
    BOOST_TEST(b.x.shape(0) == 4u);
    BOOST_TEST(b.x.shape(1) == 6u);
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t t = 0; t < 6; ++t) {
            BOOST_TEST(b.y(i, t) == b.x(i, t) + 1);
            if (t > 0) BOOST_TEST(b.x(i, t) == b.x(i, t - 1) + 1);  // contiguous
        }
    BOOST_TEST(b.targets().size() == 24u);
    BOOST_TEST(b.targets()(7) == b.y(1, 1));
    // The same seed gives the same windows; the whole range is reachable, never past the end.
    std::mt19937_64 again(7);
    BOOST_TEST(xd::random_windows(ids, 4, 6, again).x == b.x);
    std::mt19937_64 many(1);
    const xd::SequenceBatch all = xd::random_windows(Ids{0, 1, 2, 3}, 200, 3, many);
    std::set<std::int64_t> starts;
    for (std::size_t i = 0; i < 200; ++i) starts.insert(all.x(i, 0));
    BOOST_TEST(starts == (std::set<std::int64_t>{0}));  // 4 ids hold one window of 3 with targets
    expect_error<xg::ValueError>([&] { xd::random_windows(Ids{1, 2, 3}, 2, 3, rng); }, {"3 ids", "the text has 3"});
    expect_error<xg::ValueError>([&] { xd::random_windows(ids, 0, 3, rng); }, {"random_windows", "0 windows"});
}

BOOST_AUTO_TEST_CASE(stream_batches_cover_every_target_once) {
    Ids ids(24);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
    // 3 streams of S = 23 / 3 = 7 inputs, chunks of 3: 3 + 3 + 1.
    const xd::StreamBatches chunks(ids, 3, 3);
    BOOST_TEST(chunks.size() == 3u);
    BOOST_TEST(chunks.stream_length() == 7u);
    BOOST_TEST(chunks.targets() == 21u);
    std::multiset<std::int64_t> targets;
    for (std::size_t k = 0; k < chunks.size(); ++k) {
        const xd::SequenceBatch b = chunks[k];
        BOOST_TEST(b.x.shape(1) == (k < 2 ? 3u : 1u));
        for (std::size_t i = 0; i < 3; ++i)
            for (std::size_t t = 0; t < b.x.shape(1); ++t) {
                BOOST_TEST(b.y(i, t) == b.x(i, t) + 1);
                // Row i continues where it stopped in the previous chunk.
                BOOST_TEST(b.x(i, t) == static_cast<std::int64_t>(i * 7 + k * 3 + t));
                targets.insert(b.y(i, t));
            }
    }
    std::multiset<std::int64_t> expected;
    for (std::int64_t i = 1; i <= 21; ++i) expected.insert(i);
    BOOST_TEST(targets == expected);
    expect_error<xg::IndexError>([&] { chunks[3]; }, {"chunk 3 of 3"});
    expect_error<xg::ValueError>([&] { xd::StreamBatches(ids, 24, 3); }, {"24 streams", "the text has 24"});
    expect_error<xg::ValueError>([&] { xd::StreamBatches(ids, 2, 0); }, {"chunks of 0"});
}

BOOST_AUTO_TEST_CASE(baselines_match_hand_counts) {
    // "abab" + "a" over the vocabulary {a, b, c}: a 3, b 2, c 0; bigrams ab 2, ba 2.
    const Ids train{0, 1, 0, 1, 0};
    const xd::NgramBaselines m(train, 3);
    BOOST_TEST(m.unigram_probability(0) == 4.0 / 8.0, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(m.unigram_probability(2) == 1.0 / 8.0, boost::test_tools::tolerance(1e-15));
    // count(a .) = 2 (the final a starts no bigram): p(b | a) = 3 / 5, p(c | a) = 1 / 5.
    BOOST_TEST(m.bigram_probability(0, 1) == 3.0 / 5.0, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(m.bigram_probability(0, 2) == 1.0 / 5.0, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(m.bigram_probability(2, 0) == 1.0 / 3.0, boost::test_tools::tolerance(1e-15));  // unseen context: uniform
    // Each model's probabilities sum to 1.
    double u = 0, bigram = 0;
    for (std::int64_t c = 0; c < 3; ++c) u += m.unigram_probability(c), bigram += m.bigram_probability(1, c);
    BOOST_TEST(u == 1.0, boost::test_tools::tolerance(1e-15));
    BOOST_TEST(bigram == 1.0, boost::test_tools::tolerance(1e-15));
    // Targets of "abc" are b and c.
    const Ids text{0, 1, 2};
    BOOST_TEST(m.unigram_bpc(text) == -(std::log2(3.0 / 8.0) + std::log2(1.0 / 8.0)) / 2,
               boost::test_tools::tolerance(1e-14));
    BOOST_TEST(m.bigram_bpc(text) == -(std::log2(3.0 / 5.0) + std::log2(1.0 / 5.0)) / 2,
               boost::test_tools::tolerance(1e-14));
    // On a text with structure the bigram model beats the unigram one.
    BOOST_TEST(m.bigram_bpc(Ids{0, 1, 0, 1, 0, 1}) < m.unigram_bpc(Ids{0, 1, 0, 1, 0, 1}));
    expect_error<xg::ValueError>([&] { m.unigram_bpc(Ids{0}); }, {"1 ids", "no next-character target"});
    expect_error<xg::ValueError>([&] { m.bigram_bpc(Ids{0, 3}); }, {"id 3", "position 1", "[0, 3)"});
    expect_error<xg::ValueError>([] { xd::NgramBaselines(Ids{0}, 3); }, {"1 training ids"});
    expect_error<xg::ValueError>([] { xd::NgramBaselines(Ids{0, 1}, 0); }, {"empty vocabulary"});
}

BOOST_AUTO_TEST_CASE(end_to_end_on_a_small_text) {
    // A text file through every step: read, vocabulary, split, batches, baselines.
    xgt::TempDir dir("text-e2e");
    std::string text;
    for (int i = 0; i < 40; ++i) text += "the cat sat on the mat. ";
    xgt::write_all(dir / "t.txt", text);
    const std::string read = xd::read_text_file(dir / "t.txt");
    const xd::Vocabulary v(read);
    const xd::TextSplit s = xd::split_text(v.encode(read));
    BOOST_TEST(s.train.size() + s.validation.size() == text.size());
    const xd::NgramBaselines m(s.train, v.size());
    // A repetitive text: the bigram model is far better than the unigram one, which is below
    // log2(V) (the uniform guess).
    BOOST_TEST(m.bigram_bpc(s.validation) < m.unigram_bpc(s.validation) - 1.0);
    BOOST_TEST(m.unigram_bpc(s.validation) < std::log2(static_cast<double>(v.size())));
    const xd::StreamBatches chunks(s.validation, 4, 16);
    BOOST_TEST(chunks[0].x.shape(0) == 4u);
}

BOOST_AUTO_TEST_SUITE_END()
