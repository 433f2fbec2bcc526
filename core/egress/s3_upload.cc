#include "core/egress/s3_upload.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/status_macros.h"
#include "core/base/unique_fd.h"

namespace clrdiag::egress {
namespace {

// S3's limit on object key length (bytes).
constexpr size_t kMaxKeyBytes = 1024;
// Read buffer of the hashing pass.
constexpr size_t kHashBufferBytes = 1 << 20;

struct RangeDigests {
  std::string sha256_hex;
  std::string md5;  // binary, 16 bytes
};

std::string Md5Of(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<const char*>(md), n);
}

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// SHA-256 (for the signature) and MD5 (for the ETag check) of a byte range of the file.
absl::StatusOr<RangeDigests> HashRange(int fd, uint64_t offset, uint64_t length,
                                       const std::string& path, const CancellationToken* cancel) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md5(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  EVP_DigestInit_ex(md5.get(), EVP_md5(), nullptr);
  std::vector<char> buf(std::min<uint64_t>(kHashBufferBytes, std::max<uint64_t>(length, 1)));
  uint64_t done = 0;
  while (done < length) {
    if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("cancelled");
    const size_t want = std::min<uint64_t>(buf.size(), length - done);
    const ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("reading ", path, " at offset ", offset + done));
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat(path, " shrank while uploading (offset ", offset + done, ")"));
    }
    EVP_DigestUpdate(sha.get(), buf.data(), static_cast<size_t>(n));
    EVP_DigestUpdate(md5.get(), buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  RangeDigests d;
  EVP_DigestFinal_ex(sha.get(), md, &len);
  d.sha256_hex = HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
  EVP_DigestFinal_ex(md5.get(), md, &len);
  d.md5.assign(reinterpret_cast<const char*>(md), len);
  return d;
}

std::string Unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// Shared with the HTTP progress hook: where in the file the current request body starts and
// ends. Reports never go backwards (a retried part restarts at 0 bytes in flight; XML bodies of
// other requests are not file bytes).
struct ProgressState {
  const S3UploadOptions* options = nullptr;
  uint64_t base = 0;
  uint64_t limit = 0;
  uint64_t total = 0;
  uint64_t reported = 0;
  int part = 0;
  int parts = 0;
  void Report(uint64_t in_flight) {
    const uint64_t v = std::min(base + in_flight, limit);
    if (v < reported || !options->progress) return;
    reported = v;
    options->progress({v, total, part, parts});
  }
};

class Uploader {
 public:
  Uploader(const S3UploadOptions& options, std::string path, int fd, uint64_t size)
      : options_(options), path_(std::move(path)), fd_(fd), size_(size) {}

  absl::Status Init(const S3Config& config) {
    progress_.options = &options_;
    progress_.total = size_;
    S3ClientOptions co;
    co.retry = options_.retry;
    co.connect_timeout = options_.connect_timeout;
    co.stall_timeout = options_.stall_timeout;
    co.cancel = options_.cancel;
    co.on_upload_progress = [this](uint64_t n) { progress_.Report(n); };
    ASSIGN_OR_RETURN(client_, S3Client::Create(config, co));
    return absl::OkStatus();
  }

  S3Client& client() { return *client_; }

  absl::StatusOr<std::string> PutSingle(const std::string& key) {
    ASSIGN_OR_RETURN(RangeDigests d, Hash(0, size_, "PutObject", key));
    progress_.base = 0;
    progress_.limit = size_;
    S3Request r;
    r.step = "PutObject";
    r.method = "PUT";
    r.key = key;
    r.headers = {{"Content-Type", options_.content_type}, {"Content-MD5", Base64(d.md5)}};
    r.body_fd = fd_;
    r.body_offset = 0;
    r.body_length = size_;
    r.payload_sha256 = d.sha256_hex;
    ASSIGN_OR_RETURN(HttpResponse resp, client_->Send(r));
    progress_.Report(size_);
    const std::string etag = Unquote(resp.Header("etag"));
    const std::string want = HexEncode(d.md5);
    if (!etag.empty() && etag != want) {
      return absl::DataLossError(absl::StrCat("S3 PutObject ", client_->Describe(key),
                                              ": the store's ETag ", etag,
                                              " is not the MD5 of the file sent (", want, ")"));
    }
    return want;
  }

