// dumpsig, dumpsigelem: a metadata signature in target memory, printed the way SOS's native
// dumpsig does (its own element names such as "I4", "Class System.String", "[DEFAULT]
// [hasThis]"), with type tokens named through the module's metadata when a module is given.
//
// The reference reads the signature in 256-byte steps and parses what it has; a signature that
// runs past the readable memory is "Invalid signature", one it cannot parse prints nothing. Here
// the same cases print the same stdout; the second (and an unreadable address) also fail with a
// message on stderr.
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/metadata_import.h"
#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

// ECMA-335 element types and calling conventions the printer treats specially.
constexpr uint32_t kEtPtr = 0x0f, kEtByRef = 0x10, kEtValueType = 0x11, kEtClass = 0x12,
                   kEtVar = 0x13, kEtArray = 0x14, kEtGenericInst = 0x15, kEtTypedByRef = 0x16,
                   kEtI = 0x18, kEtU = 0x19, kEtFnPtr = 0x1b, kEtObject = 0x1c, kEtSzArray = 0x1d,
                   kEtMVar = 0x1e, kEtCmodReqd = 0x1f, kEtCmodOpt = 0x20, kEtInternal = 0x21,
                   kEtMax = 0x22, kEtModifier = 0x40, kEtSentinel = 0x41, kEtPinned = 0x45;
constexpr uint32_t kCallConvMask = 0x0f, kCallConvField = 0x6, kCallConvLocalSig = 0x7,
                   kCallConvGeneric = 0x10, kCallConvHasThis = 0x20, kCallConvExplicitThis = 0x40;

// SOS's names, indexed by element type (0 .. kEtInternal) and by calling convention.
constexpr const char* kElementNames[] = {
    "End",         "Void",       "Boolean", "Char",      "I1",       "U1",       "I2",
    "U2",          "I4",         "U4",      "I8",        "U8",       "R4",       "R8",
    "String",      "Ptr",        "ByRef",   "ValueType", "Class",    "Var",      "MDArray",
    "GenericInst", "TypedByRef", "UNUSED",  "IntPtr",    "UIntPtr",  "UNUSED",   "FnPtr",
    "Object",      "SZArray",    "MVar",    "CMOD_REQD", "CMOD_OPT", "INTERNAL", "CMOD_INTERNAL"};
constexpr const char* kCallingNames[] = {
    "[DEFAULT]", "[C]",        "[STDCALL]",  "[THISCALL]",  "[FASTCALL]",    "[VARARG]",
    "[FIELD]",   "[LOCALSIG]", "[PROPERTY]", "[UNMANAGED]", "[GENERICINST]", "[NATIVEVARARG]",
    "[UNKNOWN]", "[UNKNOWN]",  "[UNKNOWN]",  "[UNKNOWN]"};

constexpr uint32_t kBad = 0xffffffffu;  // the "length" of an invalid compressed integer

// The signature printer. `sig` holds the bytes read so far followed by zeros (the reference
// parses its buffer without bounds, so reads past the bytes it has see whatever is there; its
// checks then reject the result).
class SigPrinter {
 public:
  SigPrinter(const std::vector<uint8_t>& sig, dac::IMetaDataImport* import)
      : sig_(sig), import_(import) {}

  std::string text() const { return out_; }

  // A method (or field, or locals) signature of `size` bytes: false on a parse error; sets
  // `remaining` (negative when the signature needs more bytes than `size`).
  bool Method(uint32_t size, int64_t* remaining) {
    uint32_t cur = 0, cb = 0, data = 0, args = 0;
    bool ok = true;
    cb = Uncompress(0, &data);
    out_ += kCallingNames[data & kCallConvMask];
    auto finish = [&] {
      *remaining = static_cast<int32_t>(size - cb);
      return ok;
    };
    if (cb > size) return finish();
    cur += cb;
    size -= cb;
    out_ += " ";
    if ((data & kCallConvMask) == kCallConvField) {
      ok = Element(cur, size, &cb);
      if (!ok) return finish();
      out_ += " ";
      if (cb > size) return finish();
      cur += cb;
      size -= cb;
    } else {
      if (data & kCallConvHasThis) out_ += "[hasThis] ";
      if (data & kCallConvExplicitThis) out_ += "[explicit] ";
      if (data & kCallConvGeneric) {
        uint32_t count = 0;
        cb = Uncompress(cur, &count);
        if (cb > size) return finish();
        absl::StrAppend(&out_, "[generic:", count, "] ");
        cur += cb;
        size -= cb;
      }
      cb = Uncompress(cur, &args);
      if (cb > size) return finish();
      cur += cb;
      size -= cb;
      if (data != kCallConvLocalSig) {
        ok = Element(cur, size, &cb);
        if (!ok) return finish();
        out_ += " (";
        if (cb > size) return finish();
        cur += cb;
        size -= cb;
      }
      for (uint32_t i = 0; i < args && size > 0;) {
        ++i;
        ok = Element(cur, size, &cb);
        if (!ok) return finish();
        if (i != args) out_ += ",";
        if (cb > size) return finish();
        cur += cb;
        size -= cb;
      }
      out_ += ")";
    }
    cb = 0;
    return finish();
  }

