#include "core/dump/crash_ingest.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/base/fs.h"
#include "core/base/sha256.h"
#include "core/base/status_macros.h"
#include "core/dump/dump_store_internal.h"
#include "core/elf/core_file.h"
#include "core/elf/elf_file.h"

namespace clrdiag::dump {
namespace {

constexpr char kReportSuffix[] = ".crashreport.json";
// A core file's process name is the first 15 bytes of the executable's name.
constexpr size_t kCoreNameBytes = 15;

// Files that are not dumps: crash reports, hidden and temporary files.
bool IsCandidate(const std::string& name) {
  return !name.empty() && name[0] != '.' && !absl::EndsWith(name, kReportSuffix) &&
         !absl::EndsWith(name, ".tmp") && !absl::EndsWith(name, ".partial");
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Moves `src` to `dst` (rename, or copy and unlink across filesystems), owned by us, 0600.
absl::Status MoveInto(const std::string& src, const std::string& dst) {
  if (::rename(src.c_str(), dst.c_str()) != 0) {
    if (errno != EXDEV) return ErrnoStatus(errno, absl::StrCat("rename ", src, " to ", dst));
    RETURN_IF_ERROR(CopyFile(src, dst, 0600));
    if (::unlink(src.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("remove ", src, " after copying it"));
    }
  }
  ::chown(dst.c_str(), ::geteuid(), ::getegid());
  ::chmod(dst.c_str(), 0600);
  return absl::OkStatus();
}

}  // namespace

std::string RuntimeVersionFromCoreclrPath(const std::string& path) {
  const std::string kFramework = "/Microsoft.NETCore.App/";
  size_t at = path.rfind(kFramework);
  if (at == std::string::npos) return "";
  std::string rest = path.substr(at + kFramework.size());
  size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.substr(slash) != "/libcoreclr.so") return "";
  return rest.substr(0, slash);
}

absl::StatusOr<std::unique_ptr<CrashIngester>> CrashIngester::Create(const procfs::ProcFs& fs,
                                                                     DumpStore* store,
                                                                     CrashIngestOptions options) {
  for (const auto& d : options.directories) {
    if (d.path.empty() || d.path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("crash dump directory '", d.path, "' must be an absolute path"));
    }
    struct stat st;
    if (::stat(d.path.c_str(), &st) != 0) {
      if (errno != ENOENT) return ErrnoStatus(errno, "crash dump directory " + d.path);
      // Apps of any user write here (like /tmp): sticky, so none can remove another's file.
      if (::mkdir(d.path.c_str(), 01777) != 0 || ::chmod(d.path.c_str(), 01777) != 0) {
        return ErrnoStatus(errno, "cannot create the crash dump directory " + d.path);
      }
    } else if (!S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("crash dump directory ", d.path, " is not a directory"));
    }
  }
  return std::unique_ptr<CrashIngester>(new CrashIngester(fs, store, std::move(options)));
}

CrashIngester::~CrashIngester() { Stop(); }

