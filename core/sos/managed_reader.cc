#include "core/sos/managed_reader.h"

#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/dac/heap_walk.h"
#include "core/dac/metadata_import.h"
#include "core/dac/type_name.h"

namespace clrdiag::sos {

uint64_t ManagedReader::TypeOf(uint64_t obj) {
  if (obj == 0) return 0;
  uint64_t mt = 0;
  if (!ReadPointer(obj, &mt)) return 0;
  mt &= ~uint64_t{7};
  if (mt == 0) return 0;
  if (!dac_.GetMethodTable(mt).ok()) return 0;
  return mt;
}

std::string ManagedReader::TypeName(uint64_t mt) {
  if (mt == 0) return "";
  auto it = type_names_.find(mt);
  if (it != type_names_.end()) return it->second;
  auto raw = dac_.GetMethodTableName(mt);
  std::string name = raw.ok() ? dac::PrettyTypeName(*raw) : "";
  type_names_[mt] = name;
  return name;
}

std::optional<ManagedReader::Field> ManagedReader::FindField(uint64_t mt, const std::string& name) {
  auto& per_type = fields_[mt];
  auto cached = per_type.find(name);
  if (cached != per_type.end()) return cached->second;
  std::optional<Field> found;
  // The type's own fields first, then its parents' (ClrMD's GetFieldByName).
  for (uint64_t m = mt; m != 0 && !found;) {
    auto d = dac_.GetMethodTableDetails(m);
    auto f = dac_.GetMethodTableFields(m);
    if (!d.ok() || !f.ok()) break;
    uint32_t parent_instance = 0;
    if (d->parent != 0) {
      auto pf = dac_.GetMethodTableFields(d->parent);
      if (pf.ok()) parent_instance = pf->num_instance;
    }
    const uint32_t own =
        (f->num_instance >= parent_instance ? f->num_instance - parent_instance : 0) +
        f->num_static + f->num_thread_static;
    uint64_t addr = f->first_field;
    for (uint32_t i = 0; i < own && addr != 0; ++i) {
      auto fd = dac_.GetFieldDesc(addr);
      if (!fd.ok()) break;
      if (!fd->is_static && !fd->is_thread_local) {
        auto n = dac_.GetMetadataName(d->module, fd->token | dac::kMdtFieldDef);
        if (n.ok() && *n == name) {
          found = Field{fd->offset, *fd};
          break;
        }
      }
      addr = fd->next;
    }
    m = d->parent;
  }
  per_type[name] = found;
  return found;
}

std::optional<uint64_t> ManagedReader::FieldAddress(uint64_t obj, const std::string& name,
                                                    uint64_t* field_mt) {
  const uint64_t mt = TypeOf(obj);
  if (mt == 0) return std::nullopt;
  auto f = FindField(mt, name);
  if (!f) return std::nullopt;
  if (field_mt) *field_mt = f->fd.mt_of_type;
  return obj + 8 + f->offset;
}

std::optional<uint64_t> ManagedReader::ValueFieldAddress(uint64_t data, uint64_t mt,
                                                         const std::string& name,
                                                         uint64_t* field_mt) {
  if (mt == 0) return std::nullopt;
  auto f = FindField(mt, name);
  if (!f) return std::nullopt;
  if (field_mt) *field_mt = f->fd.mt_of_type;
  return data + f->offset;
}

bool ManagedReader::ReadRaw(uint64_t obj, const std::string& name, void* out, size_t size) {
  auto addr = FieldAddress(obj, name);
  return addr && dac_.ReadTargetMemory(*addr, out, size) == size;
}

bool ManagedReader::ReadObjectField(uint64_t obj, const std::string& name, uint64_t* out) {
  uint64_t v = 0;
  if (!ReadRaw(obj, name, &v, sizeof(v))) return false;
  *out = v;
  return true;
}

std::optional<ManagedReader::ArrayInfo> ManagedReader::Array(uint64_t obj) {
  if (obj == 0) return std::nullopt;
  auto d = dac_.GetObjectDetails(obj);
  if (!d.ok() || d->kind != 3 /* OBJ_ARRAY */) return std::nullopt;
  ArrayInfo a;
  a.length = d->components;
  a.element_mt = d->element_type_handle;
  a.element_size = d->component_size;
  a.data = d->array_data != 0 ? d->array_data : obj + 16;
  return a;
}

uint64_t ManagedReader::MethodAt(uint64_t ip) {
  if (ip == 0) return 0;
  auto md = dac_.GetMethodDescFromIp(ip);
  if (md.ok() && *md != 0) return *md;
  auto ch = dac_.GetCodeHeader(ip);
  if (ch.ok()) return ch->method_desc;
  return 0;
}

std::string ManagedReader::MethodSignature(uint64_t md) {
  auto s = dac_.GetMethodDescName(md);
  return s.ok() ? *s : "";
}

std::string ManagedReader::MethodTypeName(uint64_t md) {
  auto m = dac_.GetMethodDesc(md);
  return m.ok() ? TypeName(m->method_table) : "";
}

std::string ManagedReader::MethodName(uint64_t md) {
  return MethodNameFromSignature(MethodSignature(md), MethodTypeName(md));
}

std::string MethodNameFromSignature(const std::string& signature, const std::string& type_name) {
  if (signature.empty()) return "";
  // The outermost '(' matching the trailing ')'.
  int last = -1, depth = 0;
  for (int i = static_cast<int>(signature.size()) - 1; i >= 0; --i) {
    if (signature[i] == ')') {
      ++depth;
    } else if (signature[i] == '(') {
      if (--depth == 0) {
        last = i;
        break;
      }
    }
  }
  if (last <= 0) return "{error}";
  if (!type_name.empty()) {
    const size_t at = signature.find(type_name);
    if (at != std::string::npos) {
      const size_t start = at + type_name.size() + 1;
      if (start < static_cast<size_t>(last)) return signature.substr(start, last - start);
    }
  }
  int pos = last - 1, brackets = 0;
  while (pos >= 0) {
    const char c = signature[pos];
    if (c == ']') {
      ++brackets;
    } else if (c == '[') {
      --brackets;
    } else if (brackets == 0) {
      break;
    }
    --pos;
  }
  size_t first = pos >= 0 ? signature.rfind('.', pos) : std::string::npos;
  if (first != std::string::npos && first > 0 && signature[first - 1] == '.') --first;
  const size_t begin = first == std::string::npos ? 0 : first + 1;
  return signature.substr(begin, last - begin);
}

absl::StatusOr<std::unordered_map<std::string, std::vector<uint64_t>>> ManagedReader::FindObjects(
    const std::vector<std::string>& names, const CancellationToken& cancel) {
  std::unordered_set<std::string> wanted(names.begin(), names.end());
  std::unordered_map<uint64_t, const std::string*> match;  // mt -> name or nullptr
  std::unordered_map<std::string, std::vector<uint64_t>> found;
  auto walk = dac::WalkHeap(
      dac_,
      [&](const dac::HeapObject& o) {
        auto it = match.find(o.mt);
        if (it == match.end()) {
          const std::string* hit = nullptr;
          auto n = dac_.GetMethodTableName(o.mt);
          if (n.ok()) {
            auto w = wanted.find(*n);
            if (w != wanted.end()) hit = &*w;
          }
          it = match.emplace(o.mt, hit).first;
        }
        if (it->second) found[*it->second].push_back(o.address);
        return true;
      },
      &cancel);
  if (!walk.ok()) return walk.status();
  if (cancel.cancelled()) return absl::CancelledError("cancelled");
  return found;
}

}  // namespace clrdiag::sos
