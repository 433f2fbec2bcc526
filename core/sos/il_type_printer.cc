// The ilasm-style printer (il_type_printer.h). Names come from the DAC's IMetaDataImport of
// the method's module; assembly names from its IMetaDataAssemblyImport.
#include "core/sos/il_type_printer.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::sos::il {
namespace {

// How deep nested types, generic arguments and TypeSpecs may go before the printer gives up
// ("..."): real signatures stay far below it; a corrupt or self-referencing one would
// otherwise recurse until the stack overflows.
constexpr int kMaxDepth = 64;

using dac::HRESULT;
using dac::ULONG;

constexpr uint32_t kMdtModule = 0x00000000, kMdtMemberRef = 0x0a000000, kMdtModuleRef = 0x1a000000,
                   kMdtAssembly = 0x20000000, kMdtAssemblyRef = 0x23000000, kMdtString = 0x70000000;

// Element types (ECMA-335 II.23.1.16).
enum : uint8_t {
  kEnd = 0x00,
  kVoid = 0x01,
  kBoolean,
  kChar,
  kI1,
  kU1,
  kI2,
  kU2,
  kI4,
  kU4,
  kI8,
  kU8,
  kR4,
  kR8,
  kString,
  kPtr = 0x0f,
  kByRef = 0x10,
  kValueType = 0x11,
  kClass = 0x12,
  kVar = 0x13,
  kArray = 0x14,
  kGenericInst = 0x15,
  kTypedByRef = 0x16,
  kI = 0x18,
  kU = 0x19,
  kFnPtr = 0x1b,
  kObject = 0x1c,
  kSzArray = 0x1d,
  kMVar = 0x1e,
  kCmodReqd = 0x1f,
  kCmodOpt = 0x20,
  kSentinel = 0x41,
  kPinned = 0x45,
};

uint32_t UncompressToken(const SigBytes& sig, size_t* pos) {
  static constexpr uint32_t kTables[] = {dac::kMdtTypeDef, dac::kMdtTypeRef, dac::kMdtTypeSpec,
                                         0x72000000u};
  const uint32_t v = UncompressData(sig, pos);
  return (v >> 2) | kTables[v & 3];
}

int32_t UncompressSigned(const SigBytes& sig, size_t* pos) {
  const size_t start = *pos;
  const uint32_t v = UncompressData(sig, pos);
  const size_t n = *pos - start;
  if ((v & 1) == 0) return static_cast<int32_t>(v >> 1);
  const uint32_t sign = n == 1 ? 0xffffffc0u : n == 2 ? 0xffffe000u : 0xf0000000u;
  return static_cast<int32_t>((v >> 1) | sign);
}

// UTF-16 from a (buffer, capacity, length) metadata call, as UTF-8: at most capacity - 1
// characters, as the API truncates into a buffer of that capacity.
template <typename Call>
bool Name(ULONG capacity, std::string* out, Call call) {
  std::u16string buf(4096, u'\0');
  ULONG len = 0;
  if (dac::Failed(call(buf.data(), static_cast<ULONG>(buf.size()), &len))) return false;
  buf.resize(std::min<size_t>(buf.size(), len));
  const size_t nul = buf.find(u'\0');
  if (nul != std::u16string::npos) buf.resize(nul);
  if (buf.size() > capacity - 1) buf.resize(capacity - 1);
  *out = dac::Utf16ToUtf8(buf);
  return true;
}

// Skips one type (ECMA-335 II.23.2.12) the way a signature parser does.
void SkipType(const SigBytes& sig, size_t* pos, int depth = 0) {
  if (depth > kMaxDepth || *pos >= sig.size()) return;
  const uint8_t t = sig.at((*pos)++);
  switch (t) {
    case kVar:
    case kMVar:
    case kValueType:
    case kClass:
      UncompressData(sig, pos);  // the index or the token
      return;
    case kCmodReqd:
    case kCmodOpt:
      UncompressData(sig, pos);
      SkipType(sig, pos, depth + 1);
      return;
    case kPtr:
    case kByRef:
    case kPinned:
    case kSzArray:
    case kSentinel:
      SkipType(sig, pos, depth + 1);
      return;
    case kGenericInst: {
      SkipType(sig, pos, depth + 1);
      uint32_t n = UncompressData(sig, pos);
      while (n-- > 0 && *pos < sig.size()) SkipType(sig, pos, depth + 1);
      return;
    }
    case kArray: {
      SkipType(sig, pos, depth + 1);
      UncompressData(sig, pos);  // rank
      uint32_t n = UncompressData(sig, pos);
      while (n-- > 0 && *pos < sig.size()) UncompressData(sig, pos);
      n = UncompressData(sig, pos);
      while (n-- > 0 && *pos < sig.size()) UncompressData(sig, pos);
      return;
    }
    case kFnPtr: {
      const uint8_t cc = sig.at((*pos)++);
      if (cc & 0x10) UncompressData(sig, pos);
      uint32_t n = UncompressData(sig, pos);
      SkipType(sig, pos, depth + 1);
      while (n-- > 0 && *pos < sig.size()) SkipType(sig, pos, depth + 1);
      return;
    }
    default:
      return;
  }
}

}  // namespace

