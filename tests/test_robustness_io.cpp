// Hostile files: crafted .npy headers and .npz archives, declared-size and decompression bombs,
// stale temporaries of killed saves, IDX loads over their memory bound. Each case asserts the
// exception type and that the message names the file (and the entry). The archives are written
// byte by byte here (a minimal zip writer), so that they can lie in ways libzip never would.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include <fmt/format.h>

#include "expect_error.hpp"
#include "fixtures.hpp"
#include "train/csv.hpp"
#include "xgrad.hpp"

namespace nn = xg::nn;
namespace xd = xg::data;
namespace fs = std::filesystem;

namespace {
using xgt::read_all;
using xgt::write_all;

std::string le(std::uint64_t v, int bytes) {
    std::string s;
    for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

// An .npy entry: preamble of `major`.0, the dictionary padded with spaces and '\n' to a multiple
// of 64 bytes as numpy writes it, then `data`.
std::string npy(const std::string& dict, const std::string& data, int major = 1) {
    const std::size_t preamble = major == 1 ? 10 : 12;
    std::string text = dict;
    while ((preamble + text.size() + 1) % 64 != 0) text += ' ';
    text += '\n';
    return "\x93NUMPY" + std::string{static_cast<char>(major), 0} + le(text.size(), major == 1 ? 2 : 4) + text + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
    std::string s(values.size() * sizeof(T), '\0');
    std::memcpy(s.data(), std::data(values), s.size());
    return s;
}

// Raw deflate (as zip stores it) of `head` followed by `zeros` zero bytes, produced in 1 MiB
// steps so that a large bomb never sits in this test's memory.
std::string deflate_zeros(const std::string& head, std::size_t zeros) {
    z_stream z{};
    BOOST_REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out;
    std::string chunk(std::size_t{1} << 16, '\0');
    auto pump = [&](const char* data, std::size_t n, int flush) {
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
        z.avail_in = static_cast<uInt>(n);
        do {
            z.next_out = reinterpret_cast<Bytef*>(chunk.data());
            z.avail_out = static_cast<uInt>(chunk.size());
            deflate(&z, flush);
            out.append(chunk.data(), chunk.size() - z.avail_out);
        } while (z.avail_out == 0);
    };
    pump(head.data(), head.size(), Z_NO_FLUSH);
    const std::string block(std::size_t{1} << 20, '\0');
    for (std::size_t left = zeros; left > 0;) {
        const std::size_t n = std::min(left, block.size());
        pump(block.data(), n, Z_NO_FLUSH);
        left -= n;
    }
    pump(nullptr, 0, Z_FINISH);
    deflateEnd(&z);
    return out;
}

std::uint32_t crc_of_zeros(const std::string& head, std::size_t zeros) {
    uLong crc = crc32(0, reinterpret_cast<const Bytef*>(head.data()), static_cast<uInt>(head.size()));
    const std::string block(std::size_t{1} << 20, '\0');
    for (std::size_t left = zeros; left > 0;) {
        const std::size_t n = std::min(left, block.size());
        crc = crc32(crc, reinterpret_cast<const Bytef*>(block.data()), static_cast<uInt>(n));
        left -= n;
    }
    return static_cast<std::uint32_t>(crc);
}

// One entry of a hand-made zip: `payload` as stored in the file (already deflated when
// `deflated`), with the sizes and CRC the headers claim.
struct ZipEntry {
    std::string name;
    std::string payload;
    std::uint64_t size;  // declared uncompressed size
    std::uint32_t crc;
    bool deflated = false;
    std::optional<std::uint64_t> comp_size{};  // declared compressed size; default: the payload's
};

ZipEntry stored(const std::string& name, const std::string& data) {
    return {name, data, data.size(),
            static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())))};
}

ZipEntry deflated(const std::string& name, const std::string& head, std::size_t zeros) {
    return {name, deflate_zeros(head, zeros), head.size() + zeros, crc_of_zeros(head, zeros), true};
}

