#include "core/dump/collector.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/fs.h"
#include "core/base/sha256.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"
#include "core/elf/elf_file.h"
#include "core/ipc/client.h"
#include "core/procfs/discovery.h"

namespace clrdiag::dump {
namespace {

constexpr auto kProgressInterval = std::chrono::milliseconds(250);

ipc::DumpType ToIpcType(DumpKind kind) {
  switch (kind) {
    case DumpKind::kFull:
      return ipc::DumpType::kFull;
    case DumpKind::kHeap:
      return ipc::DumpType::kWithHeap;
    case DumpKind::kMini:
      return ipc::DumpType::kNormal;
    case DumpKind::kTriage:
      return ipc::DumpType::kTriage;
  }
  return ipc::DumpType::kFull;
}

// True while the same process (same start time) is alive and not a zombie.
bool SameProcessAlive(const procfs::ProcFs& fs, pid_t pid, uint64_t start_time) {
  auto st = fs.ReadStartTime(pid);
  if (!st.ok() || *st != start_time) return false;
  auto stat = ReadFileToString(fs.PidDir(pid) + "/stat", 1 << 16);
  if (!stat.ok()) return false;
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return false;
  char state = (*stat)[close + 2];
  return state != 'Z' && state != 'X' && state != 'x';
}

// After a failed request: did the target die? Its connection closes a moment before the
// kernel marks it dead, so give it a short while.
bool TargetDied(const procfs::ProcFs& fs, pid_t pid, uint64_t start_time) {
  for (int i = 0; i < 50; ++i) {
    if (!SameProcessAlive(fs, pid, start_time)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Runs a cleanup action at scope exit unless dismissed.
class ScopeExit {
 public:
  explicit ScopeExit(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~ScopeExit() {
    if (fn_) fn_();
  }
  void Dismiss() { fn_ = nullptr; }

 private:
  std::function<void()> fn_;
};

// Reports the growing size of a file while the runtime writes it.
class WriteWatcher {
 public:
  WriteWatcher(std::string path, const ProgressFn& progress)
      : path_(std::move(path)), progress_(progress), thread_([this] { Run(); }) {}
  ~WriteWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, kProgressInterval, [this] { return stop_; })) {
      struct stat st;
      if (::stat(path_.c_str(), &st) == 0 && progress_) {
        progress_({CollectPhase::kWriting, static_cast<uint64_t>(st.st_size), 0, ""});
      }
    }
  }
  std::string path_;
  const ProgressFn& progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Reads a file start to end in 1 MiB blocks, for hashing and progress.
absl::Status ReadBlocks(const std::string& path,
                        const std::function<void(const void*, size_t, uint64_t)>& on_block) {
  FILE* f = ::fopen(path.c_str(), "rbe");
  if (!f) return ErrnoStatus(errno, "open " + path);
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  size_t n;
  while ((n = ::fread(buf.data(), 1, buf.size(), f)) > 0) {
    done += n;
    on_block(buf.data(), n, done);
  }
  bool err = ::ferror(f);
  ::fclose(f);
  return err ? absl::DataLossError("read " + path) : absl::OkStatus();
}

// Removes `dir/name` (one level of files, then the directory), relative to a directory fd.
void RemoveDirAt(int dirfd, const std::string& name) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    if (DIR* d = ::fdopendir(fd)) {
      std::vector<std::string> names;
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      for (const auto& n : names) ::unlinkat(::dirfd(d), n.c_str(), 0);
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
}

}  // namespace

class Collector::Slot {
 public:
  Slot(Collector* c, pid_t pid) : c_(c), pid_(pid) {}
  ~Slot() { c_->Release(pid_); }

 private:
  Collector* c_;
  pid_t pid_;
};

absl::Status Collector::Acquire(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (busy_.count(pid)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "process ", pid, " is busy: another dump of it is being collected; retry when it ends"));
  }
  if (static_cast<int>(busy_.size()) >= options_.max_concurrent_collections) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "busy: ", busy_.size(), " collections are running (limit max_concurrent_collections=",
        options_.max_concurrent_collections, "); retry shortly"));
  }
  busy_.insert(pid);
  return absl::OkStatus();
}

