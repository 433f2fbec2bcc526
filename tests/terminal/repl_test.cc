// The `analyze` prompt as a person uses it, driven through a real terminal (tmux): tab
// completion, history with the Up arrow, a progress line, Ctrl-C that cancels a long command
// and keeps the session, and Ctrl-C at the prompt that ends it.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

// A tmux server of our own (-L with a unique name): the test starts it and kills only it.
class Tmux {
 public:
  Tmux() : name_("clrdiag-test-" + std::to_string(::getpid())) {}
  ~Tmux() { Run({"kill-server"}); }
  RunResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/tmux", "-L", name_});
    return RunCommand(args);
  }
  bool Start(const std::string& shell_command) {
    RunResult r = Run({"new-session", "-d", "-s", "t", "-x", "160", "-y", "50", shell_command});
    if (r.exit_code != 0) ADD_FAILURE() << "tmux: " << r.out << r.err;
    return r.exit_code == 0;
  }
  void Keys(const std::vector<std::string>& keys) {
    std::vector<std::string> a = {"send-keys", "-t", "t"};
    a.insert(a.end(), keys.begin(), keys.end());
    Run(a);
  }
  void Type(const std::string& text) { Keys({"-l", text}); }
  // The visible screen without trailing blanks and empty lines (the prompt "> " reads ">").
  std::string Screen() {
    std::string s = Run({"capture-pane", "-p", "-t", "t"}).out;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
  }
  std::string History() { return Run({"capture-pane", "-p", "-t", "t", "-S", "-100000"}).out; }
  // Polls the screen (and its scrollback) until `re` matches, up to `timeout`.
  bool WaitFor(const std::string& re, std::chrono::milliseconds timeout, bool scrollback = false) {
    std::regex r(re);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::regex_search(scrollback ? History() : Screen(), r)) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

 private:
  std::string name_;
};

TEST(ReplTest, CompletionHistoryProgressAndCtrlC) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  // Big enough that a heap walk takes a while (several million objects).
  auto app = StartFixture("HeapApp", {"3000", "--objects", "3000000"});
  ASSERT_TRUE(app);
  RunResult c =
      daemon.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = ParseJson(c.out)["id"];
  app.reset();

  TempDir home;
  Tmux tmux;
  // The shell traps SIGINT (a handler, not "ignore", so the client gets the default back) so
  // that it survives the Ctrl-C we send to the client, and reports the client's exit code.
  std::string cmd = "bash -c 'trap : INT; HOME=" + home.path() + " " + BinDir() +
                    "/clrdiag --server " + daemon.server() + " analyze " + id +
                    "; echo CLIENT-EXITED rc=$?; sleep 600'";
  ASSERT_TRUE(tmux.Start(cmd));
  // Everything written to the terminal, transient lines included (the progress line is erased
  // once the command ends, possibly before a screen capture could see it).
  std::string raw = home / "terminal.raw";
  tmux.Run({"pipe-pane", "-t", "t", "cat >> " + raw});
  ASSERT_TRUE(tmux.WaitFor("\n>$", 30s)) << tmux.Screen();

  // Tab completes a command name.
  tmux.Type("eevers");
  tmux.Keys({"Tab"});
  ASSERT_TRUE(tmux.WaitFor("> eeversion", 5s)) << tmux.Screen();
  tmux.Keys({"Enter"});
  ASSERT_TRUE(tmux.WaitFor("Workstation mode\n", 10s)) << tmux.Screen();

  // A long listing, cancelled with Ctrl-C: the command stops within a second, the prompt
  // comes back.
  tmux.Type("dumpheap");
  tmux.Keys({"Enter"});
  ASSERT_TRUE(tmux.WaitFor("[0-9a-f]{12} +[0-9a-f]{12} +[0-9]+ *\n", 20s)) << tmux.Screen();
  auto t0 = std::chrono::steady_clock::now();
  tmux.Keys({"C-c"});
  ASSERT_TRUE(tmux.WaitFor("cancelled\n>$", 10s)) << tmux.Screen();
  auto cancel_time = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(cancel_time, 1500ms) << "Ctrl-C took too long to stop the command";
  EXPECT_FALSE(tmux.WaitFor("Total [0-9,]+ objects", 100ms, true))
      << "the cancelled listing ran to its end";

  // Tab completes an option; the same session still works; a progress line shows while the
  // heap is walked, then goes away.
  tmux.Type("dumpheap -sta");  // "-st" is also the start of -strings
  tmux.Keys({"Tab"});
  ASSERT_TRUE(tmux.WaitFor("> dumpheap -stat", 5s)) << tmux.Screen();
  tmux.Keys({"Enter"});
  ASSERT_TRUE(tmux.WaitFor("Total 6,0[0-9,]+ objects, [0-9,]+ bytes\n>$", 60s)) << tmux.Screen();
  bool saw_progress =
      std::regex_search(ReadFile(raw), std::regex("walking the heap: [0-9]+%, [0-9,]+ objects"));
  EXPECT_TRUE(saw_progress) << "no progress line while the heap was walked";
  EXPECT_EQ(tmux.Screen().find("walking the heap"), std::string::npos)
      << "the progress line was not erased:\n"
      << tmux.Screen();

  // History: Up recalls the last command.
  tmux.Keys({"Up"});
  ASSERT_TRUE(tmux.WaitFor("> dumpheap -stat$", 5s)) << tmux.Screen();
  tmux.Keys({"C-u"});  // clear the line

  // Ctrl-C at the prompt ends the session cleanly.
  tmux.Keys({"C-c"});
  ASSERT_TRUE(tmux.WaitFor("CLIENT-EXITED rc=0", 10s)) << tmux.Screen();

  // The history file survived, with the lines typed.
  std::ifstream hist(home / ".clrdiag_history");
  std::stringstream h;
  h << hist.rdbuf();
  EXPECT_CONTAINS(h.str(), "eeversion");
  EXPECT_CONTAINS(h.str(), "dumpheap");
}

TEST(ReplTest, LogOpenWritesTheSessionToAFileAndNothingOfProgressReachesStdout) {
  Daemon daemon;
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  auto app = StartFixture("HeapApp", {"500"});
  ASSERT_TRUE(app);
  RunResult c =
      daemon.Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = ParseJson(c.out)["id"];
  TempDir t;
  std::string log = t / "session.log";
  RunResult r = daemon.Client({"analyze", id, "-c", "eeversion", "-c", "logopen " + log, "-c",
                               "dumpheap -stat", "-c", "logclose", "-c", "clrthreads", "-c",
                               "logclose", "-c", "logopen /nonexistent-dir/x.log", "-c", "exit"});
  EXPECT_EQ(r.exit_code, 1) << "the failed logopen must make the exit code 1";
  EXPECT_CONTAINS(r.err, "cannot open /nonexistent-dir/x.log");
  EXPECT_CONTAINS(r.out, "Console is logging to " + log);
  EXPECT_CONTAINS(r.out, "Console logging was not enabled");
  EXPECT_EQ(r.out.find("walking the heap"), std::string::npos);
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  // Only what ran between logopen and logclose.
  EXPECT_CONTAINS(s.str(), "Fixture.Customer\n");
  EXPECT_CONTAINS(s.str(), "Console logging to " + log + " is closed");
  EXPECT_EQ(s.str().find("ThreadCount:"), std::string::npos);
  EXPECT_EQ(s.str().find("Workstation mode"), std::string::npos);
}

}  // namespace
}  // namespace clrdiag::testing
