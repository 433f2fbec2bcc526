// libFuzzer target: the XML readers that see S3 answers (bytes from the network).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/egress/s3_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace eg = clrdiag::egress;
  const std::string body(reinterpret_cast<const char*>(data), size);
  (void)eg::ParseS3Error(body);
  for (const char* tag : {"UploadId", "ETag", "Code", "Message", "Key"}) {
    std::optional<std::string> text = eg::XmlElementText(body, tag);
    // Decoding never makes text longer than its source.
    if (text && text->size() > body.size()) __builtin_trap();
  }
  // Escaped text reads back as itself.
  const std::string wrapped = "<ETag>" + eg::XmlEscape(body) + "</ETag>";
  std::optional<std::string> back = eg::XmlElementText(wrapped, "ETag");
  if (!back || *back != body) __builtin_trap();
  return 0;
}