  // One element type at `at` with `avail` bytes left; `*used` is how many it took (more than
  // `avail` when it ran past the end, which fails).
  bool Element(uint32_t at, uint32_t avail, uint32_t* used) {
    uint32_t cur = 0, cb = 0, data = 0;
    bool ok = true;
    auto done = [&] {
      if (cur > avail) ok = false;
      *used = cur;
      return ok;
    };
    cb = Uncompress(at, &data);
    if (cb == kBad) {
      ok = false;
      return done();
    }
    cur += cb;
    if (data & kEtModifier) {
      if (data == kEtSentinel) {
        out_ += "<ELEMENT_TYPE_SENTINEL> ";
      } else if (data == kEtPinned) {
        out_ += "PINNED ";
      } else {
        ok = false;
        return done();
      }
      // The reference keeps the outcome of the inner element only through the bounds check.
      if (Element(at + cur, avail - cur, &cb)) cur += cb;
      return done();
    }
    if (data >= kEtMax) {
      ok = false;
      return done();
    }
    while (data == kEtPtr || data == kEtByRef) {
      absl::StrAppend(&out_, kElementNames[data], " ");
      cur += Uncompress(at + cur, &data);
    }
    if (data == kEtVar || data == kEtMVar) {
      out_ += data == kEtVar ? "!" : "!!";
      uint32_t index = 0;
      if (!UncompressChecked(at + cur, avail - cur, &index, &cb)) {
        ok = false;
        return done();
      }
      cur += cb;
      absl::StrAppend(&out_, index);
      return done();
    }
    if (data == kEtGenericInst) {
      if (!Element(at + cur, avail - cur, &cb)) {
        ok = false;
        return done();
      }
      cur += cb;
      uint32_t count = 0;
      if (!UncompressChecked(at + cur, avail - cur, &count, &cb)) {
        ok = false;
        return done();
      }
      cur += cb;
      out_ += "<";
      for (uint32_t i = 0; i < count; ++i) {
        if (i > 0) out_ += ",";
        if (!Element(at + cur, avail - cur, &cb)) {
          ok = false;
          return done();
        }
        cur += cb;
      }
      out_ += ">";
      return done();
    }
    if (data >= std::size(kElementNames)) {  // not reached: kEtMax bounds it
      out_ += "INVALID_ELEMENT_TYPE";
      return false;
    }
    out_ += kElementNames[data];
    if (data < kEtPtr || data == kEtI || data == kEtU || data == kEtTypedByRef ||
        data == kEtObject) {
      return done();
    }
    out_ += " ";
    if (data == kEtValueType || data == kEtClass || data == kEtCmodReqd || data == kEtCmodOpt) {
      uint32_t token = 0;
      cur += UncompressToken(at + cur, &token);
      const uint32_t kind = token & 0xff000000u;
      if (kind == dac::kMdtTypeDef || kind == dac::kMdtTypeRef) {
        out_ += TypeName(token);
      } else {
        absl::StrAppend(&out_, absl::Hex(token));
      }
      if (data == kEtCmodReqd || data == kEtCmodOpt) {
        out_ += " ";
        if (Element(at + cur, avail - cur, &cb)) cur += cb;
      }
      return done();
    }
    if (data == kEtSzArray) {
      if (Element(at + cur, avail - cur, &cb)) cur += cb;
      return done();
    }
    if (data == kEtFnPtr) {
      cur += Uncompress(at + cur, &data);
      if (data & kCallConvExplicitThis) out_ += "[explicit] ";
      if (data & kCallConvHasThis) out_ += "[hasThis] ";
      out_ += kCallingNames[data & kCallConvMask];
      uint32_t args = 0;
      cur += Uncompress(at + cur, &args);
      if (!Element(at + cur, avail - cur, &cb)) return done();
      cur += cb;
      out_ += "(";
      while (args > 0) {
        if (cur > avail) return done();
        if (!Element(at + cur, avail - cur, &cb)) return done();
        cur += cb;
        --args;
        if (args > 0) out_ += ",";
      }
      out_ += ")";
      return done();
    }
    if (data == kEtInternal) {
      // A runtime-internal MethodTable pointer: never in metadata. The reference names the
      // MethodTable; here (under the metadata lock) it is a parse failure.
      ok = false;
      return done();
    }
    if (data != kEtArray) return false;
    out_ += "{";
    if (!Element(at + cur, avail - cur, &cb)) return done();
    cur += cb;
    out_ += ", ";
    cur += Uncompress(at + cur, &data);  // rank
    absl::StrAppend(&out_, data);
    if (data == 0) return done();
    out_ += " ";
    cur += Uncompress(at + cur, &data);  // dimensions with sizes
    absl::StrAppend(&out_, data);
    if (data == 0) out_ += " ";
    for (; data != 0; --data) {
      uint32_t v = 0;
      cb = Uncompress(at + cur, &v);
      absl::StrAppend(&out_, v, " ");
      cur += cb;
    }
    cur += Uncompress(at + cur, &data);  // dimensions with lower bounds
    absl::StrAppend(&out_, data, " ");
    for (; data != 0; --data) {
      int32_t v = 0;
      cb = UncompressSigned(at + cur, &v);
      absl::StrAppend(&out_, v, " ");
      cur += cb;
    }
    out_ += "}";
    return done();
  }

