#include "core/sos/object_format.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/exception.h"
#include "core/dac/metadata_import.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

// CorElementType values used here (corhdr.h).
enum : int32_t {
  kEtVoid = 0x01,
  kEtBoolean = 0x02,
  kEtChar = 0x03,
  kEtI1 = 0x04,
  kEtU1 = 0x05,
  kEtI2 = 0x06,
  kEtU2 = 0x07,
  kEtI4 = 0x08,
  kEtU4 = 0x09,
  kEtI8 = 0x0a,
  kEtU8 = 0x0b,
  kEtR4 = 0x0c,
  kEtR8 = 0x0d,
  kEtPtr = 0x0f,
  kEtByRef = 0x10,
  kEtValueType = 0x11,
  kEtClass = 0x12,
  kEtVar = 0x13,
  kEtArray = 0x14,
  kEtI = 0x18,
  kEtU = 0x19,
  kEtFnPtr = 0x1b,
  kEtSzArray = 0x1d,
  kEtMVar = 0x1e,
  kEtMax = 0x22,
};

constexpr uint8_t kNoSize = 0xff;

// Per CorElementType below kEtMax: namespace, name and size in a field, as cortypeinfo.h
// lists them for a 64-bit target.
struct ElementTypeInfo {
  const char* ns;
  const char* name;
  uint8_t size;
};
constexpr ElementTypeInfo kElementTypes[kEtMax] = {
    {nullptr, nullptr, kNoSize},       // END
    {"System", "Void", 0},             // VOID
    {"System", "Boolean", 1},          // BOOLEAN
    {"System", "Char", 2},             // CHAR
    {"System", "SByte", 1},            // I1
    {"System", "Byte", 1},             // U1
    {"System", "Int16", 2},            // I2
    {"System", "UInt16", 2},           // U2
    {"System", "Int32", 4},            // I4
    {"System", "UInt32", 4},           // U4
    {"System", "Int64", 8},            // I8
    {"System", "UInt64", 8},           // U8
    {"System", "Single", 4},           // R4
    {"System", "Double", 8},           // R8
    {"System", "String", 8},           // STRING
    {nullptr, nullptr, 8},             // PTR
    {nullptr, nullptr, 8},             // BYREF
    {nullptr, nullptr, kNoSize},       // VALUETYPE
    {nullptr, nullptr, 8},             // CLASS
    {nullptr, nullptr, 8},             // VAR
    {nullptr, nullptr, 8},             // ARRAY
    {nullptr, nullptr, 8},             // GENERICINST
    {"System", "TypedReference", 16},  // TYPEDBYREF
    {nullptr, nullptr, kNoSize},       // 0x17
    {"System", "IntPtr", 8},           // I
    {"System", "UIntPtr", 8},          // U
    {nullptr, nullptr, kNoSize},       // 0x1a
    {nullptr, nullptr, 8},             // FNPTR
    {"System", "Object", 8},           // OBJECT
    {nullptr, nullptr, 8},             // SZARRAY
    {nullptr, nullptr, 8},             // MVAR
    {nullptr, nullptr, 0},             // CMOD_REQD
    {nullptr, nullptr, 0},             // CMOD_OPT
    {nullptr, nullptr, 0},             // INTERNAL
};

// SOS's ElementTypeName: the short name ("Int32", "CLASS", "SZARRAY"), "" if none.
std::string ElementTypeName(int32_t type) {
  switch (type) {
    case kEtPtr:
      return "PTR";
    case kEtByRef:
      return "BYREF";
    case kEtValueType:
      return "VALUETYPE";
    case kEtClass:
      return "CLASS";
    case kEtVar:
      return "VAR";
    case kEtArray:
      return "ARRAY";
    case kEtFnPtr:
      return "FNPTR";
    case kEtSzArray:
      return "SZARRAY";
    case kEtMVar:
      return "MVAR";
    default:
      if (type < 0 || type >= kEtMax || kElementTypes[type].name == nullptr) return "";
      return kElementTypes[type].name;
  }
}

// "System.Int32" for primitives, the bare ElementTypeName otherwise.
std::string ComposeName(int32_t type) {
  if (type >= 0 && type < kEtMax && kElementTypes[type].ns != nullptr) {
    return absl::StrCat(kElementTypes[type].ns, ".", ElementTypeName(type));
  }
  return ElementTypeName(type);
}

bool IsElementValueType(int32_t t) {
  return (t >= kEtBoolean && t <= kEtR8) || t == kEtValueType || t == kEtI || t == kEtU;
}

// %p in the PAL: 16 upper-case digits. SOS's DML-capable values (MethodTables, objects)
// print in lower case.
std::string Ptr(uint64_t v) { return absl::StrFormat("%016X", v); }
std::string Dml(uint64_t v) { return absl::StrFormat("%016x", v); }

// A long type name keeps its last `max` characters, the first three of them turned into dots.
std::string FormatTypeName(std::string name, size_t max) {
  if (name.size() <= max) return name;
  std::string tail = name.substr(name.size() - max);
  for (size_t i = 0; i < std::min<size_t>(max, 3); ++i) tail[i] = '.';
  return tail;
}

std::string FirstMessage(const absl::Status& s) { return std::string(s.message()); }

class Printer {
 public:
  Printer(dac::DacProcess& dac, const elf::CoreFile& core, const dac::RuntimeModule& runtime,
          OutputSink& out, const CancellationToken& cancel, bool json)
      : dac_(dac), core_(core), runtime_(runtime), sink_(out), cancel_(cancel), json_(json) {}

  // JSON mode: the text is not printed; doc() holds the command's JSON form instead.
  const Json& doc() const { return doc_; }

  ~Printer() { Flush(); }

  void Flush() {
    if (!out_.empty()) sink_.Write(out_);
    out_.clear();
  }

  absl::Status DumpObj(uint64_t address, bool fields);
  absl::Status DumpMt(uint64_t original, const DumpMtOptions& o);
  absl::Status DumpClass(uint64_t eeclass);
  // dumpmt -all's "Additional Details" and dumpclass's tail: attributes, slot and field counts,
  // the field table with static values.
  void ClassDetails(uint64_t mt, const dac::MethodTableDetails& mtd);
  absl::Status DumpVc(uint64_t mt, uint64_t address, bool fields);
  absl::Status DumpArray(uint64_t address, const DumpArrayOptions& o);

 private:
  // One ExtOut of SOS, as dotnet-dump shows it. SOS formats each piece into an 8 KiB buffer
  // and prints nothing when it does not fit; dotnet-dump's console then keeps only tabs,
  // newlines and printable ASCII (it drops '\r', other control characters and every non-ASCII
  // character). Callers pass the same pieces SOS does wherever a name or string is printed.
  void EmitIndent() {
    if (!json_) out_.append(indent_ * 4, ' ');
  }

