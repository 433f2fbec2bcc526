// Helpers shared by procfs.cc and discovery.cc; not part of the module's API.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace clrdiag::procfs {

// Reads a whole file with one open and a read loop (procfs files report size 0).
// ENOENT/ESRCH give NotFound, EACCES/EPERM PermissionDenied.
absl::StatusOr<std::string> ReadProcFile(const std::string& path);

// The value of `name` in a NUL-separated environ block, without copying the block.
std::optional<std::string_view> FindEnvVar(std::string_view environ, std::string_view name);

}  // namespace clrdiag::procfs
