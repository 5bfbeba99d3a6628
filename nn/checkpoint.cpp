#include "nn/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>
#include <xtensor/xnpy.hpp>

#include "graph/error.hpp"

namespace xg::nn {
namespace {

constexpr std::string_view optimizer_section = "optimizer";

struct ZipCloser {
    void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipCloser>;

std::string zip_open_error(int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    std::string msg = zip_error_strerror(&e);
    zip_error_fini(&e);
    return msg;
}

// fsync of a path, so the rename below publishes data that is on disk.
void sync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

std::string temp_name_beside(const std::string& path) {
    std::random_device rd;
    return fmt::format("{}.tmp-{}-{:08x}", path, ::getpid(), rd());
}

// The npy header fields this reader accepts; everything else is a foreign or damaged entry.
struct NpyHeader {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
    std::size_t data_offset = 0;
};

NpyHeader parse_npy_header(const std::string& bytes, const std::string& where) {
    auto fail = [&](const std::string& what) { return IoError(fmt::format("{}: not a valid .npy entry: {}", where, what)); };
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0)
        throw fail(fmt::format("no npy magic in its first bytes ({} bytes in all)", bytes.size()));
    const auto major = static_cast<unsigned char>(bytes[6]);
    std::size_t header_len = 0, start = 0;
    auto byte = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
    if (major == 1) {
        header_len = byte(8) | byte(9) << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw fail("truncated header");
        header_len = byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24;
        start = 12;
    } else {
        throw fail(fmt::format("unsupported npy version {}", major));
    }
    if (start + header_len > bytes.size())
        throw fail(fmt::format("header of {} bytes runs past the entry's {} bytes", header_len, bytes.size()));
    const std::string header = bytes.substr(start, header_len);
    static const std::regex descr_re(R"('descr'\s*:\s*'([^']*)')");
    static const std::regex fortran_re(R"('fortran_order'\s*:\s*(True|False))");
    static const std::regex shape_re(R"('shape'\s*:\s*\(([0-9,\s]*)\))");
    std::smatch m;
    NpyHeader h;
    if (!std::regex_search(header, m, descr_re)) throw fail("no 'descr' in the header");
    h.descr = m[1];
    if (!std::regex_search(header, m, fortran_re)) throw fail("no 'fortran_order' in the header");
    h.fortran_order = m[1] == "True";
    if (!std::regex_search(header, m, shape_re)) throw fail("no 'shape' in the header");
    std::istringstream dims(std::regex_replace(std::string(m[1]), std::regex(","), " "));
    for (unsigned long long d; dims >> d;) h.shape.push_back(static_cast<std::size_t>(d));
    h.data_offset = start + header_len;
    return h;
}

template <class T>
Array<T> parse_npy(const std::string& bytes, const std::string& where) {
    const NpyHeader h = parse_npy_header(bytes, where);
    const std::string want = xt::detail::build_typestring<T>();
    if (h.descr != want)
        throw IoError(fmt::format("{}: holds dtype '{}' but this model is '{}'", where, h.descr, want));
    if (h.fortran_order) throw IoError(fmt::format("{}: Fortran-ordered arrays are not supported", where));
    std::size_t count = 1;
    for (const std::size_t d : h.shape) {
        if (d != 0 && count > std::numeric_limits<std::size_t>::max() / d / sizeof(T))
            throw IoError(fmt::format("{}: shape {} is too large", where, shape_str(h.shape)));
        count *= d;
    }
    const std::size_t expected = h.data_offset + count * sizeof(T);
    if (bytes.size() != expected)
        throw IoError(fmt::format("{}: shape {} needs {} bytes but the entry has {} ({})", where, shape_str(h.shape),
                                  expected, bytes.size(), bytes.size() < expected ? "truncated" : "trailing bytes"));
    std::istringstream stream(bytes);
    Array<T> out = xt::load_npy<T>(stream);
    return out;
}

// Reads one whole entry; zip_fread verifies the entry's CRC at its end.
std::string read_entry(zip_t* za, zip_uint64_t index, std::uint64_t size, const std::string& where) {
    zip_file_t* f = zip_fopen_index(za, index, 0);
    if (!f) throw IoError(fmt::format("{}: cannot open the entry: {}", where, zip_strerror(za)));
    std::string buf(size, '\0');
    std::uint64_t done = 0;
    while (done < size) {
        const zip_int64_t n = zip_fread(f, buf.data() + done, size - done);
        if (n <= 0) {
            const std::string msg = n < 0 ? zip_file_strerror(f) : "unexpected end of data";
            zip_fclose(f);
            throw IoError(fmt::format("{}: damaged after {} of {} bytes: {}", where, done, size, msg));
        }
        done += static_cast<std::uint64_t>(n);
    }
    char extra;
    const zip_int64_t more = zip_fread(f, &extra, 1);  // reaching the end checks the CRC
    const std::string msg = more < 0 ? zip_file_strerror(f) : "";
    zip_fclose(f);
    if (more != 0)
        throw IoError(fmt::format("{}: damaged: {}", where, more < 0 ? msg : "longer than its recorded size"));
    return buf;
}

}  // namespace

template <class T>
void save_npz(const std::string& path, const StateDict<T>& state) {
    if (state.empty()) throw ValueError(fmt::format("save_npz: nothing to save to {}", path));
    std::unordered_set<std::string> names;
    for (const auto& [name, array] : state)
        if (!names.insert(name).second)
            throw ValueError(fmt::format("save_npz: the entry '{}' appears twice ({})", name, path));

    const std::string tmp = temp_name_beside(path);
    int code = 0;
    ZipHandle za(zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
    if (!za) throw IoError(fmt::format("{}: cannot create: {}", path, zip_open_error(code)));
    std::vector<std::string> blobs;  // libzip reads the buffers at zip_close, so they live until then
    blobs.reserve(state.size());
    for (const auto& [name, array] : state) {
        blobs.push_back(xt::dump_npy(array));
        zip_source_t* src = zip_source_buffer(za.get(), blobs.back().data(), blobs.back().size(), 0);
        const zip_int64_t index = src ? zip_file_add(za.get(), (name + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8) : -1;
        if (index < 0) {
            if (src) zip_source_free(src);
            throw IoError(fmt::format("{}: cannot add '{}': {}", path, name, zip_strerror(za.get())));
        }
        zip_set_file_compression(za.get(), static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
    }
    if (zip_close(za.get()) != 0) {
        const std::string msg = zip_strerror(za.get());
        std::remove(tmp.c_str());
        throw IoError(fmt::format("{}: cannot write: {}", path, msg));
    }
    za.release();  // zip_close freed it
    sync_path(tmp, O_RDONLY);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw IoError(fmt::format("{}: cannot replace with the new checkpoint: {}", path, ec.message()));
    }
    const std::string dir = std::filesystem::path(path).parent_path().string();
    sync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

template <class T>
StateDict<T> load_npz(const std::string& path) {
    int code = 0;
    ZipHandle za(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
    if (!za) throw IoError(fmt::format("{}: cannot open as .npz: {}", path, zip_open_error(code)));
    const zip_int64_t n = zip_get_num_entries(za.get(), 0);
    if (n <= 0) throw IoError(fmt::format("{}: the archive holds no arrays", path));
    StateDict<T> out;
    for (zip_uint64_t i = 0; i < static_cast<zip_uint64_t>(n); ++i) {
        zip_stat_t st;
        if (zip_stat_index(za.get(), i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
            throw IoError(fmt::format("{}: cannot read entry {}: {}", path, i, zip_strerror(za.get())));
        std::string name = st.name;
        const std::string where = fmt::format("{} (entry '{}')", path, name);
        if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".npy") != 0)
            throw IoError(fmt::format("{}: not an .npy entry", where));
        name.resize(name.size() - 4);
        out.emplace_back(std::move(name), parse_npy<T>(read_entry(za.get(), i, st.size, where), where));
    }
    return out;
}

template <class T>
StateDict<T> to_section(std::string_view section, const StateDict<T>& state) {
    StateDict<T> out;
    for (const auto& [name, array] : state) out.emplace_back(fmt::format("{}/{}", section, name), array);
    return out;
}

template <class T>
StateDict<T> from_section(std::string_view section, const StateDict<T>& all) {
    const std::string prefix = fmt::format("{}/", section);
    StateDict<T> out;
    for (const auto& [name, array] : all)
        if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), array);
    return out;
}

template <class T>
void save(const std::string& path, const Module<T>& model, const StateDict<T>& optimizer_state) {
    StateDict<T> all = model.state_dict();
    for (auto& entry : to_section(optimizer_section, optimizer_state)) all.push_back(std::move(entry));
    save_npz(path, all);
}

template <class T>
StateDict<T> load(const std::string& path, Module<T>& model) {
    const StateDict<T> all = load_npz<T>(path);
    StateDict<T> model_state;
    for (const auto& [name, array] : all)
        if (name.find('/') == std::string::npos) model_state.emplace_back(name, array);
    try {
        model.load_state_dict(model_state);
    } catch (const Error& e) {
        throw IoError(fmt::format("{}: does not fit the model: {}", path, e.what()));
    }
    return from_section(optimizer_section, all);
}

#define XG_INSTANTIATE(T)                                                          \
    template StateDict<T> to_section(std::string_view, const StateDict<T>&);       \
    template StateDict<T> from_section(std::string_view, const StateDict<T>&);     \
    template void save_npz(const std::string&, const StateDict<T>&);               \
    template StateDict<T> load_npz(const std::string&);                            \
    template void save(const std::string&, const Module<T>&, const StateDict<T>&); \
    template StateDict<T> load(const std::string&, Module<T>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)

}  // namespace xg::nn