std::string make_zip(const std::vector<ZipEntry>& entries) {
    std::string body, directory;
    for (const ZipEntry& e : entries) {
        const std::uint64_t comp = e.comp_size.value_or(e.payload.size());
        const std::string common = le(20, 2) + le(0, 2) + le(e.deflated ? 8 : 0, 2) + le(0, 2) + le(0x21, 2) +
                                   le(e.crc, 4) + le(comp, 4) + le(e.size, 4) + le(e.name.size(), 2) + le(0, 2);
        directory += le(0x02014b50, 4) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
                     le(body.size(), 4) + e.name;
        body += le(0x04034b50, 4) + common + e.name + e.payload;
    }
    return body + directory + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) +
           le(entries.size(), 2) + le(directory.size(), 4) + le(body.size(), 4) + le(0, 2);
}

const std::string f4_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";

// The process's peak resident memory so far, in MiB.
long peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024;
}

nn::MultiLayerNetOptions small_net() { return {.input_size = 6, .hidden_sizes = {5}, .output_size = 3, .seed = 1}; }

// A child process that exits at once, reaped: its pid names no live process (until reused).
pid_t exited_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(robustness)
BOOST_AUTO_TEST_SUITE(io)

// Old reader: regexes took the first 'shape' (2,), xt::load_npy the last, and 1000000 floats of
// uninitialised memory came back from an 8-byte entry.
BOOST_AUTO_TEST_CASE(npy_header_with_a_duplicate_key_is_refused) {
    xgt::TempDir dir{"robust-io"};
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (1000000,), }";
    write_all(dir / "dup.npz", make_zip({stored("w.npy", npy(dict, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "dup.npz"); },
                                   {"dup.npz", "'w.npy'", "key 'shape' appears twice"});
    const std::string descr2 = "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}";
    write_all(dir / "dup2.npz", make_zip({stored("w.npy", npy(descr2, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "dup2.npz"); },
                                   {"dup2.npz", "'w.npy'", "key 'descr' appears twice"});
}

// Variants numpy reads: any key order, double quotes, no trailing comma, versions 2.0 and 3.0.
// The old reader threw std::runtime_error (no file name) on the reordered keys and on 3.0.
BOOST_AUTO_TEST_CASE(npy_header_variants_numpy_accepts_are_read) {
    xgt::TempDir dir{"robust-io"};
    const std::string reordered = "{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4', }";
    const std::string quoted = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}";
    const std::string spaced = "{ 'fortran_order' :False,\n 'descr':'<f4' , 'shape':( 2 , ) }";
    write_all(dir / "v.npz", make_zip({stored("r.npy", npy(reordered, raw<float>({1, 2, 3, 4}))),
                                       stored("q.npy", npy(quoted, raw<float>({5, 6}), 2)),
                                       stored("v3.npy", npy(f4_dict, raw<float>({7, 8}), 3)),
                                       stored("s.npy", npy(spaced, raw<float>({9, 10})))}));
    const auto state = nn::load_npz<float>(dir / "v.npz");
    BOOST_REQUIRE(state.size() == 4u);
    BOOST_TEST(state[0].first == "r");
    BOOST_TEST(xt::all(xt::equal(state[0].second, xg::Array<float>{{1, 2}, {3, 4}})));
    BOOST_TEST(xt::all(xt::equal(state[1].second, xg::Array<float>{5, 6})));
    BOOST_TEST(xt::all(xt::equal(state[2].second, xg::Array<float>{7, 8})));
    BOOST_TEST(xt::all(xt::equal(state[3].second, xg::Array<float>{9, 10})));
    // Not variants: an unknown version, a key numpy never writes, a parenthesised integer.
    write_all(dir / "v4.npz", make_zip({stored("x.npy", npy(f4_dict, raw<float>({1, 2}), 4))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "v4.npz"); }, {"v4.npz", "'x.npy'", "version 4.0"});
    const std::string not_tuple = "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}";
    write_all(dir / "nt.npz", make_zip({stored("x.npy", npy(not_tuple, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "nt.npz"); }, {"nt.npz", "'x.npy'", "not a tuple"});
}

// Fortran order is numpy's layout for a transposed array: read in that order, returned row-major.
// The old reader refused it.
BOOST_AUTO_TEST_CASE(npy_fortran_order_is_read_in_its_order_and_bad_flags_refused) {
    xgt::TempDir dir{"robust-io"};
    const std::string dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }";
    write_all(dir / "f.npz", make_zip({stored("t.npy", npy(dict, raw<double>({1, 4, 2, 5, 3, 6})))}));
    const auto state = nn::load_npz<double>(dir / "f.npz");
    BOOST_TEST(xt::all(xt::equal(state.at(0).second, xg::Array<double>{{1, 2, 3}, {4, 5, 6}})));
    const std::string bad = "{'descr': '<f8', 'fortran_order': 1, 'shape': (2, 3), }";
    write_all(dir / "fb.npz", make_zip({stored("t.npy", npy(bad, raw<double>({1, 4, 2, 5, 3, 6})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<double>(dir / "fb.npz"); },
                                   {"fb.npz", "'t.npy'", "not True or False"});
}

// The old regexes took the first "'descr': '<f4'" anywhere in the header, here inside another
// key's string; xtensor's second parse then threw a std::runtime_error naming no file.
BOOST_AUTO_TEST_CASE(npy_wrong_dtype_is_refused_with_its_name) {
    xgt::TempDir dir{"robust-io"};
    const std::string smuggled = "{'x': \"'descr': '<f4'\", 'descr': '<i4', 'fortran_order': False, 'shape': (2,)}";
    write_all(dir / "s.npz", make_zip({stored("w.npy", npy(smuggled, raw<std::int32_t>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "s.npz"); },
                                   {"s.npz", "'w.npy'", "unexpected key 'x'"});
    const std::string ints = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}";
    write_all(dir / "i.npz", make_zip({stored("w.npy", npy(ints, raw<std::int32_t>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "i.npz"); }, {"i.npz", "'w.npy'", "'<i4'", "'<f4'"});
    const std::string big_endian = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}";
    write_all(dir / "b.npz", make_zip({stored("w.npy", npy(big_endian, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "b.npz"); }, {"b.npz", "'w.npy'", "big-endian"});
    const std::string structured = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}";
    write_all(dir / "st.npz", make_zip({stored("w.npy", npy(structured, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "st.npz"); }, {"st.npz", "'w.npy'", "structured"});
}

// Shapes whose size overflows, or a dimension past 64 bits (on which the old reader let a
// std::bad_alloc escape).
BOOST_AUTO_TEST_CASE(npy_overflowing_shapes_are_refused) {
    xgt::TempDir dir{"robust-io"};
    const std::string wraps = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }";
    write_all(dir / "o.npz", make_zip({stored("w.npy", npy(wraps, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "o.npz"); },
                                   {"o.npz", "'w.npy'", "(4611686018427387904, 8)", "2^64"});
    const std::string digits = "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }";
    write_all(dir / "d.npz", make_zip({stored("w.npy", npy(digits, raw<float>({1})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "d.npz"); }, {"d.npz", "'w.npy'", "64 bits"});
}

// An entry's claims must agree: the shape's bytes, the zip's declared size, the bytes present.
BOOST_AUTO_TEST_CASE(npy_lying_sizes_and_truncated_data_are_refused) {
    xgt::TempDir dir{"robust-io"};
    // The header says (4,) = 16 bytes, 8 are there and the zip agrees with the 8.
    const std::string four = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
    write_all(dir / "short.npz", make_zip({stored("w.npy", npy(four, raw<float>({1, 2})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "short.npz"); },
                                   {"short.npz", "'w.npy'", "needs 16 data bytes", "zip declares"});
    // The zip declares the right size but the deflate stream ends early.
    const std::string head = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", "");
    ZipEntry cut = deflated("w.npy", head, 400);
    cut.size = head.size() + 4000;
    write_all(dir / "cut.npz", make_zip({cut}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "cut.npz"); },
                                   {"cut.npz", "'w.npy'", "of the 4000 bytes of its data"});
    // A header longer than the entry.
    std::string runs_past = npy(f4_dict, raw<float>({1, 2}));
    runs_past[8] = '\xff';
    write_all(dir / "past.npz", make_zip({stored("w.npy", runs_past)}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "past.npz"); },
                                   {"past.npz", "'w.npy'", "runs past"});
    // The deflate stream holds more than the zip declares (a bomb that lies low).
    ZipEntry longer = deflated("w.npy", npy(f4_dict, ""), 8 + (std::size_t{1} << 20));
    longer.size = npy(f4_dict, "").size() + 8;
    write_all(dir / "long.npz", make_zip({longer}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "long.npz"); },
                                   {"long.npz", "'w.npy'", "more than the"});
}

// Two entries of one name: which is meant? libzip's consistency check refuses the archive
// ("File already exists") without naming the entry; the message now names it.
BOOST_AUTO_TEST_CASE(duplicate_zip_entries_are_refused) {
    xgt::TempDir dir{"robust-io"};
    write_all(dir / "two.npz", make_zip({stored("w.npy", npy(f4_dict, raw<float>({1, 2}))),
                                         stored("w.npy", npy(f4_dict, raw<float>({3, 4})))}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "two.npz"); },
                                   {"two.npz", "'w.npy'", "appears twice", "entries 0 and 1"});
    nn::MultiLayerNet<float> net(small_net());
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "two.npz", net); }, {"two.npz", "'w.npy'", "appears twice"});
}

// A 200-byte file whose zip headers declare 2 GiB: the old reader allocated and zeroed 2 GiB
// before finding out. Now the claims are checked against the file's real bytes first.
BOOST_AUTO_TEST_CASE(declared_size_bombs_take_no_memory) {
    xgt::TempDir dir{"robust-io"};
    const std::uint64_t two_gib = std::uint64_t{1} << 31;
    const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (536870912,), }";
    const std::string entry = npy(dict, raw<float>({1, 2}));
    const long rss_before = peak_rss_mib();

    ZipEntry lying_stored = stored("w.npy", entry);  // both sizes claim 2 GiB, 8 data bytes present
    lying_stored.size = npy(dict, "").size() + two_gib;
    lying_stored.comp_size = lying_stored.size;
    write_all(dir / "stored.npz", make_zip({lying_stored}));
    BOOST_TEST(fs::file_size(dir / "stored.npz") < 400u);
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "stored.npz", std::size_t{4} << 30); },
                                   {"stored.npz", "'w.npy'", "whole file has"});

    ZipEntry lying_size = stored("w.npy", entry);  // only the uncompressed size lies
    lying_size.size = npy(dict, "").size() + two_gib;
    write_all(dir / "size.npz", make_zip({lying_size}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "size.npz", std::size_t{4} << 30); },
                                   {"size.npz", "'w.npy'", "stored entry declares"});

    ZipEntry lying_deflate = deflated("w.npy", entry, 0);  // 2 GiB from a few deflated bytes
    lying_deflate.size = npy(dict, "").size() + two_gib;
    write_all(dir / "deflate.npz", make_zip({lying_deflate}));
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "deflate.npz", std::size_t{4} << 30); },
                                   {"deflate.npz", "'w.npy'", "decompression bomb"});
    BOOST_TEST(peak_rss_mib() - rss_before < 256);  // the old reader: + 2048 MiB
}

// A real bomb: 64 MiB of zeros deflate to 64 kB, honestly declared. The caps refuse it after its
// header and before its data: load_npz's total, nn::load's model shapes and sections cap.
BOOST_AUTO_TEST_CASE(real_deflate_bombs_stop_at_the_caps) {
    xgt::TempDir dir{"robust-io"};
    const std::size_t bomb_bytes = std::size_t{64} << 20;
    const std::string weight = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4096, 4096), }", "");
    write_all(dir / "bomb.npz", make_zip({deflated("layers.0.weight.npy", weight, bomb_bytes)}));
    BOOST_TEST(fs::file_size(dir / "bomb.npz") < 200000u);
    const long rss_before = peak_rss_mib();
    xgt::expect_error<xg::IoError>([&] { nn::load_npz<float>(dir / "bomb.npz", std::size_t{1} << 20); },
                                   {"bomb.npz", "'layers.0.weight.npy'", "(4096, 4096)", "limit of 1048576 bytes"});
    nn::MultiLayerNet<float> net(small_net());
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "bomb.npz", net); },
                                   {"bomb.npz", "'layers.0.weight'", "(6, 5) in the module but (4096, 4096)"});
    BOOST_TEST(peak_rss_mib() - rss_before < 48);  // the old reader held the entry twice: + 128 MiB

    // Sections are bounded by nn::load's cap, the model's entries by the model.
    xg::StateDict<float> all = net.state_dict();
    all.emplace_back("optimizer/m", xg::Array<float>(xt::zeros<float>({300000})));
    nn::save_npz(dir / "opt.npz", all);
    xgt::expect_error<xg::IoError>([&] { nn::load(dir / "opt.npz", net, std::size_t{1} << 20); },
                                   {"opt.npz", "'optimizer/m.npy'", "(300000,)", "outside the model"});
    BOOST_TEST(nn::load(dir / "opt.npz", net, std::size_t{2} << 20).at(0).second.size() == 300000u);
}