absl::Status CrashIngester::Start() {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return ErrnoStatus(errno, "inotify_init1");
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return ErrnoStatus(errno, "eventfd");
  for (const auto& d : options_.directories) {
    int wd = ::inotify_add_watch(inotify_fd_, d.path.c_str(),
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_ONLYDIR);
    if (wd < 0) return ErrnoStatus(errno, "cannot watch the crash dump directory " + d.path);
    watches_[wd] = d;
  }
  // What is already there (written while the daemon was down).
  for (const auto& d : options_.directories) {
    for (const auto& name : internal::ListDir(d.path)) {
      if (IsCandidate(name)) ScheduleOrIngest(d.path + "/" + name, d.kind, /*now=*/false);
    }
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void CrashIngester::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
}

void CrashIngester::ScheduleOrIngest(const std::string& path, DumpKind kind, bool now) {
  pending_[path] = {kind, now ? absl::InfinitePast() : absl::Now() + options_.settle};
}

void CrashIngester::Run() {
  absl::Time next_scan = absl::InfinitePast();
  alignas(inotify_event) char buf[16384];
  while (true) {
    absl::Time now = absl::Now();
    if (now >= next_scan) {
      ScanProcesses();
      next_scan = now + options_.scan_interval;
    }
    // Settled files: ingest.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.second > now) {
        ++it;
        continue;
      }
      std::string path = it->first;
      DumpKind kind = it->second.first;
      it = pending_.erase(it);
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0) continue;  // gone (or ingested) meanwhile
      auto failed = failed_.find(path);
      if (failed != failed_.end() && failed->second == MtimeNs(st)) continue;
      auto meta = IngestFile(path, kind);
      if (!meta.ok()) {
        failed_[path] = MtimeNs(st);
        if (options_.on_error) options_.on_error(path, meta.status());
      } else {
        failed_.erase(path);
        if (options_.on_ingested) options_.on_ingested(*meta);
      }
    }
    absl::Time wake = next_scan;
    for (const auto& [p, v] : pending_) wake = std::min(wake, v.second);
    int timeout_ms = static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(wake - absl::Now()) + 1, 0, 60000));
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    while (true) {
      ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
      if (len <= 0) break;
      for (ssize_t off = 0; off < len;) {
        auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        auto w = watches_.find(ev->wd);
        if (w == watches_.end() || ev->len == 0) continue;
        std::string name(ev->name);
        if (!IsCandidate(name)) continue;
        std::string path = w->second.path + "/" + name;
        // Closed after writing, moved in, or still changing while it waits to settle: (re)start
        // its settle time.
        const bool closed = (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0;
        const bool changing = (ev->mask & IN_MODIFY) != 0 && pending_.count(path) != 0;
        if (closed || changing) ScheduleOrIngest(path, w->second.kind, /*now=*/false);
      }
    }
  }
}

void CrashIngester::ScanProcesses() {
  for (const auto& facts : procfs::ScanDotnetProcesses(fs_, ::getpid())) {
    // Runtime files, once per build-id.
    auto maps = fs_.ReadMaps(facts.pid);
    if (maps.ok()) {
      for (const auto& m : *maps) {
        if (!absl::EndsWith(m.path, "/libcoreclr.so")) continue;
        std::string host_lib = fs_.RootPath(facts.pid) + m.path;
        auto bid = elf::ReadGnuBuildId(host_lib);
        if (bid.ok() && !store_->HasRuntimeFiles(*bid)) {
          std::string dir = host_lib.substr(0, host_lib.rfind('/'));
          std::vector<std::string> files = {host_lib};
          struct stat st;
          if (::stat((dir + "/libmscordaccore.so").c_str(), &st) == 0) {
            files.push_back(dir + "/libmscordaccore.so");
            (void)store_->StoreRuntimeFiles(*bid, files);
          }
        }
        break;
      }
    }
    std::lock_guard<std::mutex> lock(facts_mu_);
    seen_[{facts.ns_pid, facts.name.substr(0, kCoreNameBytes)}] = facts;
  }
}

