// Small filesystem helpers with Status errors.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace clrdiag {

// mkdir -p with the given mode for created directories; re-asserts the mode on the last one.
absl::Status MakeDirs(const std::string& path, mode_t mode);
// rm -rf of one path (no following of symlinks). Missing is OK.
absl::Status RemoveTree(const std::string& path);
absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 64 << 20);
// Writes via a temp file + rename, with the given mode.
absl::Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode);
absl::StatusOr<uint64_t> FileSize(const std::string& path);

// write(2) until all `len` bytes are written, retrying on EINTR and short writes. Returns false
// with errno set on failure.
bool WriteFully(int fd, const void* data, size_t len);

// Streams `src` to `dst` (created with `mode`, must not exist) in 1 MiB blocks, never
// holding the whole file in memory. `on_block(data, len, copied_so_far)` sees every block
// (for hashing and progress). ENOSPC comes back as ResourceExhausted naming `dst`.
absl::Status CopyFile(const std::string& src, const std::string& dst, mode_t mode,
                      const std::function<void(const void*, size_t, uint64_t)>& on_block = {});

}  // namespace clrdiag
