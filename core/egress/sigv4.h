// AWS Signature Version 4 for S3 requests (the Authorization header form, payload signed as one
// chunk or UNSIGNED-PAYLOAD), written against the AWS S3 documentation: canonical request,
// string to sign, HMAC-SHA256 key derivation. No network, no clock: the caller passes the time.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace clrdiag::egress {

struct SigV4Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  // Temporary credentials only (STS): sent and signed as x-amz-security-token when not empty.
  std::string session_token;
};

// One request to sign. The path is given decoded ("/bucket/a b.dmp"); the signer encodes it
// (S3 rules: every byte but A-Z a-z 0-9 - _ . ~ and '/', once, no dot-segment normalization)
// and the same encoded form must be what goes on the wire (see CanonicalUri).
struct SigV4Request {
  std::string method;  // "PUT", "GET", ...
  std::string path;    // decoded, starting with '/'
  // Query parameters, decoded; a valueless one ("?uploads") has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign and send, any case; must include "host". x-amz-date, x-amz-content-sha256
  // and (with a session token) x-amz-security-token are added by SignV4.
  std::vector<std::pair<std::string, std::string>> headers;
  // Lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD".
  std::string payload_sha256;
};

struct SigV4Result {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-content-sha256;x-amz-date"
  std::string signature;       // lower-case hex
  std::string authorization;   // the Authorization header's value
  // Every header to send: the request's own, the added x-amz-* ones and Authorization.
  std::vector<std::pair<std::string, std::string>> headers;
};

inline constexpr char kEmptyPayloadSha256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr char kUnsignedPayload[] = "UNSIGNED-PAYLOAD";

// Percent-encodes every byte except A-Z a-z 0-9 - _ . ~ (and '/' when keep_slash), upper-case hex.
std::string UriEncode(std::string_view s, bool keep_slash);
// The path as signed and as sent: UriEncode(path, /*keep_slash=*/true).
std::string CanonicalUri(std::string_view path);
// "a=1&b=x%2Fy&uploads=": names and values encoded, sorted by name then value.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);
// "20130524T000000Z".
std::string AmzDate(absl::Time t);

// Signs for service "s3" in `region` at time `now`.
SigV4Result SignV4(const SigV4Request& request, const SigV4Credentials& credentials,
                   const std::string& region, absl::Time now);

// Lower-case hex helpers over OpenSSL, used by the signer and the uploader.
std::string HexSha256(std::string_view data);
std::string HexEncode(std::string_view bytes);

}  // namespace clrdiag::egress
