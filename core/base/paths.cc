#include "core/base/paths.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace clrdiag {
namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}
std::string HomeDir() {
  std::string home = Env("HOME");
  if (!home.empty()) return home;
  if (passwd* pw = ::getpwuid(::geteuid())) return pw->pw_dir;
  return "/tmp";
}
}  // namespace

std::string DefaultSocketPath() {
  if (::geteuid() == 0) return kSystemSocketPath;
  std::string xdg = Env("XDG_RUNTIME_DIR");
  if (!xdg.empty()) return xdg + "/clrdiag/clrdiagd.sock";
  return "/tmp/clrdiag-" + std::to_string(::geteuid()) + "/clrdiagd.sock";
}

std::string DefaultDumpDir() {
  if (::geteuid() == 0) return "/var/lib/clrdiag";
  std::string data = Env("XDG_DATA_HOME");
  if (!data.empty()) return data + "/clrdiag";
  return HomeDir() + "/.local/share/clrdiag";
}

}  // namespace clrdiag
