#include "core/dump/dump_store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/fs.h"
#include "core/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace clrdiag::dump {
namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr char kPartialSuffix[] = ".partial";

std::string FormatIsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

absl::Time ParseTimeOr(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", s, absl::UTCTimeZone(), &t, &err)) return t;
  return absl::UnixEpoch();
}

std::vector<std::string> ListDir(const std::string& dir) {
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

}  // namespace

absl::string_view DumpKindName(DumpKind kind) {
  switch (kind) {
    case DumpKind::kFull:
      return "Full";
    case DumpKind::kHeap:
      return "Heap";
    case DumpKind::kMini:
      return "Mini";
    case DumpKind::kTriage:
      return "Triage";
  }
  return "Full";
}

absl::StatusOr<DumpKind> ParseDumpKind(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(std::string(name));
  if (n == "full") return DumpKind::kFull;
  if (n == "heap") return DumpKind::kHeap;
  if (n == "mini") return DumpKind::kMini;
  if (n == "triage") return DumpKind::kTriage;
  return absl::InvalidArgumentError(
      absl::StrCat("invalid dump type '", name, "': use Full, Heap, Mini or Triage"));
}

std::string MetaToJson(const DumpMeta& m) {
  nlohmann::ordered_json j;
  j["id"] = m.id;
  j["type"] = std::string(DumpKindName(m.kind));
  j["pid"] = m.pid;
  j["namespace_pid"] = m.ns_pid;
  j["process_name"] = m.process_name;
  j["command_line"] = m.command_line;
  j["runtime_version"] = m.runtime_version;
  j["runtime_identifier"] = m.runtime_identifier;
  j["size_bytes"] = m.size_bytes;
  j["sha256"] = m.sha256;
  j["started"] = FormatIsoTime(m.started);
  j["finished"] = FormatIsoTime(m.finished);
  j["requested_by_uid"] = m.requested_by_uid;
  j["coreclr_build_id"] = m.coreclr_build_id;
  j["runtime_files_stored"] = m.runtime_files_stored;
  j["has_crash_report"] = m.has_crash_report;
  return j.dump(2) + "\n";
}

absl::StatusOr<DumpMeta> MetaFromJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::DataLossError("meta.json is not a JSON object");
  DumpMeta m;
  try {
    m.id = j.at("id").get<std::string>();
    ASSIGN_OR_RETURN(m.kind, ParseDumpKind(j.at("type").get<std::string>()));
    m.pid = j.value("pid", 0);
    m.ns_pid = j.value("namespace_pid", 0);
    m.process_name = j.value("process_name", "");
    m.command_line = j.value("command_line", "");
    m.runtime_version = j.value("runtime_version", "");
    m.runtime_identifier = j.value("runtime_identifier", "");
    m.size_bytes = j.value("size_bytes", uint64_t{0});
    m.sha256 = j.value("sha256", "");
    m.started = ParseTimeOr(j.value("started", ""));
    m.finished = ParseTimeOr(j.value("finished", ""));
    m.requested_by_uid = j.value("requested_by_uid", 0u);
    m.coreclr_build_id = j.value("coreclr_build_id", "");
    m.runtime_files_stored = j.value("runtime_files_stored", false);
    m.has_crash_report = j.value("has_crash_report", false);
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("meta.json: ", e.what()));
  }
  if (!IsValidDumpId(m.id)) return absl::DataLossError("meta.json: invalid id");
  return m;
}

bool IsValidDumpId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '-'; });
}

absl::StatusOr<std::unique_ptr<DumpStore>> DumpStore::Open(const std::string& root) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("dump directory must be absolute: '", root, "'"));
  }
  auto store = std::unique_ptr<DumpStore>(new DumpStore(root));
  for (const char* sub : {"", "/dumps", "/runtimes"}) {
    absl::Status st = MakeDirs(root + sub, kDirMode);
    if (!st.ok()) {
      return absl::Status(st.code(), absl::StrCat("cannot use dump directory ", root, ": ",
                                                  st.message(), " (choose another --dump-dir)"));
    }
  }
  // A crash mid-collection leaves *.partial directories behind; they were never listed.
  for (const char* sub : {"/dumps", "/runtimes"}) {
    for (const auto& name : ListDir(root + sub)) {
      if (absl::EndsWith(name, kPartialSuffix))
        (void)RemoveTree(absl::StrCat(root, sub, "/", name));
    }
  }
  return store;
}

std::string DumpStore::NewId(pid_t pid, DumpKind kind, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  for (;;) {
    std::string id = absl::StrFormat("%s-%d-%s-%04x",
                                     absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()),
                                     pid, absl::AsciiStrToLower(std::string(DumpKindName(kind))),
                                     static_cast<unsigned>(rng() & 0xffff));
    struct stat st;
    if (::stat(DumpPath(id).c_str(), &st) != 0 && ::stat(StagingDir(id).c_str(), &st) != 0) {
      return id;
    }
  }
}

