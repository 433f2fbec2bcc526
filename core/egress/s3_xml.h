// The little XML the S3 egress reads (error documents, UploadId, ETags) and writes
// (CompleteMultipartUpload). Not a general XML parser: S3 answers are flat and small. The input
// comes from the network, so it is fuzzed (s3_xml_fuzz.cc).
#pragma once

#include <optional>
#include <string>

namespace clrdiag::egress {

struct S3Error {
  std::string code;  // "NoSuchBucket"
  std::string message;
};

// Parses an S3 error document (<Error><Code>..</Code><Message>..</Message></Error>); nullopt if
// `body` holds no <Error> element.
std::optional<S3Error> ParseS3Error(const std::string& body);
// Text of the first <tag>...</tag> in `xml`, XML entities decoded; nullopt if absent.
std::optional<std::string> XmlElementText(const std::string& xml, const std::string& tag);
// Escapes & < > " ' for XML text.
std::string XmlEscape(const std::string& s);

}  // namespace clrdiag::egress