  // Returns the expected object ETag; aborts the upload on failure.
  absl::StatusOr<std::string> PutMultipart(const std::string& key, uint64_t part_size, int parts) {
    ASSIGN_OR_RETURN(std::string upload_id, CreateUpload(key));
    absl::StatusOr<std::string> etag = UploadParts(key, upload_id, part_size, parts);
    if (!etag.ok()) {
      absl::Status abort = Abort(key, upload_id);
      if (!abort.ok()) {
        return absl::Status(
            etag.status().code(),
            absl::StrCat(etag.status().message(), "; the abort of upload ", upload_id,
                         " failed too (", abort.message(),
                         "): its parts stay stored until a lifecycle rule removes them"));
      }
      return absl::Status(etag.status().code(),
                          absl::StrCat(etag.status().message(), " (multipart upload aborted)"));
    }
    return etag;
  }

 private:
  absl::StatusOr<RangeDigests> Hash(uint64_t offset, uint64_t length, const std::string& step,
                                    const std::string& key) {
    absl::StatusOr<RangeDigests> d = HashRange(fd_, offset, length, path_, options_.cancel);
    if (!d.ok()) {
      return absl::Status(d.status().code(), absl::StrCat("S3 ", step, " ", client_->Describe(key),
                                                          ": ", d.status().message()));
    }
    return d;
  }

  absl::StatusOr<std::string> CreateUpload(const std::string& key) {
    S3Request r;
    r.step = "CreateMultipartUpload";
    r.method = "POST";
    r.key = key;
    r.query = {{"uploads", ""}};
    r.headers = {{"Content-Type", options_.content_type}};
    ASSIGN_OR_RETURN(HttpResponse resp, client_->Send(r));
    std::optional<std::string> id = XmlElementText(resp.body, "UploadId");
    if (!id || id->empty()) {
      return absl::InternalError(
          absl::StrCat("S3 CreateMultipartUpload ", client_->Describe(key),
                       ": the answer has no UploadId: ", resp.body.substr(0, 200)));
    }
    return *id;
  }

  absl::StatusOr<std::string> UploadParts(const std::string& key, const std::string& upload_id,
                                          uint64_t part_size, int parts) {
    progress_.parts = parts;
    std::string complete =
        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    std::string all_md5s;
    for (int n = 1; n <= parts; ++n) {
      const uint64_t offset = static_cast<uint64_t>(n - 1) * part_size;
      const uint64_t length = std::min(part_size, size_ - offset);
      const std::string step = absl::StrCat("UploadPart ", n, "/", parts);
      if (options_.cancel != nullptr && options_.cancel->cancelled()) {
        return absl::CancelledError(
            absl::StrCat("S3 ", step, " ", client_->Describe(key), ": cancelled"));
      }
      ASSIGN_OR_RETURN(RangeDigests d, Hash(offset, length, step, key));
      progress_.base = offset;
      progress_.limit = offset + length;
      progress_.part = n;
      S3Request r;
      r.step = step;
      r.method = "PUT";
      r.key = key;
      r.query = {{"partNumber", absl::StrCat(n)}, {"uploadId", upload_id}};
      r.headers = {{"Content-MD5", Base64(d.md5)}};
      r.body_fd = fd_;
      r.body_offset = offset;
      r.body_length = length;
      r.payload_sha256 = d.sha256_hex;
      ASSIGN_OR_RETURN(HttpResponse resp, client_->Send(r));
      progress_.Report(length);
      const std::string etag = Unquote(resp.Header("etag"));
      const std::string want = HexEncode(d.md5);
      if (etag != want) {
        return absl::DataLossError(absl::StrCat("S3 ", step, " ", client_->Describe(key),
                                                ": the store's ETag \"", etag,
                                                "\" is not the MD5 of the part sent (", want, ")"));
      }
      all_md5s += d.md5;
      absl::StrAppend(&complete, "<Part><PartNumber>", n, "</PartNumber><ETag>",
                      XmlEscape(absl::StrCat("\"", etag, "\"")), "</ETag></Part>");
    }
    complete += "</CompleteMultipartUpload>";

    S3Request r;
    r.step = "CompleteMultipartUpload";
    r.method = "POST";
    r.key = key;
    r.query = {{"uploadId", upload_id}};
    r.headers = {{"Content-Type", "application/xml"}};
    r.body = complete;
    r.payload_sha256 = HexSha256(complete);
    ASSIGN_OR_RETURN(HttpResponse resp, client_->Send(r));
    // AWS answers <CompleteMultipartUploadResult>, moto <CompleteMultipartUploadResponse>.
    if (resp.body.find("<CompleteMultipartUpload") == std::string::npos) {
      return absl::InternalError(absl::StrCat("S3 CompleteMultipartUpload ", client_->Describe(key),
                                              ": unexpected answer: ", resp.body.substr(0, 200)));
    }
    return MultipartEtag(all_md5s, parts);
  }

