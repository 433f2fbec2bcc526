// Uploads one local file (a dump) to S3 or an S3-compatible store and verifies it arrived whole.
//
// The whole API for the rules engine's egress:
//
//   egress::S3Config cfg = ...;              // from the `egress: <name>: {type: s3}` entry
//   cfg.prefix = *ExpandEgressPrefix(entry.prefix, values);   // core/base/egress_prefix.h
//   egress::S3UploadOptions opt;             // defaults are sensible for real stores
//   opt.cancel = &token;                     // daemon shutdown
//   auto r = egress::UploadFileToS3(cfg, dump_path, "dump-1234.dmp", opt);
//   if (!r.ok()) { /* the dump stays in the catalog, marked; r.status().message() says why */ }
//
// The call blocks (seconds to minutes): run it on a worker thread. It reads the file a part at a
// time (twice: once to hash, once to send), so memory use does not depend on the dump's size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/cancel.h"
#include "core/egress/s3_client.h"

namespace clrdiag::egress {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
// S3's limit on the number of parts of one multipart upload.
inline constexpr uint64_t kMaxMultipartParts = 10000;

struct S3UploadProgress {
  uint64_t bytes_sent = 0;  // of the file, including the current part's bytes in flight
  uint64_t total = 0;       // file size
  int part = 0;             // 1-based; 0 for a single PUT
  int parts = 0;            // 0 for a single PUT
};

struct S3UploadOptions {
  // Files of this size or more go up as a multipart upload; smaller ones in one PUT.
  uint64_t multipart_threshold = 64 * kMiB;
  // Part size of a multipart upload; raised to ceil(size / 10000) when smaller, so that a file
  // never needs more than 10,000 parts. S3 wants at least 5 MiB for every part but the last;
  // a smaller value is for stores configured otherwise (and tests).
  uint64_t part_size = 16 * kMiB;
  S3RetryPolicy retry;  // per request (each part is retried on its own)
  absl::Duration connect_timeout = absl::Seconds(10);
  // A request during which no byte moves (either way) for this long fails and is retried.
  absl::Duration stall_timeout = absl::Seconds(60);
  // After the upload, HEAD the object and fail with DataLoss unless its size is the file's and
  // its ETag is the MD5 computed while reading (single PUT) or the MD5 of the parts' MD5s with
  // "-<parts>" (multipart). Turn off only for stores whose ETags are not MD5s (e.g. AWS objects
  // encrypted with SSE-KMS); each part's ETag is still checked against its MD5.
  bool verify = true;
  std::string content_type = "application/octet-stream";
  // Called from the uploading thread as bytes go out (at least once per part).
  std::function<void(const S3UploadProgress&)> progress;
  // Checked during transfers, between parts and during backoff: the upload stops with
  // Cancelled (and a multipart upload is aborted).
  const CancellationToken* cancel = nullptr;
};

struct S3UploadResult {
  std::string bucket;
  std::string key;   // the full object key: config.prefix + key
  std::string url;   // where it is, e.g. http://127.0.0.1:9000/dumps/shop/dump-1234.dmp
  std::string etag;  // without quotes
  uint64_t size = 0;
  bool multipart = false;
  int parts = 0;           // 0 for a single PUT
  uint64_t part_size = 0;  // the effective part size; 0 for a single PUT
  int retries = 0;         // requests retried (all steps)
  bool verified = false;   // HEAD checked size and ETag
  absl::Duration elapsed;
};

// Uploads `local_path` to s3://<config.bucket>/<config.prefix><key>. Errors name the step
// (PutObject, CreateMultipartUpload, UploadPart N/M, CompleteMultipartUpload, HeadObject), the
// object, and the HTTP status with S3's error Code and Message, or the transport failure and the
// number of attempts. On any failure after a multipart upload was created it is aborted (and a
// failed abort is reported in the message). Never includes the secret key in any message.
absl::StatusOr<S3UploadResult> UploadFileToS3(const S3Config& config, const std::string& local_path,
                                              const std::string& key,
                                              const S3UploadOptions& options);

// The part size used for a file of `size` bytes when `requested` is asked for: at least
// ceil(size / 10000) (S3's part count limit) and at least 1.
uint64_t EffectivePartSize(uint64_t size, uint64_t requested);

// The ETag S3 gives a multipart object: hex MD5 of the concatenated binary part MD5s, "-N".
// `part_md5s` are the parts' binary (16-byte) digests in order.
std::string MultipartEtag(const std::string& concatenated_part_md5s, int parts);

}  // namespace clrdiag::egress
