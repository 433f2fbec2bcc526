// Procfs readings for the engine's procfs triggers: resident set, CPU time, threads, fds.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "core/automation/engine.h"

namespace clrdiag::automation {

// Reads <proc_root>/<pid>/stat (utime + stime, num_threads, rss pages) and counts the entries
// of <proc_root>/<pid>/fd. NotFound when the process is gone.
absl::StatusOr<ProcSample> SampleProcess(const std::string& proc_root, pid_t pid);

// Parses the text of /proc/<pid>/stat (exposed for tests): fields after the last ')'.
absl::StatusOr<ProcSample> ParseStat(const std::string& text, long page_size);

}  // namespace clrdiag::automation
