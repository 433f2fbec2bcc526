#include "daemon/metrics/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace clrdiag::metrics {
namespace {

constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";

int Respond(mg_connection* conn, int code, const char* reason, const char* type,
            const std::string& body, bool head_only) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            code, reason, type, body.size());
  if (!head_only && !body.empty()) mg_write(conn, body.data(), body.size());
  return code;
}

// civetweb's messages while mg_start2 runs on this thread (it explains a failed bind there).
thread_local std::string* start_messages = nullptr;

int LogMessage(const mg_connection*, const char* message) {
  if (start_messages != nullptr) {
    if (!start_messages->empty()) *start_messages += "; ";
    *start_messages += message;
  }
  spdlog::debug("metrics http: {}", message);
  return 1;  // handled: civetweb prints nothing itself
}

// Connects to the server's own port and hangs up at once: wakes civetweb's accept loop, which
// otherwise notices a stop only after its 2 s poll. An accepted wake-up reads EOF and ends.
void Knock(const std::string& host, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return;
  if (a.sin_addr.s_addr == htonl(INADDR_ANY)) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::close(fd);
}

}  // namespace

int HttpServer::Handle(mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<HttpServer*>(self_ptr);
  const mg_request_info* ri = mg_get_request_info(conn);
  const char* method = ri->request_method ? ri->request_method : "";
  const std::string path = ri->local_uri ? ri->local_uri : "";
  const bool head = std::strcmp(method, "HEAD") == 0;
  constexpr char kText[] = "text/plain; charset=utf-8";
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
    return Respond(conn, 404, "Not Found", kText, "not found: use /metrics, /healthz or /readyz\n",
                   head);
  }
  if (!head && std::strcmp(method, "GET") != 0) {
    return Respond(conn, 405, "Method Not Allowed", kText, "use GET\n", false);
  }
  if (path == "/metrics") {
    return Respond(conn, 200, "OK", kExpositionType, self->handlers_.metrics(), head);
  }
  if (path == "/healthz") return Respond(conn, 200, "OK", kText, "ok\n", head);
  if (self->handlers_.ready && self->handlers_.ready()) {
    return Respond(conn, 200, "OK", kText, "ready\n", head);
  }
  return Respond(conn, 503, "Service Unavailable", kText, "not ready\n", head);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              HttpHandlers handlers) {
  static const unsigned kInit = mg_init_library(0);  // once per process; no TLS, no Lua
  (void)kInit;
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(handlers)));
  s->host_ = address.substr(0, address.rfind(':'));
  const std::string threads = std::to_string(kHttpThreads);
  const std::string timeout = std::to_string(kHttpRequestTimeoutMs);
  const char* options[] = {
      "listening_ports", address.c_str(),     "num_threads", threads.c_str(), "request_timeout_ms",
      timeout.c_str(),   "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = LogMessage;
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.user_data = s.get();
  init.configuration_options = options;
  unsigned err_code = 0;
  char err_text[256] = "";
  mg_error_data err;
  std::memset(&err, 0, sizeof(err));
  err.code = &err_code;
  err.text = err_text;
  err.text_buffer_size = sizeof(err_text);
  std::string messages;
  start_messages = &messages;
  s->ctx_ = mg_start2(&init, &err);
  start_messages = nullptr;
  if (s->ctx_ == nullptr) {
    // civetweb's log has the cause ("cannot bind to 127.0.0.1:9464: 98 (Address already in
    // use)"); its error text only says that the ports failed.
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", address, ": ",
        !messages.empty() ? messages : (err_text[0] ? err_text : "the HTTP server did not start")));
  }
  mg_set_request_handler(s->ctx_, "**", &HttpServer::Handle, s.get());
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof(ports));
  if (mg_get_server_ports(s->ctx_, 4, ports) > 0) s->port_ = ports[0].port;
  return s;
}

HttpServer::~HttpServer() {
  if (ctx_ == nullptr) return;
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    mg_stop(ctx_);
    stopped = true;
  });
  while (!stopped) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!stopped && port_ > 0) Knock(host_, port_);
  }
  stopper.join();
}

}  // namespace clrdiag::metrics
