#include "core/base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace clrdiag {

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = path.find('/', pos + 1);
    cur = path.substr(0, next);
    pos = next;
    if (cur.empty() || cur == "/") continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("cannot create directory ", cur));
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISDIR(st.st_mode))
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) != 0) {
    return ErrnoStatus(errno, absl::StrCat("chmod ", path));
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("lstat ", path));
  }
  if (S_ISDIR(st.st_mode)) {
    DIR* d = ::opendir(path.c_str());
    if (!d) return ErrnoStatus(errno, absl::StrCat("opendir ", path));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : names) RETURN_IF_ERROR(RemoveTree(absl::StrCat(path, "/", n)));
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("rmdir ", path));
    }
    return absl::OkStatus();
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, absl::StrCat("unlink ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", path));
  // Reads straight into the string: no large stack buffer, since callers include threads with
  // small stacks (the metrics server's, where ASan's larger frames overflowed a 64 KiB one).
  constexpr size_t kChunk = 16 << 10;
  std::string out;
  for (;;) {
    size_t used = out.size();
    out.resize(used + kChunk);
    ssize_t n = ::read(fd.get(), out.data() + used, kChunk);
    if (n < 0) {
      out.resize(used);
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    out.resize(used + static_cast<size_t>(n));
    if (n == 0) break;
    if (out.size() > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(path, " is larger than ", max_bytes));
    }
  }
  return out;
}

bool WriteFully(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

namespace {
absl::Status WriteAll(int fd, const char* p, size_t len, const std::string& what) {
  if (WriteFully(fd, p, len)) return absl::OkStatus();
  if (errno == ENOSPC || errno == EDQUOT) {
    return absl::ResourceExhaustedError(absl::StrCat("no space left writing ", what));
  }
  return ErrnoStatus(errno, absl::StrCat("write ", what));
}
}  // namespace

absl::Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
    ::fchmod(fd.get(), mode);
    absl::Status st = WriteAll(fd.get(), data.data(), data.size(), tmp);
    if (st.ok() && ::fsync(fd.get()) != 0) st = ErrnoStatus(errno, absl::StrCat("fsync ", tmp));
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename ", tmp));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  return static_cast<uint64_t>(st.st_size);
}

absl::Status CopyFile(const std::string& src, const std::string& dst, mode_t mode,
                      const std::function<void(const void*, size_t, uint64_t)>& on_block) {
  UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return ErrnoStatus(errno, absl::StrCat("open ", src));
  ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!out) return ErrnoStatus(errno, absl::StrCat("create ", dst));
  ::fchmod(out.get(), mode);
  std::vector<char> buf(1 << 20);
  uint64_t copied = 0;
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("read ", src));
    }
    if (n == 0) break;
    RETURN_IF_ERROR(WriteAll(out.get(), buf.data(), n, dst));
    copied += n;
    if (on_block) on_block(buf.data(), n, copied);
  }
  return absl::OkStatus();
}

}  // namespace clrdiag