// A killed save leaves "<target>.tmp-<pid>-<random>"; the next save of that target removes it if
// its writer is gone, never a live writer's, and never another target's.
BOOST_AUTO_TEST_CASE(stale_temporaries_of_dead_writers_are_removed) {
    xgt::TempDir dir{"robust-io"};
    const pid_t dead = exited_pid();
    const pid_t live = ::fork();
    if (live == 0) {
        ::pause();
        ::_exit(0);
    }
    const std::string stale = fmt::format("m.npz.tmp-{}-0badf00d", dead);
    const std::string busy = fmt::format("m.npz.tmp-{}-0badf00d", live);
    const std::string other = fmt::format("n.npz.tmp-{}-0badf00d", dead);
    for (const auto& name : {stale, busy, other, std::string("m.npz.tmp-notapid")}) write_all(dir / name, "partial");
    nn::MultiLayerNet<float> net(small_net());
    nn::save(dir / "m.npz", net);
    ::kill(live, SIGKILL);
    ::waitpid(live, nullptr, 0);
    const auto names = dir.names();
    BOOST_TEST(!fs::exists(dir / stale));
    BOOST_TEST(fs::exists(dir / busy));
    BOOST_TEST(fs::exists(dir / other));
    BOOST_TEST(fs::exists(dir / "m.npz.tmp-notapid"));
    BOOST_TEST(names.size() == 4u);  // m.npz, the live writer's, the other target's, the foreign file
    // Every writer goes through the same AtomicFile: an IDX file and a CSV table too.
    write_all(dir / fmt::format("x.idx.tmp-{}-12345678", dead), "partial");
    xd::write_idx(dir / "x.idx", {2}, std::vector<std::uint8_t>{1, 2}, false);
    BOOST_TEST(!fs::exists(dir / fmt::format("x.idx.tmp-{}-12345678", dead)));
    write_all(dir / fmt::format("t.csv.tmp-{}-12345678", dead), "partial");
    xg::train::CsvWriter csv(dir / "t.csv", {"a"});
    csv.close();
    BOOST_TEST(!fs::exists(dir / fmt::format("t.csv.tmp-{}-12345678", dead)));
}