std::string DumpStore::StagingDir(const std::string& id) const {
  return absl::StrCat(root_, "/dumps/", id, kPartialSuffix);
}
std::string DumpStore::StagingDumpPath(const std::string& id) const {
  return StagingDir(id) + "/dump";
}
std::string DumpStore::DumpPath(const std::string& id) const {
  return absl::StrCat(root_, "/dumps/", id, "/dump");
}
std::string DumpStore::CrashReportPath(const std::string& id) const {
  return absl::StrCat(root_, "/dumps/", id, "/crashreport.json");
}
std::string DumpStore::RuntimeDir(const std::string& build_id) const {
  return absl::StrCat(root_, "/runtimes/", build_id);
}

absl::StatusOr<std::string> DumpStore::CreateStaging(const std::string& id) {
  if (!IsValidDumpId(id)) return absl::InvalidArgumentError("invalid dump id");
  std::string dir = StagingDir(id);
  if (::mkdir(dir.c_str(), kDirMode) != 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot create ", dir));
  }
  return dir;
}

absl::Status DumpStore::Commit(const DumpMeta& meta) {
  std::string dir = StagingDir(meta.id);
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/meta.json", MetaToJson(meta), kFileMode));
  std::string final_dir = absl::StrCat(root_, "/dumps/", meta.id);
  if (::rename(dir.c_str(), final_dir.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", dir));
  }
  return absl::OkStatus();
}

void DumpStore::DiscardStaging(const std::string& id) {
  if (IsValidDumpId(id)) (void)RemoveTree(StagingDir(id));
}

absl::StatusOr<DumpMeta> DumpStore::Get(const std::string& id) const {
  if (!IsValidDumpId(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", id, "' is not a dump id (ids look like 20261127-031502-4242-full-1a2b)"));
  }
  auto text = ReadFileToString(absl::StrCat(root_, "/dumps/", id, "/meta.json"), 1 << 20);
  if (!text.ok()) {
    if (text.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("no dump with id ", id, " (list them with `clrdiag dumps`)"));
    }
    return text.status();
  }
  return MetaFromJson(*text);
}

std::vector<DumpMeta> DumpStore::List() const {
  std::vector<DumpMeta> out;
  for (const auto& name : ListDir(root_ + "/dumps")) {
    if (absl::EndsWith(name, kPartialSuffix) || !IsValidDumpId(name)) continue;
    auto m = Get(name);
    if (m.ok()) out.push_back(std::move(*m));
  }
  std::sort(out.begin(), out.end(), [](const DumpMeta& a, const DumpMeta& b) {
    if (a.started != b.started) return a.started > b.started;
    return a.id > b.id;
  });
  return out;
}

absl::StatusOr<uint64_t> DumpStore::Delete(const std::string& id) {
  ASSIGN_OR_RETURN(DumpMeta meta, Get(id));
  std::string dir = absl::StrCat(root_, "/dumps/", id);
  // Rename first so a concurrent List never sees a half-deleted dump.
  std::string doomed = StagingDir(id);
  if (::rename(dir.c_str(), doomed.c_str()) != 0) return ErrnoStatus(errno, "remove dump");
  RETURN_IF_ERROR(RemoveTree(doomed));
  return meta.size_bytes;
}

bool DumpStore::HasRuntimeFiles(const std::string& build_id) const {
  struct stat st;
  return IsValidDumpId(build_id) && ::stat(RuntimeDir(build_id).c_str(), &st) == 0;
}

absl::Status DumpStore::StoreRuntimeFiles(const std::string& build_id,
                                          const std::vector<std::string>& source_paths) {
  if (!IsValidDumpId(build_id)) return absl::InvalidArgumentError("invalid build id");
  std::lock_guard<std::mutex> lock(mu_);
  if (HasRuntimeFiles(build_id)) return absl::OkStatus();
  std::string staging = RuntimeDir(build_id) + kPartialSuffix;
  (void)RemoveTree(staging);
  if (::mkdir(staging.c_str(), kDirMode) != 0) return ErrnoStatus(errno, "mkdir " + staging);
  for (const auto& src : source_paths) {
    std::string base = src.substr(src.rfind('/') + 1);
    absl::Status st = CopyFile(src, absl::StrCat(staging, "/", base), kFileMode);
    if (!st.ok()) {
      (void)RemoveTree(staging);
      return st;
    }
  }
  if (::rename(staging.c_str(), RuntimeDir(build_id).c_str()) != 0) {
    int err = errno;
    (void)RemoveTree(staging);
    return ErrnoStatus(err, "install runtime files");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DumpStore::FreeBytes() const {
  struct statvfs vfs;
  if (::statvfs(root_.c_str(), &vfs) != 0) return ErrnoStatus(errno, "statvfs " + root_);
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

}  // namespace clrdiag::dump
