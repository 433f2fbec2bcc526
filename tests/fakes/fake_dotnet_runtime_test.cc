// Drives the fake_dotnet_runtime binary with the real IPC client, so integration tests can
// rely on it behaving like a runtime.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/ipc/client.h"

extern char** environ;

namespace clrdiag::ipc {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class FakeRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/clrdiag_fake_rt.XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the fake with TMPDIR=dir_ (no trailing slash, as users often set it) and waits
  // for READY. Returns the socket path the runtime naming rule predicts.
  std::string Start(const std::string& mode) {
    int out[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<std::string> env_strings = {"TMPDIR=" + dir_};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).substr(0, 7) != "TMPDIR=") env_strings.emplace_back(*e);
    }
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string arg0 = FAKE_DOTNET_RUNTIME_PATH, arg1 = "--dump-mode=" + mode, arg2 = "extra arg";
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    EXPECT_EQ(posix_spawn(&pid_, arg0.c_str(), &actions, nullptr, argv, envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    char buf[16] = {};
    const ssize_t n = ::read(out[0], buf, sizeof(buf) - 1);
    ::close(out[0]);
    EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "READY\n");

    std::ifstream stat_file("/proc/" + std::to_string(pid_) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    std::istringstream fields(stat.substr(stat.rfind(')') + 1));
    std::string field;
    for (int i = 3; i <= 22; ++i) fields >> field;
    command_line_ = absl::StrCat(arg0, " ", arg1, " ", arg2);
    return absl::StrCat(dir_, "/dotnet-diagnostic-", pid_, "-", field, "-socket");
  }

  // SIGTERM, then wait; returns the exit status.
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  std::string dir_;
  std::string command_line_;
  pid_t pid_ = -1;
};

DumpRequest Request() { return DumpRequest{.path = "/tmp/none", .type = DumpType::kFull}; }

TEST_F(FakeRuntimeTest, PublishesSocketAndAnswersProcessInfo3) {
  const std::string path = Start("ok");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  auto info = QueryProcessInfo(path, absl::Seconds(10));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 3);
  EXPECT_EQ(info->pid, static_cast<uint64_t>(pid_));
  EXPECT_EQ(info->command_line, command_line_);
  EXPECT_EQ(info->os, "Linux");
  EXPECT_EQ(info->arch, "x64");
  EXPECT_EQ(info->entry_assembly, "FakeApp");
  EXPECT_EQ(info->runtime_version, "10.0.0-fake");
  EXPECT_EQ(info->runtime_id, "linux-x64");
  EXPECT_TRUE(GenerateCoreDump(path, Request()).ok());

  const int status = Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(std::filesystem::exists(path)) << "socket must be removed on SIGTERM";
}

TEST_F(FakeRuntimeTest, DumpErrorV3) {
  const std::string path = Start("error-v3");
  absl::Status st = GenerateCoreDump(path, Request());
  EXPECT_EQ(st.message(), "[createdump] fake failure: ptrace not permitted");
}

TEST_F(FakeRuntimeTest, DumpUnknownCommandFallsBackToV1) {
  const std::string path = Start("unknown-command");
  EXPECT_TRUE(GenerateCoreDump(path, Request()).ok());
}

TEST_F(FakeRuntimeTest, DumpClose) {
  const std::string path = Start("close");
  absl::Status st = GenerateCoreDump(path, Request());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(st.message()), HasSubstr("closed the connection before replying"));
}

TEST_F(FakeRuntimeTest, DumpHresultZero) {
  const std::string path = Start("hresult-zero");
  absl::Status st = GenerateCoreDump(path, Request());
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), StartsWith("Write dump failed - HRESULT: 0x00000000"));
}

}  // namespace
}  // namespace clrdiag::ipc