// A write that fails midway (here the file size limit, as a full disk would) keeps the old file
// and leaves no temporary; the error names the target.
BOOST_AUTO_TEST_CASE(failed_writes_keep_the_old_file_and_no_temporary) {
    xgt::TempDir dir{"robust-io"};
    nn::MultiLayerNet<float> net(small_net());
    nn::save(dir / "m.npz", net);
    const std::string before = read_all(dir / "m.npz");
    nn::MultiLayerNet<float> big({.input_size = 100, .hidden_sizes = {100}, .output_size = 3, .seed = 2});
    rlimit old_limit{};
    getrlimit(RLIMIT_FSIZE, &old_limit);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
    rlimit small = old_limit;
    small.rlim_cur = 4096;
    setrlimit(RLIMIT_FSIZE, &small);
    xgt::expect_error<xg::IoError>([&] { nn::save(dir / "m.npz", big); }, {"m.npz", "cannot write"});
    xgt::expect_error<xg::IoError>([&] { xg::write_file_atomically(dir / "m.npz", std::string(10000, 'x')); },
                                   {"m.npz", "File too large"});
    setrlimit(RLIMIT_FSIZE, &old_limit);
    ::signal(SIGXFSZ, old_handler);
    BOOST_TEST(read_all(dir / "m.npz") == before);
    BOOST_TEST(dir.names() == std::vector<std::string>{"m.npz"});
    {
        xg::AtomicFile abandoned(dir / "m.npz");
        abandoned.write("half a file");
    }  // no commit: nothing published, nothing left
    BOOST_TEST(read_all(dir / "m.npz") == before);
    BOOST_TEST(dir.names() == std::vector<std::string>{"m.npz"});
    // A target that cannot be replaced (a directory): the rename fails, the temporary goes.
    fs::create_directories(dir / "d.npz");
    xgt::expect_error<xg::IoError>([&] { nn::save(dir / "d.npz", net); }, {"d.npz", "renaming"});
    BOOST_TEST(dir.names() == (std::vector<std::string>{"d.npz", "m.npz"}));
}