 private:
  uint8_t Byte(uint32_t at) const { return at < sig_.size() ? sig_[at] : 0; }

  // ECMA-335 II.23.2 compressed unsigned integer: its length in bytes, kBad if invalid.
  uint32_t Uncompress(uint32_t at, uint32_t* value) const {
    const uint8_t b = Byte(at);
    *value = 0;
    if ((b & 0x80) == 0) {
      *value = b;
      return 1;
    }
    if ((b & 0xc0) == 0x80) {
      *value = ((b & 0x3fu) << 8) | Byte(at + 1);
      return 2;
    }
    if ((b & 0xe0) == 0xc0) {
      *value = ((b & 0x1fu) << 24) | (Byte(at + 1) << 16) | (Byte(at + 2) << 8) | Byte(at + 3);
      return 4;
    }
    return kBad;
  }
  // The bounded form: fails when the integer is invalid or longer than `avail`.
  bool UncompressChecked(uint32_t at, uint32_t avail, uint32_t* value, uint32_t* cb) const {
    *cb = Uncompress(at, value);
    return *cb != kBad && *cb <= avail;
  }
  uint32_t UncompressToken(uint32_t at, uint32_t* token) const {
    static constexpr uint32_t kTables[] = {dac::kMdtTypeDef, dac::kMdtTypeRef, dac::kMdtTypeSpec,
                                           0x72000000u};
    uint32_t v = 0;
    const uint32_t cb = Uncompress(at, &v);
    *token = (v >> 2) | kTables[v & 3];
    return cb;
  }
  uint32_t UncompressSigned(uint32_t at, int32_t* value) const {
    uint32_t v = 0;
    const uint32_t cb = Uncompress(at, &v);
    const uint32_t sign = cb == 1 ? 0xffffffc0u : cb == 2 ? 0xffffe000u : 0xf0000000u;
    *value = static_cast<int32_t>((v & 1) ? ((v >> 1) | sign) : (v >> 1));
    return cb;
  }

  // A TypeDef's or TypeRef's metadata name as SOS's dumpsig gives it (no enclosing types),
  // its token in hex without a module.
  std::string TypeName(uint32_t token) const {
    if ((token & 0x00ffffffu) == 0) return "";
    std::u16string buf(1024, u'\0');
    dac::ULONG len = 0;
    dac::HRESULT hr = dac::kE_FAIL;
    if (import_) {
      hr = (token & 0xff000000u) == dac::kMdtTypeDef
               ? import_->GetTypeDefProps(token, buf.data(), static_cast<dac::ULONG>(buf.size()),
                                          &len, nullptr, nullptr)
               : import_->GetTypeRefProps(token, nullptr, buf.data(),
                                          static_cast<dac::ULONG>(buf.size()), &len);
    }
    if (dac::Failed(hr)) return absl::StrFormat("0x%08x", token);
    buf.resize(std::min<size_t>(buf.size(), len));
    while (!buf.empty() && buf.back() == u'\0') buf.pop_back();
    return dac::Utf16ToUtf8(buf);
  }

  const std::vector<uint8_t>& sig_;
  dac::IMetaDataImport* import_;
  std::string out_;
};

// GetExpression's view of an address argument: hex with or without 0x; 0 if it is none.
uint64_t Expression(const std::string& text) {
  uint64_t v = 0;
  return ParseHexAddress(text, &v) ? v : 0;
}

