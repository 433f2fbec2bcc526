// The capability set of deploy/systemd/clrdiagd.service (= the DaemonSet's) is enough, and
// each capability in it is needed: the real daemon runs with exactly that bounding set (as
// root, so its permitted set is the bounding set, as under systemd or in the container), in
// the unit's sandbox (private /tmp, read-only root), and collects from a .NET process of
// another user (nobody) whose temp directory it does not own. Needs root (CI runs as root).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "tests/deploy/manifest_util.h"
#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

namespace fs = std::filesystem;

#define EXPECT_CONTAINS(haystack, needle)                          \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) \
      << "missing: " << (needle) << "\nin:\n"                      \
      << (haystack)

constexpr uid_t kNobody = 65534;

// A directory outside /tmp (the daemon's sandbox hides /tmp), removed on destruction.
class VarTmpDir {
 public:
  VarTmpDir() {
    char tmpl[] = "/var/tmp/clrdiag-deploy-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    path_ = tmpl;
    ::chmod(path_.c_str(), 0755);
  }
  ~VarTmpDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& n) const { return path_ + "/" + n; }

 private:
  std::string path_;
};

// The unit's capabilities, lower case without CAP_, as setpriv wants them.
std::vector<std::string> UnitCapabilities() {
  UnitFile u = LoadUnit(SourceDir() + "/deploy/systemd/clrdiagd.service");
  std::vector<std::string> caps;
  for (const auto& c : UnitWords(u, "Service", "CapabilityBoundingSet")) {
    caps.push_back(absl::AsciiStrToLower(c.substr(4)));
  }
  return caps;
}

enum class AppTmp {
  kPrivate,      // TMPDIR is a directory of the app's user, mode 0700
  kStickyOther,  // TMPDIR is a sticky 1777 directory of the app's user (as /tmp of a
                 // user-namespaced container looks from the host)
};

struct Outcome {
  int collect_exit = -1;
  std::string collect_err;
  int analyze_exit = -1;
  std::string analyze_out;
  bool leftover_tmp = false;  // the daemon's private clrdiag-* directory stayed behind
  std::string daemon_cap_eff;
  std::string daemon_log;
};

// Starts SleepApp as nobody, and clrdiagd with bounding set `caps` in the unit's sandbox;
// collects a Mini dump and (when it worked) runs `eeversion` on it.
Outcome RunSandboxed(const std::vector<std::string>& caps, AppTmp tmp, bool analyze) {
  Outcome o;
  VarTmpDir t;
  // The fixture, copied where nobody can read it (the source tree may be under /root).
  fs::copy(FixturesDir() + "/SleepApp", t / "app", fs::copy_options::recursive);
  // The daemon and its worker, copied out of the build tree: a build tree under /tmp (a
  // clone in /tmp) would be hidden by the sandbox's private /tmp.
  fs::create_directory(t / "bin");
  for (const char* b : {"clrdiagd", "clrdiag-worker"}) {
    fs::copy_file(BinDir() + "/" + b, t / (std::string("bin/") + b));
  }
  for (const auto& dir : {t / "apptmp", t / "home"}) {
    fs::create_directory(dir);
    EXPECT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0);
  }
  ::chmod((t / "apptmp").c_str(), tmp == AppTmp::kPrivate ? 0700 : 01777);
  SpawnOptions app_env;
  app_env.env["HOME"] = t / "home";
  app_env.env["TMPDIR"] = t / "apptmp";
  auto app = Process::Spawn(
      {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t / "app/SleepApp"},
      app_env);
  if (!app || !app->WaitForLine("READY", std::chrono::seconds(60))) {
    ADD_FAILURE() << "SleepApp did not start as nobody";
    return o;
  }

  // The unit's sandbox, as systemd builds it: the store and socket directory writable
  // (ReadWritePaths), everything else read-only (ProtectSystem=strict), a private /tmp
  // (PrivateTmp=yes). Then exactly the unit's capabilities.
  fs::create_directory(t / "rw");
  std::string bounding = "-all";
  for (const auto& c : caps) bounding += ",+" + c;
  std::string sandbox = "mount --bind " + (t / "rw") + " " + (t / "rw") +
                        " && mount -o remount,bind,ro / && mount -t tmpfs tmpfs /tmp" +
                        " && exec setpriv --bounding-set " + bounding + " -- \"$0\" \"$@\"";
  SpawnOptions d_env;
  d_env.stderr_file = t / "daemon.log";
  std::string sock = t / "rw/d.sock";
  auto daemon = Process::Spawn(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "sh", "-c", sandbox,
       t / "bin/clrdiagd", "--listen", "unix:" + sock, "--dump-dir", t / "rw/store"},
      d_env);
  auto client = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinDir() + "/clrdiag", "--server", "unix:" + sock});
    return RunCommand(args);
  };
  for (int i = 0; i < 200 && !FileExists(sock); ++i) ::usleep(50000);
  if (!FileExists(sock)) {
    ADD_FAILURE() << "clrdiagd did not start:\n" << ReadFile(t / "daemon.log");
    return o;
  }
  std::istringstream status(ReadFile("/proc/" + std::to_string(daemon->pid()) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("CapEff:", 0) == 0)
      o.daemon_cap_eff = std::string(absl::StripAsciiWhitespace(line.substr(7)));
  }

  RunResult c = client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini"});
  o.collect_exit = c.exit_code;
  o.collect_err = c.err;
  if (c.exit_code == 0 && analyze) {
    std::string id;
    std::istringstream out(c.out);
    for (std::string line; std::getline(out, line);) {
      if (line.rfind("Dump id:", 0) == 0)
        id = std::string(absl::StripAsciiWhitespace(line.substr(8)));
    }
    RunResult a = client({"analyze", id, "-c", "eeversion", "-c", "exit"});
    o.analyze_exit = a.exit_code;
    o.analyze_out = a.out + a.err;
  }
  for (const auto& e : fs::directory_iterator(t / "apptmp")) {
    if (e.path().filename().string().rfind("clrdiag-", 0) == 0) o.leftover_tmp = true;
  }
  daemon->Signal(SIGTERM);
  daemon->Wait(std::chrono::seconds(30));
  app->Signal(SIGTERM);
  app->Wait(std::chrono::seconds(10));
  o.daemon_log = ReadFile(t / "daemon.log");
  return o;
}

