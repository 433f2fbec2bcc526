#include "core/egress/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace clrdiag::egress {
namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State of one transfer, shared with curl's callbacks.
struct Transfer {
  const HttpRequest* request = nullptr;
  const HttpOptions* options = nullptr;
  uint64_t sent = 0;  // body bytes handed to curl
  int read_errno = 0;
  bool body_too_long = false;
  bool cancelled = false;
  bool stalled = false;
  // Stall detection: when the byte counts last moved.
  curl_off_t last_ul = -1;
  curl_off_t last_dl = -1;
  absl::Time last_move = absl::Now();
  HttpResponse response;
};

size_t ReadBody(char* buf, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const HttpRequest& r = *t->request;
  const uint64_t total = r.body_fd >= 0 ? r.body_length : r.body.size();
  const uint64_t want = std::min<uint64_t>(size * nitems, total - t->sent);
  if (want == 0) return 0;
  if (r.body_fd < 0) {
    std::memcpy(buf, r.body.data() + t->sent, want);
    t->sent += want;
    return want;
  }
  ssize_t n;
  do {
    n = ::pread(r.body_fd, buf, want, static_cast<off_t>(r.body_offset + t->sent));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    t->read_errno = errno;
    return CURL_READFUNC_ABORT;
  }
  if (n == 0) {  // the file shrank under us
    t->read_errno = EIO;
    return CURL_READFUNC_ABORT;
  }
  t->sent += static_cast<uint64_t>(n);
  return static_cast<size_t>(n);
}

int SeekBody(void* userdata, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(userdata);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  t->sent = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nmemb;
  if (t->response.body.size() + n > t->request->max_response_body) {
    t->body_too_long = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  t->response.body.append(ptr, n);
  return n;
}

size_t OnHeader(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nitems;
  absl::string_view line(buffer, n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->response.headers.clear();  // a new response (after "100 Continue", say)
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  t->response.headers.emplace_back(
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
      std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return n;
}

// Called by curl at least about once a second, also while nothing moves.
int OnProgress(void* userdata, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->options->cancel != nullptr && t->options->cancel->cancelled()) {
    t->cancelled = true;
    return 1;
  }
  const absl::Time now = absl::Now();
  if (ulnow != t->last_ul || dlnow != t->last_dl) {
    t->last_ul = ulnow;
    t->last_dl = dlnow;
    t->last_move = now;
  } else if (now - t->last_move >= t->options->stall_timeout) {
    t->stalled = true;
    return 1;
  }
  if (t->options->on_upload_progress && ulnow > 0) {
    t->options->on_upload_progress(static_cast<uint64_t>(ulnow));
  }
  return 0;
}

absl::Status CurlError(CURLcode code, const char* errbuf, const std::string& url) {
  std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  std::string msg = absl::StrCat(url, ": ", detail);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(msg);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(msg);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return absl::UnavailableError(msg);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return absl::FailedPreconditionError(absl::StrCat(msg, " (TLS verification)"));
    default:
      return absl::UnavailableError(msg);
  }
}

}  // namespace

std::string HttpResponse::Header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return "";
}

struct HttpClient::Impl {
  HttpOptions options;
  CURL* curl = nullptr;
  curl_slist* resolve = nullptr;
};

HttpClient::HttpClient(HttpOptions options) : impl_(std::make_unique<Impl>()) {
  GlobalInitOnce();
  impl_->options = std::move(options);
  impl_->curl = curl_easy_init();
  for (const std::string& r : impl_->options.resolve) {
    impl_->resolve = curl_slist_append(impl_->resolve, r.c_str());
  }
}

HttpClient::~HttpClient() {
  if (impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
  curl_slist_free_all(impl_->resolve);
}

absl::StatusOr<HttpResponse> HttpClient::Perform(const HttpRequest& request) {
  CURL* c = impl_->curl;
  if (c == nullptr) return absl::InternalError("curl_easy_init failed");
  const HttpOptions& o = impl_->options;
  if (o.cancel != nullptr && o.cancel->cancelled()) {
    return absl::CancelledError(absl::StrCat(request.method, " ", request.url, ": cancelled"));
  }
  curl_easy_reset(c);  // keeps the connection cache

  Transfer t;
  t.request = &request;
  t.options = &o;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(o.connect_timeout)));
  // (No CURLOPT_LOW_SPEED_*: curl averages the speed over several seconds, so a stall would be
  // noticed up to ~5 s late. OnProgress watches the byte counts instead.)
  if (impl_->resolve != nullptr) curl_easy_setopt(c, CURLOPT_RESOLVE, impl_->resolve);
  if (!o.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

  const uint64_t body_size = request.body_fd >= 0 ? request.body_length : request.body.size();
  if (request.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
  } else if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_size));
  } else if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, SeekBody);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  }

  curl_slist* headers = nullptr;
  bool has_content_type = false;
  for (const auto& [k, v] : request.headers) {
    if (absl::EqualsIgnoreCase(k, "content-type")) has_content_type = true;
    headers = curl_slist_append(
        headers, (v.empty() ? absl::StrCat(k, ";") : absl::StrCat(k, ": ", v)).c_str());
  }
  // No "Expect: 100-continue" round trip before large bodies, and no form content type that
  // curl would otherwise add to a POST.
  headers = curl_slist_append(headers, "Expect:");
  if (!has_content_type) headers = curl_slist_append(headers, "Content-Type:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    if (t.stalled) {
      return absl::DeadlineExceededError(
          absl::StrCat(request.method, " ", request.url, ": no byte moved for ",
                       absl::FormatDuration(o.stall_timeout), " (stall timeout)"));
    }
    if (t.cancelled || rc == CURLE_ABORTED_BY_CALLBACK) {
      return absl::CancelledError(absl::StrCat(request.method, " ", request.url, ": cancelled"));
    }
    if (t.body_too_long) {
      return absl::ResourceExhaustedError(
          absl::StrCat(request.url, ": response body over ", request.max_response_body, " bytes"));
    }
    if (t.read_errno != 0) {
      return absl::DataLossError(absl::StrCat("reading the upload body at offset ",
                                              request.body_offset + t.sent, ": ",
                                              std::strerror(t.read_errno)));
    }
    return CurlError(rc, errbuf, request.url);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.response.status);
  return std::move(t.response);
}

}  // namespace clrdiag::egress
