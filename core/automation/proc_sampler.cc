#include "core/automation/proc_sampler.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/base/fs.h"

namespace clrdiag::automation {

absl::StatusOr<ProcSample> ParseStat(const std::string& text, long page_size) {
  size_t close = text.rfind(')');
  if (close == std::string::npos) return absl::DataLossError("stat: no ')' after comm");
  std::vector<std::string> f = absl::StrSplit(text.substr(close + 1), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state): field N is f[N - 3].
  if (f.size() < 22) return absl::DataLossError("stat: too few fields");
  uint64_t utime = 0, stime = 0;
  int64_t threads = 0, rss_pages = 0;
  if (!absl::SimpleAtoi(f[14 - 3], &utime) || !absl::SimpleAtoi(f[15 - 3], &stime) ||
      !absl::SimpleAtoi(f[20 - 3], &threads) || !absl::SimpleAtoi(f[24 - 3], &rss_pages)) {
    return absl::DataLossError("stat: a field is not a number");
  }
  ProcSample s;
  s.cpu_ticks = utime + stime;
  s.threads = threads;
  s.rss_bytes = rss_pages > 0 ? static_cast<uint64_t>(rss_pages) * page_size : 0;
  return s;
}

absl::StatusOr<ProcSample> SampleProcess(const std::string& proc_root, pid_t pid) {
  const std::string dir = absl::StrCat(proc_root, "/", pid);
  auto text = ReadFileToString(dir + "/stat", 1 << 16);
  if (!text.ok()) return text.status();
  static const long page = ::sysconf(_SC_PAGESIZE);
  auto s = ParseStat(*text, page > 0 ? page : 4096);
  if (!s.ok()) return s.status();
  s->time = absl::Now();
  DIR* d = ::opendir((dir + "/fd").c_str());
  if (d == nullptr) {
    return absl::Status(
        errno == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kPermissionDenied,
        absl::StrCat(dir, "/fd: ", std::strerror(errno)));
  }
  int64_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  s->fds = n;
  return s;
}

}  // namespace clrdiag::automation
