// Egress: sending a collected dump somewhere else after it is in the catalog. A target gets
// the dump file and the facts its prefix template needs; the catalog copy is never touched, so
// a failed egress loses nothing.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/automation/rules.h"

namespace clrdiag::automation {

struct EgressItem {
  std::string dump_path;  // the catalog's dump file (read only)
  std::string file_name;  // the name to store it under, e.g. "<dump id>.dmp"
  std::string dump_id;
  uint64_t size_bytes = 0;
  std::string sha256;  // lower-case hex, from the catalog
  // For the prefix template (core/base/egress_prefix.h).
  std::string process_name;
  pid_t pid = 0;
  std::string type;  // "Full", "Mini", ...
  std::string pod;
  std::string k8s_namespace;
  std::string container_id;
  absl::Time time;  // when the dump was collected
};

class EgressTarget {
 public:
  virtual ~EgressTarget() = default;
  virtual const std::string& name() const = 0;
  // Sends one dump; returns where it went (a path or URL) for events and the catalog.
  virtual absl::StatusOr<std::string> Send(const EgressItem& item) = 0;
};

// The prefix of `config` expanded for `item`, then item.file_name.
absl::StatusOr<std::string> EgressObjectKey(const std::string& prefix, const EgressItem& item);

// Copies the dump to a hidden temporary name in the target directory (created 0700 if
// missing, with the prefix's subdirectories), fsyncs it, checks its size, and renames it to
// <directory>/<expanded prefix><file name>, then fsyncs the directory: a reader of the
// directory never sees a partial file under the final name.
class FilesystemEgress : public EgressTarget {
 public:
  explicit FilesystemEgress(EgressConfig config) : config_(std::move(config)) {}
  const std::string& name() const override { return config_.name; }
  absl::StatusOr<std::string> Send(const EgressItem& item) override;

 private:
  EgressConfig config_;
};

// Builds the target for `config`: filesystem here; for s3, `make_s3` (may be empty: then an
// s3 target reports "S3 egress is not built into this daemon" at each Send).
using S3Factory = std::function<absl::StatusOr<std::unique_ptr<EgressTarget>>(const EgressConfig&)>;
absl::StatusOr<std::unique_ptr<EgressTarget>> MakeEgressTarget(const EgressConfig& config,
                                                               const S3Factory& make_s3);

}  // namespace clrdiag::automation
