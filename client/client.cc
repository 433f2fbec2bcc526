#include "client/client.h"

#include <grpcpp/support/client_interceptor.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/paths.h"

namespace clrdiag::cli {

std::string ResolveServer(const std::string& flag) {
  std::string s = flag;
  if (s.empty()) {
    const char* env = std::getenv("CLRDIAG_SERVER");
    if (env && *env) s = env;
  }
  if (s.empty()) {
    std::string own = DefaultSocketPath();
    struct stat st;
    s = (::stat(own.c_str(), &st) == 0) ? own : std::string(kSystemSocketPath);
  }
  if (!s.empty() && s[0] == '/') s = "unix:" + s;
  return s;
}

namespace {

// Adds "authorization: Bearer <token>" to every call.
class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::string token) : header_("Bearer " + std::move(token)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", header_});
    }
    methods->Proceed();
  }

 private:
  std::string header_;
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : token_(std::move(token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(token_);
  }

 private:
  std::string token_;
};

bool ReadPem(const char* flag, const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "clrdiag: %s: cannot read %s: %s\n", flag, path.c_str(),
                 std::strerror(errno));
    return false;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && out->size() < (1 << 20))
    out->append(buf, n);
  std::fclose(f);
  if (out->find("-----BEGIN") == std::string::npos) {
    std::fprintf(stderr, "clrdiag: %s: %s is not a PEM file (-----BEGIN ...)\n", flag,
                 path.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool LoadTlsMaterial(GlobalOptions& opts, TlsMaterial* tls) {
  if (opts.token.empty()) {
    const char* env = std::getenv("CLRDIAG_TOKEN");
    if (env && *env) opts.token = env;
  }
  if (opts.token.find_first_of(" \t\r\n") != std::string::npos) {
    std::fprintf(stderr, "clrdiag: --token / CLRDIAG_TOKEN: a token is one word without spaces\n");
    return false;
  }
  if (opts.cert.empty() != opts.key.empty()) {
    std::fprintf(stderr,
                 "clrdiag: --cert and --key go together (a client certificate and its key)\n");
    return false;
  }
  if (opts.ca.empty() && opts.cert.empty()) return true;
  if (!opts.ca.empty() && !ReadPem("--ca", opts.ca, &tls->ca)) return false;
  if (!opts.cert.empty() &&
      (!ReadPem("--cert", opts.cert, &tls->cert) || !ReadPem("--key", opts.key, &tls->key))) {
    return false;
  }
  tls->enabled = true;
  return true;
}

Client::Client(const GlobalOptions& opts, const TlsMaterial& tls)
    : target_(ResolveServer(opts.server)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  // Dumps stream in 1 MiB messages: a large HTTP/2 window keeps the pipe full.
  args.SetInt("grpc.http2.lookahead_bytes", 32 << 20);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  tls_ = tls.enabled && target_.rfind("unix:", 0) != 0;
  if (tls_) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = tls.ca;  // empty: the system's trusted CAs
    ssl.pem_cert_chain = tls.cert;
    ssl.pem_private_key = tls.key;
    creds = grpc::SslCredentials(ssl);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> icpt;
  if (!opts.token.empty()) icpt.push_back(std::make_unique<TokenInterceptorFactory>(opts.token));
  channel_ = grpc::experimental::CreateCustomChannelWithInterceptors(target_, creds, args,
                                                                     std::move(icpt));
  stub_ = clrdiag::v1::Diagnostics::NewStub(channel_);
}

int Client::Fail(const grpc::Status& st) const {
  std::string msg = st.error_message();
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      if (msg.find("andshake") != std::string::npos || msg.find("SSL") != std::string::npos ||
          msg.find("ssl") != std::string::npos || msg.find("certificate") != std::string::npos) {
        std::fprintf(stderr,
                     "clrdiag: the TLS handshake with %s failed: %s\n"
                     "Check --ca (the CA that signed the daemon's certificate) and --cert/--key "
                     "(a client certificate the daemon trusts, not expired).\n",
                     target_.c_str(), msg.c_str());
        return kExitDenied;
      }
      if (tls_ && msg.find("Socket closed") != std::string::npos) {
        std::fprintf(stderr,
                     "clrdiag: %s closed the TLS connection during the handshake: %s\n"
                     "The daemon did not accept the client certificate: give --cert/--key of a "
                     "certificate signed by the CA the daemon trusts (tls.client_ca), not "
                     "expired.\n",
                     target_.c_str(), msg.c_str());
        return kExitDenied;
      }
      if (!tls_ && target_.rfind("unix:", 0) != 0 &&
          (msg.find("Socket closed") != std::string::npos ||
           msg.find("reset") != std::string::npos || msg.find("EOF") != std::string::npos)) {
        std::fprintf(
            stderr,
            "clrdiag: %s closed the connection: %s\n"
            "If the daemon listens with TLS, connect with TLS: give --ca (and --cert/--key "
            "or --token).\n",
            target_.c_str(), msg.c_str());
        return kExitUnreachable;
      }
      if (msg.find("failed to connect") != std::string::npos ||
          msg.find("Connection refused") != std::string::npos ||
          msg.find("No such file") != std::string::npos || msg.empty() ||
          msg.find("connections to all backends failing") != std::string::npos) {
        std::fprintf(stderr,
                     "clrdiag: cannot reach clrdiagd at %s: %s\n"
                     "Is the daemon running? Start it with `make run` (or `clrdiagd`), or point "
                     "--server / CLRDIAG_SERVER at a running daemon.\n",
                     target_.c_str(), msg.c_str());
        return kExitUnreachable;
      }
      std::fprintf(stderr, "clrdiag: %s\n", msg.c_str());
      return kExitFailed;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      std::fprintf(stderr, "clrdiag: clrdiagd at %s did not answer in time\n", target_.c_str());
      return kExitUnreachable;
    case grpc::StatusCode::NOT_FOUND:
      std::fprintf(stderr, "clrdiag: %s\n", msg.c_str());
      return kExitNotFound;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      std::fprintf(stderr, "clrdiag: permission denied: %s\n", msg.c_str());
      return kExitDenied;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      std::fprintf(stderr, "clrdiag: %s\n", msg.c_str());
      return kExitBusy;
    case grpc::StatusCode::FAILED_PRECONDITION:
      std::fprintf(stderr, "clrdiag: %s\n", msg.c_str());
      return kExitPrecondition;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      std::fprintf(stderr, "clrdiag: %s\n", msg.c_str());
      return kExitUsage;
    default:
      std::fprintf(stderr, "clrdiag: %s\n", msg.c_str());
      return kExitFailed;
  }
}

bool StdoutIsTty() { return ::isatty(STDOUT_FILENO) == 1; }
bool StderrIsTty() { return ::isatty(STDERR_FILENO) == 1; }

std::string HumanBytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrCat(b, " B") : absl::StrFormat("%.1f %s", v, units[u]);
}

