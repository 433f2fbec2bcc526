#include "core/ipc/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "tests/fakes/fake_diag_server.h"

namespace clrdiag::ipc {
namespace {

using ::clrdiag::testing::Behavior;
using ::clrdiag::testing::FakeDiagServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr auto kProcess = static_cast<uint8_t>(CommandSet::kProcess);
constexpr auto kDump = static_cast<uint8_t>(CommandSet::kDump);
const absl::Duration kTimeout = absl::Seconds(10);

std::vector<uint8_t> ProcessInfoPayload(int version) {
  PayloadWriter w;
  if (version == 3) w.U32(1);
  w.U64(77);
  for (int i = 0; i < 8; ++i) w.U16(static_cast<uint16_t>(0x0101 * i));
  w.String("/usr/bin/dotnet app.dll");
  w.String("Linux");
  w.String("arm64");
  if (version >= 2) {
    w.String("App");
    w.String("9.0.1");
  }
  if (version == 3) w.String("linux-arm64");
  return w.bytes();
}

std::vector<uint8_t> Frame(uint8_t set, uint8_t id, const std::vector<uint8_t>& payload) {
  return *EncodeMessage(set, id, payload);
}

std::vector<uint8_t> Ids(const std::vector<testing::RecordedRequest>& requests) {
  std::vector<uint8_t> ids;
  ids.reserve(requests.size());
  for (const auto& r : requests) ids.push_back(r.command_id);
  return ids;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

class IpcClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/clrdiag_ipc_test.XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    socket_path_ = dir_ + "/diag.sock";
  }
  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  FakeDiagServer& StartServer(const std::string& path) {
    auto server = FakeDiagServer::Start(path);
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    return *server_;
  }
  FakeDiagServer& StartServer() { return StartServer(socket_path_); }

  DumpRequest Request(uint32_t flags = 0) {
    return DumpRequest{.path = "/tmp/core.77", .type = DumpType::kWithHeap, .flags = flags};
  }

  std::string dir_;
  std::string socket_path_;
  std::unique_ptr<FakeDiagServer> server_;
};

// ---- ProcessInfo --------------------------------------------------------------------

TEST_F(IpcClientTest, ProcessInfo3Answered) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Ok(ProcessInfoPayload(3)));
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 3);
  EXPECT_EQ(info->pid, 77u);
  EXPECT_EQ(info->arch, "arm64");
  EXPECT_EQ(info->runtime_version, "9.0.1");
  EXPECT_EQ(info->runtime_id, "linux-arm64");
  const auto requests = s.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].command_set, kProcess);
  EXPECT_EQ(requests[0].command_id, process_cmd::kProcessInfo3);
  EXPECT_THAT(requests[0].payload, IsEmpty());
}

TEST_F(IpcClientTest, ProcessInfoFallsBackThreeTwoOne) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::UnknownCommand());
  s.Set(kProcess, process_cmd::kProcessInfo2, Behavior::UnknownCommand());
  s.Set(kProcess, process_cmd::kProcessInfo, Behavior::Ok(ProcessInfoPayload(1)));
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 1);
  EXPECT_EQ(info->command_line, "/usr/bin/dotnet app.dll");
  EXPECT_EQ(info->runtime_version, "");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x08, 0x04, 0x00));
  EXPECT_EQ(s.connections(), 3) << "each attempt needs its own connection";
}

TEST_F(IpcClientTest, ProcessInfoFallsBackToTwo) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::UnknownCommand());
  s.Set(kProcess, process_cmd::kProcessInfo2, Behavior::Ok(ProcessInfoPayload(2)));
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 2);
  EXPECT_EQ(info->entry_assembly, "App");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x08, 0x04));
}

TEST_F(IpcClientTest, ProcessInfoOtherErrorDoesNotFallBack) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Error(hresult::kFail));
  s.Set(kProcess, process_cmd::kProcessInfo2, Behavior::Ok(ProcessInfoPayload(2)));
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  EXPECT_FALSE(info.ok());
  EXPECT_THAT(Msg(info.status()), HasSubstr("0x80004005"));
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x08));
}

