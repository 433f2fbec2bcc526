#include "core/sos/format.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/base/status_macros.h"
#include "core/dac/gc_roots.h"
#include "core/dac/heap_walk.h"
#include "core/dac/type_name.h"
#include "core/sos/json.h"

namespace clrdiag::sos {

std::string N0(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

int DebuggerThreadIndex(const dac::ManagedThread& t, const elf::CoreFile& core) {
  for (size_t i = 0; i < core.threads().size(); ++i) {
    if (t.os_id != 0 && core.threads()[i].tid == t.os_id) return static_cast<int>(i);
  }
  return -1;
}

std::string ClrThreadsJson(const dac::ThreadStore& ts, const elf::CoreFile& core,
                           const std::vector<Json>& exceptions) {
  Json threads = Json::array();
  for (size_t i = 0; i < ts.threads.size(); ++i) {
    const dac::ManagedThread& t = ts.threads[i];
    int dbg = DebuggerThreadIndex(t, core);
    Json special = Json::array();
    if (t.is_finalizer) special.push_back("Finalizer");
    if (t.is_gc) special.push_back("GC");
    if (t.state & dac::kThreadStateThreadPoolWorker) special.push_back("Threadpool Worker");
    if (t.state & dac::kThreadStateCompletionPort) special.push_back("Threadpool Completion Port");
    threads.push_back(Json{{"debugger_index", dbg < 0 ? Json() : Json(dbg)},
                           {"managed_id", t.managed_id},
                           {"os_id", t.os_id},
                           {"thread_object", JsonHex(t.address)},
                           {"state", JsonHex(t.state)},
                           {"gc_mode", t.preemptive ? "Preemptive" : "Cooperative"},
                           {"alloc_context_pointer", JsonHex(t.alloc_ptr)},
                           {"alloc_context_limit", JsonHex(t.alloc_limit)},
                           {"domain", JsonHex(t.domain)},
                           {"lock_count", t.lock_count},
                           {"special", special},
                           {"exception", i < exceptions.size() ? exceptions[i] : Json()}});
  }
  Json j{{"thread_count", ts.thread_count},
         {"unstarted_count", ts.unstarted_count},
         {"background_count", ts.background_count},
         {"pending_count", ts.pending_count},
         {"dead_count", ts.dead_count},
         {"hosted_runtime", false},
         {"threads", threads}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string FormatClrThreads(const dac::ThreadStore& ts, const elf::CoreFile& core,
                             const std::vector<std::string>& exceptions) {
  std::string out;
  absl::StrAppendFormat(&out, "ThreadCount:      %d\n", ts.thread_count);
  absl::StrAppendFormat(&out, "UnstartedThread:  %d\n", ts.unstarted_count);
  absl::StrAppendFormat(&out, "BackgroundThread: %d\n", ts.background_count);
  absl::StrAppendFormat(&out, "PendingThread:    %d\n", ts.pending_count);
  absl::StrAppendFormat(&out, "DeadThread:       %d\n", ts.dead_count);
  out += "Hosted Runtime:   no\n";
  absl::StrAppendFormat(&out, "%-108sLock  \n", "");
  out +=
      " DBG   ID     OSID ThreadOBJ           State GC Mode     GC Alloc Context                  "
      "Domain           Count Apt Exception\n";
  for (size_t i = 0; i < ts.threads.size(); ++i) {
    const dac::ManagedThread& t = ts.threads[i];
    // DBG is the thread's index in the dump (the debugger's thread number), XXXX if it has
    // no OS thread.
    int index = DebuggerThreadIndex(t, core);
    std::string dbg = index < 0 ? "XXXX" : std::to_string(index);
    std::string exc;
    if (t.is_finalizer) exc += "(Finalizer) ";
    if (t.is_gc) exc += "(GC) ";
    if (t.state & dac::kThreadStateThreadPoolWorker) exc += "(Threadpool Worker) ";
    if (t.state & dac::kThreadStateCompletionPort) exc += "(Threadpool Completion Port) ";
    if (i < exceptions.size()) exc += exceptions[i];
    absl::StrAppendFormat(&out, "%4s %4u %8x %016X %8x %-11s %016X:%016X %016X %06d Ukn %s\n", dbg,
                          t.managed_id, t.os_id, t.address, t.state,
                          t.preemptive ? "Preemptive" : "Cooperative", t.alloc_ptr, t.alloc_limit,
                          t.domain, t.lock_count, exc);
  }
  return out;
}

std::optional<dac::SegmentKind> ParseGeneration(const std::string& text) {
  const std::string g = absl::AsciiStrToLower(text);
  if (g == "gen0") return dac::SegmentKind::kGen0;
  if (g == "gen1") return dac::SegmentKind::kGen1;
  if (g == "gen2") return dac::SegmentKind::kGen2;
  if (g == "loh" || g == "large") return dac::SegmentKind::kLarge;
  if (g == "poh" || g == "pinned") return dac::SegmentKind::kPinned;
  if (g == "foh" || g == "frozen") return dac::SegmentKind::kFrozen;
  return std::nullopt;
}

namespace {

// Where a segment's committed memory starts (it is not in the DAC's data): the first object
// less the regions' plug-and-gap header, or the page holding it (ClrMD's rule, which
// dotnet-dump's -segment and range checks use).
uint64_t CommittedStart(const dac::HeapSegment& seg) {
  if (seg.kind == dac::SegmentKind::kFrozen) return seg.start - 8;
  if ((seg.start & 0x1fff) == 0x1000) return seg.start - 0x1000;
  return seg.start & ~uint64_t{0xfff};
}

// The thin lock an object header holds: the owner's thin lock id and the recursion level; the
// id is 0 when there is none (a hash code, a sync block index, or no lock). .NET 9 and later
// keep a 16-bit id and the level at bits 16..21; .NET 8 and older a 10-bit id and the level at
// bits 10..15 (`wide` selects the layout).
struct ThinLockBits {
  uint32_t id = 0;
  uint32_t recursion = 0;
};
ThinLockBits DecodeThinLock(uint32_t header, bool wide) {
  constexpr uint32_t kHashOrSyncBlock = 0x08000000, kSpinLock = 0x10000000;
  if (header & (kHashOrSyncBlock | kSpinLock)) return {};
  if (wide) return {header & 0xffff, (header & 0x003f0000) >> 16};
  return {header & 0x3ff, (header & 0xfc00) >> 10};
}

// dotnet-dump's -strings rendering of a value: kept as is when every character is a letter or
// a digit; otherwise at most `max_len` characters, each one that is not a letter, digit,
// punctuation or space replaced by '.' (as .NET's char.IsLetterOrDigit/IsPunctuation decide;
// outside ASCII, Latin-1 letters and the general punctuation block are recognised).
bool IsLetterOrDigit16(char16_t c) {
  if (c < 0x80) return absl::ascii_isalnum(static_cast<unsigned char>(c));
  if (c >= 0xd800 && c <= 0xdfff) return false;  // surrogates
  if (c == 0xaa || c == 0xb5 || c == 0xba) return true;
  if (c >= 0xc0 && c <= 0x24f) return c != 0xd7 && c != 0xf7;  // Latin-1 + Latin Extended
  if (c >= 0x370 && c <= 0x3ff)
    return c != 0x375 && c != 0x37e && c != 0x384 && c != 0x385 && c != 0x387;  // Greek
  if (c >= 0x400 && c <= 0x481) return true;                                    // Cyrillic
  if (c >= 0x4e00 && c <= 0x9fff) return true;                                  // CJK ideographs
  return false;
}
bool IsPunctuation16(char16_t c) {
  if (c < 0x80) {
    return c != '$' && c != '+' && c != '<' && c != '=' && c != '>' && c != '^' && c != '`' &&
           c != '|' && c != '~' && absl::ascii_ispunct(static_cast<unsigned char>(c));
  }
  return c == 0xa1 || c == 0xa7 || c == 0xab || c == 0xb6 || c == 0xb7 || c == 0xbb || c == 0xbf ||
         (c >= 0x2010 && c <= 0x2027) || (c >= 0x2030 && c <= 0x2043) ||
         (c >= 0x2045 && c <= 0x2051) || (c >= 0x2053 && c <= 0x205e);
}
void AppendUtf8(std::string* out, char16_t c) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xe0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}
std::string SanitizeString(const std::u16string& s, size_t max_len) {
  const bool plain = std::all_of(s.begin(), s.end(), IsLetterOrDigit16);
  std::string out;
  const size_t n = plain ? s.size() : std::min(s.size(), max_len);
  for (size_t i = 0; i < n; ++i) {
    char16_t c = s[i];
    if (!plain && !IsLetterOrDigit16(c) && !IsPunctuation16(c) && c != u' ') c = u'.';
    AppendUtf8(&out, c);
  }
  return out;
}
// The value as JSON text takes it: UTF-16 to UTF-8, lone surrogates as U+FFFD.
std::string Utf8(const std::u16string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    uint32_t c = s[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.size() && s[i + 1] >= 0xdc00 &&
        s[i + 1] <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s[++i] - 0xdc00);
      out.push_back(static_cast<char>(0xf0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
      continue;
    }
    AppendUtf8(&out, c >= 0xd800 && c <= 0xdfff ? char16_t{0xfffd} : static_cast<char16_t>(c));
  }
  return out;
}

struct StringKey {
  std::u16string value;
  uint64_t size;
  bool operator==(const StringKey& o) const { return size == o.size && value == o.value; }
  bool operator<(const StringKey& o) const {
    return value != o.value ? value < o.value : size < o.size;
  }
};
// Reads the dump's memory in address order through a 1 MiB window (one large read per window
// instead of one per object: -strings and -thinlock read every object they visit).
class SequentialReader {
 public:
  explicit SequentialReader(const elf::CoreFile& core) : core_(core), buf_(size_t{1} << 20) {}
  // Copies up to `n` bytes at `addr`; returns how many the dump holds. `limit`: where the
  // segment being walked ends (the window does not reach much past it).
  size_t Read(uint64_t addr, void* out, size_t n, uint64_t limit) {
    if (n > buf_.size()) return core_.ReadDumpedMemory(addr, out, n);
    if (addr < start_ || addr - start_ + n > valid_) {
      uint64_t want = limit > addr ? limit - addr : 0;
      want = std::clamp<uint64_t>(want + 16, n, buf_.size());
      start_ = addr;
      valid_ = core_.ReadDumpedMemory(addr, buf_.data(), static_cast<size_t>(want));
    }
    const size_t got = std::min(n, valid_ - static_cast<size_t>(addr - start_));
    std::memcpy(out, buf_.data() + (addr - start_), got);
    return got;
  }

 private:
  const elf::CoreFile& core_;
  std::vector<uint8_t> buf_;
  uint64_t start_ = 0;
  size_t valid_ = 0;
};

// Writes `text` in pieces of about 64 KiB, each ending on a UTF-8 character boundary (each
// piece is one message to the client, which has a size limit).
void WriteInPieces(OutputSink& out, const std::string& text) {
  constexpr size_t kPiece = 64 * 1024;
  size_t pos = 0;
  while (text.size() - pos > kPiece) {
    size_t end = pos + kPiece;
    while (end > pos && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
    out.Write(text.substr(pos, end - pos));
    pos = end;
  }
  if (pos < text.size()) out.Write(text.substr(pos));
}

// The most characters of a string -strings reads (as the reference: longer strings that agree
// on their first 1024 characters and have the same size count as one value).
constexpr uint32_t kMaxStringChars = 1024;

}  // namespace

std::string SanitizedStringValue(const std::u16string& s, size_t max_len) {
  return SanitizeString(s, max_len);
}
std::string Utf8Value(const std::u16string& s) { return Utf8(s); }

absl::Status RunDumpHeap(dac::DacProcess& dac, const DumpHeapOptions& o, OutputSink& out,
                         const CancellationToken& cancel, std::shared_ptr<HeapIndex>* index) {
  struct Acc {
    size_t first_seen;
    uint64_t count = 0;
    uint64_t size = 0;
  };
  ASSIGN_OR_RETURN(std::vector<dac::HeapSegment> segments, dac.GetHeapSegments());
  // The segment filters (-heap, -segment, -gen, a memory range) and their checks.
  if (o.heap >= 0 && std::none_of(segments.begin(), segments.end(),
                                  [&](const dac::HeapSegment& s) { return s.heap == o.heap; })) {
    return absl::InvalidArgumentError(absl::StrCat("No GC heap with index of ", o.heap));
  }
  if (o.has_range && std::none_of(segments.begin(), segments.end(), [&](const dac::HeapSegment& s) {
        return CommittedStart(s) < o.range_end && o.range_start < s.committed;
      })) {
    return absl::InvalidArgumentError(
        absl::StrFormat("No segments or objects in range [%x,%x)", o.range_start, o.range_end));
  }
  auto keep_segment = [&](const dac::HeapSegment& s) {
    if (o.heap >= 0 && s.heap != o.heap) return false;
    if (o.segment != 0 && s.address != o.segment &&
        !(CommittedStart(s) <= o.segment && o.segment < s.committed)) {
      return false;
    }
    if (o.generation && s.kind != *o.generation) return false;
    if (o.has_range && !(s.start < o.range_end && o.range_start < s.end)) return false;
    return true;
  };
  const bool whole_heap = o.heap < 0 && o.segment == 0 && !o.generation && !o.has_range;

  std::unordered_map<uint64_t, Acc> by_mt;
  std::unordered_map<uint64_t, std::string> names;
  if (index && *index) names = (*index)->names;
  auto name_of = [&](uint64_t mt) -> const std::string& {
    auto it = names.find(mt);
    if (it != names.end()) return it->second;
    auto n = dac.GetMethodTableName(mt);
    return names[mt] = n.ok() ? dac::PrettyTypeName(*n)
                              : absl::StrCat("<unknown_type_", absl::Hex(mt), ">");
  };
  // What is shown: thin locks, or the objects (all of them, only their addresses, or strings
  // with statistics per value) then statistics; -thinlock wins over -strings over -short.
  enum class Kind { kNormal, kShort, kStrings, kThinLock };
  const Kind kind = o.thinlock  ? Kind::kThinLock
                    : o.strings ? Kind::kStrings
                    : o.short_  ? Kind::kShort
                                : Kind::kNormal;
  const bool listing = kind == Kind::kThinLock || !o.stat;
  uint64_t mt_filter = o.mt;
  ASSIGN_OR_RETURN(dac::UsefulGlobals globals, dac.GetUsefulGlobals());
  if (kind == Kind::kStrings) mt_filter = globals.string_mt;
  std::string buf;
  if (o.json && listing) buf = kind == Kind::kThinLock ? "{\"thin_locks\":[" : "{\"objects\":[";
  uint64_t objects = 0, bytes = 0, rows_listed = 0;
  // Progress: bytes of objects walked out of the walked segments' allocated bytes.
  ProgressInfo progress;
  progress.stage = "walking the heap";
  for (const dac::HeapSegment& seg : segments) {
    if (seg.end > seg.start && keep_segment(seg)) progress.total += seg.end - seg.start;
  }
  const bool reachability = o.live || o.dead;
  // -live/-dead neither use nor build the index: it counts every object.
  if (reachability) index = nullptr;
  std::optional<dac::LiveObjectSet> live_set;
  if (reachability) {
    // As the reference, announce the (slow) reachability pass, except with -short.
    if (!o.json && !o.short_) out.Write("Calculating live objects, this may take a while...\n");
    ProgressInfo marking;
    marking.stage = "marking live objects";
    out.Progress(marking);
    absl::StatusOr<dac::LiveObjectSet> computed = dac::LiveObjectSet::Compute(dac, &cancel);
    if (!computed.ok()) {
      if (o.json) out.Write("null");
      return computed.status();
    }
    live_set = std::move(*computed);
    if (!o.json && !o.short_) {
      out.Write(absl::StrFormat("Calculating live objects complete: %s objects from %s roots\n",
                                N0(live_set->live_objects()), N0(live_set->roots())));
    }
  }
  const bool from_index = index && *index && o.stat && o.min == 0 && o.max == 0 && whole_heap &&
                          kind != Kind::kStrings && kind != Kind::kThinLock;
  // A first complete walk in the session builds the index as it goes (every object, whatever
  // the filters on objects).
  std::shared_ptr<HeapIndex> building;
  std::unordered_map<uint64_t, size_t> building_pos;
  if (index && !*index && !from_index && whole_heap) building = std::make_shared<HeapIndex>();
  auto matches = [&](uint64_t mt) {
    if (mt_filter && mt != mt_filter) return false;
    return o.type.empty() || absl::StrContains(name_of(mt), o.type);
  };
  // -strings: per (value, size), in first-seen order.
  struct StringStat {
    StringKey key;
    uint64_t count = 0;
  };
  // Every string seen, grouped by sorting after the walk (a hash table of a million distinct
  // strings was slower, by its cache misses).
  std::vector<StringKey> strings_seen;
  // -thinlock: owners by thin lock id, and the managed threads' OS ids.
  const bool wide_thin_locks = o.runtime_major == 0 || o.runtime_major >= 8;
  std::unordered_map<uint32_t, uint64_t> owner_by_id;
  std::unordered_map<uint64_t, uint32_t> os_id_by_thread;
  if (kind == Kind::kThinLock) {
    if (auto ts = dac.GetThreadStore(); ts.ok()) {
      for (const dac::ManagedThread& t : ts->threads) os_id_by_thread[t.address] = t.os_id;
    }
  }
  auto owner_of = [&](uint32_t id) -> uint64_t {
    auto it = owner_by_id.find(id);
    if (it != owner_by_id.end()) return it->second;
    auto t = dac.GetThreadFromThinLockId(id);
    return owner_by_id[id] = t.ok() ? *t : 0;
  };
  auto flush = [&] {
    if (buf.size() >= 64 * 1024) {
      out.Write(buf);
      buf.clear();
    }
  };
  std::vector<std::string> warnings;
  if (from_index) {
    for (const HeapIndex::Type& t : (*index)->types) {
      if (!matches(t.mt)) continue;
      by_mt.try_emplace(t.mt, Acc{by_mt.size(), t.count, t.size});
      objects += t.count;
      bytes += t.size;
    }
    warnings = (*index)->warnings;
  }
  // The fragmentation report (the reference's, for the normal listing and -stat): free blocks of
  // at least 0.5 MB that the next object shown follows directly, except on the large object
  // heap. Over the objects shown; over every object for the index.
  constexpr uint64_t kFragmentMinSize = 512 * 1024;
  const bool report_fragmentation = kind == Kind::kNormal;
  std::vector<HeapIndex::FragmentedBlock> fragmentation;
  struct LastFree {
    uint64_t address = 0, size = 0;
  } shown_free, any_free;
  auto track_fragment = [&](const dac::HeapObject& obj, LastFree* last,
                            std::vector<HeapIndex::FragmentedBlock>* out_blocks) {
    const bool is_free = obj.mt == globals.free_mt;
    if (!is_free && last->size != 0 && last->address + last->size == obj.address &&
        obj.segment->kind != dac::SegmentKind::kLarge) {
      out_blocks->push_back({last->address, last->size, obj.address, obj.mt});
    }
    *last = is_free && obj.size >= kFragmentMinSize ? LastFree{obj.address, obj.size} : LastFree{};
  };
  if (from_index && report_fragmentation) {
    for (const HeapIndex::FragmentedBlock& b : (*index)->fragmentation) {
      if (matches(globals.free_mt) && matches(b.next_mt)) fragmentation.push_back(b);
    }
  }
  SequentialReader reader(dac.core());
  auto visit = [&](const dac::HeapObject& obj) {
    progress.done += obj.footprint;
    if ((++progress.items & 0xffff) == 0) out.Progress(progress);
    if (building) {
      auto [pos, fresh] = building_pos.try_emplace(obj.mt, building->types.size());
      if (fresh) building->types.push_back({obj.mt, 0, 0});
      HeapIndex::Type& t = building->types[pos->second];
      ++t.count;
      t.size += obj.size;
      track_fragment(obj, &any_free, &building->fragmentation);
    }
    if (o.has_range) {
      if (obj.address < o.range_start) return true;
      if (obj.address >= o.range_end) return false;  // segments are in address order
    }
    if (o.generation && obj.segment->kind != *o.generation) return true;
    if (live_set && live_set->IsLive(obj.address) != o.live) return true;
    if (obj.size < o.min || (o.max && obj.size > o.max)) return true;
    if (!matches(obj.mt)) return true;
    if (kind == Kind::kThinLock) {
      uint32_t header = 0;
      if (reader.Read(obj.address - 4, &header, 4, obj.segment->end) != 4 || header == 0) {
        return true;
      }
      ThinLockBits bits = DecodeThinLock(header, wide_thin_locks);
      uint64_t owner = bits.id ? owner_of(bits.id) : 0;
      if (owner == 0 && o.runtime_major == 8) {  // .NET 8 builds with the older layout
        bits = DecodeThinLock(header, false);
        owner = bits.id ? owner_of(bits.id) : 0;
      }
      if (owner == 0) return true;
      auto thread = os_id_by_thread.find(owner);
      const bool known = thread != os_id_by_thread.end();
      const uint32_t os_id = known ? thread->second : 0;
      ++rows_listed;
      if (o.json) {
        absl::StrAppendFormat(
            &buf, "%s{\"object\":\"0x%x\",\"thread\":%s,\"os_id\":%u,\"recursion\":%u}",
            rows_listed == 1 ? "" : ",", obj.address,
            known ? absl::StrFormat("\"0x%x\"", owner) : "null", os_id, bits.recursion);
      } else {
        if (rows_listed == 1) {
          buf = absl::StrFormat("%16s %16s %18s %14s\n", "Object", "Thread", "OSId", "Recursion");
        }
        absl::StrAppendFormat(&buf, "%16x %16s %18s %14s\n", obj.address,
                              known ? absl::StrFormat("%012x", owner) : "",
                              absl::StrFormat("0x%02x", os_id), N0(bits.recursion));
      }
      flush();
      return true;
    }
    ++objects;
    bytes += obj.size;
    if (report_fragmentation) track_fragment(obj, &shown_free, &fragmentation);
    if (kind == Kind::kStrings) {
      uint32_t length = 0;
      std::u16string value;
      if (reader.Read(obj.address + 8, &length, 4, obj.segment->end) == 4) {
        value.resize(std::min(length, kMaxStringChars));
        size_t got =
            reader.Read(obj.address + 12, value.data(), value.size() * 2, obj.segment->end);
        value.resize(got / 2);
      }
      strings_seen.push_back(StringKey{std::move(value), obj.size});
    } else {
      auto [it, fresh] = by_mt.try_emplace(obj.mt, Acc{by_mt.size()});
      it->second.count++;
      it->second.size += obj.size;
    }
    if (!listing) return true;
    if (o.json) {
      absl::StrAppendFormat(&buf, "%s{\"address\":\"0x%x\",\"mt\":\"0x%x\",\"size\":%u}",
                            objects == 1 ? "" : ",", obj.address, obj.mt, obj.size);
    } else {
      // The header comes with the first match: like the reference, nothing at all is
      // printed when nothing matches.
      if (objects == 1 && kind != Kind::kShort) {
        buf = absl::StrFormat("%16s %16s %14s\n", "Address", "MT", "Size");
      }
      if (kind == Kind::kShort) {
        absl::StrAppendFormat(&buf, "%012x\n", obj.address);
      } else {
        // Free space is marked as such (the reference's last column).
        absl::StrAppendFormat(&buf, "%16x %16x %14s %s\n", obj.address, obj.mt, N0(obj.size),
                              obj.mt == globals.free_mt ? "Free" : "");
      }
    }
    flush();
    return true;
  };
  auto walk = from_index   ? absl::StatusOr<dac::HeapWalkSummary>(dac::HeapWalkSummary{})
              : whole_heap ? dac::WalkHeap(dac, visit, &cancel)
                           : dac::WalkHeapSegments(dac, keep_segment, visit, &cancel);
  if (o.json && listing) buf += "]";
  if (!walk.ok()) {
    if (o.json) out.Write(listing ? buf + "}" : "null");  // a complete value before the error
    return walk.status();
  }
  if (!o.json && !buf.empty()) out.Write(buf);
  if (!from_index) warnings = walk->warnings;
  if (live_set) {
    for (const std::string& w : live_set->warnings()) warnings.push_back(w);
  }
  if (building) {
    building->warnings = warnings;
    for (const HeapIndex::Type& t : building->types) name_of(t.mt);
    building->names = names;
    *index = std::move(building);
  }
  if (kind == Kind::kThinLock) {
    if (o.json) {
      Json tail{{"warnings", warnings}};
      out.Write(absl::StrCat(buf, ",",
                             tail.dump(-1, ' ', false, Json::error_handler_t::replace).substr(1)));
    } else if (!warnings.empty()) {
      std::string s;
      for (const std::string& w : warnings) absl::StrAppendFormat(&s, "warning: %s\n", w);
      out.Write(s);
    }
    return absl::OkStatus();
  }
  if (kind == Kind::kStrings) {
    // Grouping a million strings takes a while: cancellable before and after.
    if (cancel.cancelled()) return absl::CancelledError("dumpheap -strings");
    // Group equal (value, size) pairs, keeping where each was first seen.
    std::vector<uint32_t> order(strings_seen.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return strings_seen[a] < strings_seen[b]; });
    std::vector<std::pair<uint32_t, StringStat>> groups;  // (first seen, stat)
    for (size_t i = 0; i < order.size();) {
      size_t j = i;
      while (j < order.size() && strings_seen[order[j]] == strings_seen[order[i]]) ++j;
      groups.emplace_back(order[i], StringStat{std::move(strings_seen[order[i]]), j - i});
      i = j;
    }
    if (cancel.cancelled()) return absl::CancelledError("dumpheap -strings");
    std::sort(groups.begin(), groups.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<StringStat> string_stats;
    string_stats.reserve(groups.size());
    for (auto& g : groups) string_stats.push_back(std::move(g.second));
    // Ascending total size; ties keep first-seen order.
    std::vector<const StringStat*> rows;
    rows.reserve(string_stats.size());
    for (const StringStat& s : string_stats) rows.push_back(&s);
    std::stable_sort(rows.begin(), rows.end(), [](const StringStat* a, const StringStat* b) {
      return a->count * a->key.size < b->count * b->key.size;
    });
    if (o.json) {
      Json stats = Json::array();
      for (const StringStat* r : rows) {
        stats.push_back(Json{{"count", r->count},
                             {"size", r->key.size},
                             {"total_size", r->count * r->key.size},
                             {"value", Utf8(r->key.value)}});
      }
      Json tail{{"strings", stats},
                {"total_objects", objects},
                {"total_size", bytes},
                {"warnings", warnings}};
      std::string t = tail.dump(-1, ' ', false, Json::error_handler_t::replace);
      WriteInPieces(out, listing ? absl::StrCat(buf, ",", t.substr(1)) : t);
      return absl::OkStatus();
    }
    std::string s;
    if (!rows.empty()) {
      // The reference fits the values to its console; without one (as here) 128 characters.
      constexpr size_t kMaxShown = 128;
      if (listing) s += "\n";
      s += "Statistics:\n";
      for (const StringStat* r : rows) {
        absl::StrAppendFormat(&s, "%14s %14s %s\n", N0(r->count), N0(r->count * r->key.size),
                              SanitizeString(r->key.value, kMaxShown));
        if (s.size() >= 64 * 1024) {  // in pieces: one message each
          if (cancel.cancelled()) return absl::CancelledError("dumpheap -strings");
          out.Write(s);
          s.clear();
        }
      }
    }
    for (const std::string& w : warnings) absl::StrAppendFormat(&s, "warning: %s\n", w);
    if (!s.empty()) WriteInPieces(out, s);
    return absl::OkStatus();
  }
  std::vector<std::pair<uint64_t, Acc*>> rows;
  rows.reserve(by_mt.size());
  for (auto& [mt, acc] : by_mt) rows.emplace_back(mt, &acc);
  std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    const uint64_t ka = o.bycount ? a.second->count : a.second->size;
    const uint64_t kb = o.bycount ? b.second->count : b.second->size;
    if (ka != kb) return ka < kb;
    return a.second->first_seen < b.second->first_seen;
  });
  if (o.json) {
    Json stats = Json::array();
    if (!o.short_) {
      for (const auto& [mt, acc] : rows) {
        stats.push_back(Json{{"mt", JsonHex(mt)},
                             {"count", acc->count},
                             {"total_size", acc->size},
                             {"type", name_of(mt)}});
      }
    }
    Json frag = Json::array();
    for (const HeapIndex::FragmentedBlock& b : fragmentation) {
      frag.push_back(Json{{"address", JsonHex(b.address)},
                          {"size", b.size},
                          {"followed_by", JsonHex(b.next)},
                          {"followed_by_type", name_of(b.next_mt)}});
    }
    Json tail{{"statistics", stats},
              {"total_objects", objects},
              {"total_size", bytes},
              {"fragmentation", std::move(frag)},
              {"warnings", warnings}};
    std::string t = tail.dump(-1, ' ', false, Json::error_handler_t::replace);
    // Merge {"objects":[...] with the tail's members.
    WriteInPieces(out, listing ? absl::StrCat(buf, ",", t.substr(1)) : t);
    return absl::OkStatus();
  }
  if (o.short_ || objects == 0) return absl::OkStatus();
  size_t mt_w = 12, count_w = 5, size_w = 9;
  for (const auto& [mt, acc] : rows) {
    mt_w = std::max(mt_w, absl::StrFormat("%x", mt).size());
    count_w = std::max(count_w, N0(acc->count).size());
    size_w = std::max(size_w, N0(acc->size).size());
  }
  std::string s = listing ? "\nStatistics:\n" : "Statistics:\n";
  absl::StrAppendFormat(&s, "%*s %*s %*s Class Name\n", mt_w, "MT", count_w, "Count", size_w,
                        "TotalSize");
  for (const auto& [mt, acc] : rows) {
    absl::StrAppendFormat(&s, "%*x %*s %*s %s\n", mt_w, mt, count_w, N0(acc->count), size_w,
                          N0(acc->size), name_of(mt));
  }
  absl::StrAppendFormat(&s, "Total %s objects, %s bytes\n", N0(objects), N0(bytes));
  if (!fragmentation.empty()) {
    s += "\nFragmented blocks larger than 0.5 MB:\n";
    absl::StrAppendFormat(&s, "%16s %14s %16s\n", "Address", "Size", "Followed By");
    for (const HeapIndex::FragmentedBlock& b : fragmentation) {
      absl::StrAppendFormat(&s, "%16x %14s %16x %s\n", b.address, N0(b.size), b.next,
                            name_of(b.next_mt));
    }
  }
  for (const std::string& w : warnings) absl::StrAppendFormat(&s, "warning: %s\n", w);
  WriteInPieces(out, s);
  return absl::OkStatus();
}

}  // namespace clrdiag::sos
