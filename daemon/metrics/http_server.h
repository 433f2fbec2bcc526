// The metrics port: a small HTTP server (civetweb, from Debian) for monitoring systems and
// probes. Routes, GET or HEAD only:
//   /metrics  the Prometheus text exposition
//   /healthz  200 "ok" while the process serves HTTP at all (liveness)
//   /readyz   200 "ready" when the daemon accepts clients, else 503 "not ready" (readiness:
//             during start-up and shutdown)
// Anything else is 404; other methods 405. It serves no files and has no other state.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace clrdiag::metrics {

struct HttpHandlers {
  std::function<std::string()> metrics;  // the body of /metrics
  std::function<bool()> ready;           // /readyz
};

// Named limits of the metrics port.
inline constexpr int kHttpThreads = 2;              // requests served at once
inline constexpr int kHttpRequestTimeoutMs = 5000;  // a client slower than this is dropped

class HttpServer {
 public:
  // Listens on "IPV4:PORT" (see config::ParseMetricsAddress). A port that cannot be bound is
  // an error naming the address and civetweb's reason.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           HttpHandlers handlers);
  ~HttpServer();  // stops listening and waits for requests in progress
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  explicit HttpServer(HttpHandlers handlers) : handlers_(std::move(handlers)) {}
  static int Handle(mg_connection* conn, void* self);

  HttpHandlers handlers_;
  mg_context* ctx_ = nullptr;
  std::string host_;  // as configured: "127.0.0.1", "0.0.0.0"
  int port_ = 0;
};

}  // namespace clrdiag::metrics
