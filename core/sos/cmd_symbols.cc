// setsymbolserver: where the session looks for portable PDBs (source lines of clrstack and
// gcroot's stack roots) besides the assemblies' own directories.
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/sos/command.h"
#include "core/sos/json.h"
#include "core/sos/symbols.h"

namespace clrdiag::sos {
namespace {

constexpr char kMicrosoftServer[] = "https://msdl.microsoft.com/download/symbols/";
constexpr char kInternalServer[] = "https://symweb.azurefd.net/";

std::string DefaultCache() {
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr && *home != '\0' ? home : "/root", "/.dotnet/symbolcache");
}

Json SettingsJson(const SymbolSettings& s) {
  Json stores = Json::array();
  for (const auto& e : s.stores()) {
    Json j;
    switch (e.kind) {
      case SymbolStore::Kind::kDirectory:
        j["kind"] = "directory";
        break;
      case SymbolStore::Kind::kCache:
        j["kind"] = "cache";
        break;
      case SymbolStore::Kind::kServer:
        j["kind"] = "server";
        j["timeout_minutes"] = e.timeout_minutes;
        j["retry_count"] = e.retry_count;
        break;
    }
    j["location"] = e.location;
    stores.push_back(j);
  }
  return Json{{"stores", stores}};
}

bool IsOption(const std::string& a, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (absl::EqualsIgnoreCase(a, n)) return true;
  }
  return false;
}

CommandResult SetSymbolServer(CommandContext& ctx, const CommandSpec& spec,
                              const std::vector<std::string>& args) {
  std::string server, cache, directory, token;
  bool ms = false, mi = false, clear = false, reset = false, nocache = false, loadsymbols = false;
  int timeout = 4;
  int retries = -1;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* what) -> const std::string* {
      if (i + 1 >= args.size()) return nullptr;
      (void)what;
      return &args[++i];
    };
    if (IsOption(a, {"-ms"})) {
      ms = true;
    } else if (IsOption(a, {"-mi"})) {
      mi = true;
    } else if (IsOption(a, {"-clear", "-disable"})) {
      clear = true;
    } else if (IsOption(a, {"-reset"})) {
      reset = true;
    } else if (IsOption(a, {"-nocache"})) {
      nocache = true;
    } else if (IsOption(a, {"-loadsymbols"})) {
      loadsymbols = true;
    } else if (IsOption(a, {"-interactive"})) {
      // Interactive sign-in has no terminal here (the daemon runs the session); use -pat.
    } else if (IsOption(a, {"-cache", "-directory", "-pat", "-timeout", "-retrycount"})) {
      const std::string* v = value(a.c_str());
      if (!v) return UsageError(spec, absl::StrCat(a, " needs a value"));
      std::string opt = absl::AsciiStrToLower(a);
      if (opt == "-cache") {
        cache = *v;
      } else if (opt == "-directory") {
        directory = *v;
      } else if (opt == "-pat") {
        token = *v;
      } else if (opt == "-timeout") {
        if (!absl::SimpleAtoi(*v, &timeout) || timeout < 1 || timeout > 60) {
          return UsageError(spec,
                            absl::StrCat("-timeout wants minutes from 1 to 60, got '", *v, "'"));
        }
      } else if (!absl::SimpleAtoi(*v, &retries) || retries < 0 || retries > 10) {
        return UsageError(spec, absl::StrCat("-retrycount wants 0 to 10, got '", *v, "'"));
      }
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(spec, absl::StrCat("unknown option '", a, "'"));
    } else if (server.empty()) {
      server = a;
    } else {
      return UsageError(spec, absl::StrCat("unexpected argument '", a, "'"));
    }
  }
  if (!server.empty() && !absl::StartsWith(server, "http://") &&
      !absl::StartsWith(server, "https://")) {
    return UsageError(spec, absl::StrCat("'", server, "' is not an http:// or https:// URL"));
  }
  for (const std::string* dir : {&cache, &directory}) {
    if (!dir->empty() && (*dir)[0] != '/') {
      return UsageError(spec,
                        absl::StrCat("'", *dir, "': give an absolute path on the daemon's host"));
    }
  }
  SymbolSettings& s = ctx.state.symbols;
  const bool adds = ms || mi || !server.empty() || !cache.empty() || !directory.empty();
  if (adds && !ctx.state.host_access) {
    return Failure(
        "setsymbolserver: symbol stores are read (and servers reached, and caches written) with "
        "the daemon's rights, so only a local admin's session (root or the admin group, through "
        "the unix socket) may add them. Put the PDBs beside the assemblies, or ask an admin");
  }
  if (clear) s.Clear();
  if (reset) s.ResetFailures();
  if (!directory.empty()) s.Add({SymbolStore::Kind::kDirectory, directory});
  if (!cache.empty()) s.Add({SymbolStore::Kind::kCache, cache});
  auto add_server = [&](const std::string& url, int default_retries) {
    if (!nocache && cache.empty()) s.Add({SymbolStore::Kind::kCache, DefaultCache()});
    SymbolStore st{SymbolStore::Kind::kServer, url};
    st.timeout_minutes = timeout;
    st.retry_count = retries >= 0 ? retries : default_retries;
    st.token = token;
    s.Add(st);
  };
  if (!server.empty()) add_server(server, 0);
  if (ms) add_server(kMicrosoftServer, 3);
  if (mi) add_server(kInternalServer, 3);
  if (ctx.json) {
    Json j = SettingsJson(s);
    if (loadsymbols) j["note"] = "native symbols are not loaded by clrdiag";
    WriteJson(ctx, j);
    return {};
  }
  std::string out = s.Describe();
  if (loadsymbols)
    out += "Native symbols are not loaded by clrdiag (-loadsymbols has no effect).\n";
  ctx.out.Write(out);
  return {};
}

}  // namespace

