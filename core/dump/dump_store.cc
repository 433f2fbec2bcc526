#include "core/dump/dump_store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/base/fs.h"
#include "core/base/status_macros.h"
#include "core/dump/dump_store_internal.h"
#include "nlohmann/json.hpp"

namespace clrdiag::dump {
namespace {

using internal::kDirMode;
using internal::kFileMode;
using internal::kPartialSuffix;
using internal::kStagingNoteName;
using internal::ListDir;

std::string FormatIsoTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

absl::Time ParseTimeOr(const std::string& s) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", s, absl::UTCTimeZone(), &t, &err)) return t;
  return absl::UnixEpoch();
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
  j["origin"] = m.origin;
  if (!m.source_path.empty()) j["source_path"] = m.source_path;
  if (!m.container_id.empty()) j["container_id"] = m.container_id;
  if (!m.pod.empty()) j["pod"] = m.pod;
  if (!m.pod_namespace.empty()) j["pod_namespace"] = m.pod_namespace;
  if (!m.rule.empty()) j["rule"] = m.rule;
  if (!m.egress.empty()) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& e : m.egress) {
      nlohmann::ordered_json x;
      x["name"] = e.name;
      x["state"] = e.state;
      x["location"] = e.location;
      x["error"] = e.error;
      x["time"] = FormatIsoTime(e.time);
      arr.push_back(std::move(x));
    }
    j["egress"] = std::move(arr);
  }
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
    m.origin = j.value("origin", "collect");
    m.source_path = j.value("source_path", "");
    m.container_id = j.value("container_id", "");
    m.pod = j.value("pod", "");
    m.pod_namespace = j.value("pod_namespace", "");
    m.rule = j.value("rule", "");
    if (j.contains("egress") && j["egress"].is_array()) {
      for (const auto& x : j["egress"]) {
        DumpMeta::Egress e;
        e.name = x.value("name", "");
        e.state = x.value("state", "");
        e.location = x.value("location", "");
        e.error = x.value("error", "");
        e.time = ParseTimeOr(x.value("time", ""));
        m.egress.push_back(std::move(e));
      }
    }
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

absl::StatusOr<std::unique_ptr<DumpStore>> DumpStore::Open(const std::string& root,
                                                           StoreOptions options) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("dump directory must be absolute: '", root, "'"));
  }
  auto store = std::unique_ptr<DumpStore>(new DumpStore(root, std::move(options)));
  for (const char* sub : {"", "/dumps", "/runtimes"}) {
    // Existing directories keep their modes here: FixModes corrects (and logs) them.
    struct stat st;
    absl::Status made = ::stat((root + sub).c_str(), &st) == 0 && S_ISDIR(st.st_mode)
                            ? absl::OkStatus()
                            : MakeDirs(root + sub, kDirMode);
    if (!made.ok()) {
      return absl::Status(made.code(),
                          absl::StrCat("cannot use dump directory ", root, ": ", made.message(),
                                       " (choose another --dump-dir)"));
    }
  }
  RETURN_IF_ERROR(store->Lock());
  store->FixModes();
  store->RemoveLeftovers();
  store->Reconcile();
  store->EnforceRetention();
  return store;
}

DumpStore::~DumpStore() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void DumpStore::Log(StoreLogLevel level, const std::string& line) const {
  if (options_.log) options_.log(level, line);
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
  (void)::unlink((dir + "/" + kStagingNoteName).c_str());  // only for crash recovery
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/meta.json", MetaToJson(meta), kFileMode));
  std::string final_dir = absl::StrCat(root_, "/dumps/", meta.id);
  if (::rename(dir.c_str(), final_dir.c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("rename ", dir));
  }
  if (options_.on_committed) options_.on_committed(meta.id);
  return absl::OkStatus();
}

