// Where a session looks for portable PDBs besides the assembly's own directory: the symbol
// stores of `setsymbolserver`. Directories hold <name>.pdb flat; caches and servers use the
// symbol-server key layout <name>/<GUID as 32 hex digits>FFFFFFFF/<name> (all lower case),
// the layout dotnet-symbol and the Microsoft symbol server use for portable PDBs. A file found
// on a server is saved into the session's first cache, so the next lookup is offline.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace clrdiag::sos {

struct SymbolStore {
  enum class Kind { kDirectory, kCache, kServer };
  Kind kind = Kind::kDirectory;
  std::string location;     // a directory, or a server URL ending in '/'
  int timeout_minutes = 4;  // servers
  int retry_count = 0;      // servers
  std::string token;        // servers: a personal access token (-pat), sent as a bearer token
};

// Downloads `url` into memory (at most `max_bytes`); NotFound for a 404.
using SymbolFetcher = std::function<absl::StatusOr<std::vector<uint8_t>>(
    const std::string& url, const SymbolStore& server, size_t max_bytes)>;

class SymbolSettings {
 public:
  const std::vector<SymbolStore>& stores() const { return stores_; }
  bool empty() const { return stores_.empty(); }
  void Add(SymbolStore s);
  void Clear() {
    stores_.clear();
    failed_.clear();
  }
  // Forgets servers' failures (setsymbolserver -reset).
  void ResetFailures() { failed_.clear(); }

  // setsymbolserver's listing: "Current symbol store settings:" and one line per store.
  std::string Describe() const;

  // The bytes of the portable PDB `pdb_name` (the file name the assembly's CodeView record
  // names) whose id is `pdb_id` (GUID then stamp), from the stores in order. `check` tells
  // whether candidate bytes are the right PDB. Servers are asked through `fetch`; a download
  // is saved into the first cache. Notes (e.g. a server that failed) go to `notes`.
  std::optional<std::vector<uint8_t>> Find(
      const std::string& pdb_name, const std::array<uint8_t, 20>& pdb_id,
      const std::function<bool(const std::vector<uint8_t>&)>& check, const SymbolFetcher& fetch,
      std::vector<std::string>* notes);

  // The key path of a portable PDB in a cache or on a server.
  static std::string KeyPath(const std::string& pdb_name, const std::array<uint8_t, 20>& pdb_id);

 private:
  std::vector<SymbolStore> stores_;
  // Servers that failed (not a 404), with why: not asked again until -reset.
  std::vector<std::pair<std::string, std::string>> failed_;
};

// The default fetcher: libcurl, the store's timeout and retries, the token if any.
absl::StatusOr<std::vector<uint8_t>> FetchSymbolFile(const std::string& url,
                                                     const SymbolStore& server, size_t max_bytes);

}  // namespace clrdiag::sos
