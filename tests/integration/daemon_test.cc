// clrdiagd's life cycle: configuration checks, readiness, graceful shutdown.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

RunResult Daemond(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {BinDir() + "/clrdiagd"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {}, std::chrono::seconds(20));
}

TEST(DaemonTest, CheckConfigAcceptsTheShippedConfig) {
  RunResult r = Daemond({"--check-config", "--config", SourceDir() + "/config/clrdiagd.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "configuration OK");
}

TEST(DaemonTest, CheckConfigRejectsBadConfigsNamingEveryKeyPath) {
  TempDir t;
  std::string bad = t / "bad.yaml";
  std::ofstream(bad) << "listen: [unix:/tmp/x.sock]\nlimits:\n  max_concurrent_collections: 0\n"
                        "  speed: fast\nlog_level: chatty\n";
  RunResult r = Daemond({"--check-config", "--config", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "limits.max_concurrent_collections");
  EXPECT_CONTAINS(r.err, "limits.speed: unknown key");
  EXPECT_CONTAINS(r.err, "log_level");
  // The same config never starts a daemon.
  RunResult start = Daemond({"--config", bad});
  EXPECT_EQ(start.exit_code, 1);
  EXPECT_FALSE(FileExists("/tmp/x.sock"));
}

TEST(DaemonTest, TcpWithoutTlsIsRefusedAtStartup) {
  RunResult r = Daemond({"--listen", "127.0.0.1:45123", "--check-config"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "TLS");
}

TEST(DaemonTest, SigtermRemovesTheSocketAndExitsCleanly) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  struct stat st;
  ASSERT_EQ(::stat(d.socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(d.Stop(), 0);
  EXPECT_FALSE(FileExists(d.socket_path()));
  EXPECT_CONTAINS(d.log(), "clrdiagd stopped");
}

TEST(DaemonTest, SecondDaemonOnTheSameSocketIsRefused) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  TempDir t;
  RunResult r = Daemond({"--listen", "unix:" + d.socket_path(), "--dump-dir", t / "store"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "already listening on " + d.socket_path());
  // The first one is unharmed.
  EXPECT_EQ(d.Client({"ps"}).exit_code, 0);
}

TEST(DaemonTest, StaleSocketFileOfACrashedDaemonIsReplaced) {
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  d.Kill();  // SIGKILL leaves the socket file behind
  ASSERT_TRUE(FileExists(d.socket_path()));
  ASSERT_TRUE(d.Start()) << d.log();
  EXPECT_EQ(d.Client({"dumps"}).exit_code, 0);
}

TEST(DaemonTest, UnusableDumpDirIsAClearStartupError) {
  TempDir t;
  std::string file = t / "not-a-dir";
  std::ofstream(file) << "x";
  RunResult r = Daemond({"--listen", "unix:" + (t / "d.sock"), "--dump-dir", file + "/store"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "cannot use dump directory");
}

}  // namespace
}  // namespace clrdiag::testing
