// S3 (and S3-compatible: MinIO, Ceph, moto, ...) requests over HTTP(S) with SigV4 signing,
// bounded retries with exponential backoff, and error messages that name the step, the HTTP
// status and S3's own error Code and Message. The upload itself is in s3_upload.h; this is the
// layer under it (and what tests use to create buckets and read objects back).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/cancel.h"
#include "core/egress/http.h"
#include "core/egress/s3_xml.h"
#include "core/egress/sigv4.h"

namespace clrdiag::egress {

// Where and as whom. Mirrors the `egress: <name>: { type: s3, ... }` config entry.
struct S3Config {
  // "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com" (scheme, host, optional
  // port; no path).
  std::string endpoint;
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key_id;
  // The secret access key is read from this file (surrounding whitespace trimmed) when a client
  // is made; its value is never logged nor put in an error message.
  std::string secret_access_key_file;
  std::string session_token;  // optional (temporary credentials)
  // true: <endpoint>/<bucket>/<key> (MinIO, moto, most on-premises stores).
  // false: virtual-hosted <scheme>://<bucket>.<endpoint host>/<key> (AWS's default).
  bool path_style = true;
  // Prepended verbatim to every object key; already expanded by the caller
  // (core/base/egress_prefix.h), e.g. "shop/shop-7d9f/".
  std::string prefix;
  // PEM CA bundle for https endpoints; empty: the system's.
  std::string ca_file;
  // Like curl --resolve ("host:port:address"): names that bypass DNS, e.g. the virtual-host
  // name "dumps.localhost:9000:127.0.0.1" of a local store.
  std::vector<std::string> resolve;
};

// Checks the config's shape (endpoint form, bucket name for the addressing style, required
// fields) without touching the secret file or the network: for config checking
// (--check-config). InvalidArgument naming the field.
absl::Status ValidateS3Config(const S3Config& config);

struct S3RetryPolicy {
  // Attempts per request, the first included (1 = no retry). Retried: transport errors
  // (connect, reset, timeouts), HTTP 5xx, 408 and 429, and S3's "200 with <Error>" answers
  // of kind InternalError/SlowDown. Never other 4xx.
  int max_attempts = 5;
  absl::Duration initial_backoff = absl::Milliseconds(200);  // doubled after each failure
  absl::Duration max_backoff = absl::Seconds(10);
};

struct S3ClientOptions {
  S3RetryPolicy retry;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration stall_timeout = absl::Seconds(60);  // no byte moved for this long: retry
  const CancellationToken* cancel = nullptr;         // checked during transfers and backoff
  // Bytes of the current request body sent so far (for progress reporting).
  std::function<void(uint64_t)> on_upload_progress;
  // The signing clock (tests).
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

// One S3 request, before signing. Path and query are decoded; the client adds bucket
// addressing, host, signature.
struct S3Request {
  std::string step;    // for messages: "PutObject", "UploadPart 3/7", ...
  std::string method;  // PUT POST GET HEAD DELETE
  std::string key;     // object key (prefix not added here); "" for bucket-level requests
  std::vector<std::pair<std::string, std::string>> query;
  HeaderList headers;
  std::string body;  // or body_fd/offset/length as in HttpRequest
  int body_fd = -1;
  uint64_t body_offset = 0;
  uint64_t body_length = 0;
  std::string payload_sha256 = kEmptyPayloadSha256;
  uint64_t max_response_body = 4 << 20;
};

class S3Client {
 public:
  // Reads the secret file and checks the config (endpoint form, bucket name).
  static absl::StatusOr<std::unique_ptr<S3Client>> Create(const S3Config& config,
                                                          S3ClientOptions options);

  // Sends with retries. A 2xx answer is returned; anything else is an error status whose
  // message names the step, the object, the HTTP status and S3's Code and Message, e.g.
  //   S3 PutObject s3://dumps/a.dmp: HTTP 404 NoSuchBucket: The specified bucket does not exist
  // Codes: NotFound (404), PermissionDenied (403), InvalidArgument/FailedPrecondition (other
  // 4xx), Unavailable/DeadlineExceeded (transport, 5xx after the last attempt), Cancelled.
  absl::StatusOr<HttpResponse> Send(const S3Request& request);

  // Simple operations (tests and checks use them; the upload has its own in s3_upload.cc).
  absl::Status CreateBucket();
  absl::StatusOr<std::string> GetObject(const std::string& key, uint64_t max_size);
  // Upload ids of multipart uploads in progress for keys starting with `key_prefix`.
  absl::StatusOr<std::vector<std::string>> ListMultipartUploads(const std::string& key_prefix);

  // "s3://bucket/key" for messages.
  std::string Describe(const std::string& key) const;
  // The URL a request for `key` goes to (encoded), and its Host header value.
  std::string UrlFor(const std::string& key, const std::string& canonical_query) const;
  std::string HostHeader() const;
  std::string CanonicalPath(const std::string& key) const;  // decoded path as signed
  // Requests retried so far by this client (all steps).
  int retries() const { return retries_; }
  const S3Config& config() const { return config_; }

 private:
  S3Client(S3Config config, S3ClientOptions options, std::string secret);
  absl::StatusOr<HttpResponse> SendOnce(const S3Request& request);

  S3Config config_;
  S3ClientOptions options_;
  SigV4Credentials credentials_;
  std::string scheme_;     // "http" / "https"
  std::string authority_;  // "host[:port]" of the endpoint
  HttpClient http_;
  int retries_ = 0;
};

}  // namespace clrdiag::egress