  void Emit(const std::string& piece) {
    if (json_ || piece.size() >= 8192) return;
    // SOS's ExtOut/DMLOut start every piece with the indent (4 blanks a level), even one
    // that continues a line: dumparray -details shows its elements that way.
    out_.append(indent_ * 4, ' ');
    for (char c : piece) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u == '\n' || u == '\t' || (u >= 0x20 && u <= 0x7f)) out_.push_back(c);
    }
    if (out_.size() >= 64 * 1024) Flush();
  }

  // Whether every page of libcoreclr's PT_GNU_RELRO segment is in the dump (read from the
  // runtime's program headers in the dump; false if they are missing).
  bool RuntimeRelroInDump() {
    if (!relro_in_dump_) relro_in_dump_ = dac::RuntimeRelroInDump(core_, runtime_.base);
    return *relro_in_dump_;
  }

  bool Read(uint64_t addr, void* buf, size_t n) {
    return core_.ReadDumpedMemory(addr, buf, n) == n;
  }

  const dac::UsefulGlobals& Globals() {
    if (!globals_) {
      auto g = dac_.GetUsefulGlobals();
      globals_ = g.ok() ? *g : dac::UsefulGlobals{};
    }
    return *globals_;
  }

  // CreateMethodTableName: the raw DAC name, "Free" for free space; arrays of the shared
  // array MethodTable are named after their element type.
  std::string TypeName(uint64_t mt, uint64_t component_mt = 0) {
    if (mt == Globals().free_mt) return "Free";
    bool array = false;
    if (mt == Globals().array_mt && component_mt != 0) {
      mt = component_mt;
      array = true;
    }
    auto name = dac_.GetMethodTableName(mt);
    if (!name.ok()) return "<error>";
    return array ? *name + "[]" : *name;
  }

  std::string FieldName(uint64_t module, uint32_t token) {
    auto name = dac_.GetMetadataName(module, token | dac::kMdtFieldDef);
    return name.ok() ? *name : "";
  }

  // sos::Object::IsValid(verifyFields): the object, its MethodTable and all parents' readable.
  bool IsValidObject(const dac::ObjectDetails& obj) {
    if (obj.mt == Globals().free_mt) return true;
    auto name = dac_.GetMethodTableName(obj.mt);
    if (name.ok() && *name == "<Unloaded Type>") return true;
    uint64_t mt = obj.mt;
    for (int depth = 0; mt != 0 && depth < 1024; ++depth) {
      auto d = dac_.GetMethodTableDetails(mt);
      if (!d.ok()) return false;
      mt = d->parent;
    }
    return true;
  }

  // util.cpp DisplayDataMember: the value at `addr` for the field's type; 16 blanks when
  // there is no address.
  std::string DataMember(const dac::FieldDescInfo& fd, uint64_t addr, bool align);
  // `value_class`: `start` is the first field of an unboxed value (no object header), as
  // dumpvc and the elements of a value-type array are.
  void DisplayFields(uint64_t mt, const dac::MethodTableDetails& mtd,
                     const dac::MethodTableFields& fields, uint64_t start, bool first,
                     bool value_class = false);
  void DisplayThreadStatic(uint64_t mt, const dac::FieldDescInfo& fd);
  // GetObjFieldOffset: offset from the object of the named instance field, 0 if absent, -1
  // on error.
  int64_t FieldOffset(uint64_t obj, uint64_t mt, const std::string& name, bool first);
  void PrintRuntimeTypeInfo(uint64_t obj, uint64_t mt);
  std::string StringContent(uint64_t obj);
  std::string CharArrayContent(uint64_t pos, uint64_t count, bool wide);
  std::string StaticValue(uint64_t mt, const dac::FieldDescInfo& fd);

  dac::DacProcess& dac_;
  const elf::CoreFile& core_;
  const dac::RuntimeModule& runtime_;
  OutputSink& sink_;
  const CancellationToken& cancel_;
  std::string out_;
  std::optional<dac::UsefulGlobals> globals_;
  std::optional<dac::ThreadStore> threads_;
  std::optional<bool> relro_in_dump_;
  bool json_ = false;
  Json doc_ = Json::object();
  uint32_t indent_ = 0;                  // SOS's IncrementIndent level (dumparray -details)
  uint32_t display_instance_count_ = 0;  // DisplayFields' running count, parents included
  uint32_t offset_instance_count_ = 0;   // GetObjFieldOffset's
};

std::string Printer::DataMember(const dac::FieldDescInfo& fd, uint64_t addr, bool align) {
  if (addr == 0) return std::string(16, ' ');
  const int32_t type = fd.type;
  const uint8_t size = kElementTypes[type].size;
  const bool vt_static = fd.is_static && type == kEtValueType;
  if (size == kNoSize && !vt_static) {
    return type == kEtValueType ? Dml(addr) : Ptr(0);
  }
  uint8_t raw[8] = {};
  const size_t n = vt_static ? 8 : std::min<size_t>(size, sizeof(raw));
  if (n > 0 && !Read(addr, raw, n)) return "";
  uint64_t u64 = 0;
  std::memcpy(&u64, raw, sizeof(u64));
  int8_t i8;
  int16_t i16;
  int32_t i32;
  float f32;
  double f64;
  std::memcpy(&i8, raw, 1);
  std::memcpy(&i16, raw, 2);
  std::memcpy(&i32, raw, 4);
  std::memcpy(&f32, raw, 4);
  std::memcpy(&f64, raw, 8);
  switch (type) {
    case kEtI1:
      return align ? absl::StrFormat("%16d", i8) : absl::StrFormat("%d", i8);
    case kEtI2:
      return align ? absl::StrFormat("%16d", i16) : absl::StrFormat("%d", i16);
    case kEtI4:
      return align ? absl::StrFormat("%16d", i32) : absl::StrFormat("%d", i32);
    case kEtI8:
      return align ? absl::StrFormat("%16d", static_cast<int64_t>(u64))
                   : absl::StrFormat("%d", static_cast<int64_t>(u64));
    case kEtU1:
    case kEtBoolean:
      // Unaligned, SOS passes a (signed) char to %u.
      return align ? absl::StrFormat("%16u", static_cast<uint16_t>(u64 & 0xff))
                   : absl::StrFormat("%u", static_cast<uint32_t>(static_cast<int32_t>(i8)));
    case kEtU2:
      return align ? absl::StrFormat("%16u", static_cast<uint16_t>(i16))
                   : absl::StrFormat("%u", static_cast<uint32_t>(static_cast<int32_t>(i16)));
    case kEtU4:
      return align ? absl::StrFormat("%16u", static_cast<uint32_t>(i32))
                   : absl::StrFormat("%u", static_cast<uint32_t>(i32));
    case kEtU8:
      return align ? absl::StrFormat("%16u", u64) : absl::StrFormat("%u", u64);
    case kEtI:
    case kEtU:
      return Ptr(u64);
    case kEtR4:
      return absl::StrFormat("%f", static_cast<double>(f32));
    case kEtR8:
      return absl::StrFormat("%f", f64);
    case kEtChar:
      return align ? absl::StrFormat("%16x", static_cast<uint16_t>(i16))
                   : absl::StrFormat("%x", static_cast<uint32_t>(static_cast<int32_t>(i16)));
    case kEtValueType:
      return u64 != 0 ? Dml(addr) : Ptr(0);
    case kEtByRef:
      return Ptr(u64);
    default:
      return u64 != 0 ? Dml(u64) : Ptr(0);
  }
}

