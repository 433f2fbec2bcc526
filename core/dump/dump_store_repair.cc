// DumpStore::Open's repair steps: the store's lock, modes and owners, leftovers of interrupted
// work, and the catalog reconciled with the files (see dump_store.h for the policy).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/base/fs.h"
#include "core/base/sha256.h"
#include "core/base/status_macros.h"
#include "core/dump/dump_store.h"
#include "core/dump/dump_store_internal.h"
#include "core/elf/elf_file.h"

namespace clrdiag::dump {
namespace {

// Offsets in the x86-64/arm64 struct elf_prpsinfo (NT_PRPSINFO) of a core file.
constexpr size_t kPrpsinfoPidOffset = 24;
constexpr size_t kPrpsinfoFnameOffset = 40, kPrpsinfoFnameSize = 16;
constexpr size_t kPrpsinfoArgsOffset = 56, kPrpsinfoArgsSize = 80;

std::string CString(const uint8_t* p, size_t max) {
  size_t n = 0;
  while (n < max && p[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

}  // namespace

namespace internal {

CoreProcessInfo ReadCoreProcessInfo(const std::string& core) {
  CoreProcessInfo info;
  auto file = elf::MappedFile::Open(core);
  if (!file.ok()) return info;
  auto view = elf::ElfView::Parse(file->bytes());
  if (!view.ok() || view->type() != elf::kEtCore) return info;
  (void)view->ForEachNote([&](const elf::Note& n) {
    if (n.name != "CORE" || n.type != elf::kNtPrpsinfo) return true;
    if (n.desc.size() >= kPrpsinfoArgsOffset + kPrpsinfoArgsSize) {
      int32_t pid = 0;
      std::memcpy(&pid, n.desc.data() + kPrpsinfoPidOffset, sizeof pid);
      info.pid = pid;
      info.name = CString(n.desc.data() + kPrpsinfoFnameOffset, kPrpsinfoFnameSize);
      info.args = CString(n.desc.data() + kPrpsinfoArgsOffset, kPrpsinfoArgsSize);
    }
    return false;
  });
  return info;
}

}  // namespace internal

namespace {

using internal::kDirMode;
using internal::kFileMode;
using internal::kPartialSuffix;
using internal::ListDir;

// Named limit: mode/owner fixes logged one by one at start-up; the rest are counted.
constexpr int kMaxModeFixesLogged = 20;

class ModeFixer {
 public:
  ModeFixer(uid_t uid, std::function<void(StoreLogLevel, const std::string&)> log)
      : uid_(uid), log_(std::move(log)) {}

  // Fixes `path` (not following a symlink) and, for a directory, what is below it.
  void Walk(const std::string& path, int depth) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    if (S_ISLNK(st.st_mode)) {
      Report(StoreLogLevel::kWarning,
             absl::StrCat("store: ", path, " is a symbolic link; not followed, left alone"));
      return;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) return;
    mode_t want = S_ISDIR(st.st_mode) ? kDirMode : kFileMode;
    if (st.st_uid != uid_) {
      if (::lchown(path.c_str(), uid_, static_cast<gid_t>(-1)) == 0) {
        Report(StoreLogLevel::kWarning,
               absl::StrCat("store: fixed owner of ", path, ": uid ", st.st_uid, " -> ", uid_));
      } else {
        Report(StoreLogLevel::kWarning,
               absl::StrCat("store: cannot fix owner of ", path, ": ", std::strerror(errno)));
      }
    }
    if ((st.st_mode & 07777) != want) {
      if (::chmod(path.c_str(), want) == 0) {
        Report(StoreLogLevel::kWarning, absl::StrFormat("store: fixed mode of %s: %04o -> %04o",
                                                        path, st.st_mode & 07777, want));
      } else {
        Report(StoreLogLevel::kWarning,
               absl::StrCat("store: cannot fix mode of ", path, ": ", std::strerror(errno)));
      }
    }
    // The layout is three levels deep (root/dumps/<id>/file); deeper is not ours.
    if (S_ISDIR(st.st_mode) && depth < 3) {
      for (const auto& name : ListDir(path)) Walk(path + "/" + name, depth + 1);
    }
  }
  void Finish() {
    if (suppressed_ > 0 && log_) {
      log_(StoreLogLevel::kWarning,
           absl::StrCat("store: ", suppressed_, " more mode/owner fixes not shown"));
    }
  }

 private:
  void Report(StoreLogLevel level, const std::string& line) {
    if (logged_ >= kMaxModeFixesLogged) {
      ++suppressed_;
      return;
    }
    ++logged_;
    if (log_) log_(level, line);
  }
  uid_t uid_;
  std::function<void(StoreLogLevel, const std::string&)> log_;
  int logged_ = 0;
  int suppressed_ = 0;
};

uint64_t TreeBytes(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return 0;
  if (!S_ISDIR(st.st_mode)) return S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  uint64_t total = 0;
  for (const auto& n : ListDir(path)) total += TreeBytes(path + "/" + n);
  return total;
}

}  // namespace

absl::Status DumpStore::Lock() {
  std::string path = absl::StrCat(root_, "/", internal::kLockName);
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kFileMode);
  if (lock_fd_ < 0) return ErrnoStatus(errno, absl::StrCat("cannot create the store lock ", path));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("the dump directory ", root_, " is in use by another clrdiagd (it holds ",
                       path, "); give each daemon its own --dump-dir"));
    }
    return ErrnoStatus(err, absl::StrCat("cannot lock ", path));
  }
  return absl::OkStatus();
}