  // Sent even after a cancellation (by a client of its own, without the token), so the store
  // does not keep the parts.
  absl::Status Abort(const std::string& key, const std::string& upload_id) {
    S3ClientOptions co;
    co.retry = options_.retry;
    co.connect_timeout = options_.connect_timeout;
    co.stall_timeout = options_.stall_timeout;
    ASSIGN_OR_RETURN(auto aborter, S3Client::Create(client_->config(), co));
    S3Request r;
    r.step = "AbortMultipartUpload";
    r.method = "DELETE";
    r.key = key;
    r.query = {{"uploadId", upload_id}};
    return aborter->Send(r).status();
  }

  const S3UploadOptions& options_;
  std::string path_;
  int fd_;
  uint64_t size_;
  ProgressState progress_;
  std::unique_ptr<S3Client> client_;
};

}  // namespace

uint64_t EffectivePartSize(uint64_t size, uint64_t requested) {
  const uint64_t min_part = (size + kMaxMultipartParts - 1) / kMaxMultipartParts;
  return std::max({requested, min_part, uint64_t{1}});
}

std::string MultipartEtag(const std::string& concatenated_part_md5s, int parts) {
  return absl::StrCat(HexEncode(Md5Of(concatenated_part_md5s)), "-", parts);
}

absl::StatusOr<S3UploadResult> UploadFileToS3(const S3Config& config, const std::string& local_path,
                                              const std::string& key,
                                              const S3UploadOptions& options) {
  const absl::Time start = absl::Now();
  const std::string full_key = config.prefix + key;
  if (key.empty() || absl::EndsWith(full_key, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 egress: object key \"", full_key, "\" must name an object"));
  }
  if (full_key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("S3 egress: object key is ", full_key.size(),
                                                   " bytes; S3 allows ", kMaxKeyBytes));
  }
  UniqueFd fd(::open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("S3 egress: open ", local_path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("S3 egress: stat ", local_path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("S3 egress: ", local_path, " is not a regular file"));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  Uploader up(options, local_path, fd.get(), size);
  RETURN_IF_ERROR(up.Init(config));
  S3UploadResult result;
  result.bucket = config.bucket;
  result.key = full_key;
  result.size = size;
  result.url = up.client().UrlFor(full_key, "");

  std::string expected_etag;
  if (size < std::max<uint64_t>(options.multipart_threshold, 1)) {
    ASSIGN_OR_RETURN(expected_etag, up.PutSingle(full_key));
  } else {
    const uint64_t part_size = EffectivePartSize(size, options.part_size);
    const int parts = static_cast<int>((size + part_size - 1) / part_size);
    result.multipart = true;
    result.parts = parts;
    result.part_size = part_size;
    ASSIGN_OR_RETURN(expected_etag, up.PutMultipart(full_key, part_size, parts));
  }
  result.etag = expected_etag;

  if (options.verify) {
    S3Request head;
    head.step = "HeadObject (verification)";
    head.method = "HEAD";
    head.key = full_key;
    ASSIGN_OR_RETURN(HttpResponse resp, up.client().Send(head));
    const std::string got_len = resp.Header("content-length");
    const std::string got_etag = Unquote(resp.Header("etag"));
    if (got_len != absl::StrCat(size)) {
      return absl::DataLossError(absl::StrCat("S3 verification of ", up.client().Describe(full_key),
                                              ": the object has ", got_len, " bytes, the file ",
                                              size));
    }
    if (got_etag != expected_etag) {
      return absl::DataLossError(absl::StrCat("S3 verification of ", up.client().Describe(full_key),
                                              ": the object's ETag is \"", got_etag,
                                              "\", the file's \"", expected_etag, "\""));
    }
    result.verified = true;
  }
  result.retries = up.client().retries();
  result.elapsed = absl::Now() - start;
  return result;
}

}  // namespace clrdiag::egress
