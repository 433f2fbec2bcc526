// The metrics port (--metrics-listen) and the gRPC health service of a real daemon: scraped with
// a plain-socket HTTP GET after real collections of real .NET processes, real `ps` and a real
// analysis session; health checked over the real unix socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that nothing listens on right now.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

struct HttpResponse {
  int status = -1;  // -1: no connection or no answer
  std::string headers;
  std::string body;
};

// One HTTP/1.1 request over a plain TCP socket to 127.0.0.1:port, read until the server closes.
HttpResponse Http(int port, const std::string& path, const std::string& method = "GET") {
  HttpResponse r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = method + " " + path +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: metrics-test\r\n"
                    "Connection: close\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return r;
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) break;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    raw.append(buf, n);
  }
  ::close(fd);
  size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
  r.headers = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses the text exposition strictly: every line is a # HELP / # TYPE comment or
// `name{label="value",...} number`. Malformed lines land in `bad`.
std::vector<Sample> ParseExposition(const std::string& text, std::vector<std::string>* bad) {
  static const std::regex kComment(R"(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?)");
  static const std::regex kLine(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? )"
      R"((\+Inf|-Inf|NaN|-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?))");
  static const std::regex kLabel(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\")");
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, kComment)) continue;
    if (!std::regex_match(line, m, kLine)) {
      bad->push_back(line);
      continue;
    }
    Sample s;
    s.name = m[1];
    std::string labels = m[3];
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), e; it != e; ++it) {
      s.labels[(*it)[1]] = (*it)[2];
    }
    s.value = std::stod(m[4].str() == "+Inf" ? "inf" : m[4].str());
    out.push_back(std::move(s));
  }
  return out;
}

class Metrics {
 public:
  explicit Metrics(std::vector<Sample> s) : samples_(std::move(s)) {}
  // The value of the series with exactly these labels; 0 when absent (a counter not yet touched).
  double Get(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples_) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return 0;
  }
  bool Has(const std::string& name) const {
    for (const auto& s : samples_) {
      if (s.name == name) return true;
    }
    return false;
  }
  // Sum over the series of `name` whose labels include `match`.
  double Sum(const std::string& name, const std::map<std::string, std::string>& match) const {
    double total = 0;
    for (const auto& s : samples_) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : match) {
        auto it = s.labels.find(k);
        ok = ok && it != s.labels.end() && it->second == v;
      }
      if (ok) total += s.value;
    }
    return total;
  }
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  std::vector<Sample> samples_;
};

// Status of grpc.health.v1.Health/Check for the whole server (service ""): 1 SERVING,
// 2 NOT_SERVING, -1 when the call failed. The messages are tiny, so they are encoded by hand: the
// request is empty, the response is field 1 (varint) = status.
int HealthCheck(grpc::GenericStub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 3s);
  grpc::CompletionQueue cq;
  grpc::Slice empty("", 0);
  grpc::ByteBuffer req(&empty, 1);
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status st;
  call->Finish(&resp, &st, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!st.ok()) return -1;
  std::vector<grpc::Slice> slices;
  resp.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes.empty()) return 0;  // UNKNOWN (the default value is not sent)
  if (bytes.size() != 2 || bytes[0] != 0x08) return -1;
  return bytes[1];
}

