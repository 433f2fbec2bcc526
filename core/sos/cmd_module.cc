// Module and domain commands: clrmodules (assemblies), modules (lm), dumpdomain, runtimes,
// setclrpath.
#include <memory>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/module_format.h"

namespace clrdiag::sos {
namespace {

// dotnet-dump's option spellings: "-n" / "--name", compared case-sensitively like
// System.CommandLine, plus the lower-case forms people type anyway.
bool Is(const std::string& arg, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (arg == n) return true;
  }
  return false;
}

// The managed modules, as ClrMD's ClrRuntime.EnumerateModules lists them: the shared and
// system domains, then the app domains; per domain its assemblies' modules; each module once.
struct ModuleEntry {
  dac::ModuleDetails details;
  std::string assembly_name;
  bool has_assembly_name = false;
};

absl::StatusOr<std::vector<ModuleEntry>> EnumerateClrModules(dac::DacProcess& dac,
                                                             const CancellationToken& cancel) {
  auto store = dac.GetAppDomainStore();
  if (!store.ok()) return store.status();
  std::vector<uint64_t> domains;
  if (store->shared_domain) domains.push_back(store->shared_domain);
  if (store->system_domain) domains.push_back(store->system_domain);
  domains.insert(domains.end(), store->domains.begin(), store->domains.end());
  std::vector<ModuleEntry> out;
  std::unordered_set<uint64_t> seen;
  for (uint64_t domain : domains) {
    auto assemblies = dac.GetDomainAssemblies(domain);
    if (!assemblies.ok()) continue;  // The system domain may hold none.
    for (uint64_t assembly : *assemblies) {
      if (cancel.cancelled()) return absl::CancelledError("cancelled");
      auto ad = dac.GetAssemblyDetails(domain, assembly);
      if (!ad.ok()) continue;
      auto modules = dac.GetAssemblyModules(assembly, ad->module_count);
      if (!modules.ok()) continue;
      for (uint64_t module : *modules) {
        if (!seen.insert(module).second) continue;
        auto md = dac.GetModuleDetails(module);
        if (!md.ok()) return md.status();
        ModuleEntry e;
        e.details = std::move(*md);
        e.has_assembly_name = ad->has_name;
        e.assembly_name = ad->name;
        out.push_back(std::move(e));
      }
    }
  }
  return out;
}

CommandResult ClrModules(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  bool verbose = false;
  std::optional<NameFilter> filter;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (Is(a, {"-v", "--verbose"})) {
      verbose = true;
    } else if (Is(a, {"-n", "--name"})) {
      if (i + 1 >= args.size()) return UsageError(spec, "-n needs a regular expression");
      auto f = NameFilter::Create(args[++i]);
      if (!f.ok()) return UsageError(spec, std::string(f.status().message()));
      filter = std::move(*f);
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  auto modules = EnumerateClrModules(ctx.dac, ctx.cancel);
  if (!modules.ok()) return Failure(std::string(modules.status().message()));
  std::vector<NativeModule> natives;
  if (verbose) natives = ListNativeModules(ctx.core);
  Json rows = Json::array();
  MemoryReader read = [&ctx](uint64_t a, void* b, size_t n) {
    return ctx.dac.ReadTargetMemory(a, b, n);
  };
  for (const ModuleEntry& e : *modules) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    const dac::ModuleDetails& d = e.details;
    ClrModuleRow row;
    row.name = !d.data_file_name.empty() ? d.data_file_name : e.assembly_name;
    row.assembly_name = e.has_assembly_name ? e.assembly_name : d.data_file_name;
    if (filter && !filter->Matches(row.name)) continue;
    row.image_base = d.il_base;
    row.address = d.address;
    row.assembly = d.assembly;
    row.is_pe_file = d.is_pe_file;
    row.layout = !d.has_image_data ? "Unknown" : d.flat_layout ? "Flat" : "Mapped";
    row.is_dynamic = d.is_reflection || (d.has_image_data && d.image_dynamic);
    row.metadata_address = d.metadata_start;
    row.metadata_size = d.metadata_size;
    row.size = d.has_image_data ? d.loaded_pe_size : 0;
    const bool mapped = !(d.has_image_data && d.flat_layout);
    std::optional<PeImageInfo> pe;
    if ((row.size == 0 || verbose) && d.il_base != 0) {
      pe = ReadPeImage(read, d.il_base, mapped, row.size);
    }
    // No size from the runtime: the image's own SizeOfImage, as ClrMD falls back to.
    if (row.size == 0 && pe) row.size = pe->size_of_image;
    if (verbose) {
      if (pe) row.pdb = pe->pdb;
      // The file version of the native module based at the image (dotnet-dump asks the module
      // service; an image the runtime mapped itself is no native module and has none).
      for (const NativeModule& n : natives) {
        if (n.base == d.il_base && n.is_pe && pe) row.version = pe->version;
      }
    }
    if (!ctx.json) {
      ctx.out.Write(FormatClrModule(row, verbose));
      continue;
    }
    Json j{{"name", row.name},
           {"assembly_name", row.assembly_name},
           {"image_base", JsonHex(row.image_base)},
           {"size", row.size},
           {"module", JsonHex(row.address)},
           {"assembly", JsonHex(row.assembly)},
           {"is_pe_file", row.is_pe_file},
           {"layout", row.layout},
           {"is_dynamic", row.is_dynamic},
           {"metadata_address", JsonHex(row.metadata_address)},
           {"metadata_size", row.metadata_size}};
    if (verbose) {
      j["pdb"] = row.pdb
                     ? Json{{"guid", row.pdb->guid}, {"age", row.pdb->age}, {"path", row.pdb->path}}
                     : Json();
      j["version"] = row.version ? Json(*row.version) : Json();
    }
    rows.push_back(std::move(j));
  }
  if (ctx.json) WriteJson(ctx, Json{{"modules", rows}});
  return {};
}

bool ParseAddress(const std::string& s, uint64_t* out) {
  if (absl::StartsWithIgnoreCase(s, "0x")) return absl::SimpleHexAtoi(s.substr(2), out);
  return absl::SimpleAtoi(s, out);
}

CommandResult Modules(CommandContext& ctx, const CommandSpec& spec,
                      const std::vector<std::string>& args) {
  std::optional<NameFilter> filter;
  std::optional<uint64_t> address;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (Is(a, {"-n", "--name"})) {
      if (i + 1 >= args.size()) return UsageError(spec, "-n needs a regular expression");
      auto f = NameFilter::Create(args[++i]);
      if (!f.ok()) return UsageError(spec, std::string(f.status().message()));
      filter = std::move(*f);
    } else if (Is(a, {"-a", "--address"})) {
      uint64_t v = 0;
      if (i + 1 >= args.size() || !ParseAddress(args[++i], &v)) {
        return UsageError(spec, "-a needs an address (decimal, or hex with 0x)");
      }
      address = v;
    } else if (Is(a, {"-v", "--verbose", "-s", "--segments", "-r", "--resources"})) {
      return UsageError(spec, absl::StrCat(a, " is not supported yet"));
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  std::vector<NativeModule> modules = ListNativeModules(ctx.core);
  auto module_json = [](const NativeModule& m) {
    return Json{{"base", JsonHex(m.base)}, {"size", m.size}, {"path", m.path}, {"is_pe", m.is_pe}};
  };
  if (address) {
    for (const NativeModule& m : modules) {
      if (*address >= m.base && *address - m.base < m.size) {
        if (ctx.json) {
          WriteJson(ctx, Json{{"modules", Json::array({module_json(m)})}});
          return {};
        }
        ctx.out.Write(FormatNativeModule(m));
        return {};
      }
    }
    return Failure(absl::StrFormat("Address 0x%016X not found", *address));
  }
  uint64_t total = 0;
  std::string out;
  Json list = Json::array();
  for (const NativeModule& m : modules) {
    total += m.size;
    if (filter && !filter->Matches(m.path)) continue;
    if (ctx.json) {
      list.push_back(module_json(m));
    } else {
      out += FormatNativeModule(m);
    }
  }
  if (ctx.json) {
    WriteJson(ctx, Json{{"modules", list}, {"total_image_size", total}});
    return {};
  }
  absl::StrAppend(&out, "Total image size: ", total, "\n");
  ctx.out.Write(out);
  return {};
}

// SOS prints domain, assembly and module pointers it links (DML) in lower case, plain %p
// values in upper case.
std::string Lower(uint64_t v) { return absl::StrFormat("%016x", v); }
std::string Upper(uint64_t v) { return absl::StrFormat("%016X", v); }

// SOS's FileNameForModule: GetPEFileName, else IXCLRDataModule::GetFileName; nothing for a
// module without a PE file.
std::string SosModuleName(const dac::ModuleDetails& d) {
  if (d.pe_assembly == 0) return "";
  return !d.pe_file_name.empty() ? d.pe_file_name : d.data_file_name;
}

// SOS's DomainInfo: the heaps, the stage, the name, and every assembly with its modules.
std::string DomainInfo(dac::DacProcess& dac, const dac::AppDomainDetails& d,
                       const CancellationToken& cancel) {
  std::string out;
  absl::StrAppend(&out, "LowFrequencyHeap:   ", Upper(d.low_frequency_heap), "\n");
  absl::StrAppend(&out, "HighFrequencyHeap:  ", Upper(d.high_frequency_heap), "\n");
  absl::StrAppend(&out, "StubHeap:           ", Upper(d.stub_heap), "\n");
  absl::StrAppend(&out, "Stage:              ", AppDomainStageName(d.stage), "\n");
  if (d.security_descriptor) {
    absl::StrAppend(&out, "SecurityDescriptor: ", Upper(d.security_descriptor), "\n");
  }
  absl::StrAppend(&out, "Name:               ",
                  !d.has_name      ? "Error getting AppDomain friendly name"
                  : d.name.empty() ? "None"
                                   : d.name,
                  "\n");
  if (d.assembly_count == 0) return out;
  auto assemblies = dac.GetDomainAssemblies(d.address);
  if (!assemblies.ok()) return out + "Unable to get array of Assemblies\n";
  for (size_t n = 0; n < assemblies->size(); ++n) {
    if (cancel.cancelled()) return out;
    uint64_t assembly = (*assemblies)[n];
    if (n != 0) out += "\n";
    absl::StrAppend(&out, "Assembly:           ", Lower(assembly));
    auto ad = dac.GetAssemblyDetails(d.address, assembly);
    if (!ad.ok()) continue;
    if (ad->is_dynamic) out += " (Dynamic)";
    absl::StrAppend(&out, " [", ad->has_name ? ad->name : "", "]\n");
    if (ad->security_descriptor) {
      absl::StrAppend(&out, "SecurityDescriptor: ", Upper(ad->security_descriptor), "\n");
    }
    out += "  Module\n";
    auto modules = dac.GetAssemblyModules(assembly, ad->module_count);
    if (!modules.ok()) {
      out += "SOS Error: Out of memory\n";  // What SOS reports for a failed module list.
      continue;
    }
    for (uint64_t module : *modules) {
      absl::StrAppend(&out, "  ", Lower(module), "    ");
      auto md = dac.GetModuleDetails(module);
      if (!md.ok()) {
        out += "Request module data FAILED\n";
        continue;
      }
      std::string name = SosModuleName(*md);
      if (name.empty()) name = md->is_reflection ? "Dynamic Module" : "Unknown Module";
      absl::StrAppend(&out, name, "\n");
    }
  }
  out += "\n";
  return out;
}

// The JSON form of one domain: DomainInfo's facts as data.
Json DomainJson(dac::DacProcess& dac, const dac::AppDomainDetails& d, uint64_t address,
                const char* kind, const CancellationToken& cancel) {
  Json j{{"kind", kind},
         {"address", JsonHex(address)},
         {"id", d.id},
         {"name", d.has_name ? Json(d.name) : Json()},
         {"stage", AppDomainStageName(d.stage)},
         {"low_frequency_heap", JsonHex(d.low_frequency_heap)},
         {"high_frequency_heap", JsonHex(d.high_frequency_heap)},
         {"stub_heap", JsonHex(d.stub_heap)},
         {"assemblies", Json::array()}};
  if (d.assembly_count == 0) return j;
  auto assemblies = dac.GetDomainAssemblies(d.address);
  if (!assemblies.ok()) return j;
  for (uint64_t assembly : *assemblies) {
    if (cancel.cancelled()) break;
    Json a{{"address", JsonHex(assembly)}};
    auto ad = dac.GetAssemblyDetails(d.address, assembly);
    if (ad.ok()) {
      a["name"] = ad->has_name ? Json(ad->name) : Json();
      a["dynamic"] = ad->is_dynamic;
      Json mods = Json::array();
      auto modules = dac.GetAssemblyModules(assembly, ad->module_count);
      if (modules.ok()) {
        for (uint64_t module : *modules) {
          auto md = dac.GetModuleDetails(module);
          std::string name = md.ok() ? SosModuleName(*md) : "";
          if (md.ok() && name.empty()) {
            name = md->is_reflection ? "Dynamic Module" : "Unknown Module";
          }
          mods.push_back(Json{{"address", JsonHex(module)}, {"name", name}});
        }
      }
      a["modules"] = mods;
    }
    j["assemblies"].push_back(std::move(a));
  }
  return j;
}

std::string DomainTitle(const dac::AppDomainDetails& d, uint64_t address) {
  return absl::StrFormat("Domain %d:%s          %s\n", d.id, d.id >= 10 ? "" : " ", Lower(address));
}

CommandResult DumpDomain(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args) {
  uint64_t only = 0;
  for (const std::string& a : args) {
    if (a == "/d") continue;  // DML output: nothing to do in plain text.
    if (only != 0 || !ParseHexAddress(a, &only)) {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  auto store = ctx.dac.GetAppDomainStore();
  if (!store.ok()) return Failure("Unable to get AppDomain information");
  const char* rule = "--------------------------------------\n";
  if (ctx.json) {
    // Every domain (or the one asked for), with its kind.
    Json domains = Json::array();
    auto add = [&](uint64_t address, const char* kind) -> bool {
      auto d = ctx.dac.GetAppDomainDetails(address);
      if (!d.ok()) return false;
      domains.push_back(DomainJson(ctx.dac, *d, address, kind, ctx.cancel));
      return true;
    };
    auto kind_of = [&](uint64_t a) {
      return a == store->system_domain ? "system" : a == store->shared_domain ? "shared" : "app";
    };
    if (only != 0) {
      if (!add(only, kind_of(only))) return Failure("Fail to fill AppDomain");
    } else {
      if (store->system_domain != 0 && !add(store->system_domain, "system")) {
        return Failure("Unable to get system domain info.");
      }
      if (store->shared_domain != 0 && !add(store->shared_domain, "shared")) {
        return Failure("Unable to get shared domain info");
      }
      for (uint64_t domain : store->domains) {
        if (!add(domain, "app")) {
          return Failure(absl::StrFormat("Failed to get appdomain %s", Upper(domain)));
        }
      }
    }
    WriteJson(ctx, Json{{"domains", domains}});
    return {};
  }
  if (only != 0) {
    auto d = ctx.dac.GetAppDomainDetails(only);
    if (!d.ok()) return Failure("Fail to fill AppDomain");
    std::string out = rule;
    if (only == store->shared_domain) {
      absl::StrAppend(&out, "Shared Domain:      ", Lower(only), "\n");
    } else if (only == store->system_domain) {
      absl::StrAppend(&out, "System Domain:      ", Lower(only), "\n");
    } else {
      out += DomainTitle(*d, only);
    }
    ctx.out.Write(out);
    ctx.out.Write(DomainInfo(ctx.dac, *d, ctx.cancel));
    return {};
  }
  ctx.out.Write(rule);
  if (store->system_domain != 0) {
    ctx.out.Write(absl::StrCat("System Domain:      ", Lower(store->system_domain), "\n"));
    auto d = ctx.dac.GetAppDomainDetails(store->system_domain);
    if (!d.ok()) return Failure("Unable to get system domain info.");
    ctx.out.Write(DomainInfo(ctx.dac, *d, ctx.cancel));
  }
  if (store->shared_domain != 0) {
    ctx.out.Write(absl::StrCat(rule, "Shared Domain:      ", Lower(store->shared_domain), "\n"));
    auto d = ctx.dac.GetAppDomainDetails(store->shared_domain);
    if (!d.ok()) return Failure("Unable to get shared domain info");
    ctx.out.Write(DomainInfo(ctx.dac, *d, ctx.cancel));
  }
  for (uint64_t domain : store->domains) {
    if (ctx.cancel.cancelled()) return Failure("cancelled");
    auto d = ctx.dac.GetAppDomainDetails(domain);
    if (!d.ok()) {
      return Failure(absl::StrFormat("Failed to get appdomain %s, error %s", Upper(domain),
                                     d.status().message()));
    }
    ctx.out.Write(absl::StrCat(rule, DomainTitle(*d, domain)));
    ctx.out.Write(DomainInfo(ctx.dac, *d, ctx.cancel));
  }
  return {};
}

// What `setclrpath` recorded in this session ("" if nothing).
struct ClrPathState {
  std::string dir;
};

const char* ArchitectureName(uint16_t machine) {
  switch (machine) {
    case elf::kEmX86_64:
      return "X64";
    case elf::kEmAarch64:
      return "Arm64";
    default:
      return "Unknown";
  }
}

std::string RuntimeVersion(const CommandContext& ctx) {
  if (!ctx.runtime.version.empty()) return ctx.runtime.version;
  std::string vs =
      ctx.runtime.version_string.empty() ? ctx.location.version_string : ctx.runtime.version_string;
  return vs.substr(0, vs.find(' '));
}

CommandResult Runtimes(CommandContext& ctx, const CommandSpec& spec,
                       const std::vector<std::string>& args, const ClrPathState& clr_path) {
  bool netfx = false, netcore = false;
  std::optional<int> id;
  for (const std::string& a : args) {
    int v = 0;
    if (Is(a, {"-f", "-netfx", "--netfx"})) {
      netfx = true;
    } else if (Is(a, {"-c", "-netcore", "--netcore"})) {
      netcore = true;
    } else if (Is(a, {"-a", "--all"})) {
      // Every runtime is always listed: the dump holds one CoreCLR runtime.
    } else if (!id && absl::SimpleAtoi(a, &v)) {
      id = v;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (netfx && netcore) return Failure("Cannot specify both -netfx and -netcore options");
  if (netfx) return Failure("The desktop .NET Framework runtime is not loaded");
  if (netcore) {
    if (ctx.json) {
      WriteJson(ctx, Json{{"current_runtime", 0}});
    } else {
      ctx.out.Write("Switched to .NET Core runtime successfully\n");
    }
    return {};
  }
  if (id) {
    if (*id != 0) return Failure(absl::StrCat("Invalid runtime id ", *id));
    if (ctx.json) {
      WriteJson(ctx, Json{{"current_runtime", 0}});
    } else {
      ctx.out.Write("Switched to runtime #0 successfully\n");
    }
    return {};
  }
  uint64_t size = 0;
  for (const NativeModule& m : ListNativeModules(ctx.core)) {
    if (m.base == ctx.runtime.base) size = m.size;
  }
  const std::string& build_id = ctx.runtime.build_id;
  std::string out = absl::StrFormat("#0 .NET Core runtime %s at %016X size %08X index %s\n",
                                    RuntimeVersion(ctx), ctx.runtime.base, size, build_id);
  absl::StrAppend(&out, "    Runtime module path: ", ctx.runtime.path, "\n");
  if (!clr_path.dir.empty()) {
    absl::StrAppend(&out, "    Runtime module directory: ", clr_path.dir, "\n");
  }
  // The DAC was picked by build-id, not by signature: "don't verify" as dotnet-dump says.
  absl::StrAppend(&out, "    DAC: ", ctx.location.dac_path, " (don't verify)\n");
  const char* arch = ArchitectureName(ctx.core.machine());
  absl::StrAppend(&out, "    Libraries:\n");
  absl::StrAppend(&out, "        Dac libmscordaccore.so LINUX ", arch, " Coreclr ", build_id, "\n");
  absl::StrAppend(&out, "        Dbi libmscordbi.so LINUX ", arch, " Coreclr ", build_id, "\n");
  // The runtime's special exports, looked up in the local copy of libcoreclr.so that has the
  // dump's build-id.
  static const std::vector<std::string> kExports = {"DotNetRuntimeInfo", "g_dacTable",
                                                    "DotNetRuntimeDebugHeader",
                                                    "DotNetRuntimeContractDescriptor"};
  auto exports = ReadElfExports(ctx.location.coreclr_path, kExports);
  if (ctx.json) {
    Json ex = Json::object();
    for (const std::string& name : kExports) {
      ex[name] = Json();
      if (!exports.ok()) continue;
      if (auto it = exports->find(name); it != exports->end()) {
        ex[name] = JsonHex(ctx.runtime.base + it->second);
      }
    }
    Json rt{{"id", 0},
            {"flavor", ".NET Core"},
            {"version", RuntimeVersion(ctx)},
            {"base", JsonHex(ctx.runtime.base)},
            {"size", size},
            {"build_id", build_id},
            {"module_path", ctx.runtime.path},
            {"module_directory", clr_path.dir.empty() ? Json() : Json(clr_path.dir)},
            {"dac_path", ctx.location.dac_path},
            {"dac_source", ctx.location.source},
            {"architecture", arch},
            {"exports", ex}};
    WriteJson(ctx, Json{{"runtimes", Json::array({rt})}, {"current_runtime", 0}});
    return {};
  }
  absl::StrAppend(&out, "    Exports:\n");
  for (const std::string& name : kExports) {
    std::string value = "<NO SYMBOL>";
    if (exports.ok()) {
      if (auto it = exports->find(name); it != exports->end()) {
        value = absl::StrFormat("%016X", ctx.runtime.base + it->second);
      }
    } else {
      value = absl::StrCat("<", exports.status().message(), ">");
    }
    if (name == "DotNetRuntimeInfo" && value != "<NO SYMBOL>") {
      value += " (not decoded)";
    }
    absl::StrAppend(&out, "        ", name, ": ", value, "\n");
  }
  // dotnet-dump's settings, answered for clrdiag: it never uses the cDAC and checks the DAC by
  // build-id rather than by signature.
  absl::StrAppend(&out, "Settings:\n");
  absl::StrAppend(&out, "-> Use CDAC contract reader: False\n");
  absl::StrAppend(&out, "-> Force use CDAC contract reader: False\n");
  absl::StrAppend(&out, "-> DAC signature verification check enabled: False\n");
  ctx.out.Write(out);
  return {};
}

CommandResult SetClrPath(CommandContext& ctx, const CommandSpec& spec,
                         const std::vector<std::string>& args, ClrPathState& clr_path) {
  bool clear = false;
  std::string dir;
  for (const std::string& a : args) {
    if (Is(a, {"-c", "--clear"})) {
      clear = true;
    } else if (dir.empty()) {
      dir = a;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (clear) {
    clr_path.dir.clear();
    if (ctx.json) WriteJson(ctx, Json{{"load_path", Json()}, {"dac_dir", ctx.location.dir}});
    return {};
  }
  if (dir.empty()) {
    const std::string& shown = clr_path.dir.empty() ? ctx.location.dir : clr_path.dir;
    if (ctx.json) {
      WriteJson(ctx, Json{{"load_path", shown}, {"dac_dir", ctx.location.dir}});
    } else {
      ctx.out.Write(absl::StrCat("Load path for DAC/DBI: '", shown, "'\n"));
    }
    return {};
  }
  if (dir[0] != '/') {
    return UsageError(spec, "give an absolute directory on the daemon's host");
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  // Accept the directory only if it holds this dump's runtime (same build-id) and its DAC.
  dac::DacSearchOptions search;
  search.extra_dirs = {dir};
  search.host_framework_roots.clear();
  auto loc = dac::LocateDac(ctx.runtime, search);
  if (!loc.ok()) {
    return Failure(absl::StrCat(dir, " cannot serve this dump: ", loc.status().message()));
  }
  clr_path.dir = dir;
  if (ctx.json) {
    WriteJson(ctx, Json{{"load_path", dir}, {"dac_dir", ctx.location.dir}});
    return {};
  }
  std::string out = absl::StrCat("Set load path for DAC/DBI to '", dir, "'\n");
  if (loc->dir != ctx.location.dir) {
    absl::StrAppend(&out, "It holds the same runtime build (", ctx.runtime.build_id,
                    ") as the DAC this session loaded from '", ctx.location.dir,
                    "' when it opened; that DAC stays in use.\n");
  }
  ctx.out.Write(out);
  return {};
}

}  // namespace

void RegisterModuleCommands(CommandRegistry& r) {
  r.Add({{"clrmodules", "assemblies"},
         "<arguments>",
         "Lists the managed assemblies in the process.",
         "clrmodules [-n <regex>] [-v]   (alias: assemblies)\n"
         "  One line per managed module: image base, image size, file.\n"
         "  -n, --name     only modules whose file name (no directory) matches the regular\n"
         "                 expression (case-insensitive)\n"
         "  -v, --verbose  details per module: addresses, layout, metadata, PDB, version",
         ClrModules});
  r.Add({{"modules", "lm"},
         "<arguments>",
         "Displays the native modules in the process.",
         "modules [-n <regex>] [-a <address>]   (alias: lm)\n"
         "  The modules mapped in the dump (from its NT_FILE note): base, size, path, then the\n"
         "  total size.\n"
         "  -n, --name     only modules whose file name matches the regular expression\n"
         "  -a, --address  the module containing the address (decimal, or hex with 0x)\n"
         "  -v, -s and -r of dotnet-dump are not supported yet.",
         Modules});
  r.Add({{"dumpdomain"},
         "<arguments>",
         "Displays the app domains with their assemblies and modules.",
         "dumpdomain [<domain address>]\n"
         "  Lists the System Domain and the app domain(s): loader heaps, stage, name, and each\n"
         "  assembly with its modules. With an address (hex), only that domain.",
         DumpDomain});
  auto clr_path = std::make_shared<ClrPathState>();
  r.Add({{"runtimes", "setruntime"},
         "<arguments>",
         "Lists the runtimes in the target.",
         "runtimes [<id>] [-netcore|-c] [-netfx|-f] [-a]\n"
         "  Lists the .NET runtime found in the dump: version, base, size, build-id, path, the\n"
         "  DAC this session loaded, the debugging libraries and the runtime's exports.\n"
         "  A dump holds one CoreCLR runtime (#0): `runtimes 0` and -netcore select it.",
         [clr_path](CommandContext& ctx, const CommandSpec& spec,
                    const std::vector<std::string>& args) {
           return Runtimes(ctx, spec, args, *clr_path);
         }});
  r.Add({{"setclrpath"},
         "<path>",
         "Shows or checks the directory of the DAC.",
         "setclrpath [<dir>] [-c]\n"
         "  Without arguments: the directory the session's DAC was loaded from (or the one\n"
         "  recorded by setclrpath).\n"
         "  <dir> (absolute, on the daemon's host): checks that it holds libcoreclr.so with the\n"
         "  dump's build-id and libmscordaccore.so, and records it. clrdiag picks the DAC when\n"
         "  the session opens, by build-id, so the loaded DAC is never replaced: any matching\n"
         "  directory holds the same build. A runtime missing at open time is supplied as the\n"
         "  open error says (the dump store's runtimes/<build-id>/ directory).\n"
         "  -c, --clear  forgets the recorded directory.",
         [clr_path](CommandContext& ctx, const CommandSpec& spec,
                    const std::vector<std::string>& args) {
           return SetClrPath(ctx, spec, args, *clr_path);
         }});
}

}  // namespace clrdiag::sos
