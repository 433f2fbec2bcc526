// The listen server against a scripted stand-in for a runtime in connect mode (it connects,
// advertises, serves one command per connection and reconnects, as the runtime does) and
// against peers that are not runtimes at all.
#include "core/listen/listen_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "core/ipc/client.h"
#include "core/ipc/codec.h"

namespace clrdiag::listen {
namespace {

using ::testing::HasSubstr;

UniqueFd ConnectTo(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  return fd;
}

bool WriteAll(int fd, const std::vector<uint8_t>& bytes) {
  return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

bool ReadAll(int fd, uint8_t* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// A runtime in connect mode, reduced to what the server relies on.
class FakeConnectRuntime {
 public:
  FakeConnectRuntime(std::string path, uint64_t pid, uint8_t cookie_byte)
      : path_(std::move(path)), pid_(pid) {
    cookie_.fill(cookie_byte);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeConnectRuntime() { Stop(); }
  // Exits: closes the idle connection and stops reconnecting.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::pair<uint8_t, uint8_t>> commands() {
    std::lock_guard<std::mutex> l(mu_);
    return commands_;
  }
  const Cookie& cookie() const { return cookie_; }

 private:
  void Run() {
    while (!stop_) {
      UniqueFd fd = ConnectTo(path_);
      if (!fd) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (!WriteAll(fd.get(), ipc::EncodeAdvertise({cookie_, pid_}))) continue;
      timeval tv{0, 50 * 1000};
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      uint8_t header[ipc::kHeaderSize];
      bool got = false;
      while (!stop_ && !got) got = ReadAll(fd.get(), header, sizeof(header));
      if (!got) break;
      {
        std::lock_guard<std::mutex> l(mu_);
        commands_.push_back({header[16], header[17]});
      }
      ipc::PayloadWriter w;
      uint8_t id = 0;
      if (header[16] == 0x04 && header[17] == ipc::process_cmd::kProcessInfo2) {
        w.U64(pid_);
        ipc::PayloadWriter rest;
        rest.String("/app/Fake --flag");
        rest.String("Linux");
        rest.String("x64");
        rest.String("Fake");
        rest.String("10.0.1");
        std::vector<uint8_t> p = w.bytes();
        p.insert(p.end(), cookie_.begin(), cookie_.end());
        p.insert(p.end(), rest.bytes().begin(), rest.bytes().end());
        WriteAll(fd.get(), *ipc::EncodeMessage(0xFF, 0x00, p));
        continue;
      }
      if (header[16] == 0x04 && header[17] == ipc::process_cmd::kProcessInfo3) {
        w.U32(ipc::hresult::kUnknownCommand);
        id = 0xFF;
      } else if (header[16] == 0x04 && header[17] == ipc::process_cmd::kResumeRuntime) {
        w.U32(0);
      } else {
        w.U32(ipc::hresult::kUnknownCommand);
        id = 0xFF;
      }
      WriteAll(fd.get(), *ipc::EncodeMessage(0xFF, id, w.bytes()));
    }
  }

  std::string path_;
  uint64_t pid_;
  Cookie cookie_{};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::pair<uint8_t, uint8_t>> commands_;
  std::thread thread_;
};

PortOptions Port(std::string path) {
  PortOptions p;
  p.path = std::move(path);
  return p;
}

class ListenServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clrdiag-listen-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/port.sock";
  }
  void TearDown() override {
    server_.reset();
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  void StartServer(bool resume = true) {
    ServerOptions o;
    o.advertise_timeout = absl::Milliseconds(300);
    o.reconnect_grace = absl::Milliseconds(300);
    o.log = [this](LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> l(log_mu_);
      log_ += m + "\n";
    };
    PortOptions p;
    p.path = path_;
    p.resume = resume;
    auto s = ListenServer::Start({p}, o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }
  // Waits until List() satisfies `pred`.
  bool WaitFor(const std::function<bool(const std::vector<RuntimeSnapshot>&)>& pred) {
    for (int i = 0; i < 300; ++i) {
      if (pred(server_->List())) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::string log() {
    std::lock_guard<std::mutex> l(log_mu_);
    return log_;
  }
  // The log, once it holds `text` (the server logs after it publishes what it learned), or as
  // it is after 3 s.
  std::string LogWith(const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      std::string l = log();
      if (l.find(text) != std::string::npos) return l;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return log();
  }

  std::string dir_, path_;
  std::unique_ptr<ListenServer> server_;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(ListenServerTest, ResumesANewRuntimeAndLearnsWhoItIs) {
  StartServer();
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666u);
  FakeConnectRuntime rt(path_, 4242, 0xAB);
  ASSERT_TRUE(WaitFor([](const auto& l) { return l.size() == 1 && l[0].info.has_value(); }));
  auto list = server_->List();
  EXPECT_EQ(list[0].pid, 4242u);
  EXPECT_EQ(list[0].cookie, rt.cookie());
  EXPECT_TRUE(list[0].resume_sent);
  EXPECT_EQ(list[0].info->command_line, "/app/Fake --flag");
  EXPECT_EQ(list[0].info->runtime_version, "10.0.1");
  EXPECT_EQ(list[0].port.dump_dir, dir_);  // default: the socket's directory
  // Resume first, then ProcessInfo3 (unknown here) and ProcessInfo2, each on its own connection.
  auto cmds = rt.commands();
  ASSERT_GE(cmds.size(), 3u);
  EXPECT_EQ(cmds[0], std::make_pair(uint8_t{4}, ipc::process_cmd::kResumeRuntime));
  EXPECT_EQ(cmds[1], std::make_pair(uint8_t{4}, ipc::process_cmd::kProcessInfo3));
  EXPECT_EQ(cmds[2], std::make_pair(uint8_t{4}, ipc::process_cmd::kProcessInfo2));
  EXPECT_THAT(LogWith("runtime pid 4242"), HasSubstr("runtime pid 4242"));

  // Commands through the pool, one connection each.
  auto ep = server_->EndpointFor(rt.cookie(), path_);
  for (int i = 0; i < 3; ++i) {
    auto info = ipc::QueryProcessInfo(*ep, absl::Seconds(2));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->pid, 4242u);
  }
  EXPECT_THAT(ep->Describe(), HasSubstr(path_));
}

TEST_F(ListenServerTest, ResumeFalseSendsNoResume) {
  StartServer(/*resume=*/false);
  FakeConnectRuntime rt(path_, 7, 0x01);
  ASSERT_TRUE(WaitFor([](const auto& l) { return l.size() == 1 && l[0].info.has_value(); }));
  EXPECT_FALSE(server_->List()[0].resume_sent);
  for (const auto& c : rt.commands()) EXPECT_NE(c.second, ipc::process_cmd::kResumeRuntime);
}

TEST_F(ListenServerTest, ARuntimeThatExitsDisappears) {
  StartServer();
  auto rt = std::make_unique<FakeConnectRuntime>(path_, 99, 0x02);
  ASSERT_TRUE(WaitFor([](const auto& l) { return l.size() == 1; }));
  const Cookie cookie = rt->cookie();
  rt.reset();
  ASSERT_TRUE(WaitFor([](const auto& l) { return l.empty(); }));
  for (int i = 0; i < 100 && log().find("disconnected") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(log(), HasSubstr("runtime pid 99 (cookie 02020202) disconnected"));
  auto ep = server_->EndpointFor(cookie, path_);
  auto info = ipc::QueryProcessInfo(*ep, absl::Milliseconds(200));
  EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable) << info.status();
}

TEST_F(ListenServerTest, TwoRuntimesOnOnePort) {
  StartServer();
  FakeConnectRuntime a(path_, 1, 0x0A), b(path_, 1, 0x0B);  // same pid, other namespaces
  ASSERT_TRUE(WaitFor([](const auto& l) {
    return l.size() == 2 && l[0].info.has_value() && l[1].info.has_value();
  }));
  auto ea = server_->EndpointFor(a.cookie(), path_);
  auto eb = server_->EndpointFor(b.cookie(), path_);
  auto ia = ipc::QueryProcessInfo(*ea, absl::Seconds(2));
  auto ib = ipc::QueryProcessInfo(*eb, absl::Seconds(2));
  ASSERT_TRUE(ia.ok() && ib.ok());
  EXPECT_EQ(ia->cookie, a.cookie());
  EXPECT_EQ(ib->cookie, b.cookie());
}

TEST_F(ListenServerTest, PeersThatAreNotRuntimesAreDroppedWithALogLine) {
  StartServer();
  {
    UniqueFd garbage = ConnectTo(path_);
    ASSERT_TRUE(garbage);
    std::vector<uint8_t> bytes(ipc::kAdvertiseSize, 'x');
    ASSERT_TRUE(WriteAll(garbage.get(), bytes));
    UniqueFd silent = ConnectTo(path_);  // never sends anything
    UniqueFd short_one = ConnectTo(path_);
    ASSERT_TRUE(WriteAll(short_one.get(), {'A', 'D', 'V'}));
    short_one.Reset();
    auto bad_pid = ipc::EncodeAdvertise({Cookie{}, 0});
    UniqueFd zero_pid = ConnectTo(path_);
    ASSERT_TRUE(WriteAll(zero_pid.get(), bad_pid));
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    EXPECT_THAT(LogWith("magic"), HasSubstr("magic"));
    EXPECT_THAT(LogWith("no advertise within"), HasSubstr("no advertise within"));
    EXPECT_THAT(LogWith("closed after 3 of"), HasSubstr("closed after 3 of"));
    EXPECT_THAT(LogWith("not a valid process id"), HasSubstr("not a valid process id"));
    EXPECT_TRUE(server_->List().empty());
  }
  // The server still serves real runtimes.
  FakeConnectRuntime rt(path_, 5, 0x05);
  EXPECT_TRUE(WaitFor([](const auto& l) { return l.size() == 1 && l[0].info.has_value(); }));
}

TEST_F(ListenServerTest, BadPortsAreRefusedWithTheirPath) {
  auto relative = ListenServer::Start({Port("diag.sock")}, {});
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
  std::string file = dir_ + "/plain";
  ASSERT_EQ(std::system(("touch '" + file + "'").c_str()), 0);
  auto not_socket = ListenServer::Start({Port(file)}, {});
  EXPECT_EQ(not_socket.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(not_socket.status().message()), HasSubstr(file));
  auto no_dir = ListenServer::Start({Port(dir_ + "/missing/x.sock")}, {});
  EXPECT_FALSE(no_dir.ok());
  StartServer();
  auto twice = ListenServer::Start({Port(path_)}, {});
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kAlreadyExists);
  server_.reset();
  struct stat st;
  EXPECT_NE(::stat(path_.c_str(), &st), 0);  // removed on stop
}

TEST(AdvertiseTest, RoundTripAndRejects) {
  ipc::Advertise a;
  a.cookie.fill(0x5A);
  a.pid = 1234;
  auto bytes = ipc::EncodeAdvertise(a);
  ASSERT_EQ(bytes.size(), 34u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 8), std::string("ADVR_V1\0", 8));
  auto back = ipc::ParseAdvertise(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->pid, 1234u);
  EXPECT_EQ(back->cookie, a.cookie);
  bytes[7] = 'X';  // the NUL of the magic
  EXPECT_FALSE(ipc::ParseAdvertise(bytes).ok());
  EXPECT_FALSE(ipc::ParseAdvertise(std::vector<uint8_t>(33, 0)).ok());
}

}  // namespace
}  // namespace clrdiag::listen