std::string Printer::StaticValue(uint64_t mt, const dac::FieldDescInfo& fd) {
  const bool gc_static = fd.type == kEtValueType || fd.type == kEtClass;
  if (!dac_.HasStaticBaseApi()) {
    // .NET 8 and older: the statics blocks of the type's module's DomainLocalModule, as SOS
    // reads them. Dynamic statics (e.g. generic instantiations) are not followed, and SOS
    // says so ("dynamic statics NYI"); a block not allocated yet shows the default value.
    auto mtd = dac_.GetMethodTableDetails(mt);
    auto dlm = mtd.ok() ? dac_.GetDomainLocalModule(mtd->module)
                        : absl::StatusOr<dac::DomainLocalModule>(mtd.status());
    if (!dlm.ok()) return " <no information>\n";
    const uint64_t base = gc_static ? dlm->gc_statics : dlm->non_gc_statics;
    if (base == 0) return DataMember(fd, 0, true);
    if (mtd->is_dynamic) return "dynamic statics NYI <no information>\n";
    return DataMember(fd, base + fd.offset, true);
  }
  auto bases = dac_.GetStaticBases(mt);
  if (!bases.ok()) {
    if (absl::IsUnimplemented(bases.status())) return " <no information>\n";
    return "GetStaticBaseAddress failed <no information>\n";
  }
  const uint64_t base = gc_static ? bases->gc : bases->non_gc;
  std::string s;
  if (base != 0) {
    if (!dac_.GetMethodTableInitializationFlags(mt).ok()) {
      s += "GetMethodTableInitializationFlags failed";
    }
    s += DataMember(fd, base + fd.offset, true);
  } else {
    s += DataMember(fd, 0, true);
  }
  return s;
}

void Printer::DisplayThreadStatic(uint64_t mt, const dac::FieldDescInfo& fd) {
  Emit("    Thread static values (Thread:Value)\n");
  if (!threads_) {
    auto ts = dac_.GetThreadStore();
    threads_ = ts.ok() ? *ts : dac::ThreadStore{};
  }
  const bool gc_static = fd.type == kEtValueType || fd.type == kEtClass;
  for (const dac::ManagedThread& t : threads_->threads) {
    if (t.os_id == 0) continue;
    auto bases = dac_.GetThreadStaticBases(mt, t.address);
    if (!bases.ok()) {
      if (!absl::IsUnimplemented(bases.status())) Emit("GetThreadStaticBaseAddress failed");
      continue;
    }
    const uint64_t base = gc_static ? bases->gc : bases->non_gc;
    uint32_t flags = base != 0 ? 4 : 0;
    auto init = dac_.GetMethodTableInitializationFlags(mt);
    if (init.ok()) {
      flags |= static_cast<uint8_t>(*init);
    } else {
      Emit("GetMethodTableInitializationFlags failed");
    }
    if (flags & 4) {
      std::string value = DataMember(fd, base + fd.offset, false);
      Emit(absl::StrFormat("        %x:%s\n", t.os_id, value));
      if (json_) {
        Json& fields = doc_["fields"];
        if (fields.is_array() && !fields.empty()) {
          fields.back()["thread_values"].push_back(
              Json{{"os_thread_id", t.os_id}, {"value", value}});
        }
      }
    }
  }
  Emit("\n");
}

void Printer::DisplayFields(uint64_t mt, const dac::MethodTableDetails& mtd,
                            const dac::MethodTableFields& fields, uint64_t start, bool first,
                            bool value_class) {
  if (first) {
    EmitIndent();
    Emit(absl::StrFormat("%16s %8s %8s %20s %4s %8s %16s %s\n", "MT", "Field", "Offset", "Type",
                         "VT", "Attr", "Value", "Name"));
    display_instance_count_ = 0;
  }
  if (mtd.parent != 0) {
    auto parent = dac_.GetMethodTableDetails(mtd.parent);
    if (!parent.ok()) {
      Emit("Invalid parent MethodTable\n");
      return;
    }
    auto parent_fields = dac_.GetMethodTableFields(mtd.parent);
    if (!parent_fields.ok()) {
      Emit("Invalid parent EEClass\n");
      return;
    }
    DisplayFields(mtd.parent, *parent, *parent_fields, start, false, value_class);
  }
  uint32_t static_count = 0;
  uint64_t addr = fields.first_field;
  while (display_instance_count_ < fields.num_instance || static_count < fields.num_static) {
    if (cancel_.cancelled()) return;
    EmitIndent();
    auto fd_or = dac_.GetFieldDesc(addr);
    if (!fd_or.ok() || fd_or->type < 0 || fd_or->type >= kEtMax) {
      Emit("Unable to display fields\n");
      return;
    }
    const dac::FieldDescInfo& fd = *fd_or;
    addr = fd.next;

    uint32_t offset = fd.offset;
    if (!((fd.is_thread_local || fd.is_context_local || mtd.is_shared) && fd.is_static) &&
        !value_class) {
      offset += 8;  // sizeof(BaseObject): SOS shows offsets from the object's start
    }
    Emit(absl::StrFormat("%s %08x %8x ", Dml(fd.mt_of_type), fd.token | dac::kMdtFieldDef, offset));
    std::string type_name;
    if ((fd.type == kEtValueType || fd.type == kEtClass) && fd.mt_of_type != 0) {
      auto n = dac_.GetMethodTableName(fd.mt_of_type);
      type_name = n.ok() ? *n : "";
    } else if (fd.type == kEtClass && fd.token_of_type != dac::kMdTypeDefNil) {
      // SOS ORs the TypeDef token type into whatever token the field's type has: a TypeRef or
      // TypeSpec becomes a token no TypeDef lookup accepts, and the name stays empty.
      uint32_t token = fd.token_of_type | dac::kMdtTypeDef;
      if ((token & 0xff000000u) == dac::kMdtTypeDef) {
        auto n = dac_.GetMetadataName(mtd.module, token);
        type_name = n.ok() ? *n : "";
      }
    } else {
      type_name = ComposeName(fd.type != fd.sig_type ? fd.sig_type : fd.type);
    }
    Json field{{"mt", JsonHex(fd.mt_of_type)},
               {"field", JsonHex(fd.token | dac::kMdtFieldDef)},
               {"offset", offset},
               {"type", type_name},
               {"value_type", IsElementValueType(fd.type)},
               {"name", FieldName(mtd.module, fd.token)}};
    Emit(absl::StrFormat("%20.20s ", FormatTypeName(type_name, 20)));
    Emit(absl::StrFormat("%4s ", IsElementValueType(fd.type) ? "Yes" : "No"));
    const std::string name_piece = absl::StrCat(" ", FieldName(mtd.module, fd.token), "\n");

    if (fd.is_static && (fd.is_thread_local || fd.is_context_local)) {
      ++static_count;
      Emit(absl::StrFormat("%8s ", fd.is_thread_local ? "TLstatic" : "CLstatic"));
      Emit(name_piece);
      field["attr"] = fd.is_thread_local ? "TLstatic" : "CLstatic";
      if (json_) doc_["fields"].push_back(field);
      if (fd.is_thread_local) {
        DisplayThreadStatic(mt, fd);
      } else {
        Emit("\nDisplay of context static variables is not implemented\n");
      }
    } else if (fd.is_static) {
      ++static_count;
      Emit(absl::StrFormat("%8s ", "static"));
      std::string value = StaticValue(mt, fd);
      if (!value.empty()) Emit(value);  // SOS prints nothing (no indent) for an unreadable value
      field["attr"] = "static";
      field["value"] = std::string(absl::StripAsciiWhitespace(value));
      if (json_) doc_["fields"].push_back(field);
      if (value.empty() || value.back() != '\n') Emit(name_piece);  // else: no information
    } else {
      ++display_instance_count_;
      Emit(absl::StrFormat("%8s ", "instance"));
      std::string value = start != 0
                              ? DataMember(fd, start + fd.offset + (value_class ? 0 : 8), true)
                              : std::string(16, ' ');
      if (!value.empty()) Emit(value);  // SOS prints nothing (no indent) for an unreadable value
      field["attr"] = "instance";
      if (start != 0) field["value"] = std::string(absl::StripAsciiWhitespace(value));
      if (json_) doc_["fields"].push_back(field);
      Emit(name_piece);
    }
  }
}

