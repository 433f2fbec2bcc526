// Just enough COM for talking to the CoreCLR data access component (libmscordaccore.so) on
// Linux: the PAL's fixed-width Windows types, HRESULTs, GUIDs, IUnknown and a smart pointer.
//
// ABI contract: the DAC is built against the CoreCLR PAL, where WCHAR is UTF-16 (char16_t),
// LONG/ULONG are 32 bits, BOOL/HRESULT are int32 and every COM method uses the platform's
// plain C calling convention (STDMETHODCALLTYPE is empty off x86). An interface is modelled
// as an abstract class with only pure virtual methods, declared in IDL order, no data and no
// virtual destructor; GCC and Clang (Itanium ABI) then lay out the vtable exactly as COM
// expects: slot 0 QueryInterface, 1 AddRef, 2 Release, then the interface's own methods.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace clrdiag::dac {

using HRESULT = int32_t;
using BOOL = int32_t;
using ULONG = uint32_t;  // PAL ULONG is 32 bits, unlike C's unsigned long on LP64.
using ULONG32 = uint32_t;
using ULONG64 = uint64_t;
using DWORD = uint32_t;
using WORD = uint16_t;
using BYTE = uint8_t;
using WCHAR = char16_t;
using CLRDATA_ADDRESS = uint64_t;  // Target addresses, sign-extended from 32-bit targets.

inline constexpr HRESULT kS_OK = 0;
inline constexpr HRESULT kS_FALSE = 1;
inline constexpr HRESULT kE_NOTIMPL = static_cast<HRESULT>(0x80004001);
inline constexpr HRESULT kE_NOINTERFACE = static_cast<HRESULT>(0x80004002);
inline constexpr HRESULT kE_POINTER = static_cast<HRESULT>(0x80004003);
inline constexpr HRESULT kE_FAIL = static_cast<HRESULT>(0x80004005);
inline constexpr HRESULT kE_UNEXPECTED = static_cast<HRESULT>(0x8000FFFF);
inline constexpr HRESULT kE_OUTOFMEMORY = static_cast<HRESULT>(0x8007000E);
inline constexpr HRESULT kE_INVALIDARG = static_cast<HRESULT>(0x80070057);
// HRESULT_FROM_WIN32(ERROR_PARTIAL_COPY): what the DAC itself reports for short reads.
inline constexpr HRESULT kE_PARTIAL_COPY = static_cast<HRESULT>(0x8007012B);
// HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND).
inline constexpr HRESULT kE_FILE_NOT_FOUND = static_cast<HRESULT>(0x80070002);
// HRESULT_FROM_WIN32(ERROR_INSUFFICIENT_BUFFER).
inline constexpr HRESULT kE_INSUFFICIENT_BUFFER = static_cast<HRESULT>(0x8007007A);

inline constexpr bool Succeeded(HRESULT hr) { return hr >= 0; }
inline constexpr bool Failed(HRESULT hr) { return hr < 0; }

// "0x80004005 (E_FAIL)" for well-known codes, "0x8013xxxx" otherwise.
std::string HResultToString(HRESULT hr);

struct GUID {
  uint32_t data1;
  uint16_t data2;
  uint16_t data3;
  uint8_t data4[8];

  friend constexpr bool operator==(const GUID& a, const GUID& b) {
    if (a.data1 != b.data1 || a.data2 != b.data2 || a.data3 != b.data3) return false;
    for (int i = 0; i < 8; ++i) {
      if (a.data4[i] != b.data4[i]) return false;
    }
    return true;
  }
};
static_assert(sizeof(GUID) == 16);
using IID = GUID;

namespace internal {
constexpr uint32_t HexDigit(char c) {
  if (c >= '0' && c <= '9') return static_cast<uint32_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<uint32_t>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<uint32_t>(c - 'A' + 10);
  throw "invalid hex digit in GUID";  // Compile-time error when used in a constant expression.
}
constexpr uint32_t Hex(std::string_view s, size_t pos, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v * 16 + HexDigit(s[pos + i]);
  return v;
}
}  // namespace internal

// Parses the registry form "3E11CCEE-D08B-43e5-AF01-32717A64DA03" at compile time, so IIDs
// are written exactly as the IDL spells them instead of as hand-split byte arrays.
constexpr GUID ParseGuid(std::string_view s) {
  if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
    throw "GUID must look like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  }
  GUID g{};
  g.data1 = internal::Hex(s, 0, 8);
  g.data2 = static_cast<uint16_t>(internal::Hex(s, 9, 4));
  g.data3 = static_cast<uint16_t>(internal::Hex(s, 14, 4));
  g.data4[0] = static_cast<uint8_t>(internal::Hex(s, 19, 2));
  g.data4[1] = static_cast<uint8_t>(internal::Hex(s, 21, 2));
  for (int i = 0; i < 6; ++i) {
    g.data4[2 + i] = static_cast<uint8_t>(internal::Hex(s, 24 + 2 * static_cast<size_t>(i), 2));
  }
  return g;
}

// "3e11ccee-d08b-43e5-af01-32717a64da03".
std::string GuidToString(const GUID& g);

inline constexpr IID kIID_IUnknown = ParseGuid("00000000-0000-0000-C000-000000000046");

class IUnknown {
 public:
  virtual HRESULT QueryInterface(const IID& iid, void** object) = 0;
  virtual ULONG AddRef() = 0;
  virtual ULONG Release() = 0;
};

// Owning pointer to a COM interface: Release() on destruction, AddRef() on copy.
template <typename T>
class ComPtr {
 public:
  ComPtr() = default;
  ComPtr(std::nullptr_t) {}
  // Adopts a reference the caller already owns (what an out-parameter hands back).
  static ComPtr Adopt(T* p) {
    ComPtr r;
    r.p_ = p;
    return r;
  }
  ComPtr(const ComPtr& o) : p_(o.p_) {
    if (p_) p_->AddRef();
  }
  ComPtr(ComPtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  ComPtr& operator=(ComPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~ComPtr() { Reset(); }

  void Reset() {
    if (T* p = std::exchange(p_, nullptr)) p->Release();
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  // For out-parameters: releases the current pointer and exposes the slot.
  T** Put() {
    Reset();
    return &p_;
  }
  void** PutVoid() { return reinterpret_cast<void**>(Put()); }

  // QueryInterface into another smart pointer; returns the HRESULT.
  template <typename U>
  HRESULT As(const IID& iid, ComPtr<U>* out) const {
    if (!p_) return kE_POINTER;
    return p_->QueryInterface(iid, out->PutVoid());
  }

 private:
  T* p_ = nullptr;
};

// Thread-safe reference count for objects we implement and hand to the DAC. The object
// deletes itself when the count reaches zero, as COM requires; create it with `new` and wrap
// it with ComPtr<...>::Adopt (the count starts at 1).
class RefCounted {
 protected:
  RefCounted() = default;
  virtual ~RefCounted() = default;
  ULONG AddRefImpl() { return refs_.fetch_add(1, std::memory_order_relaxed) + 1; }
  ULONG ReleaseImpl() {
    ULONG left = refs_.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if (left == 0) delete this;
    return left;
  }

 private:
  std::atomic<ULONG> refs_{1};
};

// UTF-16 (as the DAC returns names) to UTF-8, replacing invalid sequences with U+FFFD.
std::string Utf16ToUtf8(std::u16string_view s);
std::u16string Utf8ToUtf16(std::string_view s);

}  // namespace clrdiag::dac
