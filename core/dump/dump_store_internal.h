// Private to core/dump: the store's layout constants and helpers shared by its .cc files.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace clrdiag::dump::internal {

inline constexpr mode_t kDirMode = 0700;
inline constexpr mode_t kFileMode = 0600;
inline constexpr char kPartialSuffix[] = ".partial";
// In a staging directory: what the collection made outside the store (for crash recovery).
inline constexpr char kStagingNoteName[] = "collection.json";
inline constexpr char kLockName[] = ".lock";

// Names in `dir` except . and .. (empty if it cannot be read).
inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

// What a core file's NT_PRPSINFO says of its process (zero/empty when it has none): the pid in
// the process's own pid namespace, the name (at most 15 bytes) and the start of its arguments
// (at most 80 bytes).
struct CoreProcessInfo {
  pid_t pid = 0;
  std::string name;
  std::string args;
};
CoreProcessInfo ReadCoreProcessInfo(const std::string& core);

}  // namespace clrdiag::dump::internal
