#include "core/dump/collector.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
#include "core/dump/preflight.h"
#include "core/elf/core_file.h"
#include "core/elf/elf_file.h"
#include "core/ipc/client.h"
#include "core/procfs/discovery.h"
#include "nlohmann/json.hpp"

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

// Follows the dump file while the runtime writes it (createdump only appends), copying each
// new block into the store, hashing it and handing it to `on_data`, so storing and streaming
// to the client overlap with writing instead of following it.
class Follower {
 public:
  Follower(std::string src, std::string dst, const ProgressFn& progress, const DataFn& on_data)
      : src_(std::move(src)),
        dst_(std::move(dst)),
        progress_(progress),
        on_data_(on_data),
        thread_([this] { Run(); }) {}
  ~Follower() { Finish(false); }

  // The writer is done (`succeeded`) or failed; drains what is left and joins.
  void Finish(bool succeeded) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writer_done_ = true;
      writer_ok_ = succeeded;
    }
    if (thread_.joinable()) thread_.join();
  }
  const absl::Status& status() const { return status_; }
  uint64_t copied() const { return copied_; }
  // True if `path` (not followed) is the very file that was read.
  bool IsSameFile(const std::string& path) const {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == dev_ &&
           st.st_ino == ino_;
  }
  std::string digest() { return hash_.HexDigest(); }

 private:
  bool WriterDone(bool* ok) {
    std::lock_guard<std::mutex> lock(mu_);
    *ok = writer_ok_;
    return writer_done_;
  }
  void Run() {
    UniqueFd in;
    bool ok = false;
    while (!in) {
      // The directory is writable by the target's user: never follow a link planted there.
      in.Reset(::open(src_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (in) break;
      if (errno == ELOOP) {
        status_ = absl::FailedPreconditionError(
            absl::StrCat(src_, " is a symbolic link, not a dump the runtime wrote; refused"));
        return;
      }
      if (WriterDone(&ok)) return;  // never created: the caller reports why
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    struct stat st;
    if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      status_ = absl::FailedPreconditionError(
          absl::StrCat(src_, " is not a regular file the runtime wrote; refused"));
      return;
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    // No destination: the file will be renamed into the store (same filesystem), so it is
    // only read here, for the hash and the stream.
    UniqueFd out;
    if (!dst_.empty()) {
      out.Reset(::open(dst_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!out) {
        status_ = ErrnoStatus(errno, "create " + dst_);
        return;
      }
    }
    std::vector<char> buf(1 << 20);
    auto last = std::chrono::steady_clock::now();
    for (;;) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        status_ = ErrnoStatus(errno, "read " + src_);
        return;
      }
      if (n == 0) {
        // At the current end: finished only once the writer is done and nothing more came.
        if (WriterDone(&ok)) {
          if (!ok) return;
          n = ::read(in.get(), buf.data(), buf.size());
          if (n == 0) break;
          if (n < 0) continue;
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          continue;
        }
      }
      if (out && !WriteFully(out.get(), buf.data(), static_cast<size_t>(n))) {
        int err = errno;
        status_ = (err == ENOSPC || err == EDQUOT)
                      ? absl::ResourceExhaustedError("no space left in the store")
                      : ErrnoStatus(err, "write " + dst_);
        return;
      }
      hash_.Update(buf.data(), static_cast<size_t>(n));
      if (on_data_) on_data_(in.get(), copied_, buf.data(), static_cast<size_t>(n));
      copied_ += static_cast<uint64_t>(n);
      auto now = std::chrono::steady_clock::now();
      if (progress_ && now - last >= kProgressInterval) {
        last = now;
        progress_({CollectPhase::kWriting, copied_, 0, ""});
      }
    }
  }

  std::string src_, dst_;
  const ProgressFn& progress_;
  const DataFn& on_data_;
  std::mutex mu_;
  bool writer_done_ = false;
  bool writer_ok_ = false;
  absl::Status status_;
  uint64_t copied_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  Sha256 hash_;
  std::thread thread_;
};

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
  Slot(Collector* c, std::string key) : c_(c), key_(std::move(key)) {}
  ~Slot() { c_->Release(key_); }

 private:
  Collector* c_;
  std::string key_;
};

absl::Status Collector::Acquire(const std::string& key, pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (busy_.count(key)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "process ", pid, " is busy: another dump of it is being collected; retry when it ends"));
  }
  if (static_cast<int>(busy_.size()) >= options_.max_concurrent_collections) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "busy: ", busy_.size(), " collections are running (limit max_concurrent_collections=",
        options_.max_concurrent_collections, "); retry shortly"));
  }
  busy_.insert(key);
  return absl::OkStatus();
}

