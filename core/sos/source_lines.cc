#include "core/sos/source_lines.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dac/pe_image.h"

namespace clrdiag::sos {
namespace {

// Symbol files larger than this are not read.
constexpr std::streamoff kMaxSymbolFileBytes = 512ll << 20;
// The PE headers read from the dump to identify a loaded assembly.
constexpr size_t kPeHeaderBytes = 4096;

std::optional<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  std::streamoff size = in.tellg();
  if (size <= 0 || size > kMaxSymbolFileBytes) return std::nullopt;
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) return std::nullopt;
  return bytes;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void SourceLines::Resolve(dac::StackFrame* f) {
  if (!f->has_il_offset || f->module == 0 || f->method_token == 0) return;
  const dac::PortablePdb* pdb = ForModule(f->module);
  if (!pdb) return;
  auto line = pdb->LineForIlOffset(f->method_token, f->il_offset);
  if (!line) return;
  f->source_file = line->file;
  f->source_line = line->line;
}

const dac::PortablePdb* SourceLines::ForModule(uint64_t module) {
  auto it = cache_.find(module);
  if (it == cache_.end()) it = cache_.emplace(module, Load(module)).first;
  return it->second.get();
}

std::unique_ptr<dac::PortablePdb> SourceLines::Load(uint64_t module) {
  auto details = dac_.GetModuleDetails(module);
  if (!details.ok() || details->il_base == 0) return nullptr;
  auto path = dac_.GetModuleFileName(module);
  if (!path.ok() || path->empty()) return nullptr;
  const std::string dir = DirName(*path);
  std::string stem = BaseName(*path);
  if (size_t dot = stem.rfind('.'); dot != std::string::npos) stem.resize(dot);
  std::error_code ec;
  const bool beside = std::filesystem::is_regular_file(dir + "/" + stem + ".pdb", ec);
  const bool stores = symbols_ != nullptr && !symbols_->empty();
  if (!beside && !stores) return nullptr;
  auto file = ReadWholeFile(*path);
  if (!file) return nullptr;
  auto on_disk = dac::PeImage::Parse(*file);
  std::vector<uint8_t> header(kPeHeaderBytes);
  header.resize(dac_.ReadTargetMemory(details->il_base, header.data(), header.size()));
  auto loaded = dac::PeImage::Parse(header);
  if (!on_disk.ok() || !loaded.ok() || on_disk->timestamp() != loaded->timestamp() ||
      on_disk->size_of_image() != loaded->size_of_image()) {
    return nullptr;
  }
  auto cv = on_disk->FindCodeView();
  if (!cv.ok() || !cv->portable) return nullptr;
  for (const std::string& candidate :
       {absl::StrCat(dir, "/", BaseName(cv->path)), absl::StrCat(dir, "/", stem, ".pdb")}) {
    if (!beside) break;
    auto bytes = ReadWholeFile(candidate);
    if (!bytes) continue;
    auto pdb = dac::PortablePdb::Parse(std::move(*bytes));
    if (pdb.ok() && pdb->id() == cv->pdb_id) {
      return std::make_unique<dac::PortablePdb>(std::move(*pdb));
    }
  }
  if (!stores) return nullptr;
  const auto id = cv->pdb_id;
  auto found = symbols_->Find(
      BaseName(cv->path), id,
      [&id](const std::vector<uint8_t>& bytes) {
        auto pdb = dac::PortablePdb::Parse(bytes);
        return pdb.ok() && pdb->id() == id;
      },
      FetchSymbolFile, notes_);
  if (!found) return nullptr;
  auto pdb = dac::PortablePdb::Parse(std::move(*found));
  if (!pdb.ok()) return nullptr;
  return std::make_unique<dac::PortablePdb>(std::move(*pdb));
}

}  // namespace clrdiag::sos
