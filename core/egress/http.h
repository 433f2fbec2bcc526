// A small blocking HTTP/1.1 client on libcurl, for the S3 egress: one request at a time on one
// connection (kept alive between requests), request bodies streamed from a string or from a
// byte range of a file, cancellation and upload progress through callbacks.
// Private to core/egress.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/cancel.h"

namespace clrdiag::egress {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // GET HEAD PUT POST DELETE
  std::string url;     // already encoded
  HeaderList headers;  // sent as given (a "Host" header here replaces curl's own)
  // The body: `body`, or when body_fd >= 0, body_length bytes of that file from body_offset.
  std::string body;
  int body_fd = -1;
  uint64_t body_offset = 0;
  uint64_t body_length = 0;
  // A response body longer than this is an error (S3 answers are small XML documents).
  uint64_t max_response_body = 4 << 20;
};

struct HttpResponse {
  long status = 0;
  HeaderList headers;  // names lower-cased
  std::string body;
  // The first header of that (lower-case) name, or "".
  std::string Header(const std::string& lower_name) const;
};

struct HttpOptions {
  absl::Duration connect_timeout = absl::Seconds(10);
  // A request that moves no byte for this long fails with DeadlineExceeded.
  absl::Duration stall_timeout = absl::Seconds(60);
  // Like curl --resolve: "host:port:address" entries that bypass DNS.
  std::vector<std::string> resolve;
  std::string ca_file;  // PEM bundle for https; empty: the system's
  const CancellationToken* cancel = nullptr;
  // Bytes of the current request body sent so far.
  std::function<void(uint64_t)> on_upload_progress;
};

// Transport errors are statuses: Unavailable (cannot connect, connection reset, send/receive
// failures), DeadlineExceeded (connect or stall timeout), Cancelled, InvalidArgument (bad URL),
// ResourceExhausted (response body too long). Any HTTP status is a response, not an error.
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  absl::StatusOr<HttpResponse> Perform(const HttpRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clrdiag::egress