uint32_t UncompressData(const SigBytes& sig, size_t* pos) {
  const uint8_t b = sig.at(*pos);
  if ((b & 0x80) == 0) {
    *pos += 1;
    return b;
  }
  if ((b & 0xc0) == 0x80) {
    const uint32_t v = ((b & 0x3fu) << 8) | sig.at(*pos + 1);
    *pos += 2;
    return v;
  }
  if ((b & 0xe0) == 0xc0) {
    const uint32_t v =
        ((b & 0x1fu) << 24) | (sig.at(*pos + 1) << 16) | (sig.at(*pos + 2) << 8) | sig.at(*pos + 3);
    *pos += 4;
    return v;
  }
  *pos += 1;  // invalid: SOS's reader returns garbage; keep going
  return 0;
}

std::string IlTypePrinter::Type(const SigBytes& sig, size_t* pos) const {
  std::string out;
  TypeInto(sig, pos, &out);
  return out;
}

std::string IlTypePrinter::Class(uint32_t token) const {
  std::string out;
  ClassInto(token, &out, 0);
  return out;
}

void IlTypePrinter::TypeInto(const SigBytes& sig, size_t* pos, std::string* out, int depth) const {
  if (depth > kMaxDepth) {
    *out += "...";
    return;
  }
  // Suffixes ("[]", "&", "*", " pinned") collect in front of each other, as each wraps the
  // type that follows it; they go after the innermost type.
  std::string appendix;
  bool again = true;
  int guard = 0;
  while (again && ++guard < 256) {
    again = false;
    const uint8_t t = sig.at((*pos)++);
    const char* simple = nullptr;
    switch (t) {
      case kVoid:
        simple = "void";
        break;
      case kBoolean:
        simple = "bool";
        break;
      case kChar:
        simple = "char";
        break;
      case kI1:
        simple = "int8";
        break;
      case kU1:
        simple = "uint8";
        break;
      case kI2:
        simple = "int16";
        break;
      case kU2:
        simple = "uint16";
        break;
      case kI4:
        simple = "int32";
        break;
      case kU4:
        simple = "uint32";
        break;
      case kI8:
        simple = "int64";
        break;
      case kU8:
        simple = "uint64";
        break;
      case kR4:
        simple = "float32";
        break;
      case kR8:
        simple = "float64";
        break;
      case kU:
        simple = "native uint";
        break;
      case kI:
        simple = "native int";
        break;
      case kObject:
        simple = "object";
        break;
      case kString:
        simple = "string";
        break;
      case kTypedByRef:
        simple = "typedref";
        break;
      case kValueType:
      case kClass: {
        *out += t == kValueType ? "valuetype " : "class ";
        const uint32_t tk = UncompressToken(sig, pos);
        if ((tk & 0x00ffffffu) == 0) {
          *out += "[ERROR! NIL TOKEN]";
        } else {
          ClassInto(tk, out, depth + 1);
        }
        break;
      }
      case kSzArray:
        appendix.insert(0, "[]");
        again = true;
        break;
      case kArray: {
        TypeInto(sig, pos, out, depth + 1);
        const uint32_t rank = UncompressData(sig, pos);
        if (rank == 0) {
          *out += "[BAD: RANK == 0!]";
          break;
        }
        std::vector<int64_t> sizes(std::min<uint32_t>(rank, 64), 0), lows(sizes.size(), 0);
        const uint32_t num_sizes = UncompressData(sig, pos);
        for (uint32_t i = 0; i < num_sizes && *pos <= sig.size(); ++i) {
          const uint32_t v = UncompressData(sig, pos);
          if (i < sizes.size()) sizes[i] = static_cast<int32_t>(v);
        }
        const uint32_t num_lows = UncompressData(sig, pos);
        for (uint32_t i = 0; i < num_lows && *pos <= sig.size(); ++i) {
          const int32_t v = UncompressSigned(sig, pos);
          if (i < lows.size()) lows[i] = v;
        }
        *out += '[';
        if (rank == 1 && num_sizes == 0 && num_lows == 0) {
          *out += "...";
        } else {
          for (uint32_t i = 0; i < sizes.size(); ++i) {
            if (i < num_sizes && lows[i] == 0) {
              absl::StrAppend(out, static_cast<int32_t>(sizes[i]));
            } else if (i < num_lows) {
              absl::StrAppend(out, static_cast<int32_t>(lows[i]), "...");
              if (i < num_sizes) absl::StrAppend(out, static_cast<int32_t>(lows[i] + sizes[i] - 1));
            }
            if (i + 1 < rank) *out += ',';
          }
        }
        *out += ']';
        break;
      }
      case kVar:
        absl::StrAppend(out, "!", UncompressData(sig, pos));
        break;
      case kMVar:
        absl::StrAppend(out, "!!", UncompressData(sig, pos));
        break;
      case kFnPtr:
        // SOS prints a placeholder and does not read the method signature.
        *out += "method METHOD";
        break;
      case kGenericInst: {
        TypeInto(sig, pos, out, depth + 1);
        *out += "<";
        uint32_t n = UncompressData(sig, pos);
        bool comma = false;
        while (n-- > 0 && *pos <= sig.size() + 64) {
          if (comma) *out += ',';
          TypeInto(sig, pos, out, depth + 1);
          comma = true;
        }
        *out += ">";
        break;
      }
      case kPinned:
        appendix.insert(0, " pinned");
        again = true;
        break;
      case kPtr:
        appendix.insert(0, "*");
        again = true;
        break;
      case kByRef:
        appendix.insert(0, "&");
        again = true;
        break;
      case kCmodReqd:
      case kCmodOpt: {
        *out += t == kCmodReqd ? " mod req " : " mod opt ";
        const uint32_t tk = UncompressToken(sig, pos);
        if ((tk & 0x00ffffffu) == 0) {
          *out += "[ERROR! NIL TOKEN]";
        } else {
          ClassInto(tk, out, depth + 1);
        }
        again = true;
        break;
      }
      default:
        if (t != 0) absl::StrAppendFormat(out, "/* UNKNOWN TYPE (0x%X)*/", t);
        break;
    }
    if (simple) *out += simple;
  }
  *out += appendix;
}

