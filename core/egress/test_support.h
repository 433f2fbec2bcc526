// Test helpers for the S3 egress: a real moto_server on a free loopback port (started and
// stopped by pid), and a small fault-injecting HTTP proxy in front of it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::egress::testing {

// A free TCP port on 127.0.0.1 (bound, read back, released).
absl::StatusOr<int> FreeLoopbackPort();

class MotoServer {
 public:
  // Starts `moto_server -H 127.0.0.1 -p <free port>` with S3_UPLOAD_PART_MIN_SIZE set to
  // `part_min_size` and waits until it accepts connections. The binary is $CLRDIAG_MOTO_SERVER,
  // else /root/.pyenv/shims/moto_server, else moto_server on PATH; if none exists the error says
  // so (tests fail on it: moto is part of the test environment, not optional).
  // With tls_cert/tls_key (PEM files) it serves https.
  static absl::StatusOr<std::unique_ptr<MotoServer>> Start(uint64_t part_min_size,
                                                           const std::string& tls_cert = "",
                                                           const std::string& tls_key = "");
  ~MotoServer();  // SIGTERM to its pid (SIGKILL after 5 s), reaped

  int port() const { return port_; }
  std::string endpoint() const;  // "http://127.0.0.1:<port>" (https with TLS)
  // Stops it now (the server becomes unreachable).
  void Stop();

 private:
  MotoServer() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  bool tls_ = false;
  std::string log_path_;
};

// Forwards HTTP/1.1 requests to 127.0.0.1:<upstream_port>, one connection at a time, closing
// each connection after its answer; `decide` may instead fail a request.
class FaultProxy {
 public:
  enum class Action {
    kForward,
    kFail500,         // answer 500 InternalError without forwarding
    kFail429,         // answer 429 SlowDown without forwarding
    kFail403,         // answer 403 AccessDenied without forwarding
    kCorruptBody,     // flip the first body byte, then forward
    kDropConnection,  // close the connection without an answer
    kFail200Error,    // answer "200 OK" with an <Error> InternalError document (S3 does that
                      // to CompleteMultipartUpload)
    kTamperEtag,      // forward, but change one hex digit of the answer's ETag header
    kStall,           // read the request, never answer (until the client gives up, or 10 s)
  };
  using Decider = std::function<Action(const std::string& method, const std::string& target)>;

  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(int upstream_port, Decider decide);
  ~FaultProxy();

  int port() const { return port_; }
  std::string endpoint() const;
  // "METHOD target" of every request seen, in order.
  std::vector<std::string> requests() const;

 private:
  FaultProxy() = default;
  void Loop();
  void Handle(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  int upstream_port_ = 0;
  Decider decide_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
};

}  // namespace clrdiag::egress::testing