void DumpStore::FixModes() {
  ModeFixer fixer(::geteuid(), options_.log);
  // The root may itself be a symbolic link (e.g. to a larger disk): fix what it points to.
  struct stat st;
  if (::stat(root_.c_str(), &st) == 0 && (st.st_mode & 07777) != kDirMode) {
    if (::chmod(root_.c_str(), kDirMode) == 0) {
      Log(StoreLogLevel::kWarning, absl::StrFormat("store: fixed mode of %s: %04o -> %04o", root_,
                                                   st.st_mode & 07777, kDirMode));
    }
  }
  for (const auto& name : ListDir(root_)) fixer.Walk(root_ + "/" + name, 1);
  fixer.Finish();
}

void DumpStore::RemoveLeftovers() {
  for (const char* sub : {"/dumps", "/runtimes"}) {
    std::string dir = root_ + sub;
    for (const auto& name : ListDir(dir)) {
      std::string path = dir + "/" + name;
      if (!absl::EndsWith(name, kPartialSuffix)) continue;
      std::string id = name.substr(0, name.size() - std::strlen(kPartialSuffix));
      if (options_.on_interrupted && std::string(sub) == "/dumps") {
        auto note = ReadFileToString(path + "/" + internal::kStagingNoteName, 1 << 16);
        if (note.ok()) {
          std::string said = options_.on_interrupted(id, *note);
          if (!said.empty()) Log(StoreLogLevel::kWarning, said);
        }
      }
      uint64_t bytes = TreeBytes(path);
      absl::Status st = RemoveTree(path);
      Log(StoreLogLevel::kWarning,
          st.ok() ? absl::StrCat("store: removed ", path, " (", bytes,
                                 " bytes), left by an interrupted collection or removal")
                  : absl::StrCat("store: cannot remove ", path, ": ", st.message()));
    }
  }
}