std::vector<std::string> Without(std::vector<std::string> caps, const std::string& drop) {
  std::erase(caps, drop);
  return caps;
}

class DeployCapabilitiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "needs root (CI runs as root)";
    caps_ = UnitCapabilities();
    ASSERT_EQ(caps_.size(), 5u) << absl::StrJoin(caps_, ",");
  }
  std::vector<std::string> caps_;
};

TEST_F(DeployCapabilitiesTest, TheUnitsCapabilitiesAndSandboxAreEnough) {
  Outcome o = RunSandboxed(caps_, AppTmp::kStickyOther, /*analyze=*/true);
  EXPECT_EQ(o.collect_exit, 0) << o.collect_err << "\n" << o.daemon_log;
  EXPECT_EQ(o.analyze_exit, 0) << o.analyze_out;
  EXPECT_CONTAINS(o.analyze_out, "@Commit:");  // eeversion's runtime line
  EXPECT_FALSE(o.leftover_tmp) << "the private temp directory was not removed";
  // CAP_CHOWN 0, DAC_OVERRIDE 1, DAC_READ_SEARCH 2, FOWNER 3, SYS_PTRACE 19.
  EXPECT_EQ(o.daemon_cap_eff, "000000000008000f");
}

TEST_F(DeployCapabilitiesTest, PrivateTempDirOfTheAppsUser) {
  Outcome o = RunSandboxed(caps_, AppTmp::kPrivate, /*analyze=*/false);
  EXPECT_EQ(o.collect_exit, 0) << o.collect_err << "\n" << o.daemon_log;
  EXPECT_FALSE(o.leftover_tmp);
}

TEST_F(DeployCapabilitiesTest, WithoutSysPtraceTheProcessCannotBeInspected) {
  Outcome o = RunSandboxed(Without(caps_, "sys_ptrace"), AppTmp::kPrivate, false);
  EXPECT_EQ(o.collect_exit, 5) << o.collect_err;
  EXPECT_CONTAINS(o.collect_err, "environ: Permission denied");
}

TEST_F(DeployCapabilitiesTest, WithoutDacOverrideNoDirectoryInTheAppsTempDir) {
  Outcome o = RunSandboxed(Without(caps_, "dac_override"), AppTmp::kPrivate, false);
  EXPECT_EQ(o.collect_exit, 5) << o.collect_err;
  EXPECT_CONTAINS(o.collect_err, "cannot create a temporary directory");
}

TEST_F(DeployCapabilitiesTest, WithoutDacOverrideTheRuntimesSocketIsClosed) {
  // A temp dir everyone may write, so the only obstacle left is the socket (mode 0600).
  Outcome o = RunSandboxed(Without(caps_, "dac_override"), AppTmp::kStickyOther, false);
  EXPECT_NE(o.collect_exit, 0);
  EXPECT_CONTAINS(o.collect_err, "the runtime's socket is private to its user");
}

TEST_F(DeployCapabilitiesTest, WithoutChownCreatedumpCouldNotWrite) {
  Outcome o = RunSandboxed(Without(caps_, "chown"), AppTmp::kPrivate, false);
  EXPECT_EQ(o.collect_exit, 5) << o.collect_err;
  EXPECT_CONTAINS(o.collect_err, "chown ");
}

