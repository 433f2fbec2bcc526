// RecoverInterruptedCollection (collector.h): after a crash of the daemon, the private temp
// directory a collection made in the target's filesystem is removed at the next start-up.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/unique_fd.h"
#include "core/dump/collector.h"
#include "nlohmann/json.hpp"

namespace clrdiag::dump {

std::string RecoverInterruptedCollection(const procfs::ProcFs& fs, const std::string& id,
                                         const std::string& note_text) {
  nlohmann::json note = nlohmann::json::parse(note_text, nullptr, /*allow_exceptions=*/false);
  if (!note.is_object()) return absl::StrCat("interrupted collection ", id, ": unreadable note");
  pid_t pid = note.value("pid", 0);
  uint64_t start_time = note.value("start_time", uint64_t{0});
  std::string tmp_dir = note.value("tmp_dir", "");
  std::string tmp_name = note.value("tmp_name", "");
  bool shares_root = note.value("shares_root", false);
  // Only the names Collect makes: "clrdiag-<id>" in the target's temp directory.
  if (tmp_name != "clrdiag-" + id || tmp_dir.empty() || tmp_dir[0] != '/') {
    return absl::StrCat("interrupted collection ", id, ": unexpected note; nothing removed");
  }
  auto st = fs.ReadStartTime(pid);
  bool same_process = pid > 0 && st.ok() && *st == start_time;
  std::string base;
  if (same_process) {
    base = fs.RootPath(pid) + tmp_dir;
  } else if (shares_root) {
    base = tmp_dir;
  } else {
    return absl::StrCat("interrupted collection ", id, ": process ", pid,
                        " is gone and its filesystem with it; nothing to remove");
  }
  std::string where = absl::StrCat(tmp_dir, tmp_name, same_process ? " in process " : "",
                                   same_process ? std::to_string(pid) : "");
  UniqueFd parent(::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!parent) return "";
  UniqueFd dir(
      ::openat(parent.get(), tmp_name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return "";
    return absl::StrCat("interrupted collection ", id, ": cannot open ", where, ": ",
                        std::strerror(errno));
  }
  // The directory belongs to the target's user: remove only the names the runtime writes
  // there (never following links), then the directory itself.
  uint64_t bytes = 0;
  for (const char* name : {"dump", "dump.crashreport.json"}) {
    struct stat fst;
    if (::fstatat(dir.get(), name, &fst, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(fst.st_mode)) bytes += static_cast<uint64_t>(fst.st_size);
    ::unlinkat(dir.get(), name, 0);
  }
  dir.Reset();
  if (::unlinkat(parent.get(), tmp_name.c_str(), AT_REMOVEDIR) != 0) {
    return absl::StrCat("interrupted collection ", id, ": cannot remove ", where, ": ",
                        std::strerror(errno));
  }
  return absl::StrCat("interrupted collection ", id, ": removed its temp directory ", where, " (",
                      bytes, " bytes)");
}

}  // namespace clrdiag::dump
