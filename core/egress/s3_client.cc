#include "core/egress/s3_client.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "core/base/status_macros.h"

namespace clrdiag::egress {
namespace {

// A secret file is a line, not a document.
constexpr size_t kMaxSecretFileBytes = 4096;

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("S3 egress: secret_access_key_file is not set");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("S3 egress: cannot read secret_access_key_file ", path,
                                            ": ", std::strerror(errno)));
  }
  std::string data(kMaxSecretFileBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxSecretFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("S3 egress: secret_access_key_file ", path,
                                                   " is longer than ", kMaxSecretFileBytes,
                                                   " bytes (expected one line)"));
  }
  std::string secret(absl::StripAsciiWhitespace(data));
  if (secret.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 egress: secret_access_key_file ", path, " is empty"));
  }
  return secret;
}

bool ValidVirtualHostBucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.')) {
      return false;
    }
  }
  return b.front() != '-' && b.front() != '.' && b.back() != '-' && b.back() != '.';
}

bool Retryable(long status) { return status >= 500 || status == 408 || status == 429; }

bool RetryableS3Code(const std::string& code) {
  return code == "InternalError" || code == "SlowDown" || code == "ServiceUnavailable" ||
         code == "RequestTimeout";
}

absl::StatusCode CodeForHttp(long status) {
  if (status == 404) return absl::StatusCode::kNotFound;
  if (status == 401 || status == 403) return absl::StatusCode::kPermissionDenied;
  if (status == 408) return absl::StatusCode::kDeadlineExceeded;
  if (status == 429) return absl::StatusCode::kResourceExhausted;
  if (status >= 500) return absl::StatusCode::kUnavailable;
  if (status == 400) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kFailedPrecondition;
}

bool RetryableStatus(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

namespace {

struct Endpoint {
  std::string scheme;     // "http" / "https"
  std::string authority;  // "host[:port]"
};

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& endpoint) {
  Endpoint e;
  absl::string_view rest(endpoint);
  if (absl::ConsumePrefix(&rest, "https://")) {
    e.scheme = "https";
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    e.scheme = "http";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 egress: endpoint \"", endpoint,
                     "\" must start with http:// or https:// (e.g. \"http://127.0.0.1:9000\")"));
  }
  absl::ConsumeSuffix(&rest, "/");
  if (rest.empty() || rest.find_first_of("/?#@ ") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 egress: endpoint \"", endpoint,
                     "\" must be scheme://host[:port] with no path, query or user"));
  }
  e.authority = std::string(rest);
  return e;
}

}  // namespace

absl::Status ValidateS3Config(const S3Config& config) {
  RETURN_IF_ERROR(ParseEndpoint(config.endpoint).status());
  if (config.bucket.empty() || config.bucket.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 egress: bucket \"", config.bucket, "\" must be a non-empty name"));
  }
  if (!config.path_style && !ValidVirtualHostBucket(config.bucket)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "S3 egress: bucket \"", config.bucket,
        "\" cannot be a host name (virtual-host addressing needs 3-63 characters of a-z 0-9 . "
        "-); use path_style: true"));
  }
  if (config.region.empty()) return absl::InvalidArgumentError("S3 egress: region is not set");
  if (config.access_key_id.empty()) {
    return absl::InvalidArgumentError("S3 egress: access_key_id is not set");
  }
  if (config.secret_access_key_file.empty()) {
    return absl::InvalidArgumentError("S3 egress: secret_access_key_file is not set");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<S3Client>> S3Client::Create(const S3Config& config,
                                                           S3ClientOptions options) {
  RETURN_IF_ERROR(ValidateS3Config(config));
  ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(config.endpoint));
  ASSIGN_OR_RETURN(std::string secret, ReadSecretFile(config.secret_access_key_file));
  auto client = std::unique_ptr<S3Client>(new S3Client(config, std::move(options), secret));
  client->scheme_ = endpoint.scheme;
  client->authority_ = endpoint.authority;
  return client;
}

namespace {
HttpOptions MakeHttpOptions(const S3Config& config, const S3ClientOptions& o) {
  HttpOptions h;
  h.connect_timeout = o.connect_timeout;
  h.stall_timeout = o.stall_timeout;
  h.resolve = config.resolve;
  h.ca_file = config.ca_file;
  h.cancel = o.cancel;
  h.on_upload_progress = o.on_upload_progress;
  return h;
}
}  // namespace

S3Client::S3Client(S3Config config, S3ClientOptions options, std::string secret)
    : config_(std::move(config)),
      options_(std::move(options)),
      http_(MakeHttpOptions(config_, options_)) {
  credentials_.access_key_id = config_.access_key_id;
  credentials_.secret_access_key = std::move(secret);
  credentials_.session_token = config_.session_token;
}

std::string S3Client::Describe(const std::string& key) const {
  return absl::StrCat("s3://", config_.bucket, "/", key);
}

std::string S3Client::HostHeader() const {
  return config_.path_style ? authority_ : absl::StrCat(config_.bucket, ".", authority_);
}

std::string S3Client::CanonicalPath(const std::string& key) const {
  if (config_.path_style) {
    return key.empty() ? absl::StrCat("/", config_.bucket)
                       : absl::StrCat("/", config_.bucket, "/", key);
  }
  return absl::StrCat("/", key);
}