// Calls `method` with an empty message; returns the gRPC status code.
int CallEmpty(grpc::GenericStub& stub, const std::string& method) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 3s);
  grpc::CompletionQueue cq;
  grpc::Slice empty("", 0);
  grpc::ByteBuffer req(&empty, 1);
  auto call = stub.PrepareUnaryCall(&ctx, method, req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status st;
  call->Finish(&resp, &st, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return st.error_code();
}

// An interactive `clrdiag analyze` whose stdin is a FIFO the test writes commands into.
class LiveSession : public InteractiveClient {
 public:
  LiveSession(const Daemon& d, const std::string& dump, const TempDir& dir)
      : InteractiveClient({BinDir() + "/clrdiag", "--server", d.server(), "analyze", dump},
                          dir.path(), "analyze") {}
};

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    daemon_ = std::make_unique<Daemon>(
        Daemon::Options{"", {"--metrics-listen", "127.0.0.1:" + std::to_string(port_)}});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  Metrics Scrape() {
    HttpResponse r = Http(port_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.headers;
    std::vector<std::string> bad;
    auto samples = ParseExposition(r.body, &bad);
    EXPECT_TRUE(bad.empty()) << "malformed lines, the first: " << bad[0];
    return Metrics(std::move(samples));
  }

  int port_ = -1;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(MetricsTest, ExpositionIsWellFormedAndOnlyKnownPathsAnswer) {
  HttpResponse r = Http(port_, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_CONTAINS(r.headers, "Content-Type: text/plain; version=0.0.4");
  std::vector<std::string> bad;
  auto samples = ParseExposition(r.body, &bad);
  EXPECT_TRUE(bad.empty()) << bad.size() << " malformed lines, the first: " << bad[0];
  ASSERT_FALSE(samples.empty());
  for (const auto& s : samples) EXPECT_EQ(s.name.rfind("clrdiag_", 0), 0u) << s.name;
  // Every family has HELP and TYPE lines before its samples.
  for (const char* family :
       {"clrdiag_build_info", "clrdiag_collections_total", "clrdiag_collection_duration_seconds",
        "clrdiag_store_dumps", "clrdiag_store_bytes", "clrdiag_store_free_bytes",
        "clrdiag_analysis_sessions", "clrdiag_grpc_requests_total"}) {
    EXPECT_CONTAINS(r.body, std::string("# HELP ") + family + " ");
    EXPECT_CONTAINS(r.body, std::string("# TYPE ") + family + " ");
  }
  Metrics m(samples);
  EXPECT_EQ(m.Get("clrdiag_build_info", {{"version", "0.1.0"}}), 1);
  EXPECT_EQ(m.Get("clrdiag_store_dumps"), 0);
  EXPECT_EQ(m.Get("clrdiag_analysis_sessions"), 0);
  EXPECT_GT(m.Get("clrdiag_store_free_bytes"), 0);
  EXPECT_TRUE(m.Has("clrdiag_start_time_seconds"));

  HttpResponse health = Http(port_, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  HttpResponse ready = Http(port_, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");
  HttpResponse head = Http(port_, "/metrics", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  // Bad input: other paths, other methods, path tricks.
  for (const char* path : {"/", "/metrics/x", "/metricsx", "/../etc/passwd", "/index.html"}) {
    EXPECT_EQ(Http(port_, path).status, 404) << path;
  }
  EXPECT_EQ(Http(port_, "/metrics", "POST").status, 405);
  EXPECT_EQ(Http(port_, "/metrics", "DELETE").status, 405);
  EXPECT_EQ(Http(port_, "/metrics?name=x").status, 200);

  // Methods a client makes up are UNIMPLEMENTED and never become label values (a client must not
  // be able to grow the exposition without bound).
  auto channel = grpc::CreateChannel(daemon_->server(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  for (const char* m : {"/clrdiag.v1.Diagnostics/MadeUp1", "/made.up.Service/Call", "/x"}) {
    EXPECT_EQ(CallEmpty(stub, m), grpc::StatusCode::UNIMPLEMENTED) << m;
  }
  HttpResponse after = Http(port_, "/metrics");
  EXPECT_EQ(after.body.find("MadeUp1"), std::string::npos) << after.body;
  EXPECT_EQ(after.body.find("made.up"), std::string::npos) << after.body;
  EXPECT_CONTAINS(after.body,
                  "clrdiag_grpc_requests_total{service=\"unknown\",method=\"unknown\","
                  "code=\"UNIMPLEMENTED\"} 3\n");
}

TEST_F(MetricsTest, CollectionsPsAndStoreAreCounted) {
  auto app = StartFixture("HeapApp", {"2000"});
  ASSERT_TRUE(app);
  const std::map<std::string, std::string> heap_ok = {{"type", "heap"}, {"result", "ok"}};
  const std::map<std::string, std::string> collect_rpc = {{"service", "clrdiag.v1.Diagnostics"},
                                                          {"method", "CollectDump"}};
  Metrics before = Scrape();

  RunResult c = daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  Metrics after = Scrape();
  EXPECT_EQ(after.Get("clrdiag_collections_total", heap_ok),
            before.Get("clrdiag_collections_total", heap_ok) + 1);
  const std::string hist = "clrdiag_collection_duration_seconds";
  EXPECT_EQ(after.Get(hist + "_count", {{"type", "heap"}}),
            before.Get(hist + "_count", {{"type", "heap"}}) + 1);
  EXPECT_EQ(after.Get(hist + "_bucket", {{"type", "heap"}, {"le", "+Inf"}}),
            after.Get(hist + "_count", {{"type", "heap"}}));
  EXPECT_GT(after.Get(hist + "_sum", {{"type", "heap"}}), 0);
  auto with_code = [&](const std::string& code) {
    auto l = collect_rpc;
    l["code"] = code;
    return l;
  };
  EXPECT_EQ(after.Get("clrdiag_grpc_requests_total", with_code("OK")),
            before.Get("clrdiag_grpc_requests_total", with_code("OK")) + 1);

  // A second dump, Mini, then the store gauges against `clrdiag dumps --json`.
  ASSERT_EQ(
      daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", "Mini"}).exit_code,
      0);
  RunResult list = daemon_->Client({"dumps", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto dumps = ParseJson(list.out);
  ASSERT_EQ(dumps.size(), 2u) << list.out;
  double bytes = 0;
  for (const auto& d : dumps) bytes += d["size_bytes"].get<double>();
  Metrics stored = Scrape();
  EXPECT_EQ(stored.Get("clrdiag_store_dumps"), 2);
  EXPECT_EQ(stored.Get("clrdiag_store_bytes"), bytes);
  EXPECT_EQ(stored.Get("clrdiag_collections_total", {{"type", "mini"}, {"result", "ok"}}),
            before.Get("clrdiag_collections_total", {{"type", "mini"}, {"result", "ok"}}) + 1);
  // rm: the gauges follow the store.
  ASSERT_EQ(daemon_->Client({"rm", dumps[0]["id"]}).exit_code, 0);
  Metrics removed = Scrape();
  EXPECT_EQ(removed.Get("clrdiag_store_dumps"), 1);
  EXPECT_EQ(removed.Get("clrdiag_store_bytes"), dumps[1]["size_bytes"].get<double>());

  // A failed collection (no such process) counts as a failure with its reason.
  pid_t gone = 4194303;  // above the default pid_max
  ASSERT_NE(::access(("/proc/" + std::to_string(gone)).c_str(), F_OK), 0);
  RunResult failed = daemon_->Client({"collect", "-p", std::to_string(gone)});
  EXPECT_EQ(failed.exit_code, 4) << failed.err;
  Metrics after_fail = Scrape();
  EXPECT_EQ(
      after_fail.Get("clrdiag_collections_total", {{"type", "full"}, {"result", "not_found"}}),
      before.Get("clrdiag_collections_total", {{"type", "full"}, {"result", "not_found"}}) + 1);
  EXPECT_EQ(after_fail.Get("clrdiag_collections_total", {{"type", "full"}, {"result", "ok"}}),
            before.Get("clrdiag_collections_total", {{"type", "full"}, {"result", "ok"}}));
  EXPECT_EQ(after_fail.Get("clrdiag_grpc_requests_total", with_code("NOT_FOUND")),
            before.Get("clrdiag_grpc_requests_total", with_code("NOT_FOUND")) + 1);

  // `clrdiag ps` is one ListProcesses call.
  const std::map<std::string, std::string> ps_ok = {
      {"service", "clrdiag.v1.Diagnostics"}, {"method", "ListProcesses"}, {"code", "OK"}};
  double ps_before = after_fail.Get("clrdiag_grpc_requests_total", ps_ok);
  RunResult ps = daemon_->Client({"ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_CONTAINS(ps.out, std::to_string(app->pid()));
  EXPECT_EQ(Scrape().Get("clrdiag_grpc_requests_total", ps_ok), ps_before + 1);
}

TEST_F(MetricsTest, AnOpenAnalysisSessionIsCounted) {
  auto app = StartFixture("HeapApp", {"2000"});
  ASSERT_TRUE(app);
  RunResult c =
      daemon_->Client({"collect", "-p", std::to_string(app->pid()), "--type", "Heap", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = ParseJson(c.out)["id"];
  EXPECT_EQ(Scrape().Get("clrdiag_analysis_sessions"), 0);
  TempDir dir;
  {
    LiveSession s(*daemon_, id, dir);
    s.Send("eeversion");
    ASSERT_TRUE(s.WaitOut("Workstation mode", 20s)) << s.err();
    EXPECT_EQ(Scrape().Get("clrdiag_analysis_sessions"), 1);
    s.Send("exit");
    ASSERT_EQ(s.proc().Wait(20s), 0) << s.err();
  }
  double open = -1;
  for (int i = 0; i < 100 && open != 0; ++i, std::this_thread::sleep_for(50ms)) {
    open = Scrape().Get("clrdiag_analysis_sessions");
  }
  EXPECT_EQ(open, 0);
}

TEST(MetricsHealthTest, HealthServesWhenReadyAndNotDuringShutdown) {
  int port = FreePort();
  Daemon d(Daemon::Options{"", {"--metrics-listen", "127.0.0.1:" + std::to_string(port)}});
  ASSERT_TRUE(d.Start()) << d.log();
  auto channel = grpc::CreateChannel(d.server(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  EXPECT_EQ(HealthCheck(stub), 1) << "SERVING once ready";
  EXPECT_EQ(Http(port, "/readyz").status, 200);

  // During shutdown, while a collection is still being finished, the connection we already have
  // is answered NOT_SERVING and /readyz turns 503.
  auto app = StartFixture("HeapApp", {"1000", "300"});
  ASSERT_TRUE(app);
  std::string pid = std::to_string(app->pid());
  TempDir t;
  SpawnOptions so;
  so.stdout_file = t / "out";
  so.stderr_file = t / "err";
  auto client = Process::Spawn(
      {BinDir() + "/clrdiag", "--server", d.server(), "collect", "-p", pid, "--type", "Full"}, so);
  bool started = false;
  for (int i = 0; i < 500 && !started; ++i, std::this_thread::sleep_for(20ms)) {
    started = d.log().find("collect: Full dump of pid " + pid) != std::string::npos;
  }
  ASSERT_TRUE(started) << d.log();
  ASSERT_TRUE(d.process()->Signal(SIGTERM));
  bool not_serving = false, not_ready = false;
  for (auto end = std::chrono::steady_clock::now() + 30s; std::chrono::steady_clock::now() < end &&
                                                          !(not_serving && not_ready) &&
                                                          d.process()->Running();) {
    not_serving = not_serving || HealthCheck(stub) == 2;
    not_ready = not_ready || Http(port, "/readyz").status == 503;
  }
  EXPECT_TRUE(not_serving) << "health never said NOT_SERVING during shutdown\n" << d.log();
  EXPECT_TRUE(not_ready) << "/readyz never said 503 during shutdown\n" << d.log();
  EXPECT_EQ(client->Wait(120s), 0) << ReadFile(t / "err");
  EXPECT_EQ(d.process()->Wait(60s), 0) << d.log();
  EXPECT_EQ(Http(port, "/healthz").status, -1) << "the metrics port is closed after exit";
}

TEST(MetricsHealthTest, MetricsPortInUseStopsTheStartWithAClearMessage) {
  // Something else holds the port.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  std::string addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  Daemon d(Daemon::Options{"", {"--metrics-listen", addr}});
  EXPECT_FALSE(d.Start(20s)) << "started although the metrics port is taken";
  EXPECT_EQ(d.process()->Wait(10s), 1) << d.log();
  EXPECT_CONTAINS(d.log(), "cannot serve metrics on " + addr + ": ");
  EXPECT_CONTAINS(d.log(), "Address already in use");
  EXPECT_FALSE(FileExists(d.socket_path())) << "clients saw a daemon that then failed";
  ::close(fd);
}

TEST(MetricsHealthTest, BadMetricsAddressesAreRejected) {
  TempDir t;
  for (const char* bad : {"9464", "metrics.example.com:9464", "127.0.0.1:99999", "[::1]:9464"}) {
    RunResult r = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--dump-dir", t / "store",
                              "--metrics-listen", bad});
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_CONTAINS(r.err, std::string("--metrics-listen: '") + bad + "'");
    EXPECT_CONTAINS(r.err, "use IPV4:PORT, e.g. 127.0.0.1:9464");
  }
  std::ofstream(t / "c.yaml") << "metrics:\n  listen: \"127.0.0.1:9464\"\n  path: /m\n";
  RunResult r = RunCommand({BinDir() + "/clrdiagd", "--check-config", "--config", t / "c.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "metrics.path: unknown key");
}

}  // namespace
}  // namespace clrdiag::testing
