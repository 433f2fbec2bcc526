// Early-return helpers for absl::Status / absl::StatusOr, so error paths stay one line.
#pragma once

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define CLRDIAG_CONCAT_INNER_(a, b) a##b
#define CLRDIAG_CONCAT_(a, b) CLRDIAG_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::absl::Status clrdiag_status_ = (expr);           \
    if (!clrdiag_status_.ok()) return clrdiag_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` unwraps a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(CLRDIAG_CONCAT_(clrdiag_statusor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `tmp` is a pasted identifier and `lhs` a
// declaration (`auto x`); neither may be parenthesized.
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

namespace clrdiag {

// Maps an errno value to the closest absl status code.
absl::StatusCode ErrnoToCode(int err);

// A status for a failed system call: "<what>: <strerror>" with a code derived from errno.
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace clrdiag