std::string WithThousands(uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

std::string TypeName(clrdiag::v1::DumpType t) {
  switch (t) {
    case clrdiag::v1::DUMP_TYPE_HEAP:
      return "Heap";
    case clrdiag::v1::DUMP_TYPE_MINI:
      return "Mini";
    case clrdiag::v1::DUMP_TYPE_TRIAGE:
      return "Triage";
    default:
      return "Full";
  }
}

namespace {
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

ProgressLine::ProgressLine() : tty_(StderrIsTty()) {}

void ProgressLine::Update(const std::string& text, bool force) {
  if (tty_) {
    std::string line = "\r" + text;
    if (text.size() < last_len_) line += std::string(last_len_ - text.size(), ' ');
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    last_len_ = text.size();
    return;
  }
  int64_t now = NowMs();
  if (!force && (text == last_text_ || now - last_plain_ms_ < 1000)) return;
  last_plain_ms_ = now;
  last_text_ = text;
  std::fprintf(stderr, "%s\n", text.c_str());
}

void ProgressLine::Clear() {
  if (tty_ && last_len_) {
    std::fprintf(stderr, "\r%s\r", std::string(last_len_, ' ').c_str());
    std::fflush(stderr);
    last_len_ = 0;
  }
}

bool CheckOutputPath(const std::string& path) {
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "clrdiag: cannot write %s: directory %s does not exist\n", path.c_str(),
                 dir.c_str());
    return false;
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    std::fprintf(stderr, "clrdiag: cannot write %s: directory %s is not writable by you\n",
                 path.c_str(), dir.c_str());
    return false;
  }
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "clrdiag: cannot write %s: it is a directory; give a file name\n",
                 path.c_str());
    return false;
  }
  return true;
}

}  // namespace clrdiag::cli