int64_t Printer::FieldOffset(uint64_t obj, uint64_t mt, const std::string& name, bool first) {
  if (first) offset_instance_count_ = 0;
  if (!dac_.GetObjectDetails(obj).ok()) return -1;
  auto mtd = dac_.GetMethodTableDetails(mt);
  if (!mtd.ok()) return -1;
  if (mtd->parent != 0) {
    int64_t r = FieldOffset(obj, mtd->parent, name, false);
    if (r != 0) return r;
  }
  auto fields = dac_.GetMethodTableFields(mt);
  if (!fields.ok()) return -1;
  uint64_t addr = fields->first_field;
  while (offset_instance_count_ < fields->num_instance) {
    auto fd = dac_.GetFieldDesc(addr);
    if (!fd.ok()) return -1;
    if (!fd->is_static) {
      if (FieldName(mtd->module, fd->token) == name) return fd->offset + 8;
      ++offset_instance_count_;
    }
    addr = fd->next;
  }
  return 0;
}

void Printer::PrintRuntimeTypeInfo(uint64_t obj, uint64_t mt) {
  int64_t offset = FieldOffset(obj, mt, "m_handle", true);
  if (offset <= 0) return;
  uint64_t handle = 0;
  if (!Read(obj + static_cast<uint64_t>(offset), &handle, sizeof(handle))) return;
  if (handle & 2) {  // RUNTIMETYPE_HANDLE_IS_TYPEDESC
    Emit(absl::StrCat("TypeDesc:    ", Ptr(handle & ~uint64_t{2}), "\n"));
  } else {
    Emit(absl::StrCat("Type Name:   ", TypeName(handle), "\n"));
    Emit(absl::StrCat("Type MT:     ", Dml(handle), "\n"));
  }
}

std::string Printer::StringContent(uint64_t obj) {
  auto data = dac_.GetObjectDetails(obj);
  if (!data.ok()) return "<Invalid Object>";
  uint8_t header[12];
  if (!Read(obj, header, sizeof(header))) return "Error getting string data\n";
  uint32_t length = 0;
  std::memcpy(&length, header + 8, sizeof(length));
  if (data->size > 0x200000 || length > 0x200000) {
    return "<String is invalid or too large to print>\n";
  }
  auto chars = dac_.GetObjectString(obj, length);
  if (!chars.ok()) return "<Invalid Object>";
  return dac::Utf16ToUtf8(*chars);
}

std::string Printer::CharArrayContent(uint64_t pos, uint64_t count, bool wide) {
  if (pos == 0 || count == 0) return "";
  if (wide) {
    std::u16string data(count, u'\0');
    if (!Read(pos, data.data(), count * 2)) return "";
    for (char16_t& c : data) {
      if (c < 32 || (c > 126 && c <= 255)) c = u'.';
    }
    return dac::Utf16ToUtf8(data);
  }
  std::string data(count, '\0');
  if (!Read(pos, data.data(), count)) return "";
  for (char& c : data) {
    if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '.';
  }
  return data;
}

