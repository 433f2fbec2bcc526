// gcinfo: the GC info of a jitted method, as SOS prints it (x64).
//
// The argument is a MethodDesc or an address inside managed code. The method's code header
// (GetCodeHeaderData) gives its start, its kind (JIT / ReadyToRun) and the address of its GC
// info; the blob is read from the target (40 + 2 x the code size bytes, as SOS reads it) and
// decoded by core/dac/gcinfo_decoder, in the format version SOS assumes for the runtime (3 before
// .NET 10, 4 from .NET 10).
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/dac/gcinfo_decoder.h"
#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos {
namespace {

namespace gi = dac::gcinfo;

// SOS's %p: 16 upper-case hex digits.
std::string P(uint64_t v) { return absl::StrFormat("%016X", v); }

int RuntimeMajor(const CommandContext& ctx) {
  for (const std::string* s : {&ctx.runtime.version, &ctx.runtime.framework_version,
                               &ctx.runtime.version_string, &ctx.location.version_string}) {
    int major = 0;
    if (!s->empty() && absl::SimpleAtoi(s->substr(0, s->find('.')), &major) && major > 0) {
      return major;
    }
  }
  return 0;
}

const char* EventKind(gi::Event::Kind k) {
  switch (k) {
    case gi::Event::kInterruptible:
      return "interruptible";
    case gi::Event::kNotInterruptible:
      return "not_interruptible";
    case gi::Event::kSafePoint:
      return "safepoint";
    case gi::Event::kLive:
      return "live";
    case gi::Event::kDead:
      return "dead";
  }
  return "?";
}

Json SlotJson(const gi::GcInfo& info, const gi::Slot& s) {
  Json j{{"text", gi::SlotText(info, s)}};
  if (s.is_register) {
    j["register"] = gi::RegisterName(s.reg);
  } else {
    j["base"] = s.base == gi::SlotBase::kSp         ? "sp"
                : s.base == gi::SlotBase::kCallerSp ? "caller.sp"
                                                    : "frame";
    j["offset"] = s.offset;
  }
  j["interior"] = (s.flags & gi::kSlotInterior) != 0;
  j["pinned"] = (s.flags & gi::kSlotPinned) != 0;
  return j;
}

Json InfoJson(const gi::GcInfo& info) {
  const gi::Header& h = info.header;
  Json header{
      {"version", info.version},
      {"slim", h.slim},
      {"code_size", h.code_length},
      {"prolog_size", h.prolog_size},
      {"frame_register",
       h.frame_register == gi::kNoRegister ? Json() : Json(gi::RegisterName(h.frame_register))},
      {"varargs", h.varargs()},
      {"wants_report_only_leaf", h.wants_report_only_leaf()},
      {"parameter_area_size", h.stack_parameter_area}};
  header["gs_cookie"] = h.gs_cookie ? Json(*h.gs_cookie) : Json();
  header["psp_sym"] = h.psp_sym ? Json(*h.psp_sym) : Json();
  header["generics_context"] = h.generics_context ? Json(*h.generics_context) : Json();
  if (info.version < 4) header["return_kind"] = h.return_kind;
  Json j{{"header", header}};
  Json ranges = Json::array();
  for (const gi::InterruptibleRange& r : info.interruptible_ranges) {
    ranges.push_back(Json{{"start", r.start}, {"stop", r.stop}});
  }
  j["interruptible_ranges"] = ranges;
  Json untracked = Json::array();
  for (const gi::Slot& s : info.slots) {
    if (s.untracked) untracked.push_back(SlotJson(info, s));
  }
  j["untracked"] = untracked;
  gi::Listing listing = gi::ListChanges(info);
  Json events = Json::array();
  for (const gi::Event& e : listing.events) {
    if (e.kind != gi::Event::kLive && e.kind != gi::Event::kDead) {
      events.push_back(Json{{"offset", e.offset}, {"kind", EventKind(e.kind)}});
    } else if (e.offset != 0xfffffffe) {
      events.push_back(Json{{"offset", e.offset},
                            {"kind", EventKind(e.kind)},
                            {"slot", SlotJson(info, info.slots[e.slot])}});
    }
  }
  j["changes"] = events;
  if (!listing.error.empty()) j["error"] = listing.error;
  return j;
}

CommandResult GcInfo(CommandContext& ctx, const CommandSpec& spec,
                     const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (const std::string& a : args) {
    std::string l = absl::AsciiStrToLower(a);
    if (l == "/d" || l == "-legacy") continue;  // DML; SOS's choice of decoder
    if (!l.empty() && l[0] == '-')
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    positional.push_back(a);
  }
  if (positional.size() != 1) return UsageError(spec, "give one MethodDesc or code address");
  uint64_t address = 0;
  if (!ParseHexAddress(positional[0], &address)) {
    return UsageError(spec, absl::StrCat("'", positional[0], "' is not a hex address"));
  }
  const std::string not_md = absl::StrCat(P(address), " is not a valid MethodDesc");
  uint64_t md = address;
  if (address == 0 || !ctx.dac.GetMethodDesc(address).ok()) {
    auto from_ip = address != 0 ? ctx.dac.GetMethodDescFromIp(address)
                                : absl::StatusOr<uint64_t>(absl::NotFoundError("0"));
    md = from_ip.ok() ? *from_ip : 0;
  }
  auto info = md != 0 ? ctx.dac.GetMethodDesc(md)
                      : absl::StatusOr<dac::MethodDescInfo>(absl::NotFoundError("none"));
  if (!info.ok()) return Failure(not_md);
  if (!info->has_native_code) {
    if (ctx.json) {
      WriteJson(ctx, Json{{"method_desc", JsonHex(md)}, {"gc_info", Json()}});
    } else {
      ctx.out.Write("No GC info available\n");
    }
    return {};
  }
  // The code holding the address (the current code if the address is the MethodDesc).
  auto header = ctx.dac.GetCodeHeader(address);
  if (!header.ok()) header = ctx.dac.GetCodeHeader(info->native_code);
  std::string out;
  if (!header.ok()) {
    ctx.out.Write(absl::StrCat("entry point ", P(info->native_code), "\n"));
    return Failure("Unable to get codeHeader information");
  }
  absl::StrAppend(&out, "entry point ", P(header->method_start), "\n");
  if (header->jit_type != 1 && header->jit_type != 2) {
    ctx.out.Write(out);
    return Failure("unknown Jit");
  }
  absl::StrAppend(
      &out, header->jit_type == 1 ? "Normal JIT generated code\n" : "preJIT generated code\n");
  absl::StrAppend(&out, "GC info ", P(header->gc_info), "\n");
  std::vector<uint8_t> bytes(size_t{header->method_size} * 2 + 40);
  if (header->gc_info == 0 ||
      ctx.dac.ReadTargetMemory(header->gc_info, bytes.data(), bytes.size()) != bytes.size()) {
    ctx.out.Write(out);
    return Failure(absl::StrCat("Could not read memory ", P(header->gc_info)));
  }
  const int major = RuntimeMajor(ctx);
  auto decoded = gi::Decode(bytes, gi::VersionForRuntime(major));
  if (!decoded.ok()) {
    ctx.out.Write(out);
    return Failure(absl::StrCat("Cannot decode the GC info at ", P(header->gc_info), ": ",
                                decoded.status().message()));
  }
  if (ctx.json) {
    Json j{{"method_desc", JsonHex(md)},
           {"entry_point", JsonHex(header->method_start)},
           {"jit", header->jit_type == 1 ? "JIT" : "preJIT"},
           {"gc_info", JsonHex(header->gc_info)}};
    const Json body = InfoJson(*decoded);
    for (const auto& [k, v] : body.items()) j[k] = v;
    WriteJson(ctx, j);
    return {};
  }
  absl::StrAppend(&out, "Pointer table:\n", gi::FormatLikeSos(*decoded));
  ctx.out.Write(out);
  return {};
}

}  // namespace

void RegisterGcInfoCommands(CommandRegistry& r) {
  r.Add({{"gcinfo", "GCInfo"},
         "<MethodDesc address | code address>",
         "Displays the GC info of a JIT-ed method.",
         "gcinfo <MethodDesc address | code address>\n"
         "  The method's code start and kind, then its GC info (x64): the header (prolog size,\n"
         "  GS cookie, generic context, frame pointer, parameter area, code size), the untracked\n"
         "  stack slots, and per code offset where the method is interruptible or a safe point\n"
         "  and which registers and stack slots become live (+) or dead (-).",
         GcInfo});
}

}  // namespace clrdiag::sos
