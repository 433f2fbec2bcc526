#include "core/egress/s3_xml.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace clrdiag::egress {

std::optional<std::string> XmlElementText(const std::string& xml, const std::string& tag) {
  const std::string open = absl::StrCat("<", tag, ">");
  const std::string close = absl::StrCat("</", tag, ">");
  const size_t b = xml.find(open);
  if (b == std::string::npos) return std::nullopt;
  const size_t start = b + open.size();
  const size_t e = xml.find(close, start);
  if (e == std::string::npos) return std::nullopt;
  const absl::string_view raw(xml.data() + start, e - start);
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      out.push_back(raw[i]);
      continue;
    }
    const size_t semi = raw.find(';', i);
    if (semi == absl::string_view::npos) {
      out.push_back('&');
      continue;
    }
    const absl::string_view ent = raw.substr(i + 1, semi - i - 1);
    if (ent == "quot") {
      out.push_back('"');
    } else if (ent == "amp") {
      out.push_back('&');
    } else if (ent == "lt") {
      out.push_back('<');
    } else if (ent == "gt") {
      out.push_back('>');
    } else if (ent == "apos") {
      out.push_back('\'');
    } else if (ent.size() > 1 && ent[0] == '#') {
      const bool hex = ent[1] == 'x' || ent[1] == 'X';
      const std::string digits(ent.substr(hex ? 2 : 1));
      const long v = std::strtol(digits.c_str(), nullptr, hex ? 16 : 10);
      if (v > 0 && v < 128) {
        out.push_back(static_cast<char>(v));
      } else {
        out.append(raw.data() + i, semi - i + 1);
      }
    } else {
      out.append(raw.data() + i, semi - i + 1);
    }
    i = semi;
  }
  return out;
}

std::optional<S3Error> ParseS3Error(const std::string& body) {
  if (body.find("<Error>") == std::string::npos) return std::nullopt;
  S3Error e;
  e.code = XmlElementText(body, "Code").value_or("");
  e.message = XmlElementText(body, "Message").value_or("");
  return e;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace clrdiag::egress