TEST_F(IpcClientTest, ProcessInfoAllUnknownIsUnimplemented) {
  FakeDiagServer& s = StartServer();  // unscripted commands answer UNKNOWN_COMMAND
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Msg(info.status()), HasSubstr("Command is not supported"));
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x08, 0x04, 0x00));
}

TEST_F(IpcClientTest, ProcessInfoTruncatedPayloadIsDataLoss) {
  FakeDiagServer& s = StartServer();
  std::vector<uint8_t> payload = ProcessInfoPayload(3);
  payload.resize(payload.size() - 3);
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Ok(payload));
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(IpcClientTest, ProcessInfoErrorWithHresultZeroIsAFailure) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Error(0));
  EXPECT_FALSE(QueryProcessInfo(socket_path_, kTimeout).ok());
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x08));
}

// ---- GenerateCoreDump ---------------------------------------------------------------

TEST_F(IpcClientTest, DumpV3Succeeds) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::OkHresult());
  const DumpRequest req = Request(dump_flags::kCrashReport | dump_flags::kLoggingEnabled);
  ASSERT_TRUE(GenerateCoreDump(socket_path_, req).ok());
  const auto requests = s.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].command_set, kDump);
  EXPECT_EQ(requests[0].command_id, dump_cmd::kGenerateCoreDump3);
  EXPECT_EQ(requests[0].payload, EncodeDumpRequestPayload(req.path, req.type, 0x05));
}

TEST_F(IpcClientTest, DumpFallsBackThreeTwoOneOnUnknownCommand) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::UnknownCommand());
  s.Set(kDump, dump_cmd::kGenerateCoreDump2, Behavior::UnknownCommand());
  s.Set(kDump, dump_cmd::kGenerateCoreDump, Behavior::OkHresult());
  const DumpRequest req = Request(dump_flags::kLoggingEnabled);
  ASSERT_TRUE(GenerateCoreDump(socket_path_, req).ok());
  const auto requests = s.requests();
  EXPECT_THAT(Ids(requests), ElementsAre(0x03, 0x02, 0x01));
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].payload, EncodeDumpRequestPayload(req.path, req.type, 0x01));
  // v1's third field is the "diagnostics" boolean.
  EXPECT_EQ(requests[2].payload, EncodeDumpRequestPayload(req.path, req.type, 1));
  EXPECT_EQ(s.connections(), 3);
}

TEST_F(IpcClientTest, DumpV1WithoutLoggingSendsZero) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump, Behavior::OkHresult());
  ASSERT_TRUE(GenerateCoreDump(socket_path_, Request()).ok());
  const auto requests = s.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].payload, EncodeDumpRequestPayload("/tmp/core.77", DumpType::kWithHeap, 0));
}

TEST_F(IpcClientTest, DumpV1CannotCarryCrashReport) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump, Behavior::OkHresult());
  absl::Status st = GenerateCoreDump(socket_path_, Request(dump_flags::kCrashReport));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("v1"));
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03, 0x02)) << "v1 must not be sent";
}

TEST_F(IpcClientTest, DumpOtherErrorDoesNotFallBack) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::Error(hresult::kFail));
  s.Set(kDump, dump_cmd::kGenerateCoreDump2, Behavior::OkHresult());
  s.Set(kDump, dump_cmd::kGenerateCoreDump, Behavior::OkHresult());
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Msg(st), "Write dump failed - HRESULT: 0x80004005.");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03));
}

TEST_F(IpcClientTest, DumpErrorAfterFallbackIsReported) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::UnknownCommand());
  s.Set(kDump, dump_cmd::kGenerateCoreDump2, Behavior::Error(hresult::kFail));
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_EQ(Msg(st), "Write dump failed - HRESULT: 0x80004005.");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03, 0x02));
}

