// Crash capture way (1): a real .NET process crashes with an unhandled exception, its runtime
// writes its own crash dump (DOTNET_DbgEnableMiniDump) into a directory the daemon watches
// (crash_dumps.directories), and the daemon moves it into the catalog with the crash report,
// the runtime files and what it knew of the process; the dump is then analyzable. A file that
// is not a dump is left where it is and reported.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/base/sha256.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

nlohmann::json CrashDumps(const Daemon& d) {
  RunResult r = d.Client({"dumps", "--json"});
  nlohmann::json out = nlohmann::json::array();
  auto all = nlohmann::json::parse(r.out, nullptr, false);
  if (!all.is_array()) return out;
  for (const auto& e : all) {
    if (e.value("origin", "") == "crash") out.push_back(e);
  }
  return out;
}

class CrashCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    crash_dir_ = dir_ / "crash";
    std::ofstream(dir_ / "d.yaml") << "crash_dumps:\n"
                                   << "  directories:\n"
                                   << "    - path: " << crash_dir_ << "\n"
                                   << "      type: Heap\n"
                                   << "  settle: 200ms\n"
                                   << "  scan_interval: 300ms\n";
    Daemon::Options o;
    o.extra_args = {"--config", dir_ / "d.yaml"};
    daemon_ = std::make_unique<Daemon>(o);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    struct stat st;
    ASSERT_EQ(::stat(crash_dir_.c_str(), &st), 0) << "the daemon creates the directory";
    EXPECT_EQ(st.st_mode & 07777, 01777u);
  }

  TempDir dir_;
  std::string crash_dir_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(CrashCaptureTest, TheRuntimesCrashDumpLandsInTheCatalogReadyToAnalyze) {
  std::string fifo = dir_ / "stdin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int fd = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  SpawnOptions opts;
  opts.stdin_file = fifo;
  opts.env["DOTNET_DbgEnableMiniDump"] = "1";
  opts.env["DOTNET_DbgMiniDumpType"] = "2";
  opts.env["DOTNET_DbgMiniDumpName"] = crash_dir_ + "/%e_%p_%t.dmp";
  opts.env["DOTNET_EnableCrashReport"] = "1";
  auto app = StartFixture("HeapApp", {"100", "--stdin"}, opts);
  ASSERT_TRUE(app);
  // Let the daemon see the process running (it remembers its facts and runtime files).
  std::this_thread::sleep_for(1500ms);
  std::string line = "crash System.InvalidOperationException clrdiag-crash-test\n";
  ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  ASSERT_TRUE(app->WaitForLine("CRASHING", 30s));
  auto status = app->Wait(120s);
  ::close(fd);
  ASSERT_TRUE(status.has_value()) << "the crashing process did not end";
  EXPECT_EQ(*status, 128 + SIGABRT);

  nlohmann::json dumps;
  for (int i = 0; i < 300 && dumps.empty(); ++i) {
    dumps = CrashDumps(*daemon_);
    if (dumps.empty()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(dumps.size(), 1u) << daemon_->log();
  const auto& d = dumps[0];
  EXPECT_EQ(d["type"], "Heap");
  EXPECT_EQ(d["pid"], app->pid()) << "the host pid, known from the running process";
  EXPECT_EQ(d["process_name"], "HeapApp");
  EXPECT_NE(d["command_line"].get<std::string>().find("--stdin"), std::string::npos);
  EXPECT_TRUE(d["runtime_files_stored"].get<bool>());
  EXPECT_FALSE(d["coreclr_build_id"].get<std::string>().empty());
  EXPECT_EQ(d["source_path"].get<std::string>().rfind(crash_dir_ + "/HeapApp_", 0), 0u)
      << d["source_path"];
  ASSERT_TRUE(d.contains("crash_report_path")) << d.dump();
  std::ifstream report(d["crash_report_path"].get<std::string>());
  std::string report_text((std::istreambuf_iterator<char>(report)), {});
  EXPECT_NE(report_text.find("InvalidOperationException"), std::string::npos);
  // Moved, not copied: nothing is left in the watched directory.
  EXPECT_TRUE(fs::is_empty(crash_dir_)) << fs::directory_iterator(crash_dir_)->path();
  auto digest = Sha256File(d["path"].get<std::string>());
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, d["sha256"]);

  // The text listing says where it came from.
  RunResult list = daemon_->Client({"dumps"});
  EXPECT_NE(list.out.find("crash dump written by the runtime, from " + crash_dir_),
            std::string::npos)
      << list.out;

  // Analyzable offline: the crashing thread's unhandled exception.
  RunResult a =
      daemon_->Client({"analyze", d["id"].get<std::string>(), "-c", "clrthreads", "-c", "exit"});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("System.InvalidOperationException"), std::string::npos) << a.out;
}

TEST_F(CrashCaptureTest, AFileThatIsNotADumpIsLeftWhereItIsAndReported) {
  std::string bad = crash_dir_ + "/broken_1_2.dmp";
  {
    std::ofstream f(bad);
    f << "this is not an ELF core file\n";
  }
  std::string log;
  for (int i = 0; i < 100; ++i) {
    log = daemon_->log();
    if (log.find("is not a complete ELF core dump") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(log.find(bad + " is not a complete ELF core dump"), std::string::npos) << log;
  EXPECT_TRUE(fs::exists(bad)) << "nothing is lost: the file stays";
  EXPECT_TRUE(CrashDumps(*daemon_).empty());
}

}  // namespace
}  // namespace clrdiag::testing
