#include "core/egress/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clrdiag::egress {
namespace {

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

// Header values are signed trimmed, with inner runs of spaces reduced to one.
std::string TrimHeaderValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : absl::StripAsciiWhitespace(absl::string_view(v.data(), v.size()))) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

std::string HexSha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), n));
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view path) {
  return path.empty() ? std::string("/") : UriEncode(path, /*keep_slash=*/true);
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(enc.begin(), enc.end());
  std::vector<std::string> parts;
  parts.reserve(enc.size());
  for (const auto& [k, v] : enc) parts.push_back(absl::StrCat(k, "=", v));
  return absl::StrJoin(parts, "&");
}

std::string AmzDate(absl::Time t) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone());
}

SigV4Result SignV4(const SigV4Request& request, const SigV4Credentials& credentials,
                   const std::string& region, absl::Time now) {
  SigV4Result r;
  const std::string amz_date = AmzDate(now);
  const std::string day = amz_date.substr(0, 8);

  r.headers = request.headers;
  r.headers.emplace_back("x-amz-date", amz_date);
  r.headers.emplace_back("x-amz-content-sha256", request.payload_sha256);
  if (!credentials.session_token.empty()) {
    r.headers.emplace_back("x-amz-security-token", credentials.session_token);
  }

  // Lower-cased names, sorted; repeated names are joined with ',' in the order given.
  std::vector<std::pair<std::string, std::string>> canon;
  for (const auto& [name, value] : r.headers) {
    canon.emplace_back(absl::AsciiStrToLower(absl::string_view(name.data(), name.size())),
                       TrimHeaderValue(value));
  }
  std::stable_sort(canon.begin(), canon.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers;
  std::vector<std::string> names;
  for (size_t i = 0; i < canon.size(); ++i) {
    if (!names.empty() && names.back() == canon[i].first) {
      canonical_headers.pop_back();  // the '\n'
      absl::StrAppend(&canonical_headers, ",", canon[i].second, "\n");
      continue;
    }
    names.push_back(canon[i].first);
    absl::StrAppend(&canonical_headers, canon[i].first, ":", canon[i].second, "\n");
  }
  r.signed_headers = absl::StrJoin(names, ";");

  r.canonical_request = absl::StrCat(request.method, "\n", CanonicalUri(request.path), "\n",
                                     CanonicalQuery(request.query), "\n", canonical_headers, "\n",
                                     r.signed_headers, "\n", request.payload_sha256);
  const std::string scope = absl::StrCat(day, "/", region, "/s3/aws4_request");
  r.string_to_sign = absl::StrCat("AWS4-HMAC-SHA256\n", amz_date, "\n", scope, "\n",
                                  HexSha256(r.canonical_request));

  std::string key = HmacSha256(absl::StrCat("AWS4", credentials.secret_access_key), day);
  key = HmacSha256(key, region);
  key = HmacSha256(key, "s3");
  key = HmacSha256(key, "aws4_request");
  r.signature = HexEncode(HmacSha256(key, r.string_to_sign));
  r.authorization =
      absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/", scope,
                   ",SignedHeaders=", r.signed_headers, ",Signature=", r.signature);
  r.headers.emplace_back("Authorization", r.authorization);
  return r;
}

}  // namespace clrdiag::egress