void IlTypePrinter::ClassInto(uint32_t tk, std::string* out, int depth) const {
  if (tk == 0) {  // a TypeRef scoped "somewhere here", or a top-level TypeDef's encloser
    *out += "[*]";
    return;
  }
  if (!import_ || depth > kMaxDepth || !import_->IsValidToken(tk)) {
    absl::StrAppendFormat(out, " [ERROR: INVALID TOKEN 0x%08X] ", tk);
    return;
  }
  const uint32_t kind = tk & 0xff000000u;
  switch (kind) {
    case dac::kMdtTypeRef:
    case dac::kMdtTypeDef: {
      uint32_t encloser = 0;
      std::string name;
      if (kind == dac::kMdtTypeRef) {
        if (!Name(2049, &name, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
              return import_->GetTypeRefProps(tk, &encloser, b, n, l);
            })) {
          absl::StrAppendFormat(out, " [ERROR: Invalid TypeRef record 0x%08X] ", tk);
          return;
        }
      } else {
        dac::DWORD flags = 0;
        uint32_t extends = 0;
        if (!Name(2049, &name, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
              return import_->GetTypeDefProps(tk, b, n, l, &flags, &extends);
            })) {
          absl::StrAppendFormat(out, " [ERROR: Invalid TypeDef record 0x%08X] ", tk);
          return;
        }
        if ((flags & dac::kTdVisibilityMask) >= dac::kTdNestedPublic &&
            dac::Failed(import_->GetNestedClassProps(tk, &encloser))) {
          encloser = dac::kMdTypeDefNil;
        }
      }
      if (name.empty()) {
        static const char* const kPrefix[] = {"", "TR", "TD"};
        name = absl::StrFormat("$%s$%X", kPrefix[kind >> 24], tk & 0x00ffffffu);
      }
      if (encloser == 0 || (encloser & 0x00ffffffu) != 0) {
        const uint32_t ek = encloser & 0xff000000u;
        if (ek == dac::kMdtTypeRef || ek == dac::kMdtTypeDef) {
          ClassInto(encloser, out, depth + 1);
          *out += '/';
        } else {
          ClassInto(encloser, out, depth + 1);
        }
      }
      *out += name;
      return;
    }
    case kMdtAssemblyRef:
    case kMdtAssembly: {
      if (kind == kMdtAssembly) {
        if (!assembly_name_.empty()) absl::StrAppend(out, "[", assembly_name_, "]");
        return;
      }
      auto it = assembly_refs_.find(tk & 0x00ffffffu);
      if (it != assembly_refs_.end()) absl::StrAppend(out, "[", it->second, "]");
      return;
    }
    case kMdtModuleRef: {
      std::string name;
      if (Name(2049, &name, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
            return import_->GetModuleRefProps(tk, b, n, l);
          })) {
        absl::StrAppend(out, "[.module ", name, "]");
      }
      return;
    }
    case dac::kMdtTypeSpec: {
      const dac::BYTE* sig = nullptr;
      ULONG size = 0;
      if (dac::Failed(import_->GetTypeSpecFromToken(tk, &sig, &size)) || !sig) {
        absl::StrAppendFormat(out, " [ERROR: Invalid token 0x%08X] ", tk);
        return;
      }
      size_t pos = 0;
      TypeInto(SigBytes(sig, size), &pos, out, depth + 1);
      return;
    }
    case kMdtModule:
      return;
    default:
      absl::StrAppendFormat(out, " [ERROR: INVALID TOKEN TYPE 0x%08X] ", tk);
      return;
  }
}