TEST_F(IpcClientTest, DumpV3ErrorTextReachesStatus) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3,
        Behavior::ErrorWithMessage(
            hresult::kFail,
            "[createdump] Problem suspending threads: ptrace(ATTACH, 1) FAILED Operation not "
            "permitted (1)\n[createdump] Failure took 3ms\n \t"));
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Msg(st),
            "[createdump] Problem suspending threads: ptrace(ATTACH, 1) FAILED Operation not "
            "permitted (1)\n[createdump] Failure took 3ms");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03));
}

TEST_F(IpcClientTest, DumpV3NonAsciiErrorText) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3,
        Behavior::ErrorWithMessage(hresult::kFail, "Zugriff verweigert: /tmp/d\xC3\xBCmp"));
  EXPECT_EQ(Msg(GenerateCoreDump(socket_path_, Request())), "Zugriff verweigert: /tmp/d\xC3\xBCmp");
}

TEST_F(IpcClientTest, DumpV3EmptyErrorTextFallsBackToHresult) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::ErrorWithMessage(hresult::kFail, "  \n"));
  EXPECT_EQ(Msg(GenerateCoreDump(socket_path_, Request())),
            "Write dump failed - HRESULT: 0x80004005.");
}

TEST_F(IpcClientTest, DumpErrorWithHresultZeroIsAFailure) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::Error(0));
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Msg(st), "Write dump failed - HRESULT: 0x00000000.");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03));
}

TEST_F(IpcClientTest, DumpErrorWordingFollowsDotnetDump) {
  struct Case {
    Behavior behavior;
    absl::StatusCode code;
    std::string text;
  };
  const std::vector<Case> cases = {
      {Behavior::Error(hresult::kInvalidArg), absl::StatusCode::kInvalidArgument,
       "Write dump failed - Invalid command argument."},
      {Behavior::Error(hresult::kNotSupported), absl::StatusCode::kUnimplemented,
       "Write dump - Not supported by this runtime."},
      {Behavior::ErrorWithMessage(hresult::kNotSupported, ""), absl::StatusCode::kUnimplemented,
       "Write dump failed - HRESULT: 0x80131515."},
      {Behavior::Error(hresult::kBadEncoding), absl::StatusCode::kInvalidArgument,
       "Write dump failed - the target runtime rejected the request as invalid (bad "
       "encoding)."},
  };
  FakeDiagServer& s = StartServer();
  for (const Case& c : cases) {
    s.Set(kDump, dump_cmd::kGenerateCoreDump3, c.behavior);
    absl::Status st = GenerateCoreDump(socket_path_, Request());
    EXPECT_EQ(st.code(), c.code) << c.text;
    EXPECT_EQ(Msg(st), c.text);
  }
}

TEST_F(IpcClientTest, DumpUnknownCommandEverywhere) {
  FakeDiagServer& s = StartServer();
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Msg(st), "Write dump failed - Command is not supported.");
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03, 0x02, 0x01));
}

// ---- Broken replies -----------------------------------------------------------------

TEST_F(IpcClientTest, ConnectionClosedWithoutReply) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::CloseNoReply());
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(st), HasSubstr("the runtime closed the connection before replying (did the "
                                 "process exit?)"));
  EXPECT_THAT(Ids(s.requests()), ElementsAre(0x03)) << "a closed connection is no fallback";
}

TEST_F(IpcClientTest, ConnectionClosedMidReply) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::CloseMidReply());
  absl::Status st = GenerateCoreDump(socket_path_, Request());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(st), HasSubstr("closed the connection before replying"));
}

TEST_F(IpcClientTest, MalformedReplyHeader) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::MalformedHeader());
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(info.status()), HasSubstr("magic"));
}

