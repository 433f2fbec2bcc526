// Metadata commands: dumpclass, dumpmodule, dumpassembly, dumpalc, findappdomain, name2ee,
// token2ee.
//
// dumpclass, dumpmodule, dumpassembly, dumpalc and findappdomain follow SOS's native commands
// (one DAC request per line); name2ee and token2ee follow dotnet-dump's managed ones, which
// look at the loaded types only (a module's TypeDef-to-MethodTable map) with ClrMD's view of
// them: C#-like type names, the methods of the MethodTable's slots, instance fields including
// the parents' and the type's statics.
#include <algorithm>
#include <optional>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/metadata_import.h"
#include "core/dac/type_name.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/method_format.h"
#include "core/sos/object_format.h"

namespace clrdiag::sos {
namespace {

std::string Ptr(uint64_t v) { return absl::StrFormat("%016X", v); }  // SOS's %p
std::string Dml(uint64_t v) { return absl::StrFormat("%016x", v); }  // SOS's DML links

CommandResult FromStatus(const absl::Status& st) {
  if (st.ok()) return {};
  return Failure(std::string(st.message()));
}

// Splits SOS-style arguments: "/d" (DML) is accepted and ignored, options are matched
// case-insensitively against `options` (each sets its flag), the rest are positional.
struct ParsedArgs {
  std::vector<std::string> positional;
  std::string bad_option;
};
ParsedArgs ParseArgs(const std::vector<std::string>& args,
                     std::initializer_list<std::pair<const char*, bool*>> options) {
  ParsedArgs p;
  for (const std::string& a : args) {
    const std::string lower = absl::AsciiStrToLower(a);
    if (lower == "/d") continue;
    bool matched = false;
    for (const auto& [name, flag] : options) {
      if (lower == name) {
        *flag = true;
        matched = true;
      }
    }
    if (matched) continue;
    if (a.size() > 1 && a[0] == '-' && p.bad_option.empty()) {
      p.bad_option = a;
      continue;
    }
    p.positional.push_back(a);
  }
  return p;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string WithoutExtension(const std::string& file) {
  size_t dot = file.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? file : file.substr(0, dot);
}

// A managed module as ClrMD's ClrRuntime.EnumerateModules lists it (the shared and system
// domains, then the app domains; per domain its assemblies' modules; each module once) and
// names it (IXCLRDataModule's file name, else the assembly's name).
struct ClrModuleInfo {
  uint64_t address = 0;
  std::string name;
  bool is_dynamic = false;
};

absl::StatusOr<std::vector<ClrModuleInfo>> ListClrModules(CommandContext& ctx) {
  auto store = ctx.dac.GetAppDomainStore();
  if (!store.ok()) return store.status();
  std::vector<uint64_t> domains;
  if (store->shared_domain) domains.push_back(store->shared_domain);
  if (store->system_domain) domains.push_back(store->system_domain);
  domains.insert(domains.end(), store->domains.begin(), store->domains.end());
  std::vector<ClrModuleInfo> out;
  std::unordered_set<uint64_t> seen;
  for (uint64_t domain : domains) {
    auto assemblies = ctx.dac.GetDomainAssemblies(domain);
    if (!assemblies.ok()) continue;
    for (uint64_t assembly : *assemblies) {
      if (ctx.cancel.cancelled()) return absl::CancelledError("cancelled");
      auto ad = ctx.dac.GetAssemblyDetails(domain, assembly);
      if (!ad.ok()) continue;
      auto modules = ctx.dac.GetAssemblyModules(assembly, ad->module_count);
      if (!modules.ok()) continue;
      for (uint64_t module : *modules) {
        if (!seen.insert(module).second) continue;
        auto md = ctx.dac.GetModuleDetails(module);
        if (!md.ok()) continue;
        ClrModuleInfo m;
        m.address = module;
        m.name = !md->data_file_name.empty() ? md->data_file_name : ad->name;
        m.is_dynamic = md->is_reflection || (md->has_image_data && md->image_dynamic);
        out.push_back(std::move(m));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// dumpclass

CommandResult DumpClass(CommandContext& ctx, const CommandSpec& spec,
                        const std::vector<std::string>& args) {
  ParsedArgs p = ParseArgs(args, {});
  if (!p.bad_option.empty()) {
    return UsageError(spec, absl::StrCat("unknown option '", p.bad_option, "'"));
  }
  if (p.positional.empty()) return UsageError(spec, "Missing EEClass address");
  if (p.positional.size() > 1) {
    return UsageError(spec, absl::StrCat("unexpected argument '", p.positional[1], "'"));
  }
  uint64_t eeclass = 0;
  if (!ParseHexAddress(p.positional[0], &eeclass) || eeclass == 0) {
    return Failure(absl::StrCat("Invalid parameter ", p.positional[0]));
  }
  return FromStatus(
      RunDumpClass(ctx.dac, ctx.core, ctx.runtime, eeclass, ctx.out, ctx.cancel, ctx.json));
}

// ---------------------------------------------------------------------------------------------
// dumpmodule

constexpr uint32_t kIsEditAndContinue = 0x208;  // .NET Framework's and .NET Core's flag
constexpr int32_t kMaxProfilerModifiedMethods = 100;

CommandResult DumpModule(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  bool method_tables = false, profiler = false;
  ParsedArgs p = ParseArgs(args, {{"-mt", &method_tables}, {"-prof", &profiler}});
  if (!p.bad_option.empty()) {
    return UsageError(spec, absl::StrCat("unknown option '", p.bad_option, "'"));
  }
  if (p.positional.size() != 1) return UsageError(spec, "give one Module address");
  uint64_t module = 0;
  if (!ParseHexAddress(p.positional[0], &module) || module == 0) {
    return Failure(absl::StrCat("Invalid parameter ", p.positional[0]));
  }
  // The DAC answers for memory that is no Module too (with garbage): only the modules the
  // runtime lists are shown.
  auto modules = ListClrModules(ctx);
  if (!modules.ok()) return FromStatus(modules.status());
  const bool listed = std::any_of(modules->begin(), modules->end(),
                                  [&](const ClrModuleInfo& m) { return m.address == module; });
  auto md = ctx.dac.GetModuleDetails(module);
  if (!listed || !md.ok()) {
    return Failure(
        absl::StrFormat("Fail to fill Module %s: not a Module of this process", Ptr(module)));
  }
  auto file = ctx.dac.GetModuleFileName(module);
  const std::string name = file.ok() && !file->empty() ? *file : "Unknown Module";
  std::vector<std::string> attributes;
  if (md->is_pe_file) attributes.emplace_back("PEFile");
  if (md->is_reflection) attributes.emplace_back("Reflection");
  if (md->transient_flags & kIsEditAndContinue) attributes.emplace_back("EditAndContinue");
  if (md->has_image_data) {
    if (md->image_dynamic) attributes.emplace_back("IsDynamic");
    if (md->image_in_memory) attributes.emplace_back("IsInMemory");
    if (md->flat_layout) attributes.emplace_back("IsFileLayout");
  }
  std::string out = absl::StrCat("Name: ", name, "\n", "Attributes:              ");
  for (const std::string& a : attributes) absl::StrAppend(&out, a, " ");
  absl::StrAppend(&out, "\n");
  absl::StrAppend(&out, "Assembly:                ", Dml(md->assembly), "\n");
  const std::pair<const char*, uint64_t> rows[] = {
      {"BaseAddress:             ", md->il_base},
      {"LoaderHeap:              ", md->loader_allocator},
      {"TypeDefToMethodTableMap: ", md->type_def_map},
      {"TypeRefToMethodTableMap: ", md->type_ref_map},
      {"MethodDefToDescMap:      ", md->method_def_map},
      {"FieldDefToDescMap:       ", md->field_def_map},
      {"MemberRefToDescMap:      ", md->member_ref_map},
      {"FileReferencesMap:       ", md->file_references_map},
      {"AssemblyReferencesMap:   ", md->assembly_references_map},
  };
  for (const auto& [label, value] : rows) absl::StrAppend(&out, label, Ptr(value), "\n");
  const bool has_metadata = md->il_base != 0 && md->metadata_start != 0;
  if (has_metadata) {
    absl::StrAppendFormat(&out, "MetaData start address:  %s (%d bytes)\n", Ptr(md->metadata_start),
                          md->metadata_size);
  }
  Json j{{"address", JsonHex(module)},
         {"name", name},
         {"attributes", attributes},
         {"assembly", JsonHex(md->assembly)},
         {"base_address", JsonHex(md->il_base)},
         {"loader_heap", JsonHex(md->loader_allocator)},
         {"type_def_to_method_table_map", JsonHex(md->type_def_map)},
         {"type_ref_to_method_table_map", JsonHex(md->type_ref_map)},
         {"method_def_to_desc_map", JsonHex(md->method_def_map)},
         {"field_def_to_desc_map", JsonHex(md->field_def_map)},
         {"member_ref_to_desc_map", JsonHex(md->member_ref_map)},
         {"file_references_map", JsonHex(md->file_references_map)},
         {"assembly_references_map", JsonHex(md->assembly_references_map)}};
  j["metadata"] = has_metadata
                      ? Json{{"address", JsonHex(md->metadata_start)}, {"size", md->metadata_size}}
                      : Json();
  if (method_tables) {
    for (bool refs : {false, true}) {
      absl::StrAppend(&out, refs ? "\nTypes referenced in this module\n\n"
                                 : "\nTypes defined in this module\n\n");
      if (refs) {
        absl::StrAppendFormat(&out, "%16s   %16s %s\n", "MT", "TypeRef", "Name");
      } else {
        absl::StrAppendFormat(&out, "%16s %16s %s\n", "MT", "TypeDef", "Name");
      }
      absl::StrAppend(&out, std::string(78, '-'), "\n");
      Json list = Json::array();
      auto map = ctx.dac.GetModuleMap(module, refs);
      if (map.ok()) {
        for (const auto& [index, mt] : *map) {
          if (ctx.cancel.cancelled()) return Failure("cancelled");
          auto n = ctx.dac.GetMethodTableName(mt);
          const std::string type = n.ok() ? *n : "<Unloaded Type>";
          // SOS shows both maps' indices as TypeDef tokens.
          const uint32_t token = dac::kMdtTypeDef | index;
          absl::StrAppendFormat(&out, "%s 0x%08x %s\n", Dml(mt), token, type);
          list.push_back(Json{{"method_table", JsonHex(mt)},
                              {refs ? "type_ref" : "type_def",
                               JsonHex((refs ? dac::kMdtTypeRef : dac::kMdtTypeDef) | index)},
                              {"name", type}});
        }
      }
      j[refs ? "types_referenced" : "types_defined"] = list;
    }
  }
  if (profiler) {
    auto methods = ctx.dac.GetMethodsWithProfilerModifiedIL(module, kMaxProfilerModifiedMethods);
    Json list = Json::array();
    if (!methods.ok()) {
      absl::StrAppend(
          &out,
          "\nThis runtime version does not support listing the profiler modified functions.\n");
      j["profiler_modified_methods"] = Json();
    } else if (methods->empty()) {
      absl::StrAppend(&out, "\nThis module has no methods with profiler modified IL.\n");
      j["profiler_modified_methods"] = list;
    } else {
      absl::StrAppend(&out, "\nMethods in this module with profiler modified IL:\n");
      for (uint64_t m : *methods) {
        absl::StrAppend(&out, "MethodDesc: ", Dml(m), " ");
        Json e{{"method_desc", JsonHex(m)}};
        if (auto n = ctx.dac.GetMethodDescName(m); n.ok()) {
          absl::StrAppend(&out, "Name: ", *n);
          e["name"] = *n;
        }
        if (auto t = ctx.dac.GetProfilerModifiedILType(m); t.ok()) {
          if (*t == 1) absl::StrAppend(&out, " (IL Modified)");
          if (*t == 2) absl::StrAppend(&out, " (ReJIT Modified)");
          e["modification"] = *t == 1 ? "il" : *t == 2 ? "rejit" : "none";
        }
        absl::StrAppend(&out, "\n");
        list.push_back(e);
      }
      if (methods->size() == static_cast<size_t>(kMaxProfilerModifiedMethods)) {
        absl::StrAppend(&out, "Profiler modified methods truncated, reached max value.\n");
      }
      j["profiler_modified_methods"] = list;
    }
  }
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// dumpassembly

CommandResult DumpAssembly(CommandContext& ctx, const CommandSpec& spec,
                           const std::vector<std::string>& args) {
  ParsedArgs p = ParseArgs(args, {});
  if (!p.bad_option.empty()) {
    return UsageError(spec, absl::StrCat("unknown option '", p.bad_option, "'"));
  }
  if (p.positional.size() != 1) return UsageError(spec, "give one Assembly address");
  uint64_t assembly = 0;
  if (!ParseHexAddress(p.positional[0], &assembly) || assembly == 0) {
    return Failure(absl::StrCat("Invalid Assembly ", p.positional[0]));
  }
  // Only the assemblies the runtime lists (the DAC reads any memory as an Assembly).
  bool listed = false;
  if (auto store = ctx.dac.GetAppDomainStore(); store.ok()) {
    std::vector<uint64_t> domains = store->domains;
    if (store->system_domain) domains.push_back(store->system_domain);
    if (store->shared_domain) domains.push_back(store->shared_domain);
    for (uint64_t d : domains) {
      auto list = ctx.dac.GetDomainAssemblies(d);
      if (list.ok() && std::find(list->begin(), list->end(), assembly) != list->end()) {
        listed = true;
      }
    }
  }
  auto ad = ctx.dac.GetAssemblyDetails(0, assembly);
  if (!listed || !ad.ok()) {
    return Failure(absl::StrFormat("Fail to fill Assembly: %s is not an Assembly of this process",
                                   Ptr(assembly)));
  }
  std::string out = absl::StrCat("Parent Domain:      ", Dml(ad->parent_domain), "\n");
  absl::StrAppend(&out, "Name:               ", ad->has_name ? ad->name : "Unknown", "\n");
  Json j{{"address", JsonHex(assembly)},
         {"parent_domain", JsonHex(ad->parent_domain)},
         {"name", ad->has_name ? Json(ad->name) : Json()}};
  if (ad->security_descriptor != 0) {
    absl::StrAppend(&out, "SecurityDescriptor: ", Ptr(ad->security_descriptor), "\n");
    j["security_descriptor"] = JsonHex(ad->security_descriptor);
  }
  absl::StrAppend(&out, "  Module\n");
  Json mods = Json::array();
  auto modules = ctx.dac.GetAssemblyModules(assembly, ad->module_count);
  if (!modules.ok()) return FromStatus(modules.status());
  for (uint64_t m : *modules) {
    absl::StrAppend(&out, "  ", Dml(m), "    ");
    Json e{{"address", JsonHex(m)}};
    if (auto md = ctx.dac.GetModuleDetails(m); md.ok()) {
      auto file = ctx.dac.GetModuleFileName(m);
      std::string name = file.ok() && !file->empty() ? *file
                         : md->is_reflection         ? "Dynamic Module"
                                                     : "Unknown Module";
      absl::StrAppend(&out, name, "\n");
      e["name"] = name;
    } else {
      absl::StrAppend(&out, "Request module data FAILED\n");
      e["name"] = Json();
    }
    mods.push_back(e);
  }
  j["modules"] = mods;
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// dumpalc, findappdomain

// The object at `address`, checked the way SOS's IsObject does it: the DAC knows it and its
// MethodTable is a MethodTable.
std::optional<dac::ObjectDetails> ValidObject(CommandContext& ctx, uint64_t address) {
  if (address == 0) return std::nullopt;
  auto obj = ctx.dac.GetObjectDetails(address);
  if (!obj.ok() || obj->mt == 0) return std::nullopt;
  if (!ctx.dac.GetMethodTableDetails(obj->mt).ok()) return std::nullopt;
  return *obj;
}

CommandResult DumpAlc(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  ParsedArgs p = ParseArgs(args, {});
  if (!p.bad_option.empty()) {
    return UsageError(spec, absl::StrCat("unknown option '", p.bad_option, "'"));
  }
  if (p.positional.size() != 1) return UsageError(spec, "give one object address");
  uint64_t address = 0;
  if (!ParseHexAddress(p.positional[0], &address) || address == 0) {
    return Failure(absl::StrCat("Invalid parameter ", p.positional[0]));
  }
  auto obj = ValidObject(ctx, address);
  if (!obj) {
    return Failure(absl::StrFormat(
        "%s is not a valid object: <Note: this object has an invalid CLASS field> Invalid object",
        Ptr(address)));
  }
  Json j{{"object", JsonHex(address)}};
  if (obj->kind == dac::kObjFree) {
    if (ctx.json) {
      j["free"] = true;
      j["size"] = obj->size;
      WriteJson(ctx, j);
    } else {
      ctx.out.Write(
          absl::StrFormat("Free Object\nSize:        %d(0x%x) bytes\n", obj->size, obj->size));
    }
    return {};
  }
  auto alc = ctx.dac.GetAssemblyLoadContext(obj->mt);
  if (!alc.ok()) return Failure("Failed to get the AssemblyLoadContext");
  if (*alc == 0) {
    if (ctx.json) {
      j["assembly_load_context"] = Json();
      j["name"] = "System.Runtime.Loader.DefaultAssemblyLoadContext";
      j["instance_exists"] = false;
      WriteJson(ctx, j);
    } else {
      ctx.out.Write(
          "Name:        System.Runtime.Loader.DefaultAssemblyLoadContext\n"
          "The managed instance of this context doesn't exist yet\n");
    }
    return {};
  }
  if (ctx.json) {
    j["assembly_load_context"] = JsonHex(*alc);
    j["instance_exists"] = true;
    WriteJson(ctx, j);
    return {};
  }
  // The context's managed object, as dumpobj shows it.
  return FromStatus(
      RunDumpObj(ctx.dac, ctx.core, ctx.runtime, *alc, true, ctx.out, ctx.cancel, false));
}

CommandResult FindAppDomain(CommandContext& ctx, const CommandSpec& spec,
                            const std::vector<std::string>& args) {
  ParsedArgs p = ParseArgs(args, {});
  if (!p.bad_option.empty()) {
    return UsageError(spec, absl::StrCat("unknown option '", p.bad_option, "'"));
  }
  if (p.positional.size() != 1) return UsageError(spec, "give one object address");
  uint64_t address = 0;
  if (!ParseHexAddress(p.positional[0], &address)) {
    return Failure(absl::StrCat("Invalid parameter ", p.positional[0]));
  }
  auto obj = ValidObject(ctx, address);
  if (!obj) return Failure(absl::StrCat(Ptr(address), " is not a valid object"));
  auto store = ctx.dac.GetAppDomainStore();
  if (!store.ok()) return Failure("Error getting AppDomain information");
  // The object's type's module's assembly's domain.
  uint64_t domain = 0;
  if (auto mt = ctx.dac.GetMethodTableDetails(obj->mt); mt.ok()) {
    if (auto md = ctx.dac.GetModuleDetails(mt->module); md.ok()) {
      if (auto ad = ctx.dac.GetAssemblyDetails(0, md->assembly); ad.ok()) {
        domain = ad->parent_domain;
      }
    }
  }
  Json j{{"object", JsonHex(address)}};
  std::string out;
  if (domain == 0) {
    out = absl::StrFormat(
        "The type is declared in the shared domain and other\n"
        "methods of finding the AppDomain failed. Try running\n"
        "gcroot %s, and if you find a root on a\n"
        "stack, check the AppDomain of that stack with clrthreads.\n"
        "Note that the Thread could have transitioned between\n"
        "multiple AppDomains.\n",
        Ptr(address));
    j["app_domain"] = Json();
  } else {
    absl::StrAppend(&out, "AppDomain: ", Dml(domain), "\n");
    j["app_domain"] = JsonHex(domain);
    if (domain == store->shared_domain) {
      absl::StrAppend(&out, "Name:      Shared Domain\nID:        (shared domain)\n");
      j["name"] = "Shared Domain";
      j["id"] = Json();
    } else if (domain == store->system_domain) {
      absl::StrAppend(&out, "Name:      System Domain\nID:        (system domain)\n");
      j["name"] = "System Domain";
      j["id"] = Json();
    } else {
      auto d = ctx.dac.GetAppDomainDetails(domain);
      if (!d.ok() || !d->has_name) {
        return Failure(absl::StrCat("Error getting AppDomain ", Ptr(domain), "."));
      }
      const std::string name = d->name.empty() ? "None" : d->name;
      absl::StrAppend(&out, "Name:      ", name, "\nID:        ", d->id, "\n");
      j["name"] = name;
      j["id"] = d->id;
    }
  }
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// name2ee, token2ee: ClrMD's view of a module's loaded types.

struct ClrMethodInfo {
  uint64_t method_desc = 0;
  uint32_t token = 0;
  std::string name;       // ".ctor", "ToString"
  std::string signature;  // GetMethodDescName: "Fixture.Customer..ctor(Int32, System.String)"
  uint64_t native_code = 0;
};

struct ClrFieldInfo {
  uint32_t token = 0;
  std::string name;
};

// A type definition's name as ClrMD prints it: the arity of the type itself becomes its
// parameters (List`1 -> List<T>), but the enclosing types of a nested type keep their raw
// arity (ConcurrentDictionary`2+VolatileNode), as the reference shows on .NET 8.
std::string ClrMdTypeName(const std::string& dac_name) {
  size_t plus = dac_name.rfind('+');
  if (plus == std::string::npos || dac_name.find('[') != std::string::npos) {
    return dac::PrettyTypeName(dac_name);
  }
  return dac_name.substr(0, plus + 1) + dac::PrettyTypeName(dac_name.substr(plus + 1));
}

struct ClrTypeInfo {
  uint64_t method_table = 0;
  uint32_t token = 0;
  std::string name;  // C#-like, as ClrMD names types
};

// ClrMD's method name from a MethodDesc's full name: what stands between the last dot before
// the parameter list (two dots for constructors, ".ctor") and the parameter list.
std::string MethodNameFromSignature(const std::string& sig) {
  size_t paren = sig.rfind('(');
  if (paren == std::string::npos || paren == 0) return sig;
  size_t dot = sig.rfind('.', paren - 1);
  if (dot == std::string::npos) return sig.substr(0, paren);
  if (dot > 0 && sig[dot - 1] == '.') --dot;
  return sig.substr(dot + 1, paren - dot - 1);
}

class TypeView {
 public:
  explicit TypeView(CommandContext& ctx) : ctx_(ctx) {}

  std::vector<ClrTypeInfo> LoadedTypes(uint64_t module) {
    std::vector<ClrTypeInfo> out;
    auto map = ctx_.dac.GetModuleMap(module, false);
    if (!map.ok()) return out;
    for (const auto& [index, mt] : *map) {
      if (mt == 0) continue;
      auto n = ctx_.dac.GetMethodTableName(mt);
      if (!n.ok()) continue;
      out.push_back({mt, dac::kMdtTypeDef | index, ClrMdTypeName(*n)});
    }
    return out;
  }

  // The methods of the MethodTable's slots that have a MethodDesc.
  std::vector<ClrMethodInfo> Methods(uint64_t mt) {
    std::vector<ClrMethodInfo> out;
    auto slots = ctx_.dac.GetMethodTableSlots(mt);
    if (!slots.ok()) return out;
    for (const dac::MethodSlot& s : *slots) {
      if (s.unreadable || s.method_desc == 0) continue;
      auto md = ctx_.dac.GetMethodDesc(s.method_desc);
      if (!md.ok()) continue;
      ClrMethodInfo m;
      m.method_desc = s.method_desc;
      m.token = md->token;
      auto sig = ctx_.dac.GetMethodDescName(s.method_desc);
      if (sig.ok()) m.signature = *sig;
      auto name = ctx_.dac.GetMetadataName(md->module, md->token);
      m.name = name.ok() ? *name : MethodNameFromSignature(m.signature);
      m.native_code = md->native_code;
      out.push_back(std::move(m));
    }
    return out;
  }

  // Instance fields (the parents' first) and then the type's own statics.
  std::vector<ClrFieldInfo> Fields(uint64_t mt) {
    std::vector<uint64_t> chain;
    for (uint64_t m = mt; m != 0 && chain.size() < 256;) {
      chain.push_back(m);
      auto d = ctx_.dac.GetMethodTableDetails(m);
      if (!d.ok()) break;
      m = d->parent;
    }
    std::vector<ClrFieldInfo> instance, statics;
    uint32_t seen_instance = 0;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      auto d = ctx_.dac.GetMethodTableDetails(*it);
      auto f = ctx_.dac.GetMethodTableFields(*it);
      if (!d.ok() || !f.ok()) break;
      uint32_t seen_static = 0;
      uint64_t addr = f->first_field;
      while ((seen_instance < f->num_instance || seen_static < f->num_static) && addr != 0) {
        auto fd = ctx_.dac.GetFieldDesc(addr);
        if (!fd.ok()) break;
        addr = fd->next;
        const uint32_t token = fd->token | dac::kMdtFieldDef;
        auto name = ctx_.dac.GetMetadataName(d->module, token);
        ClrFieldInfo info{token, name.ok() ? *name : ""};
        if (fd->is_static) {
          ++seen_static;
          if (*it == mt) statics.push_back(std::move(info));
        } else {
          ++seen_instance;
          instance.push_back(std::move(info));
        }
      }
    }
    instance.insert(instance.end(), statics.begin(), statics.end());
    return instance;
  }

 private:
  CommandContext& ctx_;
};

bool MatchesModuleName(const ClrModuleInfo& m, const std::string& name) {
  if (m.name.empty()) return false;
  const std::string file = BaseName(m.name);
  return absl::EqualsIgnoreCase(file, name) ||
         absl::EqualsIgnoreCase(WithoutExtension(file), name) ||
         absl::EqualsIgnoreCase(m.name, name);
}

std::string ModuleFileName(const ClrModuleInfo& m) {
  if (m.name.empty()) return m.is_dynamic ? "<dynamic>" : "<unknown>";
  return BaseName(m.name);
}

std::string ModuleHeader(const ClrModuleInfo& m) {
  return absl::StrCat("Module:      ", Dml(m.address), "\nAssembly:    ", ModuleFileName(m), "\n");
}

Json ModuleJson(const ClrModuleInfo& m) {
  return Json{{"module", JsonHex(m.address)}, {"assembly", ModuleFileName(m)}};
}

// The method part of name2ee/token2ee's output.
void AppendMethod(const ClrMethodInfo& m, std::string* out, Json* j) {
  (*j)["method_desc"] = JsonHex(m.method_desc);
  (*j)["name"] = !m.signature.empty() ? m.signature : m.name;
  absl::StrAppend(out, "MethodDesc:  ", Dml(m.method_desc), "\n");
  absl::StrAppend(out, "Name:        ", !m.signature.empty() ? m.signature : m.name, "\n");
  if (m.native_code != 0) {
    absl::StrAppend(out, "JITTED Code Address: ", Dml(m.native_code), "\n");
    (*j)["code_address"] = JsonHex(m.native_code);
  } else {
    absl::StrAppend(out, "Not JITTED yet. Use !bpmd -md ", Dml(m.method_desc),
                    " to break on run.\n");
    (*j)["code_address"] = Json();
  }
}

CommandResult Name2Ee(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  std::string module_name, item;
  if (args.size() == 1) {
    const std::string& a = args[0];
    size_t bang = a.find('!');
    if (bang != std::string::npos && bang > 0 && bang + 1 < a.size() &&
        a.find('!', bang + 1) == std::string::npos) {
      module_name = a.substr(0, bang);
      item = a.substr(bang + 1);
    }
  } else if (args.size() == 2) {
    module_name = args[0];
    item = args[1];
  }
  if (module_name.empty() || item.empty()) {
    return UsageError(spec, "give a module name and a type, method or field name");
  }
  const bool wildcard = module_name == "*";
  std::string name = item;
  std::replace(name.begin(), name.end(), '/', '+');  // nested types as ildasm writes them
  auto modules = ListClrModules(ctx);
  if (!modules.ok()) return FromStatus(modules.status());
  TypeView view(ctx);
  std::string out;
  Json matches = Json::array();
  int match_count = 0, no_match = 0, found_total = 0;
  for (const ClrModuleInfo& m : *modules) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    if (!wildcard && !MatchesModuleName(m, module_name)) continue;
    bool found = false;
    for (const ClrTypeInfo& t : view.LoadedTypes(m.address)) {
      if (ctx.cancel.cancelled()) return Failure("cancelled");
      enum { kNone, kType, kMethod, kField } kind = kNone;
      std::optional<ClrMethodInfo> method;
      std::optional<ClrFieldInfo> field;
      const std::string type_lower = absl::AsciiStrToLower(t.name);
      if (absl::StrContains(type_lower, absl::AsciiStrToLower(name))) {
        kind = kType;
      } else {
        size_t dot = name.rfind('.');
        if (dot != std::string::npos && dot > 0) {
          if (name[dot - 1] == '.') --dot;
          const std::string type_part = name.substr(0, dot);
          const std::string member = name.substr(dot + 1);
          if (absl::StrContains(type_lower, absl::AsciiStrToLower(type_part))) {
            for (ClrMethodInfo& mi : view.Methods(t.method_table)) {
              if (mi.name == member) {
                method = std::move(mi);
                kind = kMethod;
                break;
              }
            }
            if (kind == kNone) {
              for (ClrFieldInfo& fi : view.Fields(t.method_table)) {
                if (fi.name == member) {
                  field = std::move(fi);
                  kind = kField;
                  break;
                }
              }
            }
          }
        }
      }
      if (kind == kNone) continue;
      if (!found) {
        if (match_count > 0) absl::StrAppend(&out, "--------------------------------------\n");
        absl::StrAppend(&out, ModuleHeader(m));
      } else {
        absl::StrAppend(&out, "-----------------------\n");
      }
      found = true;
      ++found_total;
      Json j = ModuleJson(m);
      auto type_info = [&](Json* into) {
        absl::StrAppend(&out, "Token:       ", absl::StrFormat("%016x", t.token), "\n");
        absl::StrAppend(&out, "MethodTable: ", Dml(t.method_table), "\n");
        absl::StrAppend(&out, "Name:        ", t.name, "\n");
        (*into)["token"] = JsonHex(t.token);
        (*into)["method_table"] = JsonHex(t.method_table);
        (*into)["name"] = t.name;
      };
      if (kind == kType) {
        j["kind"] = "type";
        type_info(&j);
      } else if (kind == kMethod) {
        j["kind"] = "method";
        absl::StrAppend(&out, "Token:       ", absl::StrFormat("%016x", method->token), "\n");
        j["token"] = JsonHex(method->token);
        AppendMethod(*method, &out, &j);
      } else {
        j["kind"] = "field";
        // dotnet-dump prints "(mdToken token)" literally.
        absl::StrAppend(&out, "Field ", field->name, " (mdToken token) of\n");
        j["field"] = field->name;
        j["field_token"] = JsonHex(field->token);
        type_info(&j);
      }
      matches.push_back(std::move(j));
      ++match_count;
    }
    if (!found && !wildcard) {
      if (match_count > 0) absl::StrAppend(&out, "--------------------------------------\n");
      absl::StrAppend(&out, ModuleHeader(m));
      Json j = ModuleJson(m);
      j["kind"] = "module";
      matches.push_back(std::move(j));
      ++match_count;
    }
    if (!found && wildcard) ++no_match;
  }
  if (wildcard && no_match > 0) {
    if (match_count > 0) absl::StrAppend(&out, "--------------------------------------\n");
    absl::StrAppend(&out, "\nScanned ", no_match, no_match == 1 ? " module" : " modules",
                    " which had no matches.\n");
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"matches", matches}, {"modules_without_match", no_match}});
  } else {
    ctx.out.Write(out);
  }
  if (match_count == 0 && no_match == 0) {
    return Failure(absl::StrCat("Failed to find module matching '", module_name, "'."));
  }
  if (found_total == 0) {
    return Failure(absl::StrCat("no loaded type, method or field matches '", item, "' in ",
                                wildcard ? "any module" : module_name));
  }
  return {};
}

CommandResult Token2Ee(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args) {
  if (args.size() != 2 || args[0].empty()) {
    return UsageError(spec, "give a module name and a metadata token");
  }
  std::string token_text = args[1];
  if (absl::StartsWithIgnoreCase(token_text, "0x")) token_text = token_text.substr(2);
  uint64_t token_value = 0;
  if (token_text.empty() || token_text.size() > 16 ||
      !absl::SimpleHexAtoi(token_text, &token_value) || token_value > 0xffffffffu) {
    return UsageError(spec, absl::StrCat("'", args[1], "' is not a hex metadata token"));
  }
  const uint32_t token = static_cast<uint32_t>(token_value);
  const uint32_t type = token & 0xff000000u;
  if (type != dac::kMdtTypeDef && type != dac::kMdtTypeRef && type != dac::kMdtMethodDef &&
      type != dac::kMdtFieldDef) {
    return Failure(
        absl::StrFormat("This token type is not supported: token %08x: only TypeDef (02), TypeRef "
                        "(01), MethodDef (06) and FieldDef (04) tokens "
                        "are supported",
                        token));
  }
  const std::string& module_name = args[0];
  const bool wildcard = module_name == "*";
  auto modules = ListClrModules(ctx);
  if (!modules.ok()) return FromStatus(modules.status());
  TypeView view(ctx);
  std::string out;
  Json matches = Json::array();
  int match_count = 0, no_match = 0, resolved = 0;
  bool any_module = false;
  for (const ClrModuleInfo& m : *modules) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    if (!wildcard && !MatchesModuleName(m, module_name)) continue;
    any_module = true;
    // Resolve the token among the module's loaded types.
    std::optional<ClrTypeInfo> found_type;
    std::optional<ClrMethodInfo> found_method;
    std::optional<ClrFieldInfo> found_field;
    for (const ClrTypeInfo& t : view.LoadedTypes(m.address)) {
      if (ctx.cancel.cancelled()) return Failure("cancelled");
      if (type == dac::kMdtTypeDef || type == dac::kMdtTypeRef) {
        if (t.token == token) found_type = t;
      } else if (type == dac::kMdtMethodDef) {
        for (ClrMethodInfo& mi : view.Methods(t.method_table)) {
          if (mi.token == token) {
            found_method = std::move(mi);
            break;
          }
        }
      } else {
        for (ClrFieldInfo& fi : view.Fields(t.method_table)) {
          if (fi.token == token) {
            found_field = std::move(fi);
            break;
          }
        }
      }
      if (found_type || found_method || found_field) break;
    }
    const bool found = found_type || found_method || found_field;
    if (!found && wildcard) {
      ++no_match;
      continue;
    }
    if (found) ++resolved;
    if (match_count > 0) absl::StrAppend(&out, "--------------------------------------\n");
    absl::StrAppend(&out, ModuleHeader(m));
    absl::StrAppend(&out, "Token:       ", absl::StrFormat("%08x", token), "\n");
    Json j = ModuleJson(m);
    j["token"] = JsonHex(token);
    if (type == dac::kMdtMethodDef) {
      j["kind"] = "method";
      if (found_method) {
        AppendMethod(*found_method, &out, &j);
      } else {
        absl::StrAppend(&out, "<invalid module token>\n");
        j["found"] = false;
      }
    } else if (type == dac::kMdtFieldDef) {
      j["kind"] = "field";
      if (found_field) {
        absl::StrAppend(&out, "Field name:  ", found_field->name, "\n");
        j["name"] = found_field->name;
      } else {
        absl::StrAppend(&out, "<invalid module token>\n");
        j["found"] = false;
      }
    } else {
      j["kind"] = "type";
      if (found_type) {
        absl::StrAppend(&out, "MethodTable: ", Dml(found_type->method_table), "\n");
        j["method_table"] = JsonHex(found_type->method_table);
      } else {
        absl::StrAppend(&out, "MethodTable: <not loaded yet>\nEEClass:     <not loaded yet>\n");
        j["method_table"] = Json();
      }
      absl::StrAppend(&out, "Name:        ", found_type ? found_type->name : "<unknown>", "\n");
      j["name"] = found_type ? Json(found_type->name) : Json();
    }
    if (!j.contains("found")) j["found"] = found;
    matches.push_back(std::move(j));
    ++match_count;
  }
  if (wildcard && no_match > 0) {
    if (match_count > 0) absl::StrAppend(&out, "--------------------------------------\n");
    absl::StrAppend(&out, "\nScanned ", no_match, no_match == 1 ? " module" : " modules",
                    " which had no matches.\n");
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"matches", matches}, {"modules_without_match", no_match}});
  } else {
    ctx.out.Write(out);
  }
  if (!any_module) {
    return Failure(absl::StrCat("Failed to find module matching '", module_name, "'."));
  }
  if (resolved == 0) {
    return Failure(absl::StrFormat("token %08x is not a loaded type, method or field of %s", token,
                                   wildcard ? "any module" : module_name));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// ehinfo

const char* EhClauseTypeName(int32_t type) {
  switch (type) {
    case 0:
      return "FAULT";
    case 1:
      return "FINALLY";
    case 2:
      return "FILTER";
    case 3:
      return "TYPED";
    default:
      return "UNKNOWN";
  }
}

// A code address as SOS's EHInfo prints it: the two 32-bit halves split by a backtick.
std::string SplitAddress(uint64_t a) {
  return absl::StrFormat("%08x`%08x", static_cast<uint32_t>(a >> 32), static_cast<uint32_t>(a));
}

CommandResult EhInfo(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  ParsedArgs p = ParseArgs(args, {});
  if (!p.bad_option.empty()) {
    return UsageError(spec, absl::StrCat("unknown option '", p.bad_option, "'"));
  }
  if (p.positional.size() != 1) return UsageError(spec, "give one MethodDesc or code address");
  uint64_t address = 0;
  if (!ParseHexAddress(p.positional[0], &address)) {
    return Failure(absl::StrCat("Invalid parameter ", p.positional[0]));
  }
  // A MethodDesc, else code: the MethodDesc of the code holding it.
  uint64_t md = address;
  if (address == 0 || !ctx.dac.GetMethodDesc(address).ok()) {
    auto header = address != 0 ? ctx.dac.GetCodeHeader(address) : absl::NotFoundError("0");
    md = header.ok() ? header->method_desc : 0;
  }
  auto info = md != 0 ? ctx.dac.GetMethodDesc(md) : absl::NotFoundError("no MethodDesc");
  if (!info.ok()) return Failure(absl::StrCat(Ptr(md), " is not a MethodDesc"));
  if (!info->has_native_code) {
    if (ctx.json) {
      WriteJson(ctx, Json{{"method_desc", JsonHex(md)}, {"clauses", Json()}});
    } else {
      ctx.out.Write("No EH info available\n");
    }
    return {};
  }
  if (!ctx.dac.GetCodeHeader(info->native_code).ok()) {
    return Failure("Unable to get codeHeader information");
  }
  std::string out = absl::StrCat("MethodDesc:   ", Dml(md), "\n");
  Json j;
  if (!DescribeMethodDesc(ctx, md, &out, &j)) {
    return Failure(absl::StrCat(Ptr(md), " is not a MethodDesc"));
  }
  absl::StrAppend(&out, "\n");
  auto clauses = ctx.dac.GetEhClauses(info->native_code);
  if (!clauses.ok()) {
    ctx.out.Write(out);
    return Failure("Failed to perform EHInfo traverse");
  }
  const uint64_t start = info->native_code;
  Json list = Json::array();
  for (size_t i = 0; i < clauses->size(); ++i) {
    const dac::EhClause& c = (*clauses)[i];
    Json e{{"index", i}, {"type", EhClauseTypeName(c.type)}};
    absl::StrAppend(&out, "EHHandler ", i, ": ", EhClauseTypeName(c.type), " ");
    if (c.type == 3) {
      std::string type_name;
      if (c.is_catch_all) {
        type_name = "...";
      } else if (c.module == 0) {
        auto n = ctx.dac.GetMethodTableName(c.catch_mt);
        type_name = n.ok() ? *n : "";
        e["catch_method_table"] = JsonHex(c.catch_mt);
      } else {
        // The reference prints no name for a type given as a token (its metadata lookup comes
        // back empty); the token is in the JSON form.
        e["catch_module"] = JsonHex(c.module);
        e["catch_token"] = JsonHex(c.catch_token);
        if (auto n = ctx.dac.GetMetadataName(c.module, c.catch_token); n.ok()) {
          e["catch_type"] = *n;
        }
      }
      absl::StrAppend(&out, "catch(", type_name, ") ");
      if (!type_name.empty()) e["catch_type"] = type_name;
      e["catch_all"] = c.is_catch_all;
    }
    const bool cloned_finally =
        c.try_start == c.try_end && c.try_start == c.handler_start && c.type == 1 && c.is_duplicate;
    if (cloned_finally) {
      absl::StrAppend(&out, "(cloned finally)");
    } else if (c.is_duplicate) {
      absl::StrAppend(&out, "(duplicate)");
    }
    e["cloned_finally"] = cloned_finally;
    e["duplicate"] = c.is_duplicate;
    absl::StrAppend(&out, "\n");
    absl::StrAppendFormat(&out, "Clause:  [%s, %s] [%x, %x]\n", SplitAddress(start + c.try_start),
                          SplitAddress(start + c.try_end), static_cast<uint32_t>(c.try_start),
                          static_cast<uint32_t>(c.try_end));
    absl::StrAppendFormat(
        &out, "Handler: [%s, %s] [%x, %x]\n", SplitAddress(start + c.handler_start),
        SplitAddress(start + c.handler_end), static_cast<uint32_t>(c.handler_start),
        static_cast<uint32_t>(c.handler_end));
    e["try"] = Json{{"start", c.try_start}, {"end", c.try_end}};
    e["handler"] = Json{{"start", c.handler_start}, {"end", c.handler_end}};
    if (c.type == 2) {
      absl::StrAppendFormat(&out, "Filter: [%s] [%x]\n", SplitAddress(start + c.filter),
                            static_cast<uint32_t>(c.filter));
      e["filter"] = c.filter;
    }
    absl::StrAppend(&out, "\n");
    list.push_back(std::move(e));
  }
  j["clauses"] = list;
  if (ctx.json) {
    WriteJson(ctx, j);
  } else {
    ctx.out.Write(out);
  }
  return {};
}

}  // namespace

void RegisterMetadataCommands(CommandRegistry& r) {
  r.Add({{"dumpclass", "DumpClass"},
         "<arguments>",
         "Displays information about a EE class structure at the specified address.",
         "dumpclass <EEClass address>\n"
         "  The class's name, token, file, parent, module and MethodTable, its attributes, slot\n"
         "  and field counts, and its fields (static values shown). On .NET 9 and later the\n"
         "  runtime keeps no separate EEClass: give the canonical MethodTable (dumpmt's\n"
         "  \"Canonical\" or the MethodTable itself). Get an EEClass from dumpmt or dumpobj.",
         DumpClass});
  r.Add({{"dumpmodule", "DumpModule"},
         "<arguments>",
         "Displays information about a EE module structure at the specified address.",
         "dumpmodule [-mt] [-prof] <Module address>\n"
         "  The module's file, attributes, assembly, base address, loader heap, its token maps\n"
         "  and metadata. Get a Module address from dumpdomain, dumpassembly, dumpmt or\n"
         "  name2ee.\n"
         "  -mt    also the types defined in the module and the types it references, with their\n"
         "         MethodTables (loaded types only)\n"
         "  -prof  also the methods whose IL a profiler modified",
         DumpModule});
  r.Add({{"dumpassembly", "DumpAssembly"},
         "<arguments>",
         "Displays details about an assembly.",
         "dumpassembly <Assembly address>\n"
         "  The assembly's parent domain, name and modules. Get an Assembly address from\n"
         "  dumpdomain or dumpmodule.",
         DumpAssembly});
  r.Add({{"dumpalc", "DumpALC"},
         "<arguments>",
         "Displays details about a collectible AssemblyLoadContext into which the specified "
         "object is loaded.",
         "dumpalc <object address>\n"
         "  The AssemblyLoadContext the object's type was loaded into: its managed object (as\n"
         "  dumpobj shows it), or for the default context before it has one, its name.",
         DumpAlc});
  r.Add({{"findappdomain", "FindAppDomain"},
         "<arguments>",
         "Attempts to resolve the AppDomain of a GC object.",
         "findappdomain <object address>\n"
         "  The AppDomain of the object's type's assembly: its address, name and id.",
         FindAppDomain});
  r.Add({{"name2ee", "Name2EE"},
         "<arguments>",
         "Displays the MethodTable structure and EEClass structure for the specified type or "
         "method in the specified module.",
         "name2ee <module name> <type, method or field name>\n"
         "name2ee <module name>!<type, method or field name>\n"
         "  Searches the module's loaded types for the name (part of a type's name, any case;\n"
         "  or Type.Member for a method or field) and shows the MethodTable, or the MethodDesc\n"
         "  and code of a method. The module is named by its file name, with or without\n"
         "  extension, or its path; * searches all modules and counts those without a match.\n"
         "  Examples: name2ee HeapApp.dll Fixture.Customer\n"
         "            name2ee *!System.String.ToString",
         Name2Ee});
  r.Add({{"token2ee", "Token2EE"},
         "<arguments>",
         "Displays the MethodTable structure and MethodDesc structure for the specified token "
         "and module.",
         "token2ee <module name> <metadata token>\n"
         "  The loaded type (TypeDef 02...), method (MethodDef 06...) or field (FieldDef 04...)\n"
         "  with that token in the module (* for all modules). The token is hex, with or\n"
         "  without 0x.",
         Token2Ee});
  r.Add({{"ehinfo", "EHInfo"},
         "<arguments>",
         "Displays the exception handling blocks in a JIT-ed method.",
         "ehinfo <MethodDesc address | code address>\n"
         "  The method (as dumpmd shows it), then each exception handling clause of its jitted\n"
         "  code: its kind (TYPED with the caught type, FINALLY, FAULT, FILTER), the protected\n"
         "  block and the handler as code addresses and as offsets from the code's start.",
         EhInfo});
}

}  // namespace clrdiag::sos