TEST_F(DeployCapabilitiesTest, WithoutFownerTheTempDirStaysBehind) {
  // The dump is taken, but the private directory cannot be removed from a sticky temp dir
  // the daemon's uid does not own.
  Outcome o = RunSandboxed(Without(caps_, "fowner"), AppTmp::kStickyOther, false);
  EXPECT_EQ(o.collect_exit, 0) << o.collect_err;
  EXPECT_TRUE(o.leftover_tmp);
}

// The sidecar manifests' claim: a daemon running as the app's uid, with no capability at all,
// collects from an app in another mount namespace (another container of the pod) whose /tmp
// is its own. And with another uid it cannot (the control).
struct SidecarOutcome {
  RunResult collect;
  RunResult analyze;
  std::string cap_eff;
};

SidecarOutcome RunSidecar(uid_t app_uid) {
  SidecarOutcome o;
  VarTmpDir t;
  fs::copy(FixturesDir() + "/SleepApp", t / "app", fs::copy_options::recursive);
  fs::create_directory(t / "apphome");
  fs::create_directory(t / "daemon");
  EXPECT_EQ(::chown((t / "apphome").c_str(), app_uid, app_uid), 0);
  EXPECT_EQ(::chown((t / "daemon").c_str(), kNobody, kNobody), 0);
  std::string id = std::to_string(app_uid);
  // The app's "container": its own mount namespace with a private /tmp.
  SpawnOptions app_env;
  app_env.env["HOME"] = t / "apphome";
  app_env.unset_env = {"TMPDIR"};
  auto app = Process::Spawn({"/usr/bin/unshare", "--mount", "--propagation", "private", "sh", "-c",
                             "mount -t tmpfs tmpfs /tmp && exec setpriv --reuid=" + id +
                                 " --regid=" + id + " --clear-groups \"$0\"",
                             t / "app/SleepApp"},
                            app_env);
  if (!app || !app->WaitForLine("READY", std::chrono::seconds(60))) {
    ADD_FAILURE() << "SleepApp did not start in its own mount namespace";
    return o;
  }
  // The daemon: nobody, no capability in any set; its binaries copied where nobody may run
  // them (the build tree may be under /root).
  fs::create_directory(t / "bin");
  for (const char* bin : {"clrdiagd", "clrdiag-worker"}) {
    fs::copy_file(BinDir() + "/" + bin, t / (std::string("bin/") + bin));
  }
  std::string sock = t / "daemon/d.sock";
  SpawnOptions d_env;
  d_env.stderr_file = t / "daemon.log";
  auto daemon =
      Process::Spawn({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all", "--", t / "bin/clrdiagd",
                      "--listen", "unix:" + sock, "--dump-dir", t / "daemon/store"},
                     d_env);
  for (int i = 0; i < 200 && !FileExists(sock); ++i) ::usleep(50000);
  if (!FileExists(sock)) {
    ADD_FAILURE() << "clrdiagd did not start as nobody:\n" << ReadFile(t / "daemon.log");
    return o;
  }
  std::istringstream status(ReadFile("/proc/" + std::to_string(daemon->pid()) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("CapEff:", 0) == 0) {
      o.cap_eff = std::string(absl::StripAsciiWhitespace(line.substr(7)));
    }
  }
  // The client as root: the daemon's socket is its uid's, mode 0660.
  auto client = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BinDir() + "/clrdiag", "--server", "unix:" + sock});
    return RunCommand(args);
  };
  o.collect = client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini"});
  if (o.collect.exit_code == 0) {
    std::string dump_id;
    std::istringstream out(o.collect.out);
    for (std::string line; std::getline(out, line);) {
      if (line.rfind("Dump id:", 0) == 0) {
        dump_id = std::string(absl::StripAsciiWhitespace(line.substr(8)));
      }
    }
    o.analyze = client({"analyze", dump_id, "-c", "eeversion", "-c", "exit"});
  }
  daemon->Signal(SIGTERM);
  daemon->Wait(std::chrono::seconds(30));
  app->Signal(SIGTERM);
  app->Wait(std::chrono::seconds(10));
  return o;
}

TEST(DeploySidecarTest, SameUidNeedsNoCapability) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root to switch users (CI runs as root)";
  SidecarOutcome o = RunSidecar(kNobody);
  EXPECT_EQ(o.cap_eff, "0000000000000000");
  EXPECT_EQ(o.collect.exit_code, 0) << o.collect.err;
  EXPECT_EQ(o.analyze.exit_code, 0) << o.analyze.out << o.analyze.err;
  EXPECT_CONTAINS(o.analyze.out, "@Commit:");
}

TEST(DeploySidecarTest, AnotherUidIsOutOfReachWithoutCapabilities) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root to switch users (CI runs as root)";
  SidecarOutcome o = RunSidecar(kNobody - 1);
  EXPECT_EQ(o.collect.exit_code, 5) << o.collect.err;
  EXPECT_CONTAINS(o.collect.err, "Permission denied");
}

}  // namespace
}  // namespace clrdiag::testing