void RegisterSymbolCommands(CommandRegistry& r) {
  r.Add({{"setsymbolserver"},
         "[<url>] [options]",
         "Sets where portable PDBs (source lines) are looked for.",
         "setsymbolserver [<url>] [-ms] [-mi] [-disable|-clear] [-reset] [-cache <dir>]\n"
         "                [-nocache] [-directory <dir>] [-pat <token>] [-timeout <minutes>]\n"
         "                [-retrycount <n>] [-loadsymbols] [-interactive]\n"
         "  Without arguments: lists the session's symbol stores. clrstack and gcroot look for\n"
         "  an assembly's portable PDB beside it first, then in these stores, in order:\n"
         "  <url>           a symbol server (http or https), asked with the symbol-server key\n"
         "                  <name>/<guid>FFFFFFFF/<name>; a PDB it has is saved in the first\n"
         "                  cache. A server that fails is not asked again until -reset.\n"
         "  -ms, -mi        the Microsoft public (-ms) or internal (-mi) symbol server.\n"
         "  -cache <dir>    a symbol cache (the same key layout), read and written; a server\n"
         "                  added without -cache or -nocache brings ~/.dotnet/symbolcache.\n"
         "  -directory <dir> a directory holding <name>.pdb files.\n"
         "  -pat <token>    sent to the servers added by this call as a bearer token.\n"
         "  -timeout, -retrycount  for the servers added by this call (defaults 4 minutes;\n"
         "                  0 retries for <url>, 3 for -ms/-mi).\n"
         "  -disable, -clear  forgets every store; -reset forgets servers' failures.\n"
         "  -loadsymbols    accepted; native symbols are not loaded. -interactive: accepted\n"
         "                  (no sign-in prompt; use -pat).\n"
         "  Directories and caches are on the daemon's host and servers are reached from it,\n"
         "  with its rights: only a local admin's session may add them. A session starts with\n"
         "  no stores (the reference starts with the Microsoft server): nothing leaves the host\n"
         "  unless asked.",
         SetSymbolServer});
}

}  // namespace clrdiag::sos
