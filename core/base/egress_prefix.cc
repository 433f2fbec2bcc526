#include "core/base/egress_prefix.h"

#include <optional>

#include "absl/strings/str_cat.h"

namespace clrdiag {
namespace {

constexpr std::string_view kKnown = "{pod} {namespace} {container} {name} {pid} {type} {time}";

std::string Sanitize(std::string_view value) {
  if (value.empty() || value == "." || value == "..") return "_";
  std::string out(value);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

std::optional<std::string> Lookup(std::string_view key, const EgressPrefixValues* v) {
  if (key == "pod") return v ? Sanitize(v->pod) : "";
  if (key == "namespace") return v ? Sanitize(v->namespace_) : "";
  if (key == "container") return v ? Sanitize(v->container) : "";
  if (key == "name") return v ? Sanitize(v->name) : "";
  if (key == "pid") return v ? absl::StrCat(v->pid) : "";
  if (key == "type") return v ? Sanitize(v->type) : "";
  if (key == "time") {
    return v ? absl::FormatTime("%Y%m%dT%H%M%SZ", v->time, absl::UTCTimeZone()) : "";
  }
  return std::nullopt;
}

// Both entry points: `values` null only validates.
absl::StatusOr<std::string> Expand(std::string_view prefix, const EgressPrefixValues* values) {
  const std::string text(prefix);  // for messages (absl::StrCat takes absl::string_view)
  std::string out;
  for (size_t i = 0; i < prefix.size(); ++i) {
    const char c = prefix[i];
    if ((c == '{' || c == '}') && i + 1 < prefix.size() && prefix[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}') {
      return absl::InvalidArgumentError(absl::StrCat("egress prefix \"", text, "\": '}' at ", i,
                                                     " closes nothing (write }} for a brace)"));
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = prefix.find('}', i + 1);
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("egress prefix \"", text, "\": '{' at ", i,
                                                     " is not closed (write {{ for a brace)"));
    }
    const std::string_view key = prefix.substr(i + 1, close - i - 1);
    std::optional<std::string> value = Lookup(key, values);
    if (!value) {
      return absl::InvalidArgumentError(
          absl::StrCat("egress prefix \"", text, "\": unknown placeholder {", std::string(key),
                       "} at ", i, " (known: ", std::string(kKnown), ")"));
    }
    out += *value;
    i = close;
  }
  return out;
}

}  // namespace

absl::Status ValidateEgressPrefix(std::string_view prefix) {
  return Expand(prefix, nullptr).status();
}

absl::StatusOr<std::string> ExpandEgressPrefix(std::string_view prefix,
                                               const EgressPrefixValues& values) {
  return Expand(prefix, &values);
}

}  // namespace clrdiag