IlTypePrinter::MethodSigText IlTypePrinter::MethodSig(const uint8_t* data, uint32_t size) const {
  MethodSigText r;
  // A field signature's single type byte may be all there is: SOS then reads the bytes after
  // the blob. Let the reader see a few of them (the metadata heap continues there).
  SigBytes sig(data, size, 8);
  size_t pos = 0;
  if (size < 1) return r;
  const uint8_t cc = sig.at(pos++);
  const bool is_field = (cc & 0x6) == 0x6;
  size_t probe = pos;
  if (!is_field && (cc & 0x10)) {
    UncompressData(sig, &probe);
    if (probe > size) return r;
    pos = probe;
  }
  const uint32_t params = UncompressData(sig, &probe);
  if (probe > size) return r;
  pos = probe;
  size_t type_pos = pos;
  r.ret = Type(sig, &type_pos) + " ";
  SkipType(sig, &pos);
  if (is_field) return r;
  r.params = "(";
  for (uint32_t i = 0; i < params && i < 1024; ++i) {
    size_t p = pos;
    r.params += Type(sig, &p);
    if (i + 1 < params) r.params += ",";
    SkipType(sig, &pos);
  }
  r.params += ")";
  return r;
}

std::string IlTypePrinter::TokenText(uint32_t token) const {
  if (!import_) return absl::StrFormat("TOKEN %x", token);
  const uint32_t kind = token & 0xff000000u;
  auto typedef_name = [&](uint32_t td, ULONG capacity, const char* fallback) {
    std::string s;
    if (!Name(capacity, &s, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
          return import_->GetTypeDefProps(td, b, n, l, nullptr, nullptr);
        })) {
      s = fallback;
    }
    return s;
  };
  switch (kind) {
    case dac::kMdtTypeDef:
      return typedef_name(token, 49, "<unknown type def>");
    case dac::kMdtTypeRef: {
      std::string s;
      if (!Name(49, &s, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
            return import_->GetTypeRefProps(token, nullptr, b, n, l);
          })) {
        s = "<unknown type ref>";
      }
      return s;
    }
    case dac::kMdtFieldDef: {
      uint32_t klass = 0;
      std::string field;
      if (!Name(49, &field, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
            return import_->GetFieldProps(token, &klass, b, n, l, nullptr, nullptr, nullptr,
                                          nullptr, nullptr, nullptr);
          })) {
        field = "<unknown field def>";
      }
      return absl::StrCat(typedef_name(klass, 49, "<unknown type def>"), "::", field);
    }
    case dac::kMdtMethodDef: {
      uint32_t klass = 0;
      std::string method;
      const dac::BYTE* sig = nullptr;
      ULONG sig_size = 0;
      MethodSigText s;
      if (!Name(49, &method, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
            return import_->GetMethodProps(token, &klass, b, n, l, nullptr, &sig, &sig_size,
                                           nullptr, nullptr);
          })) {
        method = "<unknown method def>";
      } else if (sig) {
        s = MethodSig(sig, sig_size);
      }
      return absl::StrCat(s.ret, typedef_name(klass, 49, "<unknown type def>"), "::", method,
                          s.params);
    }
    case kMdtMemberRef: {
      uint32_t parent = 0;
      std::string member;
      const dac::BYTE* sig = nullptr;
      ULONG sig_size = 0;
      MethodSigText s;
      if (!Name(49, &member, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
            return import_->GetMemberRefProps(token, &parent, b, n, l, &sig, &sig_size);
          })) {
        member = "<unknown member ref>";
      } else if (sig) {
        s = MethodSig(sig, sig_size);
      }
      std::string owner;
      const uint32_t pk = parent & 0xff000000u;
      if (pk == dac::kMdtTypeRef) {
        if (!Name(50, &owner, [&](dac::WCHAR* b, ULONG n, ULONG* l) {
              return import_->GetTypeRefProps(parent, nullptr, b, n, l);
            })) {
          owner = "<unknown type ref>";
        }
      } else if (pk == dac::kMdtTypeDef) {
        owner = typedef_name(parent, 49, "<unknown type def>");
      } else if (pk == dac::kMdtTypeSpec) {
        const dac::BYTE* ts = nullptr;
        ULONG ts_size = 0;
        if (dac::Failed(import_->GetTypeSpecFromToken(parent, &ts, &ts_size)) || !ts) {
          owner = "<Invalid record>";
        } else {
          size_t pos = 0;
          std::string full = Type(SigBytes(ts, ts_size), &pos);
          // SOS converts it into a 50-character buffer: longer names are cut there.
          std::u16string wide = dac::Utf8ToUtf16(full);
          if (wide.size() > 50) wide.resize(50);
          owner = dac::Utf16ToUtf8(wide);
        }
      } else {
        owner = "<unknown type token>";
      }
      return absl::StrCat(s.ret, owner, "::", member, s.params);
    }
    case kMdtString: {
      std::u16string buf(80, u'\0');
      ULONG chars = 0;
      if (import_->GetUserString(token, buf.data(), 80, &chars) != dac::kS_OK) {
        return absl::StrFormat("STRING %x", token);
      }
      if (chars < 80) buf.resize(chars);
      if (buf.size() >= 79) buf = buf.substr(0, 79) + u"...";
      const size_t nul = buf.find(u'\0');
      if (nul != std::u16string::npos) buf.resize(nul);
      std::string s = "\"";
      for (char16_t c : buf) s += (c < 0x20 || c >= 0x80) ? '.' : static_cast<char>(c);
      return s + "\"";
    }
    default:
      return absl::StrFormat("<unknown token type %08x>", kind);
  }
}

