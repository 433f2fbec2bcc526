#include "core/sos/symbols.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::sos {
namespace {

// Symbol files larger than this are not read or downloaded.
constexpr size_t kMaxSymbolFileBytes = size_t{512} << 20;

std::optional<std::vector<uint8_t>> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  std::streamoff size = in.tellg();
  if (size <= 0 || static_cast<size_t>(size) > kMaxSymbolFileBytes) return std::nullopt;
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) return std::nullopt;
  return bytes;
}

// Writes `bytes` to `path` through a temporary file and a rename (no half file is ever seen).
bool SaveFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return false;
  std::string tmp = absl::StrCat(path, ".tmp", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out.write(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()))) {
      ::unlink(tmp.c_str());
      return false;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* ctx = static_cast<std::pair<std::vector<uint8_t>*, size_t>*>(user);
  size_t len = size * n;
  if (ctx->first->size() + len > ctx->second) return 0;  // too large: abort the transfer
  ctx->first->insert(ctx->first->end(), data, data + len);
  return len;
}

}  // namespace

void SymbolSettings::Add(SymbolStore s) {
  if (s.kind == SymbolStore::Kind::kServer && !s.location.empty() && s.location.back() != '/') {
    s.location += '/';
  }
  for (const auto& e : stores_) {
    if (e.kind == s.kind && e.location == s.location) return;
  }
  stores_.push_back(std::move(s));
}

std::string SymbolSettings::Describe() const {
  std::string out = "Current symbol store settings:\n";
  for (const auto& s : stores_) {
    switch (s.kind) {
      case SymbolStore::Kind::kDirectory:
        absl::StrAppend(&out, "-> Directory: ", s.location, "\n");
        break;
      case SymbolStore::Kind::kCache:
        absl::StrAppend(&out, "-> Cache: ", s.location, "\n");
        break;
      case SymbolStore::Kind::kServer:
        absl::StrAppend(&out, "-> Server: ", s.location, " Timeout: ", s.timeout_minutes,
                        " RetryCount: ", s.retry_count, "\n");
        for (const auto& [where, why] : failed_) {
          if (where == s.location) {
            absl::StrAppend(&out, "   failed: ", why, " (not asked again; -reset to retry)\n");
          }
        }
        break;
    }
  }
  return out;
}

std::string SymbolSettings::KeyPath(const std::string& pdb_name,
                                    const std::array<uint8_t, 20>& id) {
  // The GUID as its "N" string: Data1, Data2, Data3 (little-endian in the record), then the
  // last 8 bytes in order; portable PDBs add FFFFFFFF where Windows PDBs put their age.
  std::string guid = absl::StrFormat("%02x%02x%02x%02x%02x%02x%02x%02x", id[3], id[2], id[1], id[0],
                                     id[5], id[4], id[7], id[6]);
  for (int i = 8; i < 16; ++i) absl::StrAppendFormat(&guid, "%02x", id[i]);
  std::string name = absl::AsciiStrToLower(pdb_name);
  return absl::StrCat(name, "/", guid, "ffffffff/", name);
}

std::optional<std::vector<uint8_t>> SymbolSettings::Find(
    const std::string& pdb_name, const std::array<uint8_t, 20>& pdb_id,
    const std::function<bool(const std::vector<uint8_t>&)>& check, const SymbolFetcher& fetch,
    std::vector<std::string>* notes) {
  const std::string key = KeyPath(pdb_name, pdb_id);
  const SymbolStore* first_cache = nullptr;
  for (const auto& s : stores_) {
    if (s.kind == SymbolStore::Kind::kCache && !first_cache) first_cache = &s;
  }
  for (const auto& s : stores_) {
    switch (s.kind) {
      case SymbolStore::Kind::kDirectory:
        for (const std::string& candidate :
             {absl::StrCat(s.location, "/", pdb_name), absl::StrCat(s.location, "/", key)}) {
          auto bytes = ReadFileBytes(candidate);
          if (bytes && check(*bytes)) return bytes;
        }
        break;
      case SymbolStore::Kind::kCache: {
        auto bytes = ReadFileBytes(absl::StrCat(s.location, "/", key));
        if (bytes && check(*bytes)) return bytes;
        break;
      }
      case SymbolStore::Kind::kServer: {
        if (!fetch) break;
        std::string url = s.location + key;
        bool failed_before = false;
        for (const auto& f : failed_) failed_before |= f.first == s.location;
        if (failed_before) break;
        auto got = fetch(url, s, kMaxSymbolFileBytes);
        if (!got.ok()) {
          if (got.status().code() != absl::StatusCode::kNotFound) {
            failed_.emplace_back(s.location, std::string(got.status().message()));
            if (notes) {
              notes->push_back(absl::StrCat("symbol server ", s.location, ": ",
                                            got.status().message(),
                                            " (not asked again in this session; "
                                            "setsymbolserver -reset to retry)"));
            }
          }
          break;
        }
        if (!check(*got)) {
          if (notes) notes->push_back(absl::StrCat(url, ": not the expected PDB; ignored"));
          break;
        }
        if (first_cache) (void)SaveFile(absl::StrCat(first_cache->location, "/", key), *got);
        return std::move(*got);
      }
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<uint8_t>> FetchSymbolFile(const std::string& url,
                                                     const SymbolStore& server, size_t max_bytes) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  absl::Status last = absl::UnavailableError("not tried");
  for (int attempt = 0; attempt <= server.retry_count; ++attempt) {
    CURL* h = curl_easy_init();
    if (!h) return absl::InternalError("curl_easy_init failed");
    std::vector<uint8_t> body;
    std::pair<std::vector<uint8_t>*, size_t> ctx{&body, max_bytes};
    curl_slist* headers = nullptr;
    if (!server.token.empty()) {
      headers =
          curl_slist_append(headers, absl::StrCat("Authorization: Bearer ", server.token).c_str());
    }
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, static_cast<long>(server.timeout_minutes) * 60);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (rc == CURLE_OK && code == 200) return body;
    if (rc == CURLE_OK && code == 404) return absl::NotFoundError(url);
    last = rc != CURLE_OK
               ? absl::UnavailableError(
                     absl::StrCat("cannot download ", url, ": ", curl_easy_strerror(rc)))
               : absl::UnavailableError(absl::StrCat("cannot download ", url, ": HTTP ", code));
    if (rc == CURLE_OK && code >= 400 && code < 500 && code != 408 && code != 429) break;
  }
  return last;
}

}  // namespace clrdiag::sos