absl::Status DumpStore::UpdateMeta(const DumpMeta& meta) {
  if (!IsValidDumpId(meta.id)) return absl::InvalidArgumentError("invalid dump id");
  std::string dir = absl::StrCat(root_, "/dumps/", meta.id);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("dump ", meta.id, " is no longer in the catalog"));
  }
  return WriteFileAtomic(dir + "/meta.json", MetaToJson(meta), kFileMode);
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
  const uint64_t bytes = StoredBytes(meta);
  {
    std::lock_guard<std::mutex> lock(pins_mu_);
    auto it = pins_.find(id);
    if (it != pins_.end() && !it->second.empty()) {
      std::map<std::string, int> holders;
      for (const auto& [token, holder] : it->second) ++holders[holder];
      std::vector<std::string> parts;
      parts.reserve(holders.size());
      for (const auto& [holder, n] : holders) {
        parts.push_back(n == 1 ? holder : absl::StrCat(holder, " (", n, ")"));
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "dump ", id, " is in use by ", absl::StrJoin(parts, ", "),
          "; remove it when that ends: close analysis sessions (`clrdiag sessions`, then "
          "`clrdiag sessions --close ID`) or let the download finish, and retry"));
    }
    RETURN_IF_ERROR(HideLocked(id));
  }
  // Out of the catalog now; a crash before this completes leaves a *.partial for Open.
  if (options_.on_removing) options_.on_removing(id);
  RETURN_IF_ERROR(RemoveTree(StagingDir(id)));
  return bytes;
}

std::string DumpStore::GraphPath(const std::string& id) const {
  return absl::StrCat(root_, "/dumps/", id, "/heapgraph");
}

uint64_t DumpStore::StoredBytes(const DumpMeta& meta) const {
  struct stat st {};
  if (!IsValidDumpId(meta.id) || ::stat(GraphPath(meta.id).c_str(), &st) != 0) {
    return meta.size_bytes;
  }
  return meta.size_bytes + static_cast<uint64_t>(st.st_size);
}

absl::Status DumpStore::HideLocked(const std::string& id) {
  std::string dir = absl::StrCat(root_, "/dumps/", id);
  // Rename first so a concurrent List never sees a half-deleted dump.
  if (::rename(dir.c_str(), StagingDir(id).c_str()) != 0) {
    return ErrnoStatus(errno, absl::StrCat("remove dump ", id));
  }
  return absl::OkStatus();
}

absl::StatusOr<DumpPin> DumpStore::Pin(const std::string& id, const std::string& holder) {
  if (!IsValidDumpId(id)) return absl::InvalidArgumentError("invalid dump id");
  std::lock_guard<std::mutex> lock(pins_mu_);
  // Under pins_mu_, a dump that exists now cannot be hidden before the pin is in place.
  struct stat st;
  if (::stat(absl::StrCat(root_, "/dumps/", id, "/meta.json").c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("no dump with id ", id, " (list them with `clrdiag dumps`)"));
  }
  DumpPin pin;
  pin.store_ = this;
  pin.id_ = id;
  pin.token_ = next_pin_token_++;
  pins_[id][pin.token_] = holder;
  return pin;
}

std::vector<std::string> DumpStore::PinHolders(const std::string& id) const {
  std::lock_guard<std::mutex> lock(pins_mu_);
  std::vector<std::string> out;
  auto it = pins_.find(id);
  if (it != pins_.end()) {
    for (const auto& [token, holder] : it->second) out.push_back(holder);
  }
  return out;
}

void DumpStore::Unpin(const std::string& id, uint64_t token) {
  bool rerun = false;
  {
    std::lock_guard<std::mutex> lock(pins_mu_);
    auto it = pins_.find(id);
    if (it == pins_.end()) return;
    it->second.erase(token);
    if (it->second.empty()) {
      pins_.erase(it);
      rerun = retention_held_back_;
    }
  }
  // This dump may have been what kept the store over its limits.
  if (rerun) EnforceRetention();
}

DumpPin& DumpPin::operator=(DumpPin&& other) noexcept {
  if (this != &other) {
    Release();
    store_ = other.store_;
    id_ = std::move(other.id_);
    token_ = other.token_;
    other.store_ = nullptr;
  }
  return *this;
}

void DumpPin::Release() {
  if (store_) store_->Unpin(id_, token_);
  store_ = nullptr;
}

std::string DumpStore::IdForPath(const std::string& path) const {
  char resolved[PATH_MAX], dumps[PATH_MAX];
  if (!::realpath(path.c_str(), resolved) || !::realpath((root_ + "/dumps").c_str(), dumps)) {
    return "";
  }
  std::string r = resolved, prefix = std::string(dumps) + "/";
  if (!absl::StartsWith(r, prefix) || !absl::EndsWith(r, "/dump")) return "";
  std::string id = r.substr(prefix.size(), r.size() - prefix.size() - 5);
  return IsValidDumpId(id) ? id : "";
}

absl::Status DumpStore::WriteStagingNote(const std::string& id, const std::string& note) {
  if (!IsValidDumpId(id)) return absl::InvalidArgumentError("invalid dump id");
  return WriteFileAtomic(StagingDir(id) + "/" + kStagingNoteName, note, kFileMode);
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