namespace {

// Little-endian reads inside `b` (0 outside).
uint32_t Le(std::span<const uint8_t> b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) {
    if (at + static_cast<size_t>(i) < b.size()) v |= static_cast<uint32_t>(b[at + i]) << (8 * i);
  }
  return v;
}

}  // namespace

std::map<uint32_t, std::string> AssemblyNames(std::span<const uint8_t> md) {
  std::map<uint32_t, std::string> names;
  if (md.size() < 32 || Le(md, 0, 4) != 0x424A5342u) return names;
  const uint32_t version_length = Le(md, 12, 4);
  size_t at = 16 + static_cast<size_t>(version_length);
  const uint32_t stream_count = Le(md, at + 2, 2);
  at += 4;
  std::span<const uint8_t> tables, strings;
  for (uint32_t i = 0; i < stream_count && at + 8 < md.size(); ++i) {
    const uint32_t offset = Le(md, at, 4), size = Le(md, at + 4, 4);
    at += 8;
    std::string name;
    while (at < md.size() && md[at] != 0) name += static_cast<char>(md[at++]);
    at = (at + 4) & ~static_cast<size_t>(3);  // the NUL, padded to 4
    if (static_cast<uint64_t>(offset) + size > md.size()) continue;
    if (name == "#~" || name == "#-") tables = md.subspan(offset, size);
    if (name == "#Strings") strings = md.subspan(offset, size);
  }
  if (tables.size() < 24 || strings.empty()) return names;
  const uint8_t heap_sizes = tables[6];
  const uint64_t valid = Le(tables, 8, 4) | (static_cast<uint64_t>(Le(tables, 12, 4)) << 32);
  uint32_t rows[64] = {};
  size_t pos = 24;
  for (int t = 0; t < 64; ++t) {
    if (valid & (1ull << t)) {
      rows[t] = Le(tables, pos, 4);
      pos += 4;
    }
  }
  if (heap_sizes & 0x40) pos += 4;  // extra data (uncompressed #- streams)
  const int str = (heap_sizes & 1) ? 4 : 2, guid = (heap_sizes & 2) ? 4 : 2,
            blob = (heap_sizes & 4) ? 4 : 2;
  auto idx = [&](int t) { return rows[t] < 65536 ? 2 : 4; };
  auto coded = [&](std::initializer_list<int> ts, int bits) {
    uint32_t most = 0;
    for (int t : ts) most = std::max(most, t >= 0 ? rows[t] : 0u);
    return most < (1u << (16 - bits)) ? 2 : 4;
  };
  const int type_def_or_ref = coded({0x02, 0x01, 0x1b}, 2);
  const int resolution_scope = coded({0x00, 0x1a, 0x23, 0x01}, 2);
  const int member_ref_parent = coded({0x02, 0x01, 0x1a, 0x06, 0x1b}, 3);
  const int has_constant = coded({0x04, 0x08, 0x17}, 2);
  const int has_custom_attribute =
      coded({0x06, 0x04, 0x01, 0x02, 0x08, 0x09, 0x0a, 0x00, 0x0e, 0x17, 0x14,
             0x11, 0x1a, 0x1b, 0x20, 0x23, 0x26, 0x27, 0x28, 0x2a, 0x2c, 0x2b},
            5);
  const int custom_attribute_type = coded({0x06, 0x0a}, 3);
  const int has_field_marshal = coded({0x04, 0x08}, 1);
  const int has_decl_security = coded({0x02, 0x06, 0x20}, 2);
  const int has_semantics = coded({0x14, 0x17}, 1);
  const int method_def_or_ref = coded({0x06, 0x0a}, 1);
  const int member_forwarded = coded({0x04, 0x06}, 1);
  const int row_size[0x24] = {
      2 + str + 3 * guid,                                     // 0x00 Module
      resolution_scope + 2 * str,                             // 0x01 TypeRef
      4 + 2 * str + type_def_or_ref + idx(0x04) + idx(0x06),  // 0x02 TypeDef
      idx(0x04),                                              // 0x03 FieldPtr
      2 + str + blob,                                         // 0x04 Field
      idx(0x06),                                              // 0x05 MethodPtr
      8 + str + blob + idx(0x08),                             // 0x06 MethodDef
      idx(0x08),                                              // 0x07 ParamPtr
      4 + str,                                                // 0x08 Param
      idx(0x02) + type_def_or_ref,                            // 0x09 InterfaceImpl
      member_ref_parent + str + blob,                         // 0x0a MemberRef
      2 + has_constant + blob,                                // 0x0b Constant
      has_custom_attribute + custom_attribute_type + blob,    // 0x0c CustomAttribute
      has_field_marshal + blob,                               // 0x0d FieldMarshal
      2 + has_decl_security + blob,                           // 0x0e DeclSecurity
      6 + idx(0x02),                                          // 0x0f ClassLayout
      4 + idx(0x04),                                          // 0x10 FieldLayout
      blob,                                                   // 0x11 StandAloneSig
      idx(0x02) + idx(0x14),                                  // 0x12 EventMap
      idx(0x14),                                              // 0x13 EventPtr
      2 + str + type_def_or_ref,                              // 0x14 Event
      idx(0x02) + idx(0x17),                                  // 0x15 PropertyMap
      idx(0x17),                                              // 0x16 PropertyPtr
      2 + str + blob,                                         // 0x17 Property
      2 + idx(0x06) + has_semantics,                          // 0x18 MethodSemantics
      idx(0x02) + 2 * method_def_or_ref,                      // 0x19 MethodImpl
      str,                                                    // 0x1a ModuleRef
      blob,                                                   // 0x1b TypeSpec
      2 + member_forwarded + str + idx(0x1a),                 // 0x1c ImplMap
      4 + idx(0x04),                                          // 0x1d FieldRVA
      8,                                                      // 0x1e ENCLog
      4,                                                      // 0x1f ENCMap
      16 + blob + 2 * str,                                    // 0x20 Assembly
      4,                                                      // 0x21 AssemblyProcessor
      12,                                                     // 0x22 AssemblyOS
      12 + 2 * blob + 2 * str,                                // 0x23 AssemblyRef
  };
  auto string_at = [&](uint32_t offset) {
    std::string s;
    for (size_t i = offset; i < strings.size() && strings[i] != 0; ++i) {
      s += static_cast<char>(strings[i]);
    }
    return s;
  };
  size_t table_start[0x24] = {};
  for (int t = 0; t < 0x24; ++t) {
    table_start[t] = pos;
    pos += static_cast<size_t>(rows[t]) * static_cast<size_t>(row_size[t]);
  }
  if (rows[0x20] > 0) {  // Assembly: hash alg, version (4 x u16), flags, public key, name
    names[0] = string_at(Le(tables, table_start[0x20] + 16 + blob, str));
  }
  for (uint32_t r = 0; r < rows[0x23]; ++r) {
    const size_t row = table_start[0x23] + static_cast<size_t>(r) * row_size[0x23];
    if (row + row_size[0x23] > tables.size()) break;
    names[r + 1] = string_at(Le(tables, row + 12 + blob, str));
  }
  return names;
}

}  // namespace clrdiag::sos::il