absl::Status Printer::DumpObj(uint64_t address, bool fields) {
  auto obj_or = dac_.GetObjectDetails(address);
  if (!obj_or.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(address), " is not a valid object"));
  }
  const dac::ObjectDetails& obj = *obj_or;
  if (!IsValidObject(obj)) {
    Emit("<Note: this object has an invalid CLASS field>\n");
    auto gc = dac_.GetGcHeapSummary();
    if (gc.ok() && !gc->structures_valid) {
      Emit(
          "The garbage collector data structures are not in a valid state for traversal.\n"
          "It is either in the \"plan phase,\" where objects are being moved around, or\n"
          "we are at the initialization or shutdown of the gc heap. Commands related to\n"
          "displaying, finding or traversing objects as well as gc heap segments may not\n"
          "work properly. dumpheap and verifyheap may incorrectly complain of heap\n"
          "consistency errors.\n");
    }
  }
  doc_["address"] = JsonHex(address);
  if (obj.kind == dac::kObjFree) {
    doc_["free"] = true;
    doc_["size"] = obj.size;
    Emit("Free Object\n");
    Emit(absl::StrFormat("Size:        %d(0x%x) bytes\n", obj.size, obj.size));
    return absl::OkStatus();
  }
  const std::string name = TypeName(obj.mt, obj.element_type_handle);
  Emit(absl::StrCat("Name:        ", name, "\n"));
  Emit(absl::StrCat("MethodTable: ", Dml(obj.mt), "\n"));
  doc_["type"] = name;
  doc_["method_table"] = JsonHex(obj.mt);
  auto mtd_or = dac_.GetMethodTableDetails(obj.mt);
  if (!mtd_or.ok()) {
    Emit("Invalid MethodTable address\n");
    return absl::InvalidArgumentError(
        absl::StrCat("the object's MethodTable is not readable: ", FirstMessage(mtd_or.status())));
  }
  const dac::MethodTableDetails& mtd = *mtd_or;
  if (obj.rcw != 0) Emit(absl::StrCat("RCW:         ", Dml(obj.rcw), "\n"));
  if (obj.ccw != 0) Emit(absl::StrCat("CCW:         ", Dml(obj.ccw), "\n"));
  // ComWrappers data hangs off the object's sync block: without one the DAC has nothing to
  // report. With one, the DAC looks up a CoreLib class through name strings that libcoreclr's
  // RELRO segment points to; a dump without that segment (Heap dumps) makes it dereference a
  // null name and kill the process (dotnet-dump's dumpobj dies the same way). So ask only when
  // the object has a sync block and the runtime's RELRO pages are in the dump.
  uint32_t header = 0;
  const bool has_header = Read(address - 4, &header, sizeof(header));
  const bool has_sync_block = has_header && (header & (0x08000000u | 0x04000000u)) == 0x08000000u;
  const bool ask_com_wrappers = has_sync_block && RuntimeRelroInDump();
  if (auto cw = ask_com_wrappers ? dac_.GetObjectComWrappers(address)
                                 : absl::StatusOr<std::pair<uint64_t, std::vector<uint64_t>>>(
                                       absl::NotFoundError("no sync block"));
      cw.ok() && (cw->first != 0 || !cw->second.empty())) {
    if (cw->first != 0) Emit(absl::StrCat("ComWrappers RCW: ", Dml(cw->first), "\n"));
    if (!cw->second.empty()) Emit("ComWrappers CCWs:\n");
    for (uint64_t ccw : cw->second) Emit(absl::StrCat("             ", Dml(ccw), "\n"));
  }
  if (auto tracked = dac_.IsTrackedType(address); tracked.ok() && tracked->first) {
    Emit("Tracked Type: true\n");
  }
  Emit(absl::StrFormat("Size:        %d(0x%x) bytes\n", obj.size, obj.size));
  doc_["size"] = obj.size;

  if (name == "System.RuntimeType") PrintRuntimeTypeInfo(address, obj.mt);
  if (name == "System.RuntimeType+RuntimeTypeCache") {
    int64_t offset = FieldOffset(address, obj.mt, "m_runtimeType", true);
    uint64_t runtime_type = 0;
    if (offset > 0 &&
        Read(address + static_cast<uint64_t>(offset), &runtime_type, sizeof(runtime_type))) {
      auto rt = dac_.GetObjectDetails(runtime_type);
      if (!rt.ok()) {
        Emit("Error when reading RuntimeType field\n");
        return absl::DataLossError(
            absl::StrCat("cannot read the RuntimeType at ", Ptr(runtime_type)));
      }
      PrintRuntimeTypeInfo(runtime_type, rt->mt);
    }
  }

  if (obj.kind == dac::kObjArray) {
    Emit(absl::StrFormat("Array:       Rank %d, Number of elements %d, Type %s\n", obj.rank,
                         obj.components, ElementTypeName(obj.element_type)));
    doc_["array"] = Json{{"rank", obj.rank},
                         {"length", obj.components},
                         {"element_type", ElementTypeName(obj.element_type)}};
    if (obj.element_type == kEtI1 || obj.element_type == kEtU1 || obj.element_type == kEtChar) {
      const bool wide = obj.element_type == kEtChar;
      uint64_t count = 0;
      if (!Read(address + 8, &count, sizeof(count))) {
        return absl::DataLossError(absl::StrCat("cannot read the length of array ", Ptr(address)));
      }
      Emit("Content:     ");
      Emit(CharArrayContent(address + 16, std::min<uint64_t>(count, 128), wide));
      Emit("\n");
    }
  } else {
    auto file = dac_.GetModuleFileName(mtd.module);
    Emit(absl::StrCat("File:        ", file.ok() && !file->empty() ? *file : "Unknown Module",
                      "\n"));
    doc_["module_file"] = file.ok() ? *file : "";
  }
  if (obj.kind == dac::kObjString) {
    Emit("String:      ");
    if (json_) {
      auto str = dac_.GetObjectString(address, 1u << 20);
      if (str.ok()) doc_["string"] = dac::Utf16ToUtf8(*str);
    }
    Emit(StringContent(address));
    Emit("\n");
  }

  if (fields) {
    auto f = dac_.GetMethodTableFields(obj.mt);
    if (!f.ok()) return f.status();
    Emit("Fields:\n");
    doc_["fields"] = Json::array();
    if (f->num_instance + f->num_static > 0) {
      DisplayFields(obj.mt, mtd, *f, address, true);
    } else {
      Emit("None\n");
    }
  }

  // The thin lock in the object header (the 4 bytes before the MethodTable pointer).
  if (has_header && (header & (0x08000000u | 0x10000000u)) == 0 && (header & 0x3ff) != 0) {
    const uint32_t thread_id = header & 0x3ff;
    const uint32_t recursion = (header & 0xfc00) >> 10;
    auto thread = dac_.GetThreadFromThinLockId(thread_id);
    const uint64_t thread_ptr = thread.ok() ? *thread : 0;
    if (thread_ptr != 0) {
      Emit(absl::StrFormat("ThinLock owner %x (%s), Recursive %x\n", thread_id, Ptr(thread_ptr),
                           recursion));
      doc_["thin_lock"] = Json{{"owner_thread_id", thread_id},
                               {"thread", JsonHex(thread_ptr)},
                               {"recursion", recursion}};
    }
  }
  return cancel_.cancelled() ? absl::CancelledError("cancelled") : absl::OkStatus();
}