TEST_F(IpcClientTest, OversizedSizeFieldThenClose) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::OversizedSize());
  auto info = QueryProcessInfo(socket_path_, kTimeout);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(IpcClientTest, SizeSmallerThanHeader) {
  FakeDiagServer& s = StartServer();
  std::vector<uint8_t> frame = Frame(0xFF, 0x00, {});
  frame[14] = 19;
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Raw(frame));
  EXPECT_EQ(QueryProcessInfo(socket_path_, kTimeout).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(IpcClientTest, ReplyMustComeFromServerCommandSet) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3,
        Behavior::Raw(Frame(kProcess, 0x00, ProcessInfoPayload(3))));
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::Raw(Frame(0xFF, 0x42, {0, 0, 0, 0})));
  EXPECT_EQ(QueryProcessInfo(socket_path_, kTimeout).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(GenerateCoreDump(socket_path_, Request()).code(), absl::StatusCode::kDataLoss);
}

TEST_F(IpcClientTest, ErrorReplyTooShort) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::Raw(Frame(0xFF, 0xFF, {0x05, 0x40})));
  EXPECT_EQ(GenerateCoreDump(socket_path_, Request()).code(), absl::StatusCode::kDataLoss);
}

TEST_F(IpcClientTest, ReceiveDeadline) {
  FakeDiagServer& s = StartServer();
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Hang());
  const absl::Time start = absl::Now();
  auto info = QueryProcessInfo(socket_path_, absl::Milliseconds(200));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(info.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(IpcClientTest, ConnectionReceiveDeadline) {
  FakeDiagServer& s = StartServer();
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::Hang());
  auto conn = Connection::Connect(socket_path_, kTimeout);
  ASSERT_TRUE(conn.ok()) << conn.status();
  ASSERT_TRUE(conn->Send(Frame(kDump, 0x03, EncodeDumpRequestPayload("/x", DumpType::kFull, 0)),
                         absl::Now() + kTimeout)
                  .ok());
  auto msg = conn->Receive(absl::Now() + absl::Milliseconds(100));
  EXPECT_EQ(msg.status().code(), absl::StatusCode::kDeadlineExceeded);
}

// ---- Receive framing over a socketpair ----------------------------------------------

TEST(ConnectionTest, ReceivesExactlyOneMessageAtATime) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd peer(fds[1]);
  Connection conn{UniqueFd(fds[0])};
  std::vector<uint8_t> both = Frame(0xFF, 0x00, {1, 2, 3});
  const std::vector<uint8_t> second = Frame(0xFF, 0xFF, {0x05, 0x40, 0x00, 0x80});
  both.insert(both.end(), second.begin(), second.end());
  // Dribble the bytes in from another thread to exercise partial reads.
  std::thread writer([&] {
    for (uint8_t b : both) {
      ASSERT_EQ(::write(peer.get(), &b, 1), 1);
      if (b == 'I') absl::SleepFor(absl::Milliseconds(5));
    }
  });
  auto first = conn.Receive(absl::Now() + kTimeout);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->header.command_id, 0x00);
  EXPECT_THAT(first->payload, ElementsAre(1, 2, 3));
  auto next = conn.Receive(absl::Now() + kTimeout);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->header.command_id, 0xFF);
  EXPECT_THAT(next->payload, ElementsAre(0x05, 0x40, 0x00, 0x80));
  writer.join();
  peer.Reset();
  EXPECT_EQ(conn.Receive(absl::Now() + kTimeout).status().code(), absl::StatusCode::kUnavailable);
}

TEST(ConnectionTest, PeerClosesInsidePayload) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd peer(fds[1]);
  Connection conn{UniqueFd(fds[0])};
  std::vector<uint8_t> frame = Frame(0xFF, 0x00, {1, 2, 3, 4, 5, 6});
  frame.resize(frame.size() - 2);
  ASSERT_EQ(::write(peer.get(), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  peer.Reset();
  auto msg = conn.Receive(absl::Now() + kTimeout);
  EXPECT_EQ(msg.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(msg.status()), HasSubstr("did the process exit?"));
}

TEST(ConnectionTest, SendToClosedPeerIsUnavailable) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  ::close(fds[1]);
  Connection conn{UniqueFd(fds[0])};
  // No SIGPIPE may kill the test.
  EXPECT_EQ(conn.Send(Frame(kProcess, 0x08, {}), absl::Now() + kTimeout).code(),
            absl::StatusCode::kUnavailable);
}

