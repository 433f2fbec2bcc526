#include "core/egress/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "core/base/status_macros.h"

namespace clrdiag::egress::testing {
namespace {

bool Executable(const std::string& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0; }

std::string FindMoto() {
  if (const char* env = std::getenv("CLRDIAG_MOTO_SERVER"); env != nullptr && *env != '\0') {
    return env;
  }
  if (Executable("/root/.pyenv/shims/moto_server")) return "/root/.pyenv/shims/moto_server";
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      std::string p = absl::StrCat(dir, "/moto_server");
      if (Executable(p)) return p;
    }
  }
  return "";
}

bool CanConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

absl::StatusOr<std::unique_ptr<MotoServer>> MotoServer::Start(uint64_t part_min_size,
                                                              const std::string& tls_cert,
                                                              const std::string& tls_key) {
  const std::string moto = FindMoto();
  if (!moto.empty() && !Executable(moto)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "moto_server ", moto, " (from $CLRDIAG_MOTO_SERVER) is not an executable file"));
  }
  if (moto.empty()) {
    return absl::FailedPreconditionError(
        "moto_server not found ($CLRDIAG_MOTO_SERVER, /root/.pyenv/shims/moto_server, PATH): "
        "the S3 egress tests need it (pip install 'moto[server]'; the machine image has it)");
  }
  std::unique_ptr<MotoServer> s(new MotoServer());
  ASSIGN_OR_RETURN(s->port_, FreeLoopbackPort());
  s->log_path_ = absl::StrCat("/tmp/clrdiag-moto-", ::getpid(), "-", s->port_, ".log");
  const std::string port = absl::StrCat(s->port_);
  const std::string min = absl::StrCat(part_min_size);
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    ::setenv("S3_UPLOAD_PART_MIN_SIZE", min.c_str(), 1);
    const int log = ::open(s->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    if (tls_cert.empty()) {
      ::execl(moto.c_str(), "moto_server", "-H", "127.0.0.1", "-p", port.c_str(),
              static_cast<char*>(nullptr));
    } else {
      ::execl(moto.c_str(), "moto_server", "-H", "127.0.0.1", "-p", port.c_str(), "-c",
              tls_cert.c_str(), "-k", tls_key.c_str(), static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  s->pid_ = pid;
  s->tls_ = !tls_cert.empty();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!CanConnect(s->port_)) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      s->pid_ = -1;
      std::ifstream in(s->log_path_);
      std::stringstream log;
      log << in.rdbuf();
      return absl::InternalError(
          absl::StrCat(moto, " exited (status ", st, ") before listening: ", log.str()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(moto, " did not listen on port ", s->port_, " within 30 s"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return s;
}

std::string MotoServer::endpoint() const {
  return absl::StrCat(tls_ ? "https" : "http", "://127.0.0.1:", port_);
}

void MotoServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int st = 0;
  while (::waitpid(pid_, &st, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  pid_ = -1;
}

MotoServer::~MotoServer() {
  Stop();
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(int upstream_port, Decider decide) {
  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->upstream_port_ = upstream_port;
  p->decide_ = std::move(decide);
  p->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->listen_fd_ < 0) return ErrnoStatus(errno, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(p->listen_fd_, 16) != 0 ||
      ::getsockname(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return ErrnoStatus(errno, "fault proxy listen");
  }
  p->port_ = ntohs(a.sin_port);
  p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

std::string FaultProxy::endpoint() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::vector<std::string> FaultProxy::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

void FaultProxy::Loop() {
  while (!stop_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, 50) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    Handle(fd);
    ::close(fd);
  }
}

void FaultProxy::Handle(int fd) {
  // The request head, then Content-Length bytes of body.
  std::string data;
  char buf[65536];
  size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    data.append(buf, static_cast<size_t>(n));
  }
  const std::string head = data.substr(0, head_end);
  std::string body = data.substr(head_end + 4);
  std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 2) return;
  uint64_t content_length = 0;
  std::string new_head = lines[0] + "\r\n";
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    const std::string name =
        absl::AsciiStrToLower(colon == std::string::npos ? lines[i] : lines[i].substr(0, colon));
    if (name == "content-length") {
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)),
                             &content_length);
    }
    if (name == "connection") continue;
    new_head += lines[i] + "\r\n";
  }
  new_head += "Connection: close\r\n\r\n";
  while (body.size() < content_length) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    body.append(buf, static_cast<size_t>(n));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back(absl::StrCat(first[0], " ", first[1]));
  }
  const Action action = decide_ ? decide_(first[0], first[1]) : Action::kForward;
  if (action == Action::kDropConnection) return;
  if (action == Action::kStall) {
    pollfd pfd{fd, POLLIN, 0};
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (!stop_ && absl::Now() < until) {
      if (::poll(&pfd, 1, 50) > 0 && ::recv(fd, buf, sizeof(buf), 0) <= 0) break;  // gave up
    }
    return;
  }
  const char* status = nullptr;
  const char* code = "InternalError";
  switch (action) {
    case Action::kFail500:
      status = "500 Internal Server Error";
      break;
    case Action::kFail200Error:
      status = "200 OK";
      break;
    case Action::kFail429:
      status = "429 Too Many Requests";
      code = "SlowDown";
      break;
    case Action::kFail403:
      status = "403 Forbidden";
      code = "AccessDenied";
      break;
    default:
      break;
  }
  if (status != nullptr) {
    const std::string xml =
        absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>", code,
                     "</Code><Message>injected by the test proxy</Message>"
                     "</Error>");
    WriteAll(fd, absl::StrCat("HTTP/1.1 ", status,
                              "\r\nContent-Type: application/xml\r\nContent-Length: ", xml.size(),
                              "\r\nConnection: close\r\n\r\n", xml));
    return;
  }
  if (action == Action::kCorruptBody && !body.empty()) body[0] = static_cast<char>(~body[0]);

  const int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(up);
    return;  // upstream gone: the client sees a dropped connection
  }
  timeval tv{30, 0};
  ::setsockopt(up, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string answer;
  if (WriteAll(up, new_head) && WriteAll(up, body)) {
    for (;;) {
      const ssize_t n = ::recv(up, buf, sizeof(buf), 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(up);
  if (action == Action::kTamperEtag) {
    const size_t h = absl::AsciiStrToLower(answer).find("\r\netag: \"");
    if (h != std::string::npos) {
      char& c = answer[h + 9];
      c = c == '0' ? '1' : '0';
    }
  }
  WriteAll(fd, answer);
}

}  // namespace clrdiag::egress::testing
