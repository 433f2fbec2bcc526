#include "core/procfs/procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"
#include "core/procfs/procfs_internal.h"

namespace clrdiag::procfs {
namespace {

// procfs files report size 0, so they are read into a growing buffer until EOF. The cap guards
// against a pathological file (a fake tree, a maps of millions of lines) eating memory.
constexpr size_t kReadChunkBytes = 4096;
constexpr size_t kMaxProcFileBytes = 64 << 20;
constexpr size_t kMaxReadlinkBytes = 1 << 16;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && (IsSpace(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits off the next whitespace-delimited token of `s`.
std::string_view NextToken(std::string_view& s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  size_t end = 0;
  while (end < s.size() && !IsSpace(s[end])) ++end;
  std::string_view token = s.substr(0, end);
  s.remove_prefix(end);
  return token;
}

// Pieces of `s` between `sep`s. (absl::StrSplit yields absl::string_view, which is not
// std::string_view in Debian's Abseil build.)
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    s.remove_prefix(pos + 1);
  }
}

template <typename T>
bool ParseNumber(std::string_view s, T* out, int base = 10) {
  // from_chars accepts a leading '-' for signed types; ids and sizes never have one.
  if (s.empty() || s.front() == '-') return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Parses a whitespace-separated list of ids ("Uid:", "NSpid:").
template <typename T>
bool ParseIdList(std::string_view s, std::vector<T>* out) {
  out->clear();
  for (std::string_view token = NextToken(s); !token.empty(); token = NextToken(s)) {
    T value{};
    if (!ParseNumber(token, &value)) return false;
    out->push_back(value);
  }
  return true;
}

absl::Status BadField(std::string_view field, std::string_view value) {
  return absl::InvalidArgumentError(absl::StrCat("malformed \"", std::string(field), ":\" value \"",
                                                 std::string(value.substr(0, 64)), "\""));
}

// The parse error of `path`'s content, named after the file.
absl::Status InFile(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::string> ReadProcFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", path));
  std::string data;
  size_t used = 0;
  while (true) {
    if (used == data.size()) data.resize(std::max(kReadChunkBytes, 2 * data.size()));
    ssize_t n = ::read(fd.get(), data.data() + used, data.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
    if (used > kMaxProcFileBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("read ", path, ": larger than ", kMaxProcFileBytes, " bytes"));
    }
  }
  data.resize(used);
  return data;
}

std::optional<std::string_view> FindEnvVar(std::string_view environ, std::string_view name) {
  while (!environ.empty()) {
    size_t end = environ.find('\0');
    std::string_view entry = environ.substr(0, end);
    if (entry.size() > name.size() && entry[name.size()] == '=' &&
        entry.substr(0, name.size()) == name) {
      return entry.substr(name.size() + 1);
    }
    if (end == std::string_view::npos) break;
    environ.remove_prefix(end + 1);
  }
  return std::nullopt;
}

pid_t ProcStatus::InnermostPid(pid_t host_pid) const {
  return nspids.empty() ? host_pid : nspids.back();
}

absl::StatusOr<ProcStatus> ParseStatus(const std::string& text) {
  ProcStatus status;
  bool have_name = false, have_uid = false, have_gid = false;
  for (std::string_view line : Split(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    if (key == "Name") {
      // The kernel writes "Name:\t<comm>"; comm itself may contain spaces.
      if (!value.empty() && value.front() == '\t') value.remove_prefix(1);
      status.name = std::string(value);
      have_name = true;
    } else if (key == "PPid") {
      if (!ParseNumber(TrimSpaces(value), &status.ppid)) return BadField(key, value);
    } else if (key == "Uid" || key == "Gid") {
      std::vector<uint32_t> ids;
      if (!ParseIdList(value, &ids) || ids.empty()) return BadField(key, value);
      if (key == "Uid") {
        status.uid = ids[0];
        status.euid = ids.size() > 1 ? ids[1] : ids[0];
        have_uid = true;
      } else {
        status.gid = ids[0];
        have_gid = true;
      }
    } else if (key == "NSpid") {
      if (!ParseIdList(value, &status.nspids)) return BadField(key, value);
    } else if (key == "VmRSS") {
      std::string_view rest = value;
      std::string_view number = NextToken(rest);
      if (!ParseNumber(number, &status.vm_rss_kb)) return BadField(key, value);
    }
  }
  // Uid/Gid feed access decisions, so a status without them is an error, never uid 0.
  if (!have_name) return absl::InvalidArgumentError("no \"Name:\" line");
  if (!have_uid) return absl::InvalidArgumentError("no \"Uid:\" line");
  if (!have_gid) return absl::InvalidArgumentError("no \"Gid:\" line");
  return status;
}

absl::StatusOr<uint64_t> ParseStartTime(const std::string& stat_text) {
  // "pid (comm) state ppid ...": comm may hold spaces and ')' so fields start after the last
  // ')'. The first field after it is field 3 (state); starttime is field 22.
  constexpr int kFirstFieldAfterComm = 3;
  constexpr int kStartTimeField = 22;
  size_t paren = stat_text.rfind(')');
  if (paren == std::string::npos) return absl::InvalidArgumentError("no ')' after comm");
  std::string_view rest = std::string_view(stat_text).substr(paren + 1);
  std::string_view token;
  for (int field = kFirstFieldAfterComm; field <= kStartTimeField; ++field) {
    token = NextToken(rest);
    if (token.empty()) return absl::InvalidArgumentError("too few fields");
  }
  if (!token.empty() && token.back() == '\n') token.remove_suffix(1);
  uint64_t start_time = 0;
  if (!ParseNumber(token, &start_time)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed starttime \"", std::string(token.substr(0, 32)), "\""));
  }
  return start_time;
}

absl::StatusOr<std::vector<MapEntry>> ParseMaps(const std::string& text) {
  // "start-end perms offset dev inode [path]"; the path starts after the padding and may
  // contain spaces.
  std::vector<MapEntry> entries;
  int line_number = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_number;
    if (TrimSpaces(line).empty()) continue;
    auto bad = [&](const char* what) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", what));
    };
    std::string_view rest = line;
    std::string_view range = NextToken(rest);
    std::string_view perms = NextToken(rest);
    std::string_view offset = NextToken(rest);
    std::string_view dev = NextToken(rest);
    std::string_view inode = NextToken(rest);
    MapEntry entry;
    size_t dash = range.find('-');
    if (dash == std::string_view::npos || !ParseNumber(range.substr(0, dash), &entry.start, 16) ||
        !ParseNumber(range.substr(dash + 1), &entry.end, 16)) {
      return bad("malformed address range");
    }
    if (entry.end < entry.start) return bad("address range ends before it starts");
    if (perms.size() != 4) return bad("malformed permissions");
    entry.perms = std::string(perms);
    if (!ParseNumber(offset, &entry.offset, 16)) return bad("malformed offset");
    if (dev.find(':') == std::string_view::npos) return bad("malformed device");
    if (!ParseNumber(inode, &entry.inode)) return bad("malformed inode");
    while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
    entry.path = std::string(rest);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<std::string> SplitNul(const std::string& data) {
  std::vector<std::string> parts;
  if (data.empty()) return parts;
  std::string_view rest = data;
  // A trailing NUL terminates the last entry rather than starting an empty one.
  if (rest.back() == '\0') rest.remove_suffix(1);
  for (std::string_view part : Split(rest, '\0')) parts.emplace_back(part);
  return parts;
}

ProcFs::ProcFs(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string ProcFs::PidDir(pid_t pid) const { return absl::StrCat(root_, "/", pid); }

std::string ProcFs::RootPath(pid_t pid) const { return absl::StrCat(PidDir(pid), "/root"); }

absl::StatusOr<std::vector<pid_t>> ProcFs::ListPids() const {
  DIR* dir = ::opendir(root_.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, absl::StrCat("opendir ", root_));
  std::vector<pid_t> pids;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    pid_t pid = 0;
    std::string_view name = entry->d_name;
    if (ParseNumber(name, &pid) && pid > 0) pids.push_back(pid);
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoStatus(err, absl::StrCat("readdir ", root_));
  std::sort(pids.begin(), pids.end());
  return pids;
}

absl::StatusOr<ProcStatus> ProcFs::ReadStatus(pid_t pid) const {
  std::string path = absl::StrCat(PidDir(pid), "/status");
  ASSIGN_OR_RETURN(std::string text, ReadProcFile(path));
  absl::StatusOr<ProcStatus> status = ParseStatus(text);
  // An exited process can leave an empty or truncated status behind.
  if (!status.ok() && text.empty()) return absl::NotFoundError(absl::StrCat(path, ": empty"));
  if (!status.ok()) return InFile(path, status.status());
  return status;
}

absl::StatusOr<std::vector<std::string>> ProcFs::ReadCmdline(pid_t pid) const {
  ASSIGN_OR_RETURN(std::string data, ReadProcFile(absl::StrCat(PidDir(pid), "/cmdline")));
  return SplitNul(data);
}

absl::StatusOr<std::vector<std::string>> ProcFs::ReadEnviron(pid_t pid) const {
  ASSIGN_OR_RETURN(std::string data, ReadProcFile(absl::StrCat(PidDir(pid), "/environ")));
  return SplitNul(data);
}

absl::StatusOr<std::string> ProcFs::ReadEnvVar(pid_t pid, const std::string& name) const {
  ASSIGN_OR_RETURN(std::string data, ReadProcFile(absl::StrCat(PidDir(pid), "/environ")));
  std::optional<std::string_view> value = FindEnvVar(data, name);
  if (!value) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " has no ", name, " variable"));
  }
  return std::string(*value);
}