// ---- Connecting ---------------------------------------------------------------------

TEST_F(IpcClientTest, StaleSocketIsUnavailable) {
  {
    auto listener = testing::ListenUnix(socket_path_);
    ASSERT_TRUE(listener.ok()) << listener.status();
  }  // closed, the file stays: what a SIGKILLed runtime leaves behind
  ASSERT_TRUE(std::filesystem::exists(socket_path_));
  auto conn = Connection::Connect(socket_path_, kTimeout);
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(conn.status()), HasSubstr("stale socket"));
  EXPECT_EQ(QueryProcessInfo(socket_path_, kTimeout).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(GenerateCoreDump(socket_path_, Request()).code(), absl::StatusCode::kUnavailable);
}

TEST_F(IpcClientTest, MissingSocketIsNotFound) {
  auto conn = Connection::Connect(socket_path_, kTimeout);
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(conn.status()), HasSubstr(socket_path_));
}

std::string LongDirUnder(const std::string& base) {
  std::string dir = base;
  for (int i = 0; i < 4; ++i) {
    dir += "/" + std::string(40, static_cast<char>('a' + i));
    std::filesystem::create_directory(dir);
  }
  return dir;
}

TEST_F(IpcClientTest, LongSocketPathWorks) {
  const std::string path = LongDirUnder(dir_) + "/dotnet-diagnostic-4242-123456789-socket";
  ASSERT_GT(path.size(), 107u);
  FakeDiagServer& s = StartServer(path);
  s.Set(kProcess, process_cmd::kProcessInfo3, Behavior::Ok(ProcessInfoPayload(3)));
  s.Set(kDump, dump_cmd::kGenerateCoreDump3, Behavior::OkHresult());
  auto info = QueryProcessInfo(path, kTimeout);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->runtime_id, "linux-arm64");
  EXPECT_TRUE(GenerateCoreDump(path, Request()).ok());
}

TEST_F(IpcClientTest, LongSocketPathErrorsNameTheRealPath) {
  const std::string dir = LongDirUnder(dir_);
  const std::string path = dir + "/dotnet-diagnostic-1-2-socket";
  auto conn = Connection::Connect(path, kTimeout);
  EXPECT_EQ(conn.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(conn.status()), HasSubstr(path));
  auto missing_dir = Connection::Connect(dir + "/nope/" + std::string(30, 'x'), kTimeout);
  EXPECT_EQ(missing_dir.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IpcClientTest, PermissionDeniedExplainsWhoMayConnect) {
  auto listener = testing::ListenUnix(socket_path_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(socket_path_.c_str(), 0600), 0);
  if (::geteuid() != 0) {
    // The owner without write permission is refused too.
    ASSERT_EQ(::chmod(socket_path_.c_str(), 0000), 0);
    auto conn = Connection::Connect(socket_path_, kTimeout);
    EXPECT_EQ(conn.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(Msg(conn.status()), HasSubstr("root or as the target's user"));
    return;
  }
  // As root (which bypasses the mode), try from a child running as nobody. The test process
  // has no other threads here, so the child may use the client freely.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    auto conn = Connection::Connect(socket_path_, kTimeout);
    const bool ok = conn.status().code() == absl::StatusCode::kPermissionDenied &&
                    Msg(conn.status()).find("root or as the target's user") != std::string::npos;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_NE(WEXITSTATUS(status), 3) << "could not drop privileges to test the permission check";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(DescribeHresultTest, KnownAndUnknown) {
  EXPECT_EQ(DescribeHresult(hresult::kUnknownCommand), "Command is not supported");
  EXPECT_EQ(DescribeHresult(hresult::kInvalidArg), "Invalid command argument");
  EXPECT_EQ(DescribeHresult(0x12345678), "unknown HRESULT");
}

}  // namespace
}  // namespace clrdiag::ipc
