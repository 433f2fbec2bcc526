// setsymbolserver: a dump of an app whose portable PDB is NOT beside its assembly has no source
// lines in clrstack until a symbol store that holds the PDB is added: a directory, a symbol
// cache (key layout), or a symbol server (a real HTTP server on loopback), whose download lands
// in the cache so a later session finds it offline. A server that cannot be reached costs no
// lines elsewhere and is reported by the listing.
#include "core/sos/symbols.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/dac/portable_pdb.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr char kLine[] = "Program.cs @ ";  // a frame's [file @ line] from HeapApp's PDB

int FreePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

class SymbolStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("clrdiag-symbols");
    daemon_ = new Daemon();
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    // The app, copied without its PDB (kept aside in syms/).
    fs::copy(FixturesDir() + "/HeapApp", *dir_ / "app", fs::copy_options::recursive);
    fs::create_directories(*dir_ / "syms");
    fs::rename(*dir_ / "app/HeapApp.pdb", *dir_ / "syms/HeapApp.pdb");
    auto app = Process::Spawn({*dir_ / "app/HeapApp", "100"});
    ASSERT_TRUE(app && app->WaitForLine("READY", 60s));
    RunResult c =
        daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
    ASSERT_EQ(c.exit_code, 0) << c.err;
    id_ = nlohmann::json::parse(c.out).value("id", "");
    // The PDB's symbol-server key.
    std::ifstream in(*dir_ / "syms/HeapApp.pdb", std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    auto pdb = dac::PortablePdb::Parse(bytes);
    ASSERT_TRUE(pdb.ok()) << pdb.status();
    key_ = sos::SymbolSettings::KeyPath("HeapApp.pdb", pdb->id());
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete dir_;
  }
  static RunResult Analyze(const std::vector<std::string>& commands) {
    std::vector<std::string> args = {"analyze", id_};
    for (const auto& c : commands) {
      args.push_back("-c");
      args.push_back(c);
    }
    args.push_back("-c");
    args.push_back("exit");
    return daemon_->Client(args);
  }
  static void Place(const std::string& root) {
    fs::create_directories(fs::path(root + "/" + key_).parent_path());
    fs::copy_file(*dir_ / "syms/HeapApp.pdb", root + "/" + key_,
                  fs::copy_options::overwrite_existing);
  }

  static TempDir* dir_;
  static Daemon* daemon_;
  static std::string id_, key_;
};
TempDir* SymbolStoreTest::dir_ = nullptr;
Daemon* SymbolStoreTest::daemon_ = nullptr;
std::string SymbolStoreTest::id_, SymbolStoreTest::key_;

TEST_F(SymbolStoreTest, KeyIsTheSymbolServerLayoutOfPortablePdbs) {
  // heapapp.pdb/<32 hex digits>ffffffff/heapapp.pdb
  ASSERT_EQ(key_.size(), std::string("heapapp.pdb/").size() * 2 + 40) << key_;
  EXPECT_EQ(key_.rfind("heapapp.pdb/", 0), 0u);
  EXPECT_EQ(key_.substr(12 + 32, 9), "ffffffff/");
}

TEST_F(SymbolStoreTest, WithoutTheStoreThereAreNoSourceLines) {
  RunResult r = Analyze({"clrstack -all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Fixture.Deep.Level3"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(kLine), std::string::npos) << r.out;
}

TEST_F(SymbolStoreTest, ADirectoryHoldingThePdbGivesSourceLines) {
  RunResult r = Analyze({"setsymbolserver -directory " + (*dir_ / "syms"), "clrstack -all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Current symbol store settings:\n-> Directory: " + (*dir_ / "syms")),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(kLine), std::string::npos) << r.out;
  // -disable forgets it: the lines go again.
  RunResult off = Analyze({"setsymbolserver -directory " + (*dir_ / "syms"),
                           "setsymbolserver -disable", "clrstack -all"});
  EXPECT_EQ(off.out.find(kLine), std::string::npos) << off.out;
}

TEST_F(SymbolStoreTest, AServersPdbIsDownloadedIntoTheCacheAndUsedOfflineLater) {
  std::string srv = *dir_ / "srv", cache = *dir_ / "cache";
  Place(srv);
  int port = FreePort();
  auto http = Process::Spawn({"/usr/bin/python3", "-m", "http.server", std::to_string(port),
                              "--bind", "127.0.0.1", "--directory", srv});
  ASSERT_TRUE(http);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {  // until it answers
    up = RunCommand({"/usr/bin/python3", "-c",
                     "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)",
                     url})
             .exit_code == 0;
    if (!up) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up) << "the test's HTTP server did not start";
  RunResult r = Analyze({"setsymbolserver -cache " + cache + " " + url, "clrstack -all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("-> Cache: " + cache + "\n-> Server: " + url + " Timeout: 4 RetryCount: 0"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find(kLine), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(cache + "/" + key_)) << "the download is kept in the cache";
  http->Signal(SIGTERM);
  http->Wait(10s);
  // The server is gone; the cache alone gives the lines.
  RunResult later = Analyze({"setsymbolserver -cache " + cache, "clrstack -all"});
  EXPECT_NE(later.out.find(kLine), std::string::npos) << later.out;
}

TEST_F(SymbolStoreTest, AnUnreachableServerIsReportedAndCostsNothingElse) {
  std::string cache = *dir_ / "cache2";
  Place(cache);
  RunResult r = Analyze({"setsymbolserver -nocache http://127.0.0.1:1/",
                         "setsymbolserver -cache " + cache, "clrstack -all", "setsymbolserver"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The server comes first and fails; the cache after it still gives the lines.
  EXPECT_NE(r.out.find(kLine), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("   failed: cannot download http://127.0.0.1:1/"), std::string::npos)
      << r.out;
}

TEST_F(SymbolStoreTest, BadArgumentsAreUsageErrors) {
  for (const char* cmd : {"setsymbolserver -directory relative/dir", "setsymbolserver ftp://x/",
                          "setsymbolserver -timeout", "setsymbolserver -colour red",
                          "setsymbolserver -retrycount 99"}) {
    SCOPED_TRACE(cmd);
    RunResult r = Analyze({cmd});
    EXPECT_NE(r.exit_code, 0) << r.out;
  }
}

}  // namespace
}  // namespace clrdiag::testing
