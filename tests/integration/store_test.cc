// The dump store's safety with the real daemon, client and fixtures: modes re-asserted at
// start-up, retention (count, age, size) that never removes a dump in use, the free-space
// preflight, a store that fills up while the runtime writes, and recovery after a SIGKILL in
// the middle of a collection.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <thread>

#include "core/dump/dump_store.h"
#include "core/dump/preflight.h"
#include "core/procfs/procfs.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

// A tmpfs of `size` mounted on a fresh directory, unmounted (lazily) at the end.
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& size) {
    ok_ = ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  std::string operator/(const std::string& name) const { return dir_ / name; }
  uint64_t UsedBytes() const {
    struct statvfs v;
    if (::statvfs(dir_.path().c_str(), &v) != 0) return ~0ull;
    return static_cast<uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize;
  }

 private:
  TempDir dir_{"clrdiag-store-tmpfs"};
  bool ok_ = false;
};

class StoreTest : public ::testing::Test {
 protected:
  // (Re)starts the daemon on `store` (default: a fresh directory) with `yaml` as its config.
  void StartDaemon(const std::string& yaml, const std::string& store = "") {
    if (daemon_) daemon_->Stop();
    if (store_.empty()) store_ = store.empty() ? dir_ / "store" : store;
    std::ofstream(dir_ / "clrdiagd.yaml") << yaml;
    Daemon::Options o;
    o.dump_dir = store_;
    o.extra_args = {"--config", dir_ / "clrdiagd.yaml"};
    daemon_ = std::make_unique<Daemon>(o);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  std::string Collect(pid_t pid, const std::string& type) {
    RunResult r = daemon_->Client({"collect", "-p", std::to_string(pid), "--type", type, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out).value("id", "");
  }
  std::vector<std::string> Ids() {
    RunResult r = daemon_->Client({"dumps", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    for (const auto& d : ParseJson(r.out)) ids.push_back(d["id"]);
    return ids;
  }
  nlohmann::json Info(const std::string& id) {
    for (const auto& d : ParseJson(daemon_->Client({"dumps", "--json"}).out)) {
      if (d["id"] == id) return d;
    }
    return nullptr;
  }
  // Waits until the catalog is exactly `want` (newest first).
  bool WaitForIds(const std::vector<std::string>& want, std::chrono::milliseconds timeout) {
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(100ms)) {
      if (Ids() == want) return true;
    }
    return Ids() == want;
  }
  std::string DumpDir(const std::string& id) { return store_ + "/dumps/" + id; }

  TempDir dir_{"clrdiag-store-test"};
  std::string store_;
  std::unique_ptr<Daemon> daemon_;
};

// An interactive `clrdiag analyze ID` held open by a FIFO on its stdin.
class HeldSession {
 public:
  HeldSession(const Daemon& d, const std::string& id, const TempDir& dir)
      : fifo_(dir / "session.in"), out_(dir / "session.out") {
    ::mkfifo(fifo_.c_str(), 0600);
    fd_ = ::open(fifo_.c_str(), O_RDWR | O_CLOEXEC);
    SpawnOptions o;
    o.stdin_file = fifo_;
    o.stdout_file = out_;
    o.stderr_file = dir / "session.err";
    proc_ = Process::Spawn({BinDir() + "/clrdiag", "--server", d.server(), "analyze", id}, o);
  }
  ~HeldSession() {
    if (fd_ >= 0) ::close(fd_);
  }
  // True once the session answered a command (the dump is open, the pin taken).
  bool Opened(std::chrono::milliseconds timeout) {
    Send("eeversion");
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(50ms)) {
      if (ReadFile(out_).find("Workstation mode") != std::string::npos) return true;
    }
    return false;
  }
  void Send(const std::string& line) {
    std::string l = line + "\n";
    (void)!::write(fd_, l.data(), l.size());
  }
  std::optional<int> Exit() {
    Send("exit");
    return proc_->Wait(30s);
  }

 private:
  std::string fifo_, out_;
  int fd_ = -1;
  std::unique_ptr<Process> proc_;
};

// Collection temp directories ("clrdiag-<id>", ids hold "-<pid>-") of process `pid` in `dir`.
std::vector<std::string> CollectionTempDirs(const std::string& dir, pid_t pid) {
  std::vector<std::string> out;
  std::string mark = "-" + std::to_string(pid) + "-";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("clrdiag-", 0) == 0 && n.find(mark) != std::string::npos) out.push_back(n);
    }
    ::closedir(d);
  }
  return out;
}