void Collector::Release(pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_.erase(pid);
}

absl::StatusOr<DumpMeta> Collector::Collect(const CollectRequest& req, const ProgressFn& progress,
                                            const CancellationToken& cancel) {
  auto report = [&](CollectPhase phase, uint64_t bytes, uint64_t total, std::string msg) {
    if (progress) progress({phase, bytes, total, std::move(msg)});
  };
  ASSIGN_OR_RETURN(procfs::ProcessFacts facts, procfs::InspectProcess(fs_, req.pid));
  RETURN_IF_ERROR(Acquire(req.pid));
  Slot slot(this, req.pid);
  ASSIGN_OR_RETURN(procfs::ProcStatus status, fs_.ReadStatus(req.pid));

  DumpMeta meta;
  meta.started = absl::Now();
  meta.kind = req.kind;
  meta.pid = req.pid;
  meta.ns_pid = facts.ns_pid;
  meta.process_name = facts.name;
  meta.command_line = absl::StrJoin(facts.cmdline, " ");
  meta.requested_by_uid = req.requested_by;
  auto info = ipc::QueryProcessInfo(facts.socket.path, options_.process_info_timeout);
  if (info.ok()) {
    meta.runtime_version = info->runtime_version;
    meta.runtime_identifier = info->runtime_id;
  }
  meta.id = store_->NewId(req.pid, req.kind, meta.started);

  // A private directory in the target's own temp directory, owned by the target's user, so
  // createdump (running as that user, in that mount namespace) can write there and nobody
  // else can interfere. It is created and removed through a directory fd, which stays valid
  // even if the process (and with it /proc/<pid>/root) goes away mid-collection.
  std::string tmp_name = absl::StrCat("clrdiag-", meta.id);
  std::string target_dir = facts.socket.tmpdir + tmp_name;
  std::string host_tmp = fs_.RootPath(req.pid) + facts.socket.tmpdir;
  UniqueFd tmp_fd(::open(host_tmp.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!tmp_fd) {
    return ErrnoStatus(errno, absl::StrCat("cannot open process ", req.pid, "'s temp directory ",
                                           facts.socket.tmpdir));
  }
  if (::mkdirat(tmp_fd.get(), tmp_name.c_str(), 0700) != 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot create a temporary directory in process ",
                                           req.pid, "'s filesystem (", target_dir, ")"));
  }
  ScopeExit remove_tmp([&] { RemoveDirAt(tmp_fd.get(), tmp_name); });
  if (::fchownat(tmp_fd.get(), tmp_name.c_str(), status.euid, status.gid, AT_SYMLINK_NOFOLLOW) !=
      0) {
    return ErrnoStatus(errno, absl::StrCat("chown ", target_dir));
  }
  std::string host_dir = host_tmp + tmp_name;
  std::string target_path = target_dir + "/dump";
  std::string host_path = host_dir + "/dump";

  report(CollectPhase::kRequesting, 0, 0,
         absl::StrCat("asking ", facts.name, " (pid ", req.pid, ") for a ", DumpKindName(req.kind),
                      " dump"));
  ipc::DumpRequest dreq;
  dreq.path = target_path;
  dreq.type = ToIpcType(req.kind);
  if (req.diag) dreq.flags |= ipc::dump_flags::kLoggingEnabled;
  if (req.crash_report) dreq.flags |= ipc::dump_flags::kCrashReport;
  absl::Status written;
  {
    WriteWatcher watcher(host_path, progress);
    written = ipc::GenerateCoreDump(facts.socket.path, dreq);
  }
  if ((!written.ok() && TargetDied(fs_, req.pid, facts.start_time)) ||
      !SameProcessAlive(fs_, req.pid, facts.start_time)) {
    return absl::UnavailableError(
        absl::StrCat("process ", req.pid, " exited during collection; no dump was kept"));
  }
  if (!written.ok()) {
    return absl::Status(written.code() == absl::StatusCode::kUnavailable
                            ? absl::StatusCode::kUnavailable
                            : absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("the runtime of process ", req.pid,
                                     " could not write the dump: ", written.message()));
  }
  if (cancel.cancelled()) return absl::CancelledError("collection cancelled; no dump was kept");
  auto size = FileSize(host_path);
  if (!size.ok() || *size == 0) {
    return absl::InternalError(absl::StrCat("the runtime of process ", req.pid,
                                            " reported success but wrote no dump at ", target_path,
                                            " (is its temp directory writable and not full?)"));
  }

  // Move into the catalog: rename when on the same filesystem, else a streaming copy.
  ASSIGN_OR_RETURN(std::string staging, store_->CreateStaging(meta.id));
  ScopeExit discard([&] { store_->DiscardStaging(meta.id); });
  std::string stored = store_->StagingDumpPath(meta.id);
  Sha256 hash;
  auto last = std::chrono::steady_clock::now();
  auto on_block = [&](const void* data, size_t len, uint64_t copied) {
    hash.Update(data, len);
    auto now = std::chrono::steady_clock::now();
    if (now - last >= kProgressInterval || copied == *size) {
      last = now;
      report(CollectPhase::kStoring, copied, *size, "");
    }
  };
  if (::rename(host_path.c_str(), stored.c_str()) == 0) {
    ::chown(stored.c_str(), ::geteuid(), ::getegid());
    ::chmod(stored.c_str(), 0600);
    RETURN_IF_ERROR(ReadBlocks(stored, on_block));
  } else if (errno == EXDEV) {
    absl::Status st = CopyFile(host_path, stored, 0600, on_block);
    if (!st.ok()) {
      if (st.code() == absl::StatusCode::kResourceExhausted) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the dump store ", store_->root(), " ran out of space while storing a ", *size,
            "-byte dump; nothing was kept. Free space (clrdiag rm ID), use a smaller --type, or "
            "start clrdiagd with another --dump-dir"));
      }
      return st;
    }
  } else {
    return ErrnoStatus(errno, absl::StrCat("cannot move the dump into ", staging));
  }
  meta.size_bytes = *size;
  meta.sha256 = hash.HexDigest();

  std::string report_src = host_path + ".crashreport.json";
  struct stat rst;
  if (req.crash_report && ::stat(report_src.c_str(), &rst) == 0) {
    std::string dst = staging + "/crashreport.json";
    if (::rename(report_src.c_str(), dst.c_str()) != 0) {
      RETURN_IF_ERROR(CopyFile(report_src, dst, 0600));
    }
    ::chown(dst.c_str(), ::geteuid(), ::getegid());
    ::chmod(dst.c_str(), 0600);
    meta.has_crash_report = true;
  }

  // Runtime files, once per libcoreclr build-id: analysis needs the exact DAC.
  report(CollectPhase::kRuntimeFiles, 0, 0, "");
  auto maps = fs_.ReadMaps(req.pid);
  if (maps.ok()) {
    for (const auto& m : *maps) {
      std::string path = m.path;
      if (absl::EndsWith(path, " (deleted)")) continue;
      if (!absl::EndsWith(path, "/libcoreclr.so")) continue;
      std::string host_lib = fs_.RootPath(req.pid) + path;
      auto bid = elf::ReadGnuBuildId(host_lib);
      if (!bid.ok()) break;
      meta.coreclr_build_id = *bid;
      std::string dir = host_lib.substr(0, host_lib.rfind('/'));
      std::vector<std::string> files = {host_lib};
      struct stat dst;
      if (::stat((dir + "/libmscordaccore.so").c_str(), &dst) == 0) {
        files.push_back(dir + "/libmscordaccore.so");
      }
      meta.runtime_files_stored = files.size() == 2 && store_->StoreRuntimeFiles(*bid, files).ok();
      break;
    }
  }

  meta.finished = absl::Now();
  RETURN_IF_ERROR(store_->Commit(meta));
  discard.Dismiss();
  return meta;
}

}  // namespace clrdiag::dump