absl::StatusOr<std::string> ProcFs::ReadExe(pid_t pid) const {
  std::string path = absl::StrCat(PidDir(pid), "/exe");
  std::string target(256, '\0');
  while (true) {
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus(errno, absl::StrCat("readlink ", path));
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    if (target.size() >= kMaxReadlinkBytes) {
      return absl::ResourceExhaustedError(absl::StrCat("readlink ", path, ": target too long"));
    }
    target.resize(target.size() * 2);
  }
}

absl::StatusOr<uint64_t> ProcFs::ReadStartTime(pid_t pid) const {
  std::string path = absl::StrCat(PidDir(pid), "/stat");
  ASSIGN_OR_RETURN(std::string text, ReadProcFile(path));
  if (text.empty()) return absl::NotFoundError(absl::StrCat(path, ": empty"));
  absl::StatusOr<uint64_t> start = ParseStartTime(text);
  if (!start.ok()) return InFile(path, start.status());
  return start;
}

absl::StatusOr<std::vector<MapEntry>> ProcFs::ReadMaps(pid_t pid) const {
  std::string path = absl::StrCat(PidDir(pid), "/maps");
  ASSIGN_OR_RETURN(std::string text, ReadProcFile(path));
  absl::StatusOr<std::vector<MapEntry>> maps = ParseMaps(text);
  if (!maps.ok()) return InFile(path, maps.status());
  return maps;
}

}  // namespace clrdiag::procfs