// Two gzip IDX files of 1.5 kB each inflate to 1.5 MB of pixels, 6 MB as floats: under a 4 MB
// bound for the whole load the second is refused before it is inflated past what is left.
BOOST_AUTO_TEST_CASE(idx_whole_load_is_bounded) {
    xgt::TempDir dir{"robust-io"};
    const std::size_t n = 2000;
    const std::vector<std::uint8_t> pixels(n * 784, 7), labels(n, 3);
    for (const std::string set : {"train", "t10k"}) {
        xd::write_idx(dir / (set + "-images-idx3-ubyte.gz"), {n, 28, 28}, pixels, true);
        xd::write_idx(dir / (set + "-labels-idx1-ubyte.gz"), {n}, labels, true);
    }
    BOOST_TEST(fs::file_size(dir / "train-images-idx3-ubyte.gz") < 10000u);
    const std::size_t limit = std::size_t{12} << 20;  // one set costs 5 x 1.57 MB + 9 x 2 kB + files
    xgt::expect_error<xg::IoError>([&] { xd::load_mnist_dir(dir.path.string(), limit); },
                                   {"t10k-images-idx3-ubyte.gz", "(2000, 28, 28)", "the load may take 12582912 bytes"});
    xgt::expect_error<xg::IoError>(
        [&] {
            xd::load_idx_pair(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz", std::size_t{4} << 20);
        },
        {"train-images-idx3-ubyte.gz", "the load may take 4194304 bytes"});
    const xd::TrainTest sets = xd::load_mnist_dir(dir.path.string(), std::size_t{20} << 20);
    BOOST_TEST(sets.train.size() == n);
    BOOST_TEST(sets.test.images(n - 1, 783) == 7.0f / 255.0f);
    // A file too large on disk for what is left is refused before it is read.
    xgt::expect_error<xg::IoError>(
        [&] { xd::load_idx_pair(dir / "train-images-idx3-ubyte.gz", dir / "train-labels-idx1-ubyte.gz", 1000); },
        {"train-images-idx3-ubyte.gz", "exceed the 1000 bytes left"});
}

BOOST_AUTO_TEST_SUITE_END()
BOOST_AUTO_TEST_SUITE_END()
