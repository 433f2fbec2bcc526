#include "core/dac/com.h"

#include <cstdio>

namespace clrdiag::dac {
namespace {

const char* HResultName(HRESULT hr) {
  switch (static_cast<uint32_t>(hr)) {
    case 0x00000000:
      return "S_OK";
    case 0x00000001:
      return "S_FALSE";
    case 0x80004001:
      return "E_NOTIMPL";
    case 0x80004002:
      return "E_NOINTERFACE";
    case 0x80004003:
      return "E_POINTER";
    case 0x80004005:
      return "E_FAIL";
    case 0x8000FFFF:
      return "E_UNEXPECTED";
    case 0x8007000E:
      return "E_OUTOFMEMORY";
    case 0x80070057:
      return "E_INVALIDARG";
    case 0x8007012B:
      return "ERROR_PARTIAL_COPY";
    case 0x8007007A:
      return "ERROR_INSUFFICIENT_BUFFER";
    case 0x80131C30:
      return "CORDBG_E_INCOMPATIBLE_PLATFORMS";
    case 0x80131C49:
      return "CORDBG_E_READVIRTUAL_FAILURE";
    case 0x80131C4E:
      return "CORDBG_E_UNSUPPORTED";
    case 0x80131C4F:
      return "CORDBG_E_MISSING_DEBUGGER_EXPORTS";
    default:
      return nullptr;
  }
}

}  // namespace

std::string HResultToString(HRESULT hr) {
  char buf[48];
  const char* name = HResultName(hr);
  if (name != nullptr) {
    std::snprintf(buf, sizeof(buf), "0x%08X (%s)", static_cast<uint32_t>(hr), name);
  } else {
    std::snprintf(buf, sizeof(buf), "0x%08X", static_cast<uint32_t>(hr));
  }
  return buf;
}

std::string GuidToString(const GUID& g) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", g.data1,
                g.data2, g.data3, g.data4[0], g.data4[1], g.data4[2], g.data4[3], g.data4[4],
                g.data4[5], g.data4[6], g.data4[7]);
  return buf;
}

std::string Utf16ToUtf8(std::u16string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    uint32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 &&
        s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (static_cast<uint32_t>(s[i + 1]) - 0xDC00);
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      c = 0xFFFD;  // Unpaired surrogate.
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::u16string Utf8ToUtf16(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<uint8_t>(s[i]);
    uint32_t c = 0xFFFD;
    size_t len = 1;
    if (b < 0x80) {
      c = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
    }
    if (len > 1) {
      if (i + len > s.size()) {
        len = s.size() - i;
      } else {
        c = b & (0x7F >> len);
        for (size_t k = 1; k < len; ++k) {
          auto cont = static_cast<uint8_t>(s[i + k]);
          if ((cont & 0xC0) != 0x80) {
            c = 0xFFFD;
            len = k;
            break;
          }
          c = (c << 6) | (cont & 0x3F);
        }
      }
    }
    i += len;
    if (c >= 0x10000 && c <= 0x10FFFF) {
      c -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (c >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (c & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(c > 0x10FFFF ? 0xFFFD : c));
    }
  }
  return out;
}

}  // namespace clrdiag::dac