std::string S3Client::UrlFor(const std::string& key, const std::string& canonical_query) const {
  std::string url = absl::StrCat(scheme_, "://", HostHeader(), CanonicalUri(CanonicalPath(key)));
  if (!canonical_query.empty()) absl::StrAppend(&url, "?", canonical_query);
  return url;
}

absl::StatusOr<HttpResponse> S3Client::SendOnce(const S3Request& request) {
  SigV4Request sr;
  sr.method = request.method;
  sr.path = CanonicalPath(request.key);
  sr.query = request.query;
  sr.headers = request.headers;
  sr.headers.emplace_back("Host", HostHeader());
  sr.payload_sha256 = request.payload_sha256;
  SigV4Result signed_request = SignV4(sr, credentials_, config_.region, options_.now());

  HttpRequest hr;
  hr.method = request.method;
  hr.url = UrlFor(request.key, CanonicalQuery(request.query));
  hr.headers = std::move(signed_request.headers);
  hr.body = request.body;
  hr.body_fd = request.body_fd;
  hr.body_offset = request.body_offset;
  hr.body_length = request.body_length;
  hr.max_response_body = request.max_response_body;
  return http_.Perform(hr);
}

absl::StatusOr<HttpResponse> S3Client::Send(const S3Request& request) {
  const int max_attempts = std::max(1, options_.retry.max_attempts);
  absl::Duration backoff = options_.retry.initial_backoff;
  const std::string what = absl::StrCat("S3 ", request.step, " ", Describe(request.key));
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<HttpResponse> r = SendOnce(request);
    absl::Status error;
    bool retry = false;
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kCancelled) {
        return absl::CancelledError(absl::StrCat(what, ": cancelled"));
      }
      retry = RetryableStatus(r.status());
      error = absl::Status(r.status().code(), absl::StrCat(what, ": ", r.status().message()));
    } else if (r->status >= 200 && r->status < 300) {
      // POST answers (CompleteMultipartUpload) may be "200 OK" with an <Error> document: S3
      // sends the status before it knows the outcome.
      std::optional<S3Error> e;
      if (request.method == "POST") e = ParseS3Error(r->body);
      if (!e) return r;
      retry = RetryableS3Code(e->code);
      error = absl::UnavailableError(
          absl::StrCat(what, ": HTTP ", r->status, " with an error: ", e->code, ": ", e->message));
    } else {
      std::optional<S3Error> e = ParseS3Error(r->body);
      std::string detail = e ? absl::StrCat(e->code, ": ", e->message)
                             : (request.method == "HEAD" ? "(a HEAD answer has no error body)"
                                                         : "(no S3 error document)");
      retry = Retryable(r->status);
      error = absl::Status(CodeForHttp(r->status),
                           absl::StrCat(what, ": HTTP ", r->status, " ", detail));
    }
    if (!retry || attempt >= max_attempts) {
      if (attempt > 1) {
        return absl::Status(error.code(),
                            absl::StrCat(error.message(), " (after ", attempt, " attempts)"));
      }
      return error;
    }
    // Backoff, interruptible by cancellation.
    const absl::Time until = absl::Now() + backoff;
    while (absl::Now() < until) {
      if (options_.cancel != nullptr && options_.cancel->cancelled()) {
        return absl::CancelledError(absl::StrCat(what, ": cancelled"));
      }
      absl::SleepFor(std::min(absl::Milliseconds(20), until - absl::Now()));
    }
    backoff = std::min(backoff * 2, options_.retry.max_backoff);
    ++retries_;
  }
}

absl::Status S3Client::CreateBucket() {
  S3Request r;
  r.step = "CreateBucket";
  r.method = "PUT";
  if (config_.region != "us-east-1") {
    r.body = absl::StrCat(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>",
        XmlEscape(config_.region), "</LocationConstraint></CreateBucketConfiguration>");
    r.payload_sha256 = HexSha256(r.body);
    r.headers.emplace_back("Content-Type", "application/xml");
  }
  return Send(r).status();
}

absl::StatusOr<std::string> S3Client::GetObject(const std::string& key, uint64_t max_size) {
  S3Request r;
  r.step = "GetObject";
  r.method = "GET";
  r.key = key;
  r.max_response_body = max_size;
  ASSIGN_OR_RETURN(HttpResponse resp, Send(r));
  return std::move(resp.body);
}

absl::StatusOr<std::vector<std::string>> S3Client::ListMultipartUploads(
    const std::string& key_prefix) {
  S3Request r;
  r.step = "ListMultipartUploads";
  r.method = "GET";
  r.query = {{"uploads", ""}, {"prefix", key_prefix}};
  ASSIGN_OR_RETURN(HttpResponse resp, Send(r));
  std::vector<std::string> ids;
  size_t pos = 0;
  for (;;) {
    const size_t b = resp.body.find("<Upload>", pos);
    if (b == std::string::npos) break;
    const size_t e = resp.body.find("</Upload>", b);
    if (e == std::string::npos) break;
    const std::string upload = resp.body.substr(b, e - b);
    if (auto id = XmlElementText(upload, "UploadId")) ids.push_back(*id);
    pos = e;
  }
  return ids;
}

}  // namespace clrdiag::egress