absl::Status Printer::DumpMt(uint64_t original, const DumpMtOptions& o) {
  const uint64_t mt = original & ~uint64_t{3};
  if (mt != Globals().free_mt && !dac_.LooksLikeMethodTable(mt)) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(original), " is not a MethodTable"));
  }
  auto mtd_or = dac_.GetMethodTableDetails(mt);
  if (!mtd_or.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(original), " is not a MethodTable"));
  }
  const dac::MethodTableDetails& mtd = *mtd_or;
  if (mtd.is_free) return absl::InvalidArgumentError("Free MethodTable");

  // Two columns: the label (20 wide, 29 for the last one), then the value.
  doc_["method_table"] = JsonHex(mt);
  auto row = [&](const std::string& label, const std::string& value, int width = 20) {
    if (json_) {
      // "Has GC Pointers:" → "has_gc_pointers"
      std::string key;
      for (char c : label) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
          key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        } else if (!key.empty() && key.back() != '_') {
          key.push_back('_');
        }
      }
      while (!key.empty() && key.back() == '_') key.pop_back();
      doc_[key] = value;
    }
    Emit(absl::StrFormat("%-*.*s ", width, width, label));
    Emit(value);
    Emit("\n");
  };
  row("Parent:", Dml(mtd.parent));
  // .NET 9+ returns the canonical MethodTable where an EEClass used to be.
  auto canonical = dac_.GetMethodTableForEEClass(mtd.klass);
  if (canonical.ok() && *canonical == mtd.klass) {
    if (*canonical != 0 && *canonical != mt) row("Canonical:", Dml(*canonical));
  } else {
    row("EEClass:", Ptr(mtd.klass));
  }
  row("Module:", Ptr(mtd.module));
  row("Name:", TypeName(mt));
  auto file = dac_.GetModuleFileName(mtd.module);
  row("mdToken:", Ptr(mtd.token));
  row("File:", file.ok() && !file->empty() ? *file : "Unknown Module");
  if (auto handle = dac_.GetLoaderAllocatorHandle(mt); handle.ok() && *handle != 0) {
    uint64_t allocator = 0;
    if (Read(*handle, &allocator, sizeof(allocator))) row("LoaderAllocator:", Ptr(allocator));
  }
  if (auto alc = dac_.GetAssemblyLoadContext(mt); alc.ok()) {
    row("AssemblyLoadContext:",
        *alc != 0 ? Ptr(*alc)
                  : "Default ALC - The managed instance of this context doesn't exist yet.");
  }
  row("BaseSize:", absl::StrFormat("0x%x", mtd.base_size));
  if (mtd.component_size != 0) row("ComponentSize:", absl::StrFormat("0x%x", mtd.component_size));
  row("Has GC Pointers:", mtd.contains_pointers ? "true" : "false");
  row("Number of Methods:", absl::StrCat(mtd.num_methods));
  row("Number of IFaces in IFaceMap:", absl::StrCat(mtd.num_interfaces), 29);

  if (o.method_descs || o.all) {
    Emit("--------------------------------------\n");
    Emit("MethodDesc Table\n");
    Emit(absl::StrFormat("%16s %16s %6s %-16s %s\n", "Entry", "MethodDesc", "JIT", "Slot", "Name"));
    uint64_t runtime_end = runtime_.base;
    for (const elf::CoreModule& m : core_.modules()) {
      if (m.base == runtime_.base) runtime_end = m.end;
    }
    auto slots = dac_.GetMethodTableSlots(mt);
    if (slots.ok()) {
      for (const dac::MethodSlot& s : *slots) {
        if (cancel_.cancelled()) return absl::CancelledError("cancelled");
        if (s.unreadable) {
          Emit(absl::StrFormat("<error getting slot %u>\n", s.slot));
          continue;
        }
        int32_t jit = dac::kJitTypeUnknown;
        if (s.entry_point != 0) {
          uint64_t md_from_ip = 0;
          if (auto ch = dac_.GetCodeHeader(s.entry_point); ch.ok()) {
            md_from_ip = ch->method_desc;
            jit = ch->jit_type;
          }
          if (md_from_ip != s.method_desc && s.method_desc != 0) {
            Emit("MethodDesc from IP2MD does not match MethodDesc from enumerator\n");
          }
        }
        std::string line = absl::StrFormat("%16s %16s ", Ptr(s.entry_point), Ptr(s.method_desc));
        if (jit == dac::kJitTypeUnknown && s.method_desc != 0) {
          if (auto md = dac_.GetMethodDesc(s.method_desc); md.ok()) {
            if (auto ch = dac_.GetCodeHeader(md->native_code); ch.ok()) jit = ch->jit_type;
          }
        }
        const char* jit_name = "NONE";
        if (jit == dac::kJitTypeJit) {
          jit_name = "JIT";
        } else if (jit == dac::kJitTypePreJit) {
          jit_name = "PreJIT";
        } else if (auto md = dac_.GetMethodDesc(s.method_desc); md.ok()) {
          if (md->native_code >= runtime_.base && md->native_code < runtime_end) jit_name = "FCALL";
        }
        absl::StrAppendFormat(&line, "%6s %-16s ", jit_name, Ptr(s.slot));
        std::string name;
        if (s.method_desc != 0) {
          if (!dac_.GetMethodDesc(s.method_desc).ok()) {
            absl::StrAppend(&line, Ptr(s.method_desc), " is not a MethodDesc\n");
          } else {
            auto n = dac_.GetMethodDescName(s.method_desc);
            name = n.ok() ? *n : "UNKNOWN";
          }
        } else {
          auto module_file = dac_.GetModuleFileName(s.defining_module);
          if (!module_file.ok()) {
            name = absl::StrFormat("Unknown Module!%08x", s.token);
          } else if (auto n = dac_.GetMetadataName(s.defining_module, s.token, true); n.ok()) {
            name = *n;
          } else {
            name = absl::StrFormat(" mdToken: %08x (%s)", s.token,
                                   module_file->empty() ? "Unknown Module" : *module_file);
          }
        }
        Emit(line);
        Emit(name);
        Emit("\n");
        if (json_) {
          doc_["method_descs"].push_back(Json{{"entry", JsonHex(s.entry_point)},
                                              {"method_desc", JsonHex(s.method_desc)},
                                              {"jit", jit_name},
                                              {"slot", JsonHex(s.slot)},
                                              {"name", name}});
        }
      }
    }
  }
  if (o.all) {
    Emit("--------------------------------------\n");
    Emit("Additional Details\n");
    ClassDetails(mt, mtd);
  }
  return absl::OkStatus();
}

void Printer::ClassDetails(uint64_t mt, const dac::MethodTableDetails& mtd) {
  std::string attrs = absl::StrFormat("Class Attributes:    %08x  ", mtd.attributes);
  if ((mtd.attributes & 0x20) == 0x20) attrs += "Interface ";
  if (mtd.attributes & 0x80) attrs += "Abstract ";
  if (mtd.attributes & 0x1000) attrs += "ComImport ";
  if (mtd.attributes & 0x100) attrs += "Sealed ";
  Emit(attrs + "\n");
  if (mtd.num_virtuals != 0) Emit(absl::StrFormat("Vtable Slots:    %d\n", mtd.num_virtuals));
  if (mtd.num_vtable_slots != 0) {
    Emit(absl::StrFormat("Total Method Slots:  %d\n", mtd.num_vtable_slots));
  }
  doc_["class_attributes"] = JsonHex(mtd.attributes);
  doc_["vtable_slots"] = mtd.num_virtuals;
  doc_["total_method_slots"] = mtd.num_vtable_slots;
  if (auto f = dac_.GetMethodTableFields(mt); f.ok()) {
    doc_["num_instance_fields"] = f->num_instance;
    doc_["num_static_fields"] = f->num_static;
    doc_["num_thread_static_fields"] = f->num_thread_static;
    doc_["fields"] = Json::array();
    Emit(absl::StrFormat("NumInstanceFields:   %d\n", f->num_instance));
    Emit(absl::StrFormat("NumStaticFields:     %d\n", f->num_static));
    if (f->num_thread_static != 0) {
      Emit(absl::StrFormat("NumThreadStaticFields: %d\n", f->num_thread_static));
    }
    if (f->num_instance + f->num_static > 0) DisplayFields(mt, mtd, *f, 0, true);
  }
}