void Collector::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_.erase(key);
}

absl::Status Collector::Preflight(const CollectRequest& req, const std::string& tmp_dir, int tmp_fd,
                                  bool same_fs) {
  if (req.kind != DumpKind::kFull && req.kind != DumpKind::kHeap) return absl::OkStatus();
  auto maps = fs_.ReadMaps(req.pid);
  auto store_free = store_->FreeBytes();
  if (!maps.ok() || !store_free.ok()) return absl::OkStatus();  // no estimate: let it try
  PreflightInput in;
  in.pid = req.pid;
  in.kind = req.kind;
  in.estimate = EstimateDumpBytes(*maps, req.kind);
  in.store_root = store_->root();
  in.store_free = *store_free;
  in.reserve = options_.free_space_reserve_bytes;
  in.temp_dir = tmp_dir;
  struct statvfs vfs;
  if (!same_fs && ::fstatvfs(tmp_fd, &vfs) == 0) {
    in.temp_free = static_cast<int64_t>(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
  }
  return CheckPreflight(in);
}

absl::StatusOr<DumpMeta> Collector::Collect(const CollectRequest& req, const ProgressFn& progress,
                                            const DataFn& on_data,
                                            const CancellationToken& cancel) {
  auto report = [&](CollectPhase phase, uint64_t bytes, uint64_t total, std::string msg) {
    if (progress) progress({phase, bytes, total, std::move(msg)});
  };
  // A runtime out of our /proc's sight (listen mode, another pid namespace) writes its dump
  // into a directory both sides share; every other target into its own temp directory, which
  // we reach through /proc/<pid>/root.
  const bool shared = req.reverse && !req.reverse->pid_visible;
  procfs::ProcessFacts facts;
  procfs::ProcStatus status;
  if (!shared) {
    ASSIGN_OR_RETURN(facts, procfs::InspectProcess(fs_, req.pid));
  }
  const std::string busy_key =
      shared ? "listen:" + req.reverse->cookie_hex : absl::StrCat("pid:", req.pid);
  RETURN_IF_ERROR(Acquire(busy_key, req.pid));
  Slot slot(this, busy_key);
  if (!shared) {
    ASSIGN_OR_RETURN(status, fs_.ReadStatus(req.pid));
  }
  ipc::SocketEndpoint own_socket(facts.socket.path);
  ipc::Endpoint& endpoint = req.reverse ? *req.reverse->endpoint : own_socket;

  DumpMeta meta;
  meta.started = absl::Now();
  meta.kind = req.kind;
  meta.pid = req.pid;
  meta.ns_pid = shared ? req.pid : facts.ns_pid;
  meta.process_name = shared ? req.reverse->name : facts.name;
  meta.command_line = shared ? req.reverse->command_line : absl::StrJoin(facts.cmdline, " ");
  meta.requested_by_uid = req.requested_by;
  if (shared) {
    meta.runtime_version = req.reverse->runtime_version;
    meta.runtime_identifier = req.reverse->runtime_identifier;
  } else {
    auto info = ipc::QueryProcessInfo(endpoint, options_.process_info_timeout);
    if (info.ok()) {
      meta.runtime_version = info->runtime_version;
      meta.runtime_identifier = info->runtime_id;
    }
  }
  meta.id = store_->NewId(req.pid, req.kind, meta.started);

  // A private directory in the target's own temp directory, owned by the target's user, so
  // createdump (running as that user, in that mount namespace) can write there and nobody
  // else can interfere. It is created and removed through a directory fd, which stays valid
  // even if the process (and with it /proc/<pid>/root) goes away mid-collection. In a shared
  // directory the target's user is unknown: the private directory is then writable by all but
  // not listable (01733), and its name is the new dump's id.
  std::string tmp_name = absl::StrCat("clrdiag-", meta.id);
  std::string app_parent = facts.socket.tmpdir;
  std::string host_tmp = fs_.RootPath(req.pid) + facts.socket.tmpdir;
  if (shared) {
    app_parent = req.reverse->shared_dir_in_app;
    host_tmp = req.reverse->shared_dir;
    if (app_parent.empty() || app_parent.back() != '/') app_parent.push_back('/');
    if (host_tmp.empty() || host_tmp.back() != '/') host_tmp.push_back('/');
  }
  std::string target_dir = app_parent + tmp_name;
  UniqueFd tmp_fd(::open(host_tmp.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!tmp_fd) {
    if (shared) {
      return ErrnoStatus(errno,
                         absl::StrCat("cannot open the shared dump directory ", host_tmp,
                                      " of the diagnostic port (diagnostic_ports[].dump_dir)"));
    }
    return ErrnoStatus(errno, absl::StrCat("cannot open process ", req.pid, "'s temp directory ",
                                           facts.socket.tmpdir));
  }
  // Same filesystem as the store: the finished file is renamed instead of copied.
  struct stat tmp_st, store_st;
  bool same_fs = ::fstat(tmp_fd.get(), &tmp_st) == 0 &&
                 ::stat(store_->root().c_str(), &store_st) == 0 && tmp_st.st_dev == store_st.st_dev;
  // The estimate reads /proc/<pid>/maps: a runtime out of our /proc's sight has no maps here
  // (its pid may name another process of ours), so it goes without one; a full store then
  // fails the collection cleanly as the file is written.
  if (options_.preflight && !shared) {
    RETURN_IF_ERROR(Preflight(req, facts.socket.tmpdir, tmp_fd.get(), same_fs));
  }

  ASSIGN_OR_RETURN(std::string staging, store_->CreateStaging(meta.id));
  ScopeExit discard([&] { store_->DiscardStaging(meta.id); });
  // If the daemon dies from here on, the next start-up removes the staging directory and,
  // from this note, the temp directory in the target.
  {
    nlohmann::json note;
    note["pid"] = req.pid;
    note["start_time"] = facts.start_time;
    note["tmp_dir"] = facts.socket.tmpdir;
    note["tmp_name"] = tmp_name;
    struct stat root_st, own_root_st;
    note["shares_root"] = ::stat(fs_.RootPath(req.pid).c_str(), &root_st) == 0 &&
                          ::stat("/", &own_root_st) == 0 && root_st.st_dev == own_root_st.st_dev &&
                          root_st.st_ino == own_root_st.st_ino;
    RETURN_IF_ERROR(store_->WriteStagingNote(meta.id, note.dump()));
  }
  if (::mkdirat(tmp_fd.get(), tmp_name.c_str(), 0700) != 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot create a temporary directory in process ",
                                           req.pid, "'s filesystem (", target_dir, ")"));
  }
  ScopeExit remove_tmp([&] { RemoveDirAt(tmp_fd.get(), tmp_name); });
  if (shared) {
    if (::fchmodat(tmp_fd.get(), tmp_name.c_str(), 01733, 0) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chmod ", host_tmp, tmp_name));
    }
  } else if (::fchownat(tmp_fd.get(), tmp_name.c_str(), status.euid, status.gid,
                        AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, absl::StrCat("chown ", target_dir));
  }
  std::string host_dir = host_tmp + tmp_name;
  std::string target_path = target_dir + "/dump";
  std::string host_path = host_dir + "/dump";

  report(CollectPhase::kRequesting, 0, 0,
         absl::StrCat("asking ", meta.process_name, " (pid ", req.pid, ") for a ",
                      DumpKindName(req.kind), " dump"));
  ipc::DumpRequest dreq;
  dreq.path = target_path;
  dreq.type = ToIpcType(req.kind);
  if (req.diag) dreq.flags |= ipc::dump_flags::kLoggingEnabled;
  if (req.crash_report) dreq.flags |= ipc::dump_flags::kCrashReport;

  std::string stored = store_->StagingDumpPath(meta.id);
  Follower follower(host_path, same_fs ? std::string() : stored, progress, on_data);
  absl::Status written = ipc::GenerateCoreDump(endpoint, dreq);
  follower.Finish(written.ok());
  if (!shared && ((!written.ok() && TargetDied(fs_, req.pid, facts.start_time)) ||
                  !SameProcessAlive(fs_, req.pid, facts.start_time))) {
    return absl::UnavailableError(
        absl::StrCat("process ", req.pid, " exited during collection; no dump was kept"));
  }
  if (!written.ok() && absl::StrContains(written.message(), "No space left on device")) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the runtime of process ", req.pid,
        " ran out of space writing the dump in its temp directory ", facts.socket.tmpdir,
        same_fs ? " (the dump store's filesystem)" : "",
        "; nothing was kept. Free space, take a smaller dump (--type Mini)",
        same_fs ? ", or use another store (dump_dir)" : ", or give the process a larger TMPDIR",
        ". The runtime said: ", written.message()));
  }
  if (!written.ok()) {
    return absl::Status(written.code() == absl::StatusCode::kUnavailable
                            ? absl::StatusCode::kUnavailable
                            : absl::StatusCode::kFailedPrecondition,
                        absl::StrCat("the runtime of process ", req.pid,
                                     " could not write the dump: ", written.message()));
  }
  if (!follower.status().ok()) {
    if (follower.status().code() == absl::StatusCode::kResourceExhausted) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the dump store ", store_->root(),
                       " ran out of space while storing the dump ", "(", follower.copied(),
                       " bytes in); nothing was kept. Free space (clrdiag rm ID), "
                       "use a smaller --type, or start clrdiagd with another --dump-dir"));
    }
    return follower.status();
  }
  if (cancel.cancelled()) return absl::CancelledError("collection cancelled; no dump was kept");
  auto size = FileSize(host_path);
  if (!size.ok() || *size == 0 || follower.copied() == 0) {
    return absl::InternalError(absl::StrCat("the runtime of process ", req.pid,
                                            " reported success but wrote no dump at ", target_path,
                                            " (is its temp directory writable and not full?)"));
  }
  if (*size != follower.copied()) {
    return absl::DataLossError(absl::StrCat("the dump changed size while it was stored (",
                                            follower.copied(), " of ", *size,
                                            " bytes); nothing was kept, collect again"));
  }
  if (same_fs) {
    // Whatever sits at host_path now must still be the file that was read and hashed.
    const absl::Status replaced = absl::DataLossError(
        "the dump file was replaced while it was stored; nothing was kept, collect again");
    if (!follower.IsSameFile(host_path)) return replaced;
    if (::rename(host_path.c_str(), stored.c_str()) != 0) {
      RETURN_IF_ERROR(CopyFile(host_path, stored, 0600));
    } else if (!follower.IsSameFile(stored)) {
      ::unlink(stored.c_str());
      return replaced;
    }
    ::chown(stored.c_str(), ::geteuid(), ::getegid());
    ::chmod(stored.c_str(), 0600);
  }
  report(CollectPhase::kStoring, *size, *size, "");
  meta.size_bytes = *size;
  meta.sha256 = follower.digest();

  std::string report_src = host_path + ".crashreport.json";
  struct stat rst;
  // Only a regular file with one link: the directory is writable by the target's user.
  if (req.crash_report && ::lstat(report_src.c_str(), &rst) == 0 && S_ISREG(rst.st_mode) &&
      rst.st_nlink == 1) {
    std::string dst = staging + "/crashreport.json";
    if (::rename(report_src.c_str(), dst.c_str()) != 0) {
      RETURN_IF_ERROR(CopyFile(report_src, dst, 0600));
    }
    if (::lstat(dst.c_str(), &rst) == 0 && S_ISREG(rst.st_mode)) {
      ::chown(dst.c_str(), ::geteuid(), ::getegid());
      ::chmod(dst.c_str(), 0600);
      meta.has_crash_report = true;
    } else {
      ::unlink(dst.c_str());
    }
  }

  // Runtime files, once per libcoreclr build-id: analysis needs the exact DAC.
  report(CollectPhase::kRuntimeFiles, 0, 0, "");
  // Out of sight (shared directory): the runtime's files are in a filesystem we cannot read;
  // analysis then finds the DAC by the dump's libcoreclr build-id (docs/listen-mode.md).
  auto maps = shared ? absl::StatusOr<std::vector<procfs::MapEntry>>(absl::NotFoundError(""))
                     : fs_.ReadMaps(req.pid);
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
  if (shared) {
    // The runtime's files are out of reach, but the dump holds libcoreclr's ELF header: its
    // build-id lets analysis pick a matching DAC (setclrpath or the host's frameworks).
    if (auto core = elf::CoreFile::Open(stored); core.ok()) {
      for (const auto& m : (*core)->modules()) {
        if (absl::EndsWith(m.path, "/libcoreclr.so") && !m.build_id.empty()) {
          meta.coreclr_build_id = m.build_id;
          break;
        }
      }
    }
  }

  meta.finished = absl::Now();
  RETURN_IF_ERROR(store_->Commit(meta));
  discard.Dismiss();
  store_->EnforceRetention(meta.id);
  return meta;
}

}  // namespace clrdiag::dump