absl::StatusOr<DumpMeta> CrashIngester::IngestFile(const std::string& path, DumpKind kind) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "crash dump " + path);
  // Apps write here: only a plain file with one link is taken (no symlink or hard link games).
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is not a regular file with a single link; left alone (remove it by hand)"));
  }
  auto core = elf::CoreFile::Open(path);
  if (!core.ok()) {
    return absl::DataLossError(absl::StrCat(
        path, " is not a complete ELF core dump (", core.status().message(),
        "); left where it is. If the process is still writing it, it is tried again when it "
        "changes; otherwise remove it or analyze it by hand"));
  }
  internal::CoreProcessInfo proc = internal::ReadCoreProcessInfo(path);
  DumpMeta meta;
  meta.kind = kind;
  meta.origin = "crash";
  meta.source_path = path;
  meta.ns_pid = proc.pid;
  meta.pid = proc.pid;
  meta.process_name = proc.name;
  meta.command_line = proc.args;
  meta.requested_by_uid = st.st_uid;  // the app's user wrote it: it may see its own crash
  meta.started = absl::TimeFromTimespec(st.st_ctim);
  std::string coreclr_path;
  for (const auto& m : (*core)->modules()) {
    if (absl::EndsWith(m.path, "/libcoreclr.so")) {
      meta.coreclr_build_id = m.build_id;
      coreclr_path = m.path;
      break;
    }
  }
  meta.runtime_version = RuntimeVersionFromCoreclrPath(coreclr_path);
  core->reset();
  // What the daemon saw of the process while it ran (host pid, full command line, pod).
  {
    std::lock_guard<std::mutex> lock(facts_mu_);
    auto seen = seen_.find({proc.pid, proc.name.substr(0, kCoreNameBytes)});
    if (seen != seen_.end()) {
      const procfs::ProcessFacts& f = seen->second;
      meta.pid = f.pid;
      meta.process_name = f.name;
      meta.command_line = absl::StrJoin(f.cmdline, " ");
      meta.container_id = f.k8s.container_id;
      meta.pod = f.k8s.pod;
      meta.pod_namespace = f.k8s.namespace_;
      seen_.erase(seen);
    }
  }
  // The runtime files: stored already when the process was seen running; else from a process
  // still running the same runtime, or the path in the dump when it is readable here.
  if (!meta.coreclr_build_id.empty()) {
    if (!store_->HasRuntimeFiles(meta.coreclr_build_id)) ScanProcesses();
    if (!store_->HasRuntimeFiles(meta.coreclr_build_id) && !coreclr_path.empty()) {
      auto bid = elf::ReadGnuBuildId(coreclr_path);
      std::string dac = coreclr_path.substr(0, coreclr_path.rfind('/')) + "/libmscordaccore.so";
      struct stat dst;
      if (bid.ok() && *bid == meta.coreclr_build_id && ::stat(dac.c_str(), &dst) == 0) {
        (void)store_->StoreRuntimeFiles(*bid, {coreclr_path, dac});
      }
    }
    meta.runtime_files_stored = store_->HasRuntimeFiles(meta.coreclr_build_id);
  }

  meta.id = store_->NewId(meta.pid, kind, absl::Now());
  ASSIGN_OR_RETURN(std::string staging, store_->CreateStaging(meta.id));
  bool committed = false;
  std::string stored = store_->StagingDumpPath(meta.id);
  auto discard = [&] {
    if (!committed) store_->DiscardStaging(meta.id);
  };
  // Hash while the file is still where the app left it; the move keeps the same bytes.
  auto digest = Sha256File(path);
  if (!digest.ok()) {
    discard();
    return digest.status();
  }
  meta.sha256 = *digest;
  meta.size_bytes = static_cast<uint64_t>(st.st_size);
  if (absl::Status moved = MoveInto(path, stored); !moved.ok()) {
    discard();
    return absl::Status(moved.code(), absl::StrCat("cannot move the crash dump into the catalog: ",
                                                   moved.message(), "; it was left at ", path));
  }
  std::string report = path + kReportSuffix;
  struct stat rst;
  if (::lstat(report.c_str(), &rst) == 0 && S_ISREG(rst.st_mode) && rst.st_nlink == 1 &&
      MoveInto(report, staging + "/crashreport.json").ok()) {
    meta.has_crash_report = true;
  }
  meta.finished = absl::Now();
  if (absl::Status c = store_->Commit(meta); !c.ok()) {
    // Give the file back rather than lose it.
    (void)MoveInto(stored, path);
    discard();
    return c;
  }
  committed = true;
  store_->EnforceRetention(meta.id);
  return meta;
}

}  // namespace clrdiag::dump