absl::Status Printer::DumpClass(uint64_t eeclass) {
  // .NET 9+ has no EEClass to show: the "EEClass" is the canonical MethodTable, and the
  // runtime says so by answering it for itself.
  auto canonical = dac_.GetMethodTableForEEClass(eeclass);
  if (!canonical.ok() || *canonical == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Ptr(eeclass), " is not an EEClass: Invalid EEClass address"));
  }
  const uint64_t mt = *canonical;
  const bool prefer_mt = mt == eeclass;
  auto mtd_or = dac_.GetMethodTableDetails(mt);
  if (!mtd_or.ok()) return absl::InvalidArgumentError("EEClass has an invalid MethodTable address");
  const dac::MethodTableDetails& mtd = *mtd_or;
  uint64_t parent_class = 0;
  if (mtd.parent != 0) {
    auto parent = dac_.GetMethodTableDetails(mtd.parent);
    if (!parent.ok())
      return absl::InvalidArgumentError("EEClass has an invalid MethodTable address");
    parent_class = parent->klass;
  }
  auto name = dac_.GetMethodTableName(mt);
  auto file = dac_.GetModuleFileName(mtd.module);
  const std::string class_name = name.ok() ? *name : "<Unloaded Type>";
  const std::string file_name = file.ok() ? *file : "";
  Emit(absl::StrCat("Class Name:      ", class_name, "\n"));
  Emit(absl::StrCat("mdToken:         ", Ptr(mtd.token), "\n"));
  Emit(absl::StrCat("File:            ", file_name, "\n"));
  if (!prefer_mt) {
    Emit(absl::StrCat("Parent Class:    ", Dml(parent_class), "\n"));
  } else {
    Emit(absl::StrCat("Parent:    ", Dml(mtd.parent), "\n"));
  }
  Emit(absl::StrCat("Module:          ", Dml(mtd.module), "\n"));
  Emit(absl::StrCat("Method Table:    ", Dml(mt), "\n"));
  if (prefer_mt && mt != mtd.klass) Emit(absl::StrCat("Canonical:    ", Dml(mtd.klass), "\n"));
  doc_["eeclass"] = JsonHex(eeclass);
  doc_["is_canonical_method_table"] = prefer_mt;
  doc_["name"] = class_name;
  doc_["token"] = JsonHex(mtd.token);
  doc_["file"] = file_name;
  if (prefer_mt) {
    doc_["parent_method_table"] = JsonHex(mtd.parent);
  } else {
    doc_["parent_class"] = JsonHex(parent_class);
  }
  doc_["module"] = JsonHex(mtd.module);
  doc_["method_table"] = JsonHex(mt);
  ClassDetails(mt, mtd);
  return cancel_.cancelled() ? absl::CancelledError("cancelled") : absl::OkStatus();
}

absl::Status Printer::DumpVc(uint64_t mt, uint64_t address, bool fields) {
  if (!dac_.LooksLikeMethodTable(mt)) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(mt), " is not a MethodTable"));
  }
  auto mtd_or = dac_.GetMethodTableDetails(mt);
  if (!mtd_or.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(mt), " is not a MethodTable"));
  }
  const dac::MethodTableDetails& mtd = *mtd_or;
  auto name = dac_.GetMethodTableName(mt);
  if (!name.ok()) return name.status();
  Emit(absl::StrCat("Name:        ", *name, "\n"));
  Emit(absl::StrCat("MethodTable: ", Dml(mt), "\n"));
  doc_["address"] = JsonHex(address);
  doc_["type"] = *name;
  doc_["method_table"] = JsonHex(mt);
  // .NET 9+ returns the canonical MethodTable where an EEClass used to be.
  auto canonical = dac_.GetMethodTableForEEClass(mtd.klass);
  if (canonical.ok() && *canonical == mtd.klass) {
    if (*canonical != 0 && *canonical != mt)
      Emit(absl::StrCat("Canonical: ", Dml(*canonical), "\n"));
  } else {
    Emit(absl::StrCat("EEClass:     ", Dml(mtd.klass), "\n"));
  }
  Emit(absl::StrFormat("Size:        %d(0x%x) bytes\n", mtd.base_size, mtd.base_size));
  doc_["size"] = mtd.base_size;
  auto file = dac_.GetModuleFileName(mtd.module);
  Emit(absl::StrCat("File:        ", file.ok() && !file->empty() ? *file : "Unknown Module", "\n"));
  doc_["module_file"] = file.ok() ? *file : "";
  if (fields) {
    auto f = dac_.GetMethodTableFields(mt);
    if (!f.ok()) return f.status();
    Emit("Fields:\n");
    doc_["fields"] = Json::array();
    if (f->num_instance + f->num_static > 0) DisplayFields(mt, mtd, *f, address, true, true);
  }
  return cancel_.cancelled() ? absl::CancelledError("cancelled") : absl::OkStatus();
}

