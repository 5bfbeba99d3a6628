#include "graph/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

#include <fmt/core.h>

#include "graph/error.hpp"

namespace xg {
namespace {

namespace fs = std::filesystem;

// Bytes collected before one write(2): rows of a CSV file are small and many.
constexpr std::size_t buffer_limit = std::size_t{64} << 10;

std::string directory_of(const std::string& target) {
    const fs::path dir = fs::path(target).parent_path();
    return dir.empty() ? std::string(".") : dir.string();
}

std::string temporary_prefix(const std::string& target) {
    return fs::path(target).filename().string() + ".tmp-";
}

// The pid in "<pid>-<8 hex digits>", the tail of a temporary's name; 0 if the tail is not
// exactly that (a file of someone else's that merely starts like ours is never touched).
pid_t writer_pid(std::string_view tail) {
    const std::size_t dash = tail.find('-');
    if (dash == std::string_view::npos || dash == 0 || tail.size() - dash - 1 != 8) return 0;
    for (char c : tail.substr(dash + 1))
        if (!std::isxdigit(static_cast<unsigned char>(c))) return 0;
    long long pid = 0;
    const auto [end, ec] = std::from_chars(tail.data(), tail.data() + dash, pid);
    if (ec != std::errc() || end != tail.data() + dash || pid <= 0 || pid > INT_MAX) return 0;
    return static_cast<pid_t>(pid);
}

// kill(pid, 0) sends nothing: it fails with ESRCH only when no such process exists (EPERM means
// it exists but is not ours). A reused pid keeps a dead writer's temporary: the safe mistake.
bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

std::string random_suffix() {
    static thread_local std::mt19937 rng(std::random_device{}());
    return fmt::format("{:08x}", rng());
}

// write(2) until all of `bytes` is out: {bytes written, 0}, or {bytes written, errno} on failure.
std::pair<std::size_t, int> write_fully(int fd, std::string_view bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return {done, n < 0 ? errno : EIO};
        done += static_cast<std::size_t>(n);
    }
    return {done, 0};
}

void sync_directory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    // Some file systems refuse fsync on a directory (EINVAL); the rename has happened by then and
    // the new file is complete, so there is nothing to undo and nothing to report.
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

std::size_t remove_stale_temporaries(const std::string& target) {
    const std::string prefix = temporary_prefix(target);
    std::size_t removed = 0;
    std::error_code ec;
    for (fs::directory_iterator it(directory_of(target), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        const pid_t pid = writer_pid(std::string_view(name).substr(prefix.size()));
        if (pid == 0 || pid == ::getpid() || process_exists(pid)) continue;
        std::error_code ignored;  // another process may be cleaning up the same file
        if (fs::remove(it->path(), ignored)) ++removed;
    }
    return removed;
}

AtomicFile::AtomicFile(std::string target) : target_(std::move(target)) {
    remove_stale_temporaries(target_);
    for (int attempt = 0; fd_ < 0; ++attempt) {
        temporary_ = fmt::format("{}.tmp-{}-{}", target_, ::getpid(), random_suffix());
        fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ < 0 && (errno != EEXIST || attempt == 8)) {
            const int err = errno;
            throw IoError(fmt::format("{}: cannot create temporary file {}: {}", target_, temporary_,
                                      std::strerror(err)));
        }
    }
}

AtomicFile::~AtomicFile() {
    if (committed_) return;
    if (fd_ >= 0) ::close(fd_);
    ::unlink(temporary_.c_str());
}

void AtomicFile::fail(const std::string& what, int error_number) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(temporary_.c_str());
    committed_ = true;  // nothing left to clean up
    throw IoError(fmt::format("{}: cannot write: {} ({}); the previous file, if any, is unchanged", target_, what,
                              std::strerror(error_number)));
}

void AtomicFile::flush() {
    if (const auto [written, err] = write_fully(fd_, buffer_); err != 0)
        fail(fmt::format("writing {} bytes to {}", buffer_.size() - written, temporary_), err);
    buffer_.clear();
}

void AtomicFile::write(std::string_view bytes) {
    if (committed_) throw IoError(fmt::format("{}: write after the file was committed or abandoned", target_));
    if (buffer_.size() + bytes.size() > buffer_limit) flush();
    if (bytes.size() <= buffer_limit) {
        buffer_.append(bytes);
        return;
    }
    // Large blocks go straight out, without a copy into the buffer.
    if (const auto [written, err] = write_fully(fd_, bytes); err != 0)
        fail(fmt::format("writing {} bytes to {}", bytes.size() - written, temporary_), err);
}

void AtomicFile::commit() {
    if (committed_) throw IoError(fmt::format("{}: commit of a file already committed or abandoned", target_));
    flush();
    // Without the fsync the rename could reach the disk before the data: a crash would then leave
    // an empty or partial file under the target's name.
    if (::fsync(fd_) != 0) fail(fmt::format("syncing {}", temporary_), errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(fmt::format("closing {}", temporary_), errno);
    if (::rename(temporary_.c_str(), target_.c_str()) != 0)
        fail(fmt::format("renaming {} over it", temporary_), errno);
    committed_ = true;
    sync_directory(directory_of(target_));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
    AtomicFile file(path);
    file.write(bytes);
    file.commit();
}

}  // namespace xg
