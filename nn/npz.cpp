#include "nn/npz.hpp"

#include <zip.h>

#include <array>
#include <bit>
#include <filesystem>
#include <memory>
#include <new>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <xtensor/xnpy.hpp>

#include "graph/atomic_file.hpp"
#include "graph/error.hpp"
#include "nn/npy_header.hpp"

namespace xg::nn {
namespace {

// The data bytes are copied as they are: '<f4' and '<f8' are little-endian.
static_assert(std::endian::native == std::endian::little, "the .npz reader assumes a little-endian machine");

// Deflate cannot expand more than this (a 258-byte match per 2 bits, and block overhead): a
// deflated entry that declares more than ratio times its compressed size lies about its size.
constexpr std::uint64_t max_deflate_ratio = 1032;
constexpr std::uint64_t deflate_slack = 1024;

struct ZipDiscard {
    void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipHandle = std::unique_ptr<zip_t, ZipDiscard>;

struct ZipFileClose {
    void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipFileHandle = std::unique_ptr<zip_file_t, ZipFileClose>;

struct ZipSourceFree {
    void operator()(zip_source_t* s) const { zip_source_free(s); }
};
using ZipSourceHandle = std::unique_ptr<zip_source_t, ZipSourceFree>;

std::string zip_error_text(int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    std::string msg = zip_error_strerror(&e);
    zip_error_fini(&e);
    return msg;
}

std::string zip_error_text(zip_error_t* e) {
    std::string msg = zip_error_strerror(e);
    zip_error_fini(e);
    return msg;
}

template <class T>
constexpr std::string_view npy_descr() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    return std::is_same_v<T, float> ? "<f4" : "<f8";
}

// ---- writing ----

// Builds the zip in memory (libzip's buffer source) and streams it into `file`: libzip would
// otherwise make a temporary file of its own that a killed save leaves behind unrecognised.
template <class T>
void write_npz(AtomicFile& file, const StateDict<T>& state) {
    const std::string& path = file.target();
    zip_error_t error;
    zip_error_init(&error);
    ZipSourceHandle buffer(zip_source_buffer_create(nullptr, 0, 0, &error));
    if (!buffer) throw IoError(fmt::format("{}: cannot create the archive: {}", path, zip_error_text(&error)));
    ZipHandle za(zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error));
    if (!za) throw IoError(fmt::format("{}: cannot create the archive: {}", path, zip_error_text(&error)));
    zip_source_keep(buffer.get());  // the archive holds a reference now; ours must outlive zip_close

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
    if (zip_close(za.get()) != 0) throw IoError(fmt::format("{}: cannot write: {}", path, zip_strerror(za.get())));
    za.release();  // zip_close freed it

