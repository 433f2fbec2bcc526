// fake_dotnet_runtime: a process that looks like a .NET runtime to diagnostics clients.
//
// It publishes $TMPDIR/dotnet-diagnostic-<pid>-<starttime>-socket (named exactly as the
// runtime names it), answers ProcessInfo/2/3 with plausible data, and answers dump requests
// according to --dump-mode:
//   ok               OK for GenerateCoreDump3 (nothing is written)          [default]
//   error-v3         Error 0x80004005 + "[createdump] fake failure: ptrace not permitted"
//   unknown-command  UNKNOWN_COMMAND for v3 and v2, OK for v1 (nothing is written)
//   close            close the connection without replying
//   hresult-zero     Error with hresult 0 (the .NET 6 quirk)
//   symlink          a hostile target: puts a symbolic link to /etc/passwd where the dump
//                    should go, then answers OK
// Prints READY on stdout once listening; on SIGTERM/SIGINT removes its socket and exits 0.
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/ipc/codec.h"
#include "tests/fakes/fake_diag_server.h"

namespace {

using clrdiag::testing::Behavior;
using clrdiag::testing::FakeDiagServer;
namespace ipc = clrdiag::ipc;

// Field 22 of /proc/self/stat (starttime), counted from after the last ')' of the comm
// field, which may itself contain spaces and parentheses. 0 if unreadable, like the runtime.
unsigned long long StartTime() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return 0;
  }
  return std::strtoull(field.c_str(), nullptr, 10);
}

std::string TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp/";
  if (dir.back() != '/') dir.push_back('/');
  return dir;
}

std::vector<uint8_t> ProcessInfoPayload(int version, const std::string& command_line,
                                        const std::array<uint8_t, 16>& cookie) {
  ipc::PayloadWriter w;
  if (version == 3) w.U32(1);  // payload version: runtime identifier present
  w.U64(static_cast<uint64_t>(::getpid()));
  std::vector<uint8_t> out = w.bytes();
  out.insert(out.end(), cookie.begin(), cookie.end());
  ipc::PayloadWriter rest;
  rest.String(command_line);
  rest.String("Linux");
  rest.String("x64");
  if (version >= 2) {
    rest.String("FakeApp");
    rest.String("10.0.0-fake");
  }
  if (version == 3) rest.String("linux-x64");
  out.insert(out.end(), rest.bytes().begin(), rest.bytes().end());
  return out;
}

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--dump-mode=ok|error-v3|unknown-command|close|hresult-zero|symlink] "
               "[args...]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "ok";
  constexpr std::string_view kModeFlag = "--dump-mode=";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.substr(0, kModeFlag.size()) == kModeFlag) mode = arg.substr(kModeFlag.size());
  }

  const auto kDump = static_cast<uint8_t>(ipc::CommandSet::kDump);
  const auto dump_script = [&](Behavior v3, Behavior v2, Behavior v1) {
    return FakeDiagServer::Script{{{kDump, ipc::dump_cmd::kGenerateCoreDump3}, std::move(v3)},
                                  {{kDump, ipc::dump_cmd::kGenerateCoreDump2}, std::move(v2)},
                                  {{kDump, ipc::dump_cmd::kGenerateCoreDump}, std::move(v1)}};
  };
  FakeDiagServer::Script script;
  if (mode == "ok") {
    script = dump_script(Behavior::OkHresult(), Behavior::OkHresult(), Behavior::OkHresult());
  } else if (mode == "error-v3") {
    script =
        dump_script(Behavior::ErrorWithMessage(ipc::hresult::kFail,
                                               "[createdump] fake failure: ptrace not permitted"),
                    Behavior::Error(ipc::hresult::kFail), Behavior::Error(ipc::hresult::kFail));
  } else if (mode == "unknown-command") {
    script =
        dump_script(Behavior::UnknownCommand(), Behavior::UnknownCommand(), Behavior::OkHresult());
  } else if (mode == "close") {
    script =
        dump_script(Behavior::CloseNoReply(), Behavior::CloseNoReply(), Behavior::CloseNoReply());
  } else if (mode == "symlink") {
    Behavior b = Behavior::OkHresult();
    b.before_reply = [](const clrdiag::testing::RecordedRequest& r) {
      ipc::PayloadReader reader(r.payload);
      auto path = reader.String();
      if (path.ok()) (void)!::symlink("/etc/passwd", path->c_str());
    };
    script = dump_script(b, b, b);
  } else if (mode == "hresult-zero") {
    script = dump_script(Behavior::Error(0), Behavior::Error(0), Behavior::Error(0));
  } else {
    return Usage(argv[0]);
  }

  // Block the stop signals before the server thread exists so that it inherits the mask and
  // only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::array<uint8_t, 16> cookie{};
  if (::getrandom(cookie.data(), cookie.size(), 0) != static_cast<ssize_t>(cookie.size())) {
    cookie.fill(0x42);
  }
  const std::string command_line = absl::StrJoin(argv, argv + argc, " ");
  const std::string path =
      absl::StrCat(TempDir(), "dotnet-diagnostic-", ::getpid(), "-", StartTime(), "-socket");

  const auto kProcess = static_cast<uint8_t>(ipc::CommandSet::kProcess);
  script[{kProcess, ipc::process_cmd::kProcessInfo}] =
      Behavior::Ok(ProcessInfoPayload(1, command_line, cookie));
  script[{kProcess, ipc::process_cmd::kProcessInfo2}] =
      Behavior::Ok(ProcessInfoPayload(2, command_line, cookie));
  script[{kProcess, ipc::process_cmd::kProcessInfo3}] =
      Behavior::Ok(ProcessInfoPayload(3, command_line, cookie));
  script[{kProcess, ipc::process_cmd::kResumeRuntime}] = Behavior::OkHresult();

  // Like the runtime, the socket is born 0600: only its user (or root) may connect.
  const mode_t old_umask = ::umask(0177);
  auto server = FakeDiagServer::Start(path, std::move(script));
  ::umask(old_umask);
  if (!server.ok()) {
    std::fprintf(stderr, "fake_dotnet_runtime: %s\n", server.status().ToString().c_str());
    return 1;
  }

  std::printf("READY\n");
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  server->reset();  // stops serving and removes the socket
  return 0;
}
