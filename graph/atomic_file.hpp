#pragma once
// Atomic file writes, the one implementation every writer of xgrad uses (checkpoints, IDX files,
// Graphviz exports, CSV tables, plots): a reader of the target sees the old file or the new one,
// never a part of either, and a failed or killed write leaves the old file intact.
//
// The bytes go to a temporary file beside the target, "<target>.tmp-<pid>-<random>"; commit()
// syncs it, renames it over the target and syncs the directory, so the rename publishes data that
// is on disk. Any failure removes the temporary and throws IoError naming the target. A process
// killed mid-write leaves its temporary behind: the next AtomicFile for the same target removes
// the temporaries of that target whose writing process no longer exists (never a live one's).
//
// Deliberately free of xtensor: data/ and the fuzzers build it in seconds.
#include <cstddef>
#include <string>
#include <string_view>

namespace xg {

class AtomicFile {
public:
    // Removes stale temporaries of `target`, then creates a new temporary beside it.
    explicit AtomicFile(std::string target);
    // Without commit() (an error, an exception unwinding past the writer) the temporary is
    // removed and the target is left as it was.
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    // Appends bytes (buffered). Throws IoError naming the target when the disk refuses them.
    void write(std::string_view bytes);
    // Flushes, syncs, renames the temporary over the target and syncs the directory. After it,
    // write() and commit() throw. Throws IoError naming the target on failure (the old file
    // stays, the temporary is removed).
    void commit();

    const std::string& target() const { return target_; }
    // Where the bytes go until commit(): for a program that writes the file itself (gnuplot).
    // Call write() or nothing in between, not both.
    const std::string& temporary() const { return temporary_; }

private:
    void flush();
    [[noreturn]] void fail(const std::string& what, int error_number);

    std::string target_;
    std::string temporary_;
    std::string buffer_;
    int fd_ = -1;
    bool committed_ = false;
};

// Writes `bytes` to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Removes "<target>.tmp-<pid>-<random>" files beside `target` whose process <pid> has exited.
// Returns how many were removed. AtomicFile calls it; exposed for tests and tools.
std::size_t remove_stale_temporaries(const std::string& target);

}  // namespace xg