std::string IsoTime(std::time_t t) {
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S.000Z", std::gmtime(&t));
  return buf;
}

TEST_F(StoreTest, ModesAndOwnersAreFixedAtStartUp) {
  StartDaemon("");
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  std::string id = Collect(app->pid(), "Mini");
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(daemon_->Stop(), 0);
  std::string dump = DumpDir(id) + "/dump";
  ASSERT_EQ(::chmod(store_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((store_ + "/dumps").c_str(), 0777), 0);
  ASSERT_EQ(::chmod(DumpDir(id).c_str(), 0750), 0);
  ASSERT_EQ(::chmod(dump.c_str(), 0644), 0);
  ASSERT_EQ(::chown((DumpDir(id) + "/meta.json").c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod((DumpDir(id) + "/meta.json").c_str(), 0666), 0);
  for (const auto& f : FindFiles(store_ + "/runtimes", ".so")) ::chmod(f.c_str(), 0644);

  StartDaemon("");
  EXPECT_EQ(ModeOf(store_), 0700u);
  EXPECT_EQ(ModeOf(store_ + "/dumps"), 0700u);
  EXPECT_EQ(ModeOf(DumpDir(id)), 0700u);
  EXPECT_EQ(ModeOf(dump), 0600u);
  EXPECT_EQ(ModeOf(DumpDir(id) + "/meta.json"), 0600u);
  struct stat st;
  ASSERT_EQ(::stat((DumpDir(id) + "/meta.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  auto libs = FindFiles(store_ + "/runtimes", ".so");
  ASSERT_FALSE(libs.empty());
  for (const auto& f : libs) EXPECT_EQ(ModeOf(f), 0600u) << f;
  std::string log = daemon_->log();
  EXPECT_CONTAINS(log, "store: fixed mode of " + store_ + ": 0755 -> 0700");
  EXPECT_CONTAINS(log, "store: fixed mode of " + dump + ": 0644 -> 0600");
  EXPECT_CONTAINS(log, "store: fixed owner of " + DumpDir(id) + "/meta.json: uid 65534 -> 0");
  // The dump is still whole and listed.
  EXPECT_EQ(Ids(), std::vector<std::string>{id});
}

TEST_F(StoreTest, RetentionByCountAfterEachCollection) {
  StartDaemon("retention: {max_count: 2}\n");
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  std::string a = Collect(app->pid(), "Mini");
  std::string b = Collect(app->pid(), "Mini");
  EXPECT_EQ(Ids(), (std::vector<std::string>{b, a}));
  std::string c = Collect(app->pid(), "Mini");
  EXPECT_EQ(Ids(), (std::vector<std::string>{c, b}));
  EXPECT_FALSE(FileExists(DumpDir(a)));
  EXPECT_CONTAINS(daemon_->log(), "retention: removed dump " + a);
  EXPECT_CONTAINS(daemon_->log(), "more than retention.max_count 2");
}

TEST_F(StoreTest, RetentionByAgeAndSizeAtStartUp) {
  StartDaemon("");
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  std::string old_one = Collect(app->pid(), "Mini");
  std::string a = Collect(app->pid(), "Mini");
  std::string b = Collect(app->pid(), "Mini");
  ASSERT_EQ(daemon_->Stop(), 0);
  // meta.json keeps the times as ISO 8601 UTC strings ("finished" is what age is measured
  // from): make the first dump ten days old.
  std::string meta_path = DumpDir(old_one) + "/meta.json";
  auto meta = ParseJson(ReadFile(meta_path));
  std::time_t ten_days_ago = std::time(nullptr) - 10 * 86400;
  meta["started"] = IsoTime(ten_days_ago - 1);
  meta["finished"] = IsoTime(ten_days_ago);
  { std::ofstream(meta_path) << meta.dump(2); }

  StartDaemon("retention: {max_age: 7d}\n");
  EXPECT_EQ(Ids(), (std::vector<std::string>{b, a}));
  EXPECT_CONTAINS(daemon_->log(), "retention: removed dump " + old_one);
  EXPECT_CONTAINS(daemon_->log(), "older than retention.max_age 7d 0h (finished 10d 0h ago)");

  // Size: a limit that holds one of the two dumps but not both.
  uint64_t size_a = Info(a)["size_bytes"], size_b = Info(b)["size_bytes"];
  uint64_t limit_mib = (std::max(size_a, size_b) >> 20) + 1;
  ASSERT_LT(limit_mib << 20, size_a + size_b);
  StartDaemon("retention: {max_total_mib: " + std::to_string(limit_mib) + "}\n");
  EXPECT_EQ(Ids(), std::vector<std::string>{b});
  EXPECT_CONTAINS(daemon_->log(), "retention: removed dump " + a);
  EXPECT_CONTAINS(daemon_->log(), "more than retention.max_total_mib");
}

// A daemon that collects nothing still lets dumps go once they pass max_age.
TEST_F(StoreTest, RetentionByAgeWhileIdle) {
  StartDaemon("retention: {max_age: 4s, check_interval: 1s}\n");
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  std::string id = Collect(app->pid(), "Mini");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Ids(), std::vector<std::string>{id});  // young: kept
  bool gone = false;
  for (auto end = std::chrono::steady_clock::now() + 20s;
       !gone && std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(250ms)) {
    gone = Ids().empty();
  }
  EXPECT_TRUE(gone) << "a dump older than max_age stayed in the catalog";
  EXPECT_FALSE(FileExists(DumpDir(id)));
  EXPECT_CONTAINS(daemon_->log(), "retention: removed dump " + id);
}

TEST_F(StoreTest, RetentionNeverRemovesADumpInUse) {
  StartDaemon("retention: {max_count: 1}\n");
  auto app = StartFixture("HeapApp", {"1000", "100"});
  ASSERT_TRUE(app);
  const pid_t pid = app->pid();

  // An analysis session holds the dump.
  std::string a = Collect(pid, "Mini");
  HeldSession session(*daemon_, a, dir_);
  ASSERT_TRUE(session.Opened(60s)) << ReadFile(dir_ / "session.err");
  std::string b = Collect(pid, "Mini");
  EXPECT_EQ(Ids(), (std::vector<std::string>{b, a}));
  EXPECT_CONTAINS(daemon_->log(), "retention: kept " + a);
  RunResult rm = daemon_->Client({"rm", a});
  EXPECT_EQ(rm.exit_code, 7) << rm.err;
  EXPECT_CONTAINS(rm.err, "dump " + a + " is in use by an analysis session");
  EXPECT_CONTAINS(rm.err, "clrdiag sessions --close");
  // When the session ends, retention catches up.
  EXPECT_EQ(session.Exit(), 0);
  EXPECT_TRUE(WaitForIds({b}, 10s));

  // A download holds the dump: a Full dump (~300 MB) is much larger than what gRPC and the
  // socket buffer, so a stopped client keeps the server's handler (and its pin) waiting.
  std::string c = Collect(pid, "Full");
  ASSERT_EQ(Ids(), std::vector<std::string>{c});
  std::string dest = dir_ / "c.core";
  SpawnOptions so;
  so.stdout_file = dir_ / "download.out";
  so.stderr_file = dir_ / "download.err";
  auto client = Process::Spawn(
      {BinDir() + "/clrdiag", "--server", daemon_->server(), "download", c, "-o", dest}, so);
  for (int i = 0; i < 5000 && FileSizeOf(dest + ".partial") == 0; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(client->Signal(SIGSTOP));
  uint64_t got = FileSizeOf(dest + ".partial");
  ASSERT_GT(got, 0u) << "the download did not start";
  ASSERT_LT(got, static_cast<uint64_t>(Info(c)["size_bytes"])) << "the download finished before "
                                                                  "it could be stopped";
  std::string d = Collect(pid, "Mini");
  EXPECT_EQ(Ids(), (std::vector<std::string>{d, c}));
  RunResult rm2 = daemon_->Client({"rm", c});
  EXPECT_EQ(rm2.exit_code, 7) << rm2.err;
  EXPECT_CONTAINS(rm2.err, "is in use by a download");
  ASSERT_TRUE(client->Signal(SIGCONT));
  EXPECT_EQ(client->Wait(120s), 0) << ReadFile(dir_ / "download.err");
  EXPECT_CONTAINS(ReadFile(dir_ / "download.out"), "sha256 verified");
  EXPECT_TRUE(WaitForIds({d}, 10s));
  EXPECT_CONTAINS(daemon_->log(), "retention: removed dump " + c);
}

TEST_F(StoreTest, EstimateMatchesRealDumps) {
  StartDaemon("");
  auto app = StartFixture("HeapApp", {"10000", "50"});
  ASSERT_TRUE(app);
  procfs::ProcFs fs("/proc");
  for (auto kind : {dump::DumpKind::kFull, dump::DumpKind::kHeap}) {
    auto maps = fs.ReadMaps(app->pid());
    ASSERT_TRUE(maps.ok());
    double estimate = static_cast<double>(dump::EstimateDumpBytes(*maps, kind));
    std::string type(dump::DumpKindName(kind));
    std::string id = Collect(app->pid(), type);
    double real = Info(id)["size_bytes"];
    // Measured: Full 0.996 (the estimate is the mapped size plus 1 MiB for headers), Heap
    // 0.986. An estimate below the real size would let a dump start that cannot finish.
    EXPECT_GT(real / estimate, kind == dump::DumpKind::kFull ? 0.98 : 0.90) << type;
    EXPECT_LT(real / estimate, 1.01) << type;
    std::printf("%s dump: %.0f bytes, estimate %.0f, ratio %.4f\n", type.c_str(), real, estimate,
                real / estimate);
  }
}

TEST_F(StoreTest, PreflightRefusesWhatDoesNotFit) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs and needs root (CI is root)";
  Tmpfs small("64m");
  ASSERT_TRUE(small.ok());
  StartDaemon("", small / "store");
  auto app = StartFixture("HeapApp", {"10000", "50"});
  ASSERT_TRUE(app);
  for (const char* type : {"Full", "Heap"}) {
    RunResult r = daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", type});
    EXPECT_EQ(r.exit_code, 6) << r.err;
    EXPECT_CONTAINS(r.err, std::string("not enough space for a ") + type + " dump of process " +
                               std::to_string(app->pid()));
    EXPECT_CONTAINS(r.err, "the dump store " + store_ + " has 64 MiB free");
    EXPECT_CONTAINS(r.err, "--type Mini");
    EXPECT_CONTAINS(r.err, "another store (dump_dir");
  }
  // Refused before anything was made: no partial, no temp directory in the target.
  EXPECT_TRUE(Ids().empty());
  EXPECT_TRUE(FindFiles(store_, ".partial").empty());
  EXPECT_TRUE(FindFiles(store_ + "/dumps", "").empty());
  EXPECT_TRUE(CollectionTempDirs("/tmp", app->pid()).empty());
  std::string mini = Collect(app->pid(), "Mini");
  EXPECT_EQ(Ids(), std::vector<std::string>{mini});
}

TEST_F(StoreTest, StoreFillsUpWhileTheRuntimeWrites) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs and needs root (CI is root)";
  // The target's temp directory on the store's own small filesystem: the runtime writes the
  // dump there and meets the full disk itself (past the preflight, which is switched off).
  Tmpfs small("64m");
  ASSERT_TRUE(small.ok());
  ASSERT_EQ(::mkdir((small / "apptmp").c_str(), 0777), 0);
  StartDaemon("store: {preflight: false}\n", small / "store");
  SpawnOptions so;
  so.env["TMPDIR"] = small / "apptmp";
  auto app = StartFixture("HeapApp", {"10000", "50"}, so);
  ASSERT_TRUE(app);
  uint64_t used_before = small.UsedBytes();
  RunResult r = daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", "Full"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_CONTAINS(r.err, "ran out of space writing the dump in its temp directory " +
                             small / "apptmp" + "/ (the dump store's filesystem)");
  EXPECT_CONTAINS(r.err, "nothing was kept");
  EXPECT_CONTAINS(r.err, "No space left on device");
  EXPECT_TRUE(Ids().empty());
  EXPECT_TRUE(FindFiles(store_, ".partial").empty());
  EXPECT_TRUE(FindFiles(store_ + "/dumps", "").empty());
  EXPECT_TRUE(CollectionTempDirs(small / "apptmp", app->pid()).empty());
  EXPECT_LT(small.UsedBytes(), used_before + (1 << 20));  // the space is back
  std::string mini = Collect(app->pid(), "Mini");
  EXPECT_EQ(Ids(), std::vector<std::string>{mini});
  RemoveDiagnosticSockets(small / "apptmp", app->pid());
}

TEST_F(StoreTest, CatalogIsReconciledWithTheFilesAtStartUp) {
  StartDaemon("");
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  std::string no_meta = Collect(app->pid(), "Mini");
  std::string no_dump = Collect(app->pid(), "Mini");
  nlohmann::json before = Info(no_meta);
  ASSERT_EQ(daemon_->Stop(), 0);
  ASSERT_EQ(::unlink((DumpDir(no_meta) + "/meta.json").c_str()), 0);
  ASSERT_EQ(::unlink((DumpDir(no_dump) + "/dump").c_str()), 0);

  StartDaemon("");
  // Meta without a dump: dropped. A dump without meta: meta rebuilt from the id and the file
  // (same checksum as collected), for admins only since who asked for it is unknown.
  EXPECT_EQ(Ids(), std::vector<std::string>{no_meta});
  EXPECT_FALSE(FileExists(DumpDir(no_dump)));
  nlohmann::json after = Info(no_meta);
  EXPECT_EQ(after["sha256"], before["sha256"]);
  EXPECT_EQ(after["size_bytes"], before["size_bytes"]);
  EXPECT_EQ(after["type"], "Mini");
  EXPECT_EQ(after["pid"], app->pid());
  EXPECT_EQ(after["process_name"], before["process_name"]);
  EXPECT_EQ(after["requested_by_uid"], 0);
  std::string log = daemon_->log();
  EXPECT_CONTAINS(log, "dropped catalog entry " + no_dump + ": its dump file is missing");
  EXPECT_CONTAINS(log, "rebuilt the missing or unreadable meta.json of dump " + no_meta);
  // The rebuilt dump downloads and verifies.
  RunResult dl = daemon_->Client({"download", no_meta, "-o", dir_ / "x.core"});
  EXPECT_EQ(dl.exit_code, 0) << dl.err;
}

TEST_F(StoreTest, SigkillDuringACollectionIsRepairedAtRestart) {
  ASSERT_EQ(::geteuid(), 0u) << "this test mounts a tmpfs and needs root (CI is root)";
  // The store on its own filesystem, so the daemon copies the dump into <id>.partial/dump
  // while the runtime writes it in the target's /tmp.
  Tmpfs fs("2g");
  ASSERT_TRUE(fs.ok());
  StartDaemon("", fs / "store");
  auto app = StartFixture("HeapApp", {"1000", "150"});
  ASSERT_TRUE(app);
  std::string kept = Collect(app->pid(), "Mini");
  TempDir out;
  SpawnOptions so;
  so.stdout_file = out / "collect.out";
  so.stderr_file = out / "collect.err";
  auto client = Process::Spawn({BinDir() + "/clrdiag", "--server", daemon_->server(), "collect",
                                "-p", std::to_string(app->pid()), "--type", "Full"},
                               so);
  std::string partial;
  for (int i = 0; i < 3000 && partial.empty(); ++i) {
    for (const auto& f : FindFiles(store_ + "/dumps", "dump")) {
      if (f.find(".partial/") != std::string::npos && FileSizeOf(f) > 0) partial = f;
    }
    if (partial.empty()) std::this_thread::sleep_for(5ms);
  }
  ASSERT_FALSE(partial.empty()) << "no partial dump appeared\n" << daemon_->log();
  daemon_->Kill();
  std::string staging = partial.substr(0, partial.rfind('/'));
  std::string id = staging.substr(staging.rfind('/') + 1);
  id = id.substr(0, id.size() - std::string(".partial").size());
  std::string target_tmp = "/tmp/clrdiag-" + id;
  EXPECT_TRUE(FileExists(staging));
  EXPECT_TRUE(FileExists(target_tmp));
  EXPECT_NE(client->Wait(30s), 0);
  EXPECT_CONTAINS(ReadFile(out / "collect.err"), "clrdiag:");

  StartDaemon("");  // the same store
  EXPECT_FALSE(FileExists(staging));
  EXPECT_TRUE(FindFiles(store_, ".partial").empty());
  EXPECT_FALSE(FileExists(target_tmp));
  EXPECT_EQ(Ids(), std::vector<std::string>{kept});
  std::string log = daemon_->log();
  EXPECT_CONTAINS(log, "interrupted collection " + id + ": removed its temp directory " +
                           target_tmp + " in process " + std::to_string(app->pid()));
  EXPECT_CONTAINS(log, "store: removed " + staging);
  // The store works as before.
  std::string again = Collect(app->pid(), "Mini");
  EXPECT_EQ(Ids(), (std::vector<std::string>{again, kept}));
}

}  // namespace
}  // namespace clrdiag::testing
