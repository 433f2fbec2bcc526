// UTF-8 checks for text that leaves the worker in protobuf `string` fields, which must hold
// valid UTF-8: a dump's bytes (a C string at a random address, a lone UTF-16 surrogate) are
// not, and a frame cut at a fixed size may end inside a character.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace clrdiag {

// The length of `s` without a trailing partial character: the last 1-3 bytes when they start
// a multi-byte sequence that the rest of the input may complete. Everything before is
// returned as is (valid or not).
size_t Utf8CompletePrefix(absl::string_view s);

// Replaces each byte that is not part of a well-formed UTF-8 sequence (stray continuation
// bytes, overlong forms, surrogates, values above U+10FFFF, cut sequences) with U+FFFD.
// Returns the number of replacements; valid text is left untouched.
size_t Utf8Sanitize(std::string* s);

}  // namespace clrdiag