void DumpStore::Reconcile() {
  std::string dumps = root_ + "/dumps";
  for (const auto& name : ListDir(dumps)) {
    std::string dir = dumps + "/" + name;
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0) continue;
    if (!IsValidDumpId(name) || !S_ISDIR(st.st_mode)) {
      Log(StoreLogLevel::kWarning,
          absl::StrCat("store: ", dir,
                       " is not a catalog entry; left alone (not listed, not "
                       "counted by retention)"));
      continue;
    }
    // Temporary files of an interrupted meta.json or heap graph write (heapgraph.tmp.PID).
    for (const auto& f : ListDir(dir)) {
      if (absl::EndsWith(f, ".tmp") || absl::StartsWith(f, "heapgraph.tmp.")) {
        (void)RemoveTree(dir + "/" + f);
      }
    }
    std::string dump = dir + "/dump";
    bool has_dump = ::lstat(dump.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    uint64_t file_size = has_dump ? static_cast<uint64_t>(st.st_size) : 0;
    auto meta = Get(name);
    bool meta_ok = meta.ok() && meta->id == name;
    if (!has_dump) {
      // Meta without a dump: nothing to list, download or analyze.
      absl::Status removed = RemoveTree(dir);
      Log(StoreLogLevel::kWarning,
          absl::StrCat(
              "store: dropped catalog entry ", name, ": its dump file is missing",
              removed.ok() ? "" : absl::StrCat(" (cannot remove: ", removed.message(), ")")));
      continue;
    }
    if (meta_ok) {
      if (meta->size_bytes != file_size) {
        Log(StoreLogLevel::kWarning,
            absl::StrCat("store: dump ", name, " has ", file_size, " bytes but its catalog entry ",
                         meta->size_bytes, "; it is damaged (downloads will fail their check)"));
      }
      continue;
    }
    auto rebuilt = RebuildMeta(name);
    if (!rebuilt.ok()) {
      Log(StoreLogLevel::kWarning,
          absl::StrCat("store: dump ", name,
                       " has no readable meta.json and it cannot be rebuilt (",
                       rebuilt.status().message(), "); left alone, not listed"));
      continue;
    }
    absl::Status wrote =
        WriteFileAtomic(dir + "/meta.json", MetaToJson(*rebuilt), internal::kFileMode);
    Log(StoreLogLevel::kWarning,
        wrote.ok() ? absl::StrCat("store: rebuilt the missing or unreadable meta.json of dump ",
                                  name, " from its id and file (", file_size,
                                  " bytes); it is listed for admins only (requested_by_uid 0)")
                   : absl::StrCat("store: cannot write a rebuilt meta.json for ", name, ": ",
                                  wrote.message()));
  }
}

absl::StatusOr<DumpMeta> DumpStore::RebuildMeta(const std::string& id) const {
  // Ids are "<yyyymmdd>-<hhmmss>-<pid>-<type>-<random>" (NewId).
  std::vector<std::string> parts = absl::StrSplit(id, '-');
  DumpMeta m;
  m.id = id;
  int pid = 0;
  if (parts.size() != 5 || !absl::SimpleAtoi(parts[2], &pid)) {
    return absl::InvalidArgumentError("the id is not one this store generates");
  }
  ASSIGN_OR_RETURN(m.kind, ParseDumpKind(parts[3]));
  std::string err;
  if (!absl::ParseTime("%E4Y%m%d-%H%M%S", parts[0] + "-" + parts[1], absl::UTCTimeZone(),
                       &m.started, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("the id's time: ", err));
  }
  m.pid = pid;
  std::string dump = DumpPath(id);
  struct stat st;
  if (::stat(dump.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + dump);
  m.size_bytes = static_cast<uint64_t>(st.st_size);
  m.finished = absl::TimeFromTimespec(st.st_mtim);
  ASSIGN_OR_RETURN(m.sha256, Sha256File(dump));
  internal::CoreProcessInfo core = internal::ReadCoreProcessInfo(dump);
  m.process_name = core.name;
  m.command_line = core.args;
  m.requested_by_uid = 0;
  m.has_crash_report = ::stat(CrashReportPath(id).c_str(), &st) == 0;
  return m;
}

}  // namespace clrdiag::dump
