// Private to core/dac: reading a UTF-16 string out of a DAC call of the common
// (capacity, buffer, &needed) shape — one call to size it, one to fill it.
#pragma once

#include <algorithm>
#include <string>

#include "absl/status/statusor.h"
#include "core/dac/com.h"
#include "core/dac/dac_process.h"

namespace clrdiag::dac {

// Named limit: the longest string (in UTF-16 units) accepted from the DAC.
inline constexpr uint32_t kMaxDacStringChars = 64 * 1024;

template <typename Call>
absl::StatusOr<std::string> ReadDacString(std::string_view what, Call call) {
  uint32_t needed = 0;
  HRESULT hr = call(0u, nullptr, &needed);
  if (Failed(hr) || needed == 0 || needed > kMaxDacStringChars) {
    return DacError(what, Failed(hr) ? hr : kE_UNEXPECTED);
  }
  std::u16string buf(needed, u'\0');
  hr = call(needed, buf.data(), &needed);
  if (Failed(hr)) return DacError(what, hr);
  buf.resize(std::min<size_t>(buf.size(), needed));
  while (!buf.empty() && buf.back() == u'\0') buf.pop_back();
  return Utf16ToUtf8(buf);
}

}  // namespace clrdiag::dac
