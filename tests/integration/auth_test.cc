// Local access rules (issue 5): a root daemon, the real client run as throwaway unprivileged
// users created here (one plain, one in the configured admin group), real .NET fixtures.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "tests/integration/auth_util.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

class LocalAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "the integration tests run as root";
    std::string tag = std::to_string(::getpid());
    admin_group_ = "cdtadm" + tag;
    ASSERT_EQ(RunCommand({"/usr/sbin/groupadd", admin_group_}).exit_code, 0);
    user_ = std::make_unique<TestUser>("cdtu" + tag);
    admin_ = std::make_unique<TestUser>("cdta" + tag, admin_group_);
    ASSERT_TRUE(user_->ok() && admin_->ok());
    std::string cfg = cfg_dir_ / "d.yaml";
    std::ofstream(cfg) << "socket: {mode: \"0666\", group: \"\"}\n"
                       << "auth: {admin_group: " << admin_group_ << "}\n";
    Daemon::Options o;
    o.extra_args = {"--config", cfg};
    daemon_ = std::make_unique<Daemon>(o);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    // The test daemon's directory is private (mkdtemp): let the users reach the socket.
    std::string dir = daemon_->socket_path().substr(0, daemon_->socket_path().rfind('/'));
    ::chmod(dir.c_str(), 0755);
    ::chmod(out_dir_.path().c_str(), 01777);
  }
  void TearDown() override {
    daemon_.reset();
    user_.reset();
    admin_.reset();
    RunCommand({"/usr/sbin/groupdel", admin_group_});
  }

  RunResult As(const TestUser& u, const std::vector<std::string>& args) {
    std::vector<std::string> argv = u.Prefix();
    argv.push_back(BinDir() + "/clrdiag");
    argv.push_back("--server");
    argv.push_back(daemon_->server());
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions so;
    so.cwd = "/";
    return RunCommand(argv, so);
  }
  static std::vector<int> Pids(const RunResult& r) {
    std::vector<int> pids;
    auto j = ParseJson(r.out);
    if (j.is_array()) {
      for (const auto& p : j) pids.push_back(p.value("pid", 0));
    }
    return pids;
  }
  static std::vector<std::string> Ids(const RunResult& r) {
    std::vector<std::string> ids;
    auto j = ParseJson(r.out);
    if (j.is_array()) {
      for (const auto& d : j) ids.push_back(d.value("id", ""));
    }
    return ids;
  }
  static bool Has(const std::vector<int>& v, int x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }
  static bool Has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  TempDir cfg_dir_{"clrdiag-auth"};
  TempDir out_dir_{"clrdiag-auth-out"};
  std::string admin_group_;
  std::unique_ptr<TestUser> user_, admin_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(LocalAuthTest, UsersActOnlyOnTheirOwnProcessesAndDumps) {
  auto root_app = StartFixture("SleepApp");
  ASSERT_TRUE(root_app);
  auto user_app = user_->StartSleepApp();
  ASSERT_TRUE(user_app);
  const std::string root_pid = std::to_string(root_app->pid());
  const std::string user_pid = std::to_string(user_app->pid());

  // ps: the user sees its own process only; root sees both.
  RunResult ps = As(*user_, {"ps", "--json"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_TRUE(Has(Pids(ps), user_app->pid())) << ps.out;
  EXPECT_FALSE(Has(Pids(ps), root_app->pid())) << ps.out;
  RunResult ps_root = daemon_->Client({"ps", "--json"});
  EXPECT_TRUE(Has(Pids(ps_root), user_app->pid()) && Has(Pids(ps_root), root_app->pid()));

  // collect: root's process is refused with a message saying what to do.
  RunResult denied = As(*user_, {"collect", "-p", root_pid, "--type", "Mini"});
  EXPECT_EQ(denied.exit_code, 5) << denied.out << denied.err;
  EXPECT_CONTAINS(denied.err, "process " + root_pid + " belongs to uid 0 (root)");
  EXPECT_CONTAINS(denied.err, "only its own processes and dumps");
  EXPECT_CONTAINS(denied.err, "auth.admin_group");

  // ... its own is collected.
  RunResult own = As(*user_, {"collect", "-p", user_pid, "--type", "Mini"});
  ASSERT_EQ(own.exit_code, 0) << own.err;
  std::string own_id = DumpIdFrom(own.out);
  ASSERT_FALSE(own_id.empty()) << own.out;
  RunResult by_root = daemon_->Client({"collect", "-p", root_pid, "--type", "Mini"});
  ASSERT_EQ(by_root.exit_code, 0) << by_root.err;
  std::string root_id = DumpIdFrom(by_root.out);

  // dumps: only its own.
  RunResult dumps = As(*user_, {"dumps", "--json"});
  ASSERT_EQ(dumps.exit_code, 0) << dumps.err;
  EXPECT_TRUE(Has(Ids(dumps), own_id)) << dumps.out;
  EXPECT_FALSE(Has(Ids(dumps), root_id)) << dumps.out;

  // root's dump: no download, analyze or rm.
  RunResult dl = As(*user_, {"download", root_id, "-o", out_dir_ / "root.core"});
  EXPECT_EQ(dl.exit_code, 5) << dl.err;
  EXPECT_CONTAINS(dl.err, "dump " + root_id + " belongs to uid 0 (root)");
  EXPECT_FALSE(FileExists(out_dir_ / "root.core"));
  RunResult an = As(*user_, {"analyze", root_id, "-c", "clrthreads"});
  EXPECT_EQ(an.exit_code, 5) << an.out << an.err;
  EXPECT_CONTAINS(an.err, "belongs to uid 0");
  RunResult rm = As(*user_, {"rm", root_id});
  EXPECT_EQ(rm.exit_code, 5) << rm.err;
  EXPECT_TRUE(Has(Ids(daemon_->Client({"dumps", "--json"})), root_id));

  // A file on the daemon's host the user may not read (root's dump file in the store).
  RunResult path = As(*user_, {"analyze", daemon_->dump_dir() + "/dumps/" + root_id + "/dump"});
  EXPECT_EQ(path.exit_code, 5) << path.out << path.err;
  EXPECT_CONTAINS(path.err, "may not read");

  // Its own dump: download and rm work.
  RunResult dl_own = As(*user_, {"download", own_id, "-o", out_dir_ / "own.core"});
  EXPECT_EQ(dl_own.exit_code, 0) << dl_own.err;
  EXPECT_TRUE(FileExists(out_dir_ / "own.core"));
  RunResult rm_own = As(*user_, {"rm", own_id});
  EXPECT_EQ(rm_own.exit_code, 0) << rm_own.err;

  // The audit log: every action above, the denied ones included, mode 0600.
  std::string audit_path = daemon_->dump_dir() + "/audit.jsonl";
  EXPECT_EQ(ModeOf(audit_path), 0600u);
  std::vector<nlohmann::json> lines = AuditLines(audit_path);
  std::string uname = "uid:" + std::to_string(user_->uid()) + "(" + user_->name() + ")";
  auto count = [&](const std::string& action, const std::string& target_prefix,
                   const std::string& result, const std::string& who) {
    int n = 0;
    for (const auto& l : lines) {
      if (l.value("action", "") == action && l.value("result", "") == result &&
          l.value("identity", "") == who && l.value("target", "").rfind(target_prefix, 0) == 0) {
        ++n;
      }
    }
    return n;
  };
  EXPECT_EQ(count("collect", "pid:" + root_pid, "denied", uname), 1) << ReadFile(audit_path);
  EXPECT_EQ(count("collect", "pid:" + user_pid + " dump:" + own_id, "ok", uname), 1)
      << ReadFile(audit_path);
  EXPECT_EQ(count("collect", "pid:" + root_pid + " dump:" + root_id, "ok", "uid:0(root)"), 1);
  EXPECT_EQ(count("download", root_id, "denied", uname), 1);
  EXPECT_EQ(count("analyze.open", root_id, "denied", uname), 1);
  EXPECT_EQ(count("analyze.open", daemon_->dump_dir(), "denied", uname), 1);
  EXPECT_EQ(count("delete", root_id, "denied", uname), 1);
  EXPECT_EQ(count("download", own_id, "ok", uname), 1);
  EXPECT_EQ(count("delete", own_id, "ok", uname), 1);
  for (const auto& l : lines) {
    if (l.value("action", "") == "download" && l.value("result", "") == "ok") {
      EXPECT_GT(l.value("bytes", 0ull), 0ull) << l.dump();
      EXPECT_EQ(l.value("uid", -1), static_cast<int>(user_->uid()));
    }
  }
}

TEST_F(LocalAuthTest, AdminGroupMembersMayDoEverything) {
  auto root_app = StartFixture("SleepApp");
  ASSERT_TRUE(root_app);
  RunResult ps = As(*admin_, {"ps", "--json"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_TRUE(Has(Pids(ps), root_app->pid())) << ps.out;
  RunResult c = As(*admin_, {"collect", "-p", std::to_string(root_app->pid()), "--type", "Mini"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = DumpIdFrom(c.out);
  RunResult by_root =
      daemon_->Client({"collect", "-p", std::to_string(root_app->pid()), "--type", "Mini"});
  ASSERT_EQ(by_root.exit_code, 0) << by_root.err;
  std::string root_id = DumpIdFrom(by_root.out);
  RunResult dumps = As(*admin_, {"dumps", "--json"});
  EXPECT_TRUE(Has(Ids(dumps), id) && Has(Ids(dumps), root_id)) << dumps.out;
  RunResult dl = As(*admin_, {"download", root_id, "-o", out_dir_ / "r.core"});
  EXPECT_EQ(dl.exit_code, 0) << dl.err;
  RunResult rm = As(*admin_, {"rm", root_id});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  // The plain user, for contrast, does not see the admin's dump.
  EXPECT_FALSE(Has(Ids(As(*user_, {"dumps", "--json"})), id));

  // Sessions: root's session is invisible to the plain user and not closable by it; an admin
  // group member sees and closes it.
  std::string fifo = cfg_dir_ / "in";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int writer = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // the client never sees EOF
  SpawnOptions so;
  so.stdin_file = fifo;
  so.stdout_file = cfg_dir_ / "s.out";
  so.stderr_file = cfg_dir_ / "s.err";
  auto session =
      Process::Spawn({BinDir() + "/clrdiag", "--server", daemon_->server(), "analyze", id}, so);
  std::string sid;
  for (int i = 0; i < 300 && sid.empty(); ++i) {
    auto j = ParseJson(daemon_->Client({"sessions", "--json"}).out);
    if (j.is_array() && j.size() == 1) sid = j[0].value("id", "");
    if (sid.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(sid.empty()) << ReadFile(cfg_dir_ / "s.err");
  auto seen = ParseJson(As(*user_, {"sessions", "--json"}).out);
  EXPECT_TRUE(seen.is_array() && seen.empty()) << seen.dump();
  RunResult close = As(*user_, {"sessions", "--close", sid});
  EXPECT_EQ(close.exit_code, 5) << close.err;
  EXPECT_CONTAINS(close.err, "belongs to another user");
  auto admin_seen = ParseJson(As(*admin_, {"sessions", "--json"}).out);
  EXPECT_EQ(admin_seen.size(), 1u) << admin_seen.dump();
  RunResult admin_close = As(*admin_, {"sessions", "--close", sid});
  EXPECT_EQ(admin_close.exit_code, 0) << admin_close.err;
  EXPECT_TRUE(session->Wait(std::chrono::seconds(20)).has_value());
  ::close(writer);
}

TEST_F(LocalAuthTest, ClientSuppliedIdsCannotTraverseTheStore) {
  // Dump ids are [A-Za-z0-9-]{1,128}: anything else is refused before touching a path.
  // The client says so itself; the daemon checks again (raw calls skip the client's check).
  for (const std::string bad : {"../x", "..%2fx", "/etc/passwd", "a/../../b", "..", "x y"}) {
    RunResult dl = daemon_->Client({"download", bad, "-o", out_dir_ / "x"});
    EXPECT_EQ(dl.exit_code, 2) << bad;
    EXPECT_CONTAINS(dl.err, "is not a dump id");
    RunResult rm = daemon_->Client({"rm", bad});
    EXPECT_EQ(rm.exit_code, 2) << bad;
    EXPECT_CONTAINS(rm.err, "is not a dump id");
    RawCallResult raw = RawDeleteDump(daemon_->server(), bad);
    EXPECT_EQ(raw.code, 3) << bad << ": " << raw.message;
    EXPECT_CONTAINS(raw.message, "is not a dump id");
    RunResult close = daemon_->Client({"sessions", "--close", bad});
    EXPECT_EQ(close.exit_code, 4) << bad << close.err;
  }
  RunResult an = daemon_->Client({"analyze", "../dumps/x"});
  EXPECT_EQ(an.exit_code, 2) << an.err;
  EXPECT_CONTAINS(an.err, "is neither a dump id nor an absolute path");
  // An absolute path is opened with the caller's rights, after the kernel resolved "..".
  RunResult shadow = As(*user_, {"analyze", "/tmp/../etc/shadow"});
  EXPECT_EQ(shadow.exit_code, 5) << shadow.err;
  EXPECT_CONTAINS(shadow.err, "may not read /tmp/../etc/shadow");
  // A NUL inside an id or a path (only a raw gRPC call can send one).
  RawCallResult nul = RawDeleteDump(daemon_->server(), std::string("abc\0/../x", 9));
  EXPECT_EQ(nul.code, 3) << nul.message;  // INVALID_ARGUMENT
  RawCallResult nul_path = RawAnalyzeOpen(daemon_->server(), std::string("/etc/hostname\0x", 15));
  EXPECT_EQ(nul_path.code, 3) << nul_path.message;
}

TEST_F(LocalAuthTest, OversizedRequestsAreRefused) {
  // The server accepts request messages up to 64 KiB (kMaxRequestBytes).
  RawCallResult big = RawDeleteDump(daemon_->server(), std::string(100 << 10, 'a'));
  EXPECT_EQ(big.code, 8) << big.message;  // RESOURCE_EXHAUSTED
  EXPECT_CONTAINS(big.message, "larger than max");
  // Through the real client: a clear error and a non-zero exit.
  RunResult rm = daemon_->Client({"rm", std::string(100 << 10, 'a')});
  EXPECT_EQ(rm.exit_code, 6) << rm.err;
  EXPECT_CONTAINS(rm.err, "larger than max");
  // A large but legal request still works (an invalid id of 60 KiB: refused by the id check).
  // Its error message, which quotes the id, is cut to fit in a response trailer.
  RawCallResult fits = RawDeleteDump(daemon_->server(), std::string(60 << 10, 'a'));
  EXPECT_EQ(fits.code, 3) << fits.message;
  EXPECT_CONTAINS(fits.message, "message cut off");
  // The daemon is still fine.
  EXPECT_EQ(daemon_->Client({"dumps"}).exit_code, 0);
}

}  // namespace
}  // namespace clrdiag::testing

namespace clrdiag::testing {
namespace {

// setsymbolserver's stores are read, reached and written with the daemon's rights: a plain
// user's session may list them but not add any; a member of the admin group may.
TEST_F(LocalAuthTest, OnlyLocalAdminsMayAddSymbolStores) {
  auto user_app = user_->StartSleepApp();
  ASSERT_TRUE(user_app);
  RunResult c =
      As(*user_, {"collect", "-p", std::to_string(user_app->pid()), "--type", "Mini", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = ParseJson(c.out).value("id", "");
  ASSERT_FALSE(id.empty()) << c.out;

  RunResult list = As(*user_, {"analyze", id, "-c", "setsymbolserver", "-c", "exit"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("Current symbol store settings:"), std::string::npos) << list.out;
  for (const char* cmd : {"setsymbolserver -directory /root", "setsymbolserver -ms",
                          "setsymbolserver http://127.0.0.1:1/", "setsymbolserver -cache /etc"}) {
    SCOPED_TRACE(cmd);
    RunResult r = As(*user_, {"analyze", id, "-c", cmd, "-c", "exit"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE((r.out + r.err).find("only a local admin's session"), std::string::npos)
        << r.out << r.err;
  }
  RunResult admin =
      As(*admin_, {"analyze", id, "-c", "setsymbolserver -directory /tmp", "-c", "exit"});
  EXPECT_EQ(admin.exit_code, 0) << admin.out << admin.err;
  EXPECT_NE(admin.out.find("-> Directory: /tmp"), std::string::npos) << admin.out;
}

}  // namespace
}  // namespace clrdiag::testing
