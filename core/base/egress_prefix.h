// Expansion of egress prefixes such as "{namespace}/{pod}/{name}-{pid}/" into the object key or
// directory prefix under which a collected dump is stored. Placeholders:
//   {pod} {namespace} {container} (the 64-hex container id) {name} (process name)
//   {pid} (host pid) {type} (dump type, e.g. "heap") {time} (UTC, 20261127T120000Z)
// "{{" and "}}" are literal braces. Values come partly from the target process (its HOSTNAME,
// its name), so each is reduced to [A-Za-z0-9._-] (anything else becomes '_'), and an empty
// value, "." or ".." becomes "_": a value never adds a path level or climbs out of one.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace clrdiag {

struct EgressPrefixValues {
  std::string pod;
  std::string namespace_;
  std::string container;
  std::string name;
  pid_t pid = 0;
  std::string type;
  absl::Time time = absl::UnixEpoch();
};

// InvalidArgument naming the first problem and its offset: an unknown placeholder (the message
// lists the known ones), an unclosed '{', or a lone '}'. For config checking.
absl::Status ValidateEgressPrefix(std::string_view prefix);

// The prefix with each placeholder replaced; the errors of ValidateEgressPrefix.
absl::StatusOr<std::string> ExpandEgressPrefix(std::string_view prefix,
                                               const EgressPrefixValues& values);

}  // namespace clrdiag