    if (zip_source_open(buffer.get()) < 0)
        throw IoError(fmt::format("{}: cannot read the archive back: {}", path,
                                  zip_error_strerror(zip_source_error(buffer.get()))));
    std::string chunk(std::size_t{1} << 20, '\0');
    for (;;) {
        const zip_int64_t n = zip_source_read(buffer.get(), chunk.data(), chunk.size());
        if (n < 0) {
            const std::string msg = zip_error_strerror(zip_source_error(buffer.get()));
            zip_source_close(buffer.get());
            throw IoError(fmt::format("{}: cannot read the archive back: {}", path, msg));
        }
        if (n == 0) break;
        file.write(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    }
    zip_source_close(buffer.get());
}

// ---- reading ----

struct EntryInfo {
    zip_uint64_t index = 0;
    std::string zip_name;  // "<name>.npy"
    std::uint64_t size = 0;
    std::string where;  // "<path> (entry '<name>.npy')", for messages
    std::string name() const { return zip_name.substr(0, zip_name.size() - 4); }
};

// Lists the entries, refusing before anything is read what no honest .npz holds: names that are
// not .npy, a name twice (which one would be meant?), encryption, compression other than numpy's
// store and deflate, and sizes the bytes in the file cannot hold.
std::vector<EntryInfo> list_entries(zip_t* za, const std::string& path, std::uint64_t file_bytes) {
    const zip_int64_t n = zip_get_num_entries(za, 0);
    if (n <= 0) throw IoError(fmt::format("{}: the archive holds no arrays", path));
    std::vector<EntryInfo> entries;
    std::unordered_map<std::string, zip_uint64_t> seen;
    for (zip_uint64_t i = 0; i < static_cast<zip_uint64_t>(n); ++i) {
        zip_stat_t st;
        constexpr zip_uint64_t needed =
            ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
        if (zip_stat_index(za, i, 0, &st) != 0 || (st.valid & needed) != needed)
            throw IoError(fmt::format("{}: cannot read entry {}: {}", path, i, zip_strerror(za)));
        EntryInfo e{i, st.name, st.size, fmt::format("{} (entry '{}')", path, st.name)};
        if (e.zip_name.size() <= 4 || e.zip_name.compare(e.zip_name.size() - 4, 4, ".npy") != 0)
            throw IoError(fmt::format("{}: not an .npy entry", e.where));
        if (const auto [it, fresh] = seen.emplace(e.zip_name, i); !fresh)
            throw IoError(fmt::format("{}: appears twice in the archive (entries {} and {}); refusing to guess which "
                                      "one is meant", e.where, it->second, i));
        if (st.encryption_method != ZIP_EM_NONE)
            throw IoError(fmt::format("{}: is encrypted (method {}); .npz entries are not", e.where, st.encryption_method));
        if (st.comp_size > file_bytes)
            throw IoError(fmt::format("{}: the zip declares {} compressed bytes but the whole file has {}", e.where,
                                      st.comp_size, file_bytes));
        if (st.comp_method == ZIP_CM_STORE) {
            if (st.size != st.comp_size)
                throw IoError(fmt::format("{}: a stored entry declares {} bytes but {} stored bytes", e.where, st.size,
                                          st.comp_size));
        } else if (st.comp_method == ZIP_CM_DEFLATE) {
            if (st.size > st.comp_size * max_deflate_ratio + deflate_slack)
                throw IoError(fmt::format("{}: the zip declares {} bytes from {} deflated bytes, more than deflate can "
                                          "expand to ({}:1): a lying size or a decompression bomb",
                                          e.where, st.size, st.comp_size, max_deflate_ratio));
        } else {
            throw IoError(fmt::format("{}: compression method {} is not supported (numpy writes stored or deflated "
                                      "entries)", e.where, st.comp_method));
        }
        entries.push_back(std::move(e));
    }
    return entries;
}

// Reads exactly `n` bytes of the open entry into `dst`.
void read_exact(zip_file_t* f, void* dst, std::uint64_t n, const EntryInfo& e, std::string_view what) {
    std::uint64_t done = 0;
    while (done < n) {
        const zip_int64_t got = zip_fread(f, static_cast<char*>(dst) + done, n - done);
        if (got < 0)
            throw IoError(fmt::format("{}: damaged after {} of the {} bytes of its {}: {}", e.where, done, n, what,
                                      zip_file_strerror(f)));
        if (got == 0)
            throw IoError(fmt::format("{}: truncated: {} of the {} bytes of its {} are present", e.where, done, n, what));
        done += static_cast<std::uint64_t>(got);
    }
}

// After the last byte the entry must end; reaching its end makes libzip check the CRC.
void expect_end(zip_file_t* f, const EntryInfo& e) {
    char extra;
    const zip_int64_t more = zip_fread(f, &extra, 1);
    if (more < 0) throw IoError(fmt::format("{}: damaged: {}", e.where, zip_file_strerror(f)));
    if (more > 0) throw IoError(fmt::format("{}: holds more than the {} bytes its zip entry declares", e.where, e.size));
}

NpyHeader read_header(zip_file_t* f, const EntryInfo& e, std::uint64_t& data_offset) {
    std::array<std::uint8_t, npy_preamble_max> head{};
    std::size_t got = std::min<std::uint64_t>(10, e.size);
    read_exact(f, head.data(), got, e, "npy preamble");
    if (got == 10 && (head[6] == 2 || head[6] == 3) && e.size >= 12) {
        read_exact(f, head.data() + 10, 2, e, "npy preamble");
        got = 12;
    }
    const NpyPreamble p = parse_npy_preamble(std::span(head.data(), got), e.where);
    if (p.size + p.header_size > e.size)
        throw IoError(fmt::format("{}: its npy header of {} bytes runs past the {} bytes the zip declares for the "
                                  "entry", e.where, p.header_size, e.size));
    std::string text(p.header_size, '\0');
    read_exact(f, text.data(), text.size(), e, "npy header");
    data_offset = p.size + p.header_size;
    return parse_npy_header(text, e.where);
}

// What an entry's header says once checked against its zip entry and the dtype of T.
struct CheckedHeader {
    Shape shape;
    std::uint64_t bytes = 0;  // of the data
    bool fortran_order = false;
};

template <class T>
CheckedHeader read_checked_header(zip_file_t* f, const EntryInfo& e) {
    std::uint64_t data_offset = 0;
    const NpyHeader h = read_header(f, e, data_offset);
    const Shape shape(h.shape.begin(), h.shape.end());
    if (h.descr != npy_descr<T>()) {
        if (h.descr.size() == 3 && h.descr[0] == '>' && h.descr.substr(1) == npy_descr<T>().substr(1))
            throw IoError(fmt::format("{}: holds big-endian '{}' data; only little-endian '{}' is read (convert with "
                                      "a.astype('{}'))", e.where, h.descr, npy_descr<T>(), npy_descr<T>()));
        throw IoError(fmt::format("{}: holds dtype '{}' but this model is '{}'", e.where, h.descr, npy_descr<T>()));
    }
    const std::uint64_t bytes = npy_data_bytes(h, sizeof(T), e.where);
    if (e.size - data_offset != bytes)
        throw IoError(fmt::format("{}: shape {} of '{}' needs {} data bytes after the {}-byte header, but the zip "
                                  "declares the entry as {} bytes in all", e.where, shape_str(shape), h.descr, bytes,
                                  data_offset, e.size));
    return {shape, bytes, h.fortran_order};
}

ZipFileHandle open_entry(zip_t* za, const EntryInfo& e) {
    ZipFileHandle f(zip_fopen_index(za, e.index, 0));
    if (!f) throw IoError(fmt::format("{}: cannot open the entry: {}", e.where, zip_strerror(za)));
    return f;
}

template <class T>
Array<T> read_array(zip_t* za, const EntryInfo& e, const NpzAdmit& admit) {
    const ZipFileHandle f = open_entry(za, e);
    const auto [shape, bytes, fortran_order] = read_checked_header<T>(f.get(), e);
    try {
        // A Fortran-ordered array is read as it lies and then copied into row-major order.
        admit(e.name(), shape, static_cast<std::size_t>(fortran_order ? 2 * bytes : bytes));
    } catch (const Error& refused) {
        throw IoError(fmt::format("{}: {}", e.where, refused.what()));
    }
    try {
        if (fortran_order) {
            auto column_major = xt::xarray<T, xt::layout_type::column_major>::from_shape(shape);
            read_exact(f.get(), column_major.data(), bytes, e, "data");
            expect_end(f.get(), e);
            return Array<T>(column_major);
        }
        auto out = Array<T>::from_shape(shape);
        read_exact(f.get(), out.data(), bytes, e, "data");
        expect_end(f.get(), e);
        return out;
    } catch (const std::bad_alloc&) {
        throw IoError(fmt::format("{}: cannot allocate {} bytes for shape {}", e.where, bytes, shape_str(shape)));
    }
}

// Opens with libzip's consistency checks (central directory against local headers and the
// file). Those refuse some lies, a duplicate name or an entry past the end of the file, without
// naming the entry: opened without them, list_entries then usually names it.
ZipHandle open_archive(const std::string& path, std::uint64_t file_bytes) {
    int code = 0;
    ZipHandle za(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
    if (za) return za;
    const std::string why = zip_error_text(code);
    ZipHandle lenient(zip_open(path.c_str(), ZIP_RDONLY, &code));
    if (lenient) list_entries(lenient.get(), path, file_bytes);
    throw IoError(fmt::format("{}: cannot open as .npz: {}", path, why));
}

}  // namespace

template <class T>
void save_npz(const std::string& path, const StateDict<T>& state) {
    if (state.empty()) throw ValueError(fmt::format("save_npz: nothing to save to {}", path));
    std::unordered_set<std::string> names;
    for (const auto& [name, array] : state)
        if (!names.insert(name).second)
            throw ValueError(fmt::format("save_npz: the entry '{}' appears twice ({})", name, path));
    AtomicFile file(path);
    write_npz(file, state);
    file.commit();
}

template <class T>
StateDict<T> load_npz_admitting(const std::string& path, const NpzAdmit& admit) {
    std::error_code ec;
    const std::uint64_t file_bytes = std::filesystem::file_size(path, ec);  // if absent, zip_open says so
    const ZipHandle za = open_archive(path, ec ? 0 : file_bytes);
    if (ec) throw IoError(fmt::format("{}: cannot read its size: {}", path, ec.message()));
    StateDict<T> out;
    for (const EntryInfo& e : list_entries(za.get(), path, file_bytes))
        out.emplace_back(e.name(), read_array<T>(za.get(), e, admit));
    return out;
}

template <class T>
std::vector<std::pair<std::string, Shape>> npz_shapes(const std::string& path) {
    std::error_code ec;
    const std::uint64_t file_bytes = std::filesystem::file_size(path, ec);
    const ZipHandle za = open_archive(path, ec ? 0 : file_bytes);
    if (ec) throw IoError(fmt::format("{}: cannot read its size: {}", path, ec.message()));
    std::vector<std::pair<std::string, Shape>> out;
    for (const EntryInfo& e : list_entries(za.get(), path, file_bytes)) {
        const ZipFileHandle f = open_entry(za.get(), e);
        out.emplace_back(e.name(), read_checked_header<T>(f.get(), e).shape);
    }
    return out;
}

template <class T>
StateDict<T> load_npz(const std::string& path, std::size_t max_bytes) {
    std::size_t used = 0;
    return load_npz_admitting<T>(path, [&](const std::string&, const Shape& shape, std::size_t bytes) {
        if (bytes > max_bytes - used)
            throw IoError(fmt::format("shape {} needs {} bytes, which would bring the arrays over load_npz's limit of "
                                      "{} bytes ({} taken by the entries before it)", shape_str(shape), bytes,
                                      max_bytes, used));
        used += bytes;
    });
}

#define XG_INSTANTIATE(T)                                                                \
    template void save_npz(const std::string&, const StateDict<T>&);                     \
    template StateDict<T> load_npz(const std::string&, std::size_t);                     \
    template StateDict<T> load_npz_admitting(const std::string&, const NpzAdmit&);         \
    template std::vector<std::pair<std::string, Shape>> npz_shapes<T>(const std::string&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg::nn
