#include "core/automation/egress.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/egress_prefix.h"
#include "core/base/unique_fd.h"

namespace clrdiag::automation {
namespace {

absl::Status Errno(const std::string& what) {
  int e = errno;
  return absl::Status(e == EACCES || e == EPERM || e == EROFS ? absl::StatusCode::kPermissionDenied
                      : e == ENOSPC                           ? absl::StatusCode::kResourceExhausted
                                                              : absl::StatusCode::kInternal,
                      absl::StrCat(what, ": ", std::strerror(e)));
}

// mkdir -p of `rel` under `base` (each level 0700), returning an fd of the deepest directory.
absl::StatusOr<UniqueFd> OpenDirs(const std::string& base, const std::string& rel) {
  if (::mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir " + base);
  UniqueFd dir(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return Errno("open " + base);
  std::string path = base;
  for (absl::string_view part : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    std::string p(part);
    path += "/" + p;
    if (::mkdirat(dir.get(), p.c_str(), 0700) != 0 && errno != EEXIST) {
      return Errno("mkdir " + path);
    }
    UniqueFd next(::openat(dir.get(), p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return Errno("open " + path);
    dir = std::move(next);
  }
  return dir;
}

}  // namespace

absl::StatusOr<std::string> EgressObjectKey(const std::string& prefix, const EgressItem& item) {
  EgressPrefixValues v;
  v.pod = item.pod;
  v.namespace_ = item.k8s_namespace;
  v.container = item.container_id;
  v.name = item.process_name;
  v.pid = item.pid;
  v.type = item.type;
  v.time = item.time;
  auto expanded = ExpandEgressPrefix(prefix, v);
  if (!expanded.ok()) return expanded.status();
  return *expanded + item.file_name;
}

absl::StatusOr<std::string> FilesystemEgress::Send(const EgressItem& item) {
  auto key = EgressObjectKey(config_.prefix, item);
  if (!key.ok()) return key.status();
  std::string rel_dir, file = *key;
  if (size_t slash = key->rfind('/'); slash != std::string::npos) {
    rel_dir = key->substr(0, slash);
    file = key->substr(slash + 1);
  }
  if (file.empty() || file == "." || file == "..") {
    return absl::InvalidArgumentError(absl::StrCat("egress ", config_.name, ": bad file name"));
  }
  auto dir = OpenDirs(config_.directory, rel_dir);
  if (!dir.ok()) return dir.status();
  const std::string final_path =
      absl::StrCat(config_.directory, "/", rel_dir.empty() ? "" : rel_dir + "/", file);
  UniqueFd src(::open(item.dump_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!src) return Errno("open " + item.dump_path);
  const std::string tmp = absl::StrCat(".", file, ".partial-", ::getpid());
  UniqueFd dst(::openat(dir->get(), tmp.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!dst) return Errno(absl::StrCat("create ", config_.directory, "/", rel_dir, "/", tmp));
  auto fail = [&](absl::Status st) {
    ::unlinkat(dir->get(), tmp.c_str(), 0);
    return st;
  };
  std::vector<char> buf(1 << 20);
  uint64_t copied = 0;
  for (;;) {
    ssize_t n = ::read(src.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Errno("read " + item.dump_path));
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(dst.get(), buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail(Errno("write " + final_path));
      }
      off += w;
    }
    copied += static_cast<uint64_t>(n);
  }
  if (item.size_bytes != 0 && copied != item.size_bytes) {
    return fail(absl::DataLossError(absl::StrCat("copied ", copied, " bytes of ", item.dump_path,
                                                 ", the catalog says ", item.size_bytes)));
  }
  if (::fsync(dst.get()) != 0) return fail(Errno("fsync " + final_path));
  dst.Reset();
  if (::renameat(dir->get(), tmp.c_str(), dir->get(), file.c_str()) != 0) {
    return fail(Errno("rename into " + final_path));
  }
  ::fsync(dir->get());
  return final_path;
}

namespace {
class MissingS3 : public EgressTarget {
 public:
  explicit MissingS3(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  absl::StatusOr<std::string> Send(const EgressItem&) override {
    return absl::UnimplementedError(
        absl::StrCat("egress ", name_, ": S3 egress is not built into this daemon"));
  }

 private:
  std::string name_;
};
}  // namespace

absl::StatusOr<std::unique_ptr<EgressTarget>> MakeEgressTarget(const EgressConfig& config,
                                                               const S3Factory& make_s3) {
  if (config.type == EgressConfig::Type::kFilesystem) {
    return std::unique_ptr<EgressTarget>(new FilesystemEgress(config));
  }
  if (make_s3) return make_s3(config);
  return std::unique_ptr<EgressTarget>(new MissingS3(config.name));
}

}  // namespace clrdiag::automation