CommandResult DumpSigCommon(CommandContext& ctx, const CommandSpec& spec,
                            const std::vector<std::string>& args, bool method) {
  if (args.empty() || args.size() > 2) {
    return UsageError(spec, "give a signature address and, optionally, a module address");
  }
  const uint64_t address = Expression(args[0]);
  if (address == 0) return Failure(absl::StrCat("Invalid parameter ", args[0]));
  const uint64_t module = args.size() == 2 ? Expression(args[1]) : 0;

  std::string prefix;  // what the reference prints before the signature
  std::string text;
  enum { kOk, kUnreadable, kCutOff, kUnparsable, kMore } outcome = kOk;
  // The module's metadata, if it has any: the reference says so when it has none.
  bool have_import = false;
  if (module != 0) {
    absl::Status st =
        ctx.dac.WithMetadataImport(module, [](dac::IMetaDataImport*) { return absl::OkStatus(); });
    have_import = st.ok();
    if (!have_import) {
      prefix = absl::StrFormat("Unable to get IMetaDataImport for module %016X\n", module);
    }
  }
  std::vector<uint8_t> sig;
  auto parse = [&](dac::IMetaDataImport* import) -> absl::Status {
    const auto size = static_cast<uint32_t>(sig.size());
    std::vector<uint8_t> padded = sig;
    padded.resize(sig.size() + 64, 0);
    SigPrinter printer(padded, import);
    bool parsed = false, more = false;
    if (method) {
      int64_t remaining = 0;
      parsed = printer.Method(size, &remaining);
      more = parsed && remaining < 0;
    } else {
      uint32_t used = 0;
      parsed = printer.Element(0, size, &used);
      more = !parsed && used > size;
      if (more) parsed = true;
    }
    outcome = !parsed ? kUnparsable : more ? kMore : kOk;
    if (outcome == kOk) text = printer.text();
    return absl::OkStatus();
  };
  for (;;) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    std::vector<uint8_t> chunk(256);
    const size_t got = ctx.dac.ReadTargetMemory(address + sig.size(), chunk.data(), 256);
    if (got == 0) {
      outcome = kUnreadable;
      break;
    }
    sig.insert(sig.end(), chunk.begin(), chunk.begin() + static_cast<ptrdiff_t>(got));
    absl::Status st = have_import ? ctx.dac.WithMetadataImport(module, parse) : parse(nullptr);
    if (!st.ok()) return Failure(std::string(st.message()));
    if (outcome != kMore) break;
    if (got < 256) {
      outcome = kCutOff;
      break;
    }
  }
  const std::string where = absl::StrCat(absl::Hex(address));
  if (ctx.json) {
    Json j{{"address", JsonHex(address)}};
    if (module != 0) j["module"] = JsonHex(module);
    if (!prefix.empty()) j["module_metadata"] = false;
    if (outcome == kOk) {
      j["signature"] = text;
      WriteJson(ctx, j);
      return {};
    }
  } else {
    ctx.out.Write(prefix);
  }
  switch (outcome) {
    case kOk:
    case kMore:
      ctx.out.Write(text + "\n");
      return {};
    case kCutOff:
      if (!ctx.json) ctx.out.Write("Invalid signature\n");
      return Failure(
          absl::StrCat("Invalid signature at ", where, ": it runs past readable memory"));
    case kUnreadable:
      return Failure(absl::StrCat("Failed to read memory at ", where));
    case kUnparsable:
      return Failure(absl::StrCat("Invalid signature at ", where, ": not a ",
                                  method ? "method, field or locals signature" : "type"));
  }
  return {};
}

CommandResult DumpSig(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  return DumpSigCommon(ctx, spec, args, true);
}

CommandResult DumpSigElem(CommandContext& ctx, const CommandSpec& spec,
                          const std::vector<std::string>& args) {
  return DumpSigCommon(ctx, spec, args, false);
}

}  // namespace

void RegisterSigCommands(CommandRegistry& r) {
  r.Add({{"dumpsig", "DumpSig"},
         "<arguments>",
         "Dumps the signature of a method or field specified by <sigaddr> <moduleaddr>.",
         "dumpsig <sigaddr> [<moduleaddr>]\n"
         "  The method, field or locals signature at <sigaddr> (target memory, e.g. in a\n"
         "  module's metadata blob heap), in SOS's notation: calling convention, return type,\n"
         "  parameter types. With the module (dumpmodule, name2ee), class and value type tokens\n"
         "  are named; without, they print as tokens.",
         DumpSig});
  r.Add({{"dumpsigelem", "DumpSigElem"},
         "<arguments>",
         "Dumps a single element of a signature object.",
         "dumpsigelem <sigaddr> [<moduleaddr>]\n"
         "  One type of a signature at <sigaddr> (e.g. one parameter of what dumpsig shows), in\n"
         "  the same notation as dumpsig.",
         DumpSigElem});
}

}  // namespace clrdiag::sos