absl::Status Printer::DumpArray(uint64_t address, const DumpArrayOptions& o) {
  auto obj_or = dac_.GetObjectDetails(address);
  if (!obj_or.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(address), " is not a valid object"));
  }
  const dac::ObjectDetails& obj = *obj_or;
  if (obj.kind != dac::kObjArray) {
    return absl::InvalidArgumentError(absl::StrCat(Ptr(address), " is a ",
                                                   TypeName(obj.mt, obj.element_type_handle),
                                                   ", not an array: use dumpobj instead"));
  }
  if (!IsValidObject(obj)) Emit("<Note: this object has an invalid CLASS field>\n");
  const uint32_t rank = std::max<uint32_t>(obj.rank, 1);
  if (rank != 1 && (o.length != kAllElements || o.start != 0)) {
    return absl::InvalidArgumentError(
        "-start and -length are only supported for single-dimension arrays");
  }
  if (o.start > obj.components) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "start index %d is out of range (the array has %d elements)", o.start, obj.components));
  }
  if (!o.details && o.no_fields) Emit("-nofields has no effect unless -details is specified\n");

  auto element_name = dac_.GetMethodTableName(obj.element_type_handle);
  std::string name = absl::StrCat(element_name.ok() ? *element_name : "", "[");
  for (uint32_t i = 1; i < rank; ++i) name += ",";
  name += "]";
  Emit(absl::StrCat("Name:        ", name, "\n"));
  Emit(absl::StrCat("MethodTable: ", Dml(obj.mt), "\n"));
  if (auto mtd = dac_.GetMethodTableDetails(obj.mt); mtd.ok()) {
    Emit(absl::StrCat("EEClass:     ", Dml(mtd->klass), "\n"));
  }
  Emit(absl::StrFormat("Size:        %d(0x%x) bytes\n", obj.size, obj.size));
  Emit(absl::StrFormat("Array:       Rank %d, Number of elements %d, Type %s\n", rank,
                       obj.components, ElementTypeName(obj.element_type)));
  Emit(absl::StrCat("Element Methodtable: ", Dml(obj.element_type_handle), "\n"));
  doc_["address"] = JsonHex(address);
  doc_["type"] = name;
  doc_["method_table"] = JsonHex(obj.mt);
  doc_["size"] = obj.size;
  doc_["rank"] = rank;
  doc_["length"] = obj.components;
  doc_["element_type"] = ElementTypeName(obj.element_type);
  doc_["element_method_table"] = JsonHex(obj.element_type_handle);
  doc_["elements"] = Json::array();

  // Bounds: a single-dimension array's is its length from 0; a multi-dimensional array keeps
  // rank lengths, then rank lower bounds (32-bit each) after its length word.
  std::vector<uint32_t> bounds(rank), lower(rank, 0);
  if (rank == 1) {
    bounds[0] = static_cast<uint32_t>(obj.components);
    uint32_t lb = 0;
    // An MDARRAY of rank 1 stores its bounds too; a plain SZARRAY starts its data at +16.
    if (obj.array_data == address + 16 + 8 && Read(address + 20, &lb, sizeof(lb))) lower[0] = lb;
  } else if (!Read(address + 16, bounds.data(), rank * 4) ||
             !Read(address + 16 + rank * 4, lower.data(), rank * 4)) {
    Emit("Failed to read bounds info from the array\n");
    return absl::OkStatus();
  }
  // -start and -length count from the first element. (SOS takes -start as the index itself,
  // which for an array whose lower bound is not 0 lists indices and addresses outside it.)
  if (rank == 1 && o.length != kAllElements) {
    bounds[0] = static_cast<uint32_t>(std::min<uint64_t>(bounds[0], o.length + o.start));
  }
  std::vector<uint32_t> index(lower);
  if (rank == 1) index[0] = static_cast<uint32_t>(lower[0] + o.start);
  auto in_range = [&]() {
    for (int i = static_cast<int>(rank) - 1; i >= 0; --i) {
      if (index[i] >= bounds[i] + lower[i]) {
        if (i == 0) return false;
        index[i] = lower[i];
        ++index[i - 1];
      }
    }
    return true;
  };
  uint64_t offset = 0;
  {
    uint64_t multiplier = 1;
    for (int i = static_cast<int>(rank) - 1; i >= 0; --i) {
      offset += (index[i] - lower[i]) * multiplier;
      multiplier *= bounds[i];
    }
  }
  const bool value_type = IsElementValueType(obj.element_type);
  for (; in_range(); ++index[rank - 1], ++offset) {
    if (cancel_.cancelled()) return absl::CancelledError("cancelled");
    std::string indices;
    for (uint32_t i = 0; i < rank; ++i) absl::StrAppendFormat(&indices, "[%d]", index[i]);
    const uint64_t element_address = obj.array_data + offset * obj.component_size;
    uint64_t element = 0;
    if (value_type) {
      element = element_address;
    } else if (!Read(element_address, &element, sizeof(element))) {
      Emit("Failed to read element at ");
      Emit(indices);
      Emit("\n");
      continue;
    }
    // ExtOutIndices prints each index as its own piece.
    for (uint32_t i = 0; i < rank; ++i) Emit(absl::StrFormat("[%d]", index[i]));
    Emit(element != 0 ? absl::StrCat(" ", Dml(element), "\n") : " null\n");
    Json entry{{"index", rank == 1 ? Json(index[0]) : Json(index)}};
    if (value_type) {
      entry["address"] = JsonHex(element);
    } else {
      entry["object"] = element != 0 ? Json(JsonHex(element)) : Json(nullptr);
    }
    if (o.details && (value_type || element != 0)) {
      Json saved = std::move(doc_);
      doc_ = Json::object();
      ++indent_;
      absl::Status st = value_type ? DumpVc(obj.element_type_handle, element, !o.no_fields)
                                   : DumpObj(element, !o.no_fields);
      --indent_;
      if (!st.ok() && !absl::IsInvalidArgument(st)) return st;
      Json details = std::move(doc_);
      doc_ = std::move(saved);
      if (!st.ok()) {
        // An element that is not an object: SOS's PrintObj says so and goes on.
        Emit(absl::StrCat(std::string(4, ' '), st.message(), "\n"));
        details = Json{{"error", std::string(st.message())}};
      }
      entry["details"] = std::move(details);
    }
    if (json_) doc_["elements"].push_back(std::move(entry));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunDumpObj(dac::DacProcess& dac, const elf::CoreFile& core,
                        const dac::RuntimeModule& runtime, uint64_t address, bool fields,
                        OutputSink& out, const CancellationToken& cancel, bool json) {
  Printer p(dac, core, runtime, out, cancel, json);
  absl::Status st = p.DumpObj(address, fields);
  if (st.ok() && json) out.Write(p.doc().dump(-1, ' ', false, Json::error_handler_t::replace));
  return st;
}

absl::Status RunDumpMt(dac::DacProcess& dac, const elf::CoreFile& core,
                       const dac::RuntimeModule& runtime, uint64_t mt, const DumpMtOptions& o,
                       OutputSink& out, const CancellationToken& cancel, bool json) {
  Printer p(dac, core, runtime, out, cancel, json);
  absl::Status st = p.DumpMt(mt, o);
  if (st.ok() && json) out.Write(p.doc().dump(-1, ' ', false, Json::error_handler_t::replace));
  return st;
}

absl::Status RunDumpClass(dac::DacProcess& dac, const elf::CoreFile& core,
                          const dac::RuntimeModule& runtime, uint64_t eeclass, OutputSink& out,
                          const CancellationToken& cancel, bool json) {
  Printer p(dac, core, runtime, out, cancel, json);
  absl::Status st = p.DumpClass(eeclass);
  if (st.ok() && json) out.Write(p.doc().dump(-1, ' ', false, Json::error_handler_t::replace));
  return st;
}

absl::Status RunDumpVc(dac::DacProcess& dac, const elf::CoreFile& core,
                       const dac::RuntimeModule& runtime, uint64_t mt, uint64_t address,
                       OutputSink& out, const CancellationToken& cancel, bool json) {
  Printer p(dac, core, runtime, out, cancel, json);
  absl::Status st = p.DumpVc(mt, address, true);
  if (st.ok() && json) out.Write(p.doc().dump(-1, ' ', false, Json::error_handler_t::replace));
  return st;
}

absl::Status RunDumpArray(dac::DacProcess& dac, const elf::CoreFile& core,
                          const dac::RuntimeModule& runtime, uint64_t address,
                          const DumpArrayOptions& o, OutputSink& out,
                          const CancellationToken& cancel, bool json) {
  Printer p(dac, core, runtime, out, cancel, json);
  absl::Status st = p.DumpArray(address, o);
  if (st.ok() && json) out.Write(p.doc().dump(-1, ' ', false, Json::error_handler_t::replace));
  return st;
}

absl::StatusOr<uint32_t> InstanceFieldOffset(dac::DacProcess& dac, uint64_t mt,
                                             const std::string& name) {
  // Parents first, as SOS searches; a parent's instance fields are counted in the child's.
  std::vector<uint64_t> chain;
  for (uint64_t m = mt; m != 0 && chain.size() < 1024;) {
    chain.push_back(m);
    auto d = dac.GetMethodTableDetails(m);
    if (!d.ok()) return d.status();
    m = d->parent;
  }
  uint32_t seen = 0;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    auto d = dac.GetMethodTableDetails(*it);
    auto fields = dac.GetMethodTableFields(*it);
    if (!d.ok() || !fields.ok()) return absl::NotFoundError("unreadable MethodTable");
    uint64_t addr = fields->first_field;
    while (seen < fields->num_instance) {
      auto fd = dac.GetFieldDesc(addr);
      if (!fd.ok()) return fd.status();
      if (!fd->is_static) {
        auto n = dac.GetMetadataName(d->module, fd->token | dac::kMdtFieldDef);
        if (n.ok() && *n == name) return fd->offset + 8;
        ++seen;
      }
      addr = fd->next;
    }
  }
  return absl::NotFoundError(absl::StrCat("no instance field ", name));
}

}  // namespace clrdiag::sos
