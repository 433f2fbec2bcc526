// Reading the runtime's stress log from a dump. Offsets are those of the 64-bit runtime
// structures (see stress_log.h); every pointer read from the dump is checked before use.
#include "core/sos/stress_log.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clrdiag::sos {
namespace {

// StressLogChunk: prev, next, buf[32 KiB], two signature words.
constexpr size_t kChunkBufSize = 32 * 1024;
constexpr size_t kChunkSize = 16 + kChunkBufSize + 8;
constexpr uint32_t kChunkSignature = 0xCFCFCFCF;
// StressMsg: a 16-byte header, then up to 63 pointer-sized arguments.
constexpr size_t kMsgHeaderSize = 16;
constexpr size_t kMaxMsgSize = kMsgHeaderSize + 63 * 8;
constexpr uint64_t kMaxFormatOffset = uint64_t{1} << 39;
// Sizes of StressLog's and ThreadStressLog's fields we read.
constexpr size_t kLogHeaderSize = 160;
constexpr size_t kThreadLogSize = 80;
constexpr int kMaxModules = 5;
// Limits against a damaged dump that loops its lists.
constexpr size_t kMaxThreadLogs = 65536;
constexpr size_t kMaxChunksPerThread = 65536;
constexpr size_t kFormatBufferSize = 256;

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

struct MsgHeader {
  uint32_t facility = 0;
  uint32_t args = 0;
  uint64_t format_offset = 0;
  uint64_t timestamp = 0;
};

MsgHeader DecodeHeader(const uint8_t* p) {
  uint64_t w0 = Load<uint64_t>(p), w1 = Load<uint64_t>(p + 8);
  MsgHeader h;
  h.facility = static_cast<uint32_t>(w0);
  h.args = static_cast<uint32_t>((w0 >> 32) & 0x3f);
  h.format_offset = ((w1 & 0x1fff) << 26) | (w0 >> 38);
  h.timestamp = w1 >> 13;
  return h;
}

using ThreadLog = StressLog::ThreadLog;

// The first message of the chunk after the reader's (ThreadStressLog::AdvReadPastBoundary).
void ReadPastBoundary(ThreadLog& t) {
  if (t.read_chunk + 1 == t.chunks.size()) {
    t.read_has_wrapped = true;
    if (!t.write_has_wrapped) {
      t.past_tail = true;
      return;
    }
  }
  t.read_chunk = (t.read_chunk + 1) % t.chunks.size();
  const uint8_t* buf = t.chunks[t.read_chunk].buf.data();
  size_t i = 0;
  while (Load<uint64_t>(buf + i * 8) == 0 && i < kMaxMsgSize / 8) ++i;
  if (Load<uint64_t>(buf + i * 8) == 0) i = 0;
  t.read_offset = i * 8;
}

// The header at the reader's position; nullopt past the tail (no message there).
std::optional<MsgHeader> Current(const ThreadLog& t) {
  if (t.past_tail || t.read_offset + kMsgHeaderSize > kChunkBufSize) return std::nullopt;
  return DecodeHeader(t.chunks[t.read_chunk].buf.data() + t.read_offset);
}

bool CompletedDump(const ThreadLog& t) {
  std::optional<MsgHeader> h = Current(t);
  if (h && h->timestamp == 0) return true;
  return t.read_has_wrapped &&
         (!t.write_has_wrapped || (t.read_chunk == t.write_chunk && t.read_offset >= t.cur_offset));
}

void AdvanceRead(ThreadLog& t, uint32_t args) {
  if (t.past_tail) return;
  t.read_offset += kMsgHeaderSize + args * 8;
  if (t.read_offset >= kChunkBufSize) ReadPastBoundary(t);
}

}  // namespace

double StressLogHeader::elapsed_seconds() const {
  if (tick_frequency == 0) return 0;
  return static_cast<double>(last_timestamp - start_timestamp) /
         static_cast<double>(tick_frequency);
}

uint64_t StressLogHeader::end_filetime() const {
  return start_filetime + static_cast<int64_t>(elapsed_seconds() * 1.0E7);
}

absl::StatusOr<StressLog> StressLog::Read(dac::DacProcess& dac, uint64_t address) {
  uint8_t h[kLogHeaderSize];
  if (dac.ReadTargetMemory(address, h, sizeof(h)) != sizeof(h)) {
    return absl::DataLossError(
        absl::StrFormat("cannot read the stress log at 0x%x: the dump does not hold it", address));
  }
  StressLog log;
  StressLogHeader& hd = log.header_;
  hd.address = address;
  hd.facilities_to_log = Load<uint32_t>(h + 0);
  hd.level_to_log = Load<uint32_t>(h + 4);
  hd.max_size_per_thread = Load<uint32_t>(h + 8);
  hd.max_size_total = Load<uint32_t>(h + 12);
  hd.total_chunks = Load<int32_t>(h + 16);
  uint64_t logs = Load<uint64_t>(h + 24);
  hd.tick_frequency = Load<uint64_t>(h + 48);
  hd.start_timestamp = Load<uint64_t>(h + 56);
  hd.start_filetime = Load<uint64_t>(h + 64);
  hd.module_offset = Load<uint64_t>(h + 72);
  for (int i = 0; i < kMaxModules; ++i) {
    log.modules_.push_back({Load<uint64_t>(h + 80 + i * 16), Load<uint64_t>(h + 88 + i * 16)});
  }
  if (logs == 0 || hd.module_offset == 0) {
    return absl::NotFoundError(
        "----- No thread logs in the image: The stress log was probably not initialized "
        "correctly. -----");
  }
  for (uint64_t next = logs; next != 0;) {
    if (log.threads_.size() >= kMaxThreadLogs) {
      return absl::DataLossError("the stress log's thread list does not end");
    }
    uint8_t tl[kThreadLogSize];
    if (dac.ReadTargetMemory(next, tl, sizeof(tl)) != sizeof(tl)) {
      return absl::DataLossError(absl::StrFormat("cannot read the thread log at 0x%x", next));
    }
    uint64_t head = Load<uint64_t>(tl + 40), write_chunk = Load<uint64_t>(tl + 64);
    uint64_t cur_ptr = Load<uint64_t>(tl + 24);
    if (head == 0) {
      return absl::DataLossError(absl::StrFormat("the thread log at 0x%x has no chunks", next));
    }
    ThreadLog t;
    t.thread_id = static_cast<uint32_t>(Load<uint64_t>(tl + 8));
    t.write_has_wrapped = tl[18] != 0;
    bool found_write = false;
    uint64_t chunk = head;
    do {
      if (t.chunks.size() >= kMaxChunksPerThread) {
        return absl::DataLossError("a thread log's chunk list does not end");
      }
      std::vector<uint8_t> raw(kChunkSize);
      if (dac.ReadTargetMemory(chunk, raw.data(), raw.size()) != raw.size()) {
        return absl::DataLossError(
            absl::StrFormat("ReadVirtual failed with code hr = %x.", 0x80004005u));
      }
      if (Load<uint32_t>(raw.data() + 16 + kChunkBufSize) != kChunkSignature ||
          Load<uint32_t>(raw.data() + 20 + kChunkBufSize) != kChunkSignature) {
        return absl::DataLossError(absl::StrFormat("Invalid stress log chunk: %016X", chunk));
      }
      if (!found_write && chunk == write_chunk) {
        found_write = true;
        t.write_chunk = t.chunks.size();
        uint64_t start = chunk + 16;
        t.cur_offset =
            cur_ptr >= start ? std::min<uint64_t>(cur_ptr - start, kChunkBufSize) : kChunkBufSize;
      }
      uint64_t next_chunk = Load<uint64_t>(raw.data() + 8);
      t.chunks.push_back({chunk, std::vector<uint8_t>(raw.begin() + 16, raw.end() - 8)});
      chunk = next_chunk;
    } while (chunk != head);
    if (!found_write) {
      return absl::DataLossError(
          absl::StrFormat("the thread log at 0x%x writes outside its chunks", next));
    }
    // Start reading where the writer is (the newest message), newest to oldest.
    t.read_chunk = t.write_chunk;
    t.read_offset = t.cur_offset;
    t.cur_offset = t.cur_offset > kMaxMsgSize ? t.cur_offset - kMaxMsgSize : 0;
    if (t.read_offset == kChunkBufSize) ReadPastBoundary(t);
    if (std::optional<MsgHeader> m = Current(t); m && m->timestamp > hd.last_timestamp) {
      hd.last_timestamp = m->timestamp;
    }
    log.threads_.push_back(std::move(t));
    next = Load<uint64_t>(tl + 0);
  }
  hd.threads_with_logs = static_cast<int>(log.threads_.size());
  return log;
}

uint64_t StressLog::FormatAddress(uint64_t offset) const {
  const Module& first = modules_[0];
  if (first.base == header_.module_offset && first.size >= 1024 * 1024 &&
      first.size < kMaxFormatOffset) {
    uint64_t base = 0;
    for (const Module& m : modules_) {
      if (m.base == 0) break;
      if (offset - base < m.size) return offset - base + m.base;
      base += m.size;
    }
  }
  return offset + header_.module_offset;
}

absl::StatusOr<uint64_t> StressLog::Walk(dac::DacProcess& dac, const StressLogVisitor& visitor,
                                         const CancellationToken& cancel, bool* last_format_read) {
  uint64_t count = 0;
  // Every step moves one reader forward by at least one header; more steps than the logs have
  // headers means a damaged log.
  uint64_t max_steps = threads_.size() * 2;
  for (const ThreadLog& t : threads_) max_steps += t.chunks.size() * (kChunkBufSize / 16 + 2) * 2;
  for (uint64_t step = 0;; ++step) {
    if (cancel.cancelled()) return absl::CancelledError("cancelled");
    if (step > max_steps) return absl::DataLossError("the stress log's thread logs do not end");
    // The thread whose next message is the newest; ties go to the first in the list.
    ThreadLog* latest = nullptr;
    uint64_t latest_ts = 0;
    for (ThreadLog& t : threads_) {
      if (!t.reading) continue;
      std::optional<MsgHeader> h = Current(t);
      uint64_t ts = h ? h->timestamp : 0;
      if (latest == nullptr || ts > latest_ts) {
        latest = &t;
        latest_ts = ts;
      }
    }
    if (latest == nullptr) break;
    ThreadLog& t = *latest;
    std::optional<MsgHeader> h = Current(t);
    if (h && h->format_offset != 0 && !CompletedDump(t)) {
      StressLogMessage m;
      m.thread_id = t.thread_id;
      m.facility = h->facility;
      m.seconds = header_.tick_frequency == 0
                      ? 0
                      : static_cast<double>(h->timestamp - header_.start_timestamp) /
                            static_cast<double>(header_.tick_frequency);
      char format[kFormatBufferSize + 1] = {};
      size_t got = dac.ReadTargetMemory(FormatAddress(h->format_offset), format, kFormatBufferSize);
      m.format_read = got > 0;
      m.format = m.format_read ? std::string(format, strnlen(format, kFormatBufferSize))
                               : "Could not read address of format string";
      if (last_format_read) *last_format_read = m.format_read;
      const uint8_t* args = t.chunks[t.read_chunk].buf.data() + t.read_offset + kMsgHeaderSize;
      size_t room = (kChunkBufSize - t.read_offset - kMsgHeaderSize) / 8;
      for (uint32_t i = 0; i < h->args; ++i) {
        m.args.push_back(i < room ? Load<uint64_t>(args + i * 8) : 0);
      }
      if (m.format == kTaskSwitchFormat && !m.args.empty()) {
        t.thread_id = static_cast<uint32_t>(m.args[0]);
      }
      if (visitor.message) visitor.message(m);
      ++count;
    }
    AdvanceRead(t, h ? h->args : 0);
    if (CompletedDump(t)) {
      t.reading = false;
      if (visitor.thread_end) visitor.thread_end(t.thread_id);
    }
    if (count % 64 == 0 && visitor.progress) visitor.progress(count % (64 * 64) == 0);
  }
  return count;
}

std::string FacilityName(uint32_t facility) {
  static constexpr const char* kNames[32] = {"GC",
                                             "GCINFO",
                                             "STUBS",
                                             "JIT",
                                             "LOADER",
                                             "METADATA",
                                             "SYNC",
                                             "EEMEM",
                                             "GCALLOC",
                                             "CORDB",
                                             "CLASSLOADER",
                                             "CORPROF",
                                             "DIAGNOSTICS_PORT",
                                             "DBGALLOC",
                                             "EH",
                                             "ENC",
                                             "ASSERT",
                                             "VERIFIER",
                                             "THREADPOOL",
                                             "GCROOTS",
                                             "INTEROP",
                                             "MARSHALER",
                                             "TIEREDCOMPILATION",
                                             "ZAP",
                                             "STARTUP",
                                             "APPDOMAIN",
                                             "CODESHARING",
                                             "STORE",
                                             "SECURITY",
                                             "LOCKS",
                                             "BCL",
                                             "ALWAYS"};
  if (facility == 0xFFFFFFFFu) return "`ALL`";
  std::string s = "`";
  for (int i = 0; i < 32; ++i) {
    if (facility & (1u << i)) absl::StrAppend(&s, kNames[i], "`");
  }
  return s;
}

std::string FileTimeClock(uint64_t filetime) {
  constexpr int64_t kUnixEpochIn1601Seconds = 11644473600;
  time_t t =
      static_cast<time_t>(static_cast<int64_t>(filetime / 10000000) - kUnixEpochIn1601Seconds);
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) return "BAD TIME";
  return absl::StrFormat("%02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

namespace {

// An argument of a message as printf sees it: a number, or a string read from the dump.
struct Arg {
  uint64_t value = 0;
  bool is_string = false;
  bool is_wide = false;
  std::string text;         // narrow strings
  uint32_t wide_first = 0;  // first 32-bit unit of a UTF-16 string (see PrintSegment)
};

// printf of `fmt` with `args` from `first`, one argument per conversion, with the C library's
// own conversions (the reference's is the same glibc). Returns false where glibc stops a call:
// a UTF-16 string given to %S/%ls (its 16-bit units are not wchar_t).
bool PrintSegment(const std::string& fmt, const std::vector<Arg>& args, size_t first,
                  std::string* out) {
  size_t next = first;
  auto take = [&]() -> const Arg& {
    static const Arg kZero;
    return next < args.size() ? args[next++] : (++next, kZero);
  };
  char buf[1024];
  for (size_t i = 0; i < fmt.size();) {
    char c = fmt[i];
    if (c != '%') {
      out->push_back(c);
      ++i;
      continue;
    }
    size_t start = i++;
    std::string spec = "%";
    while (i < fmt.size() && std::strchr("-+ #0'I", fmt[i])) spec += fmt[i++];
    if (i < fmt.size() && fmt[i] == '*') {
      spec += std::to_string(static_cast<int>(take().value));
      ++i;
    }
    while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec += fmt[i++];
    if (i < fmt.size() && fmt[i] == '.') {
      spec += fmt[i++];
      if (i < fmt.size() && fmt[i] == '*') {
        spec += std::to_string(static_cast<int>(take().value));
        ++i;
      }
      while (i < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[i]))) spec += fmt[i++];
    }
    std::string length;
    while (i < fmt.size() && std::strchr("hlLqjzZt", fmt[i])) length += fmt[i++];
    if (i >= fmt.size()) {
      out->append(fmt, start, std::string::npos);
      break;
    }
    char conv = fmt[i++];
    bool wide64 = length == "l" || length == "ll" || length == "q" || length == "j" ||
                  length == "z" || length == "Z" || length == "t";
    int n = 0;
    switch (conv) {
      case '%':
        out->push_back('%');
        continue;
      case 'd':
      case 'i': {
        uint64_t v = take().value;
        long long x = wide64           ? static_cast<long long>(v)
                      : length == "hh" ? static_cast<signed char>(v)
                      : length == "h"  ? static_cast<short>(v)
                                       : static_cast<int>(v);
        n = std::snprintf(buf, sizeof(buf), (spec + "ll" + conv).c_str(), x);
        break;
      }
      case 'u':
      case 'o':
      case 'x':
      case 'X': {
        uint64_t v = take().value;
        unsigned long long x = wide64           ? v
                               : length == "hh" ? static_cast<unsigned char>(v)
                               : length == "h"  ? static_cast<unsigned short>(v)
                                                : static_cast<uint32_t>(v);
        n = std::snprintf(buf, sizeof(buf), (spec + "ll" + conv).c_str(), x);
        break;
      }
      case 'c':
        n = std::snprintf(buf, sizeof(buf), (spec + "c").c_str(),
                          static_cast<int>(static_cast<unsigned char>(take().value)));
        break;
      case 'p':
        n = std::snprintf(
            buf, sizeof(buf), (spec + "p").c_str(),
            reinterpret_cast<void*>(take().value));  // NOLINT(performance-no-int-to-ptr)
        break;
      case 's':
      case 'S': {
        const Arg& a = take();
        if (conv == 'S' || length == "l" || a.is_wide) {
          if (a.wide_first != 0) return false;
          n = std::snprintf(buf, sizeof(buf), (spec + "s").c_str(), "");
        } else {
          n = std::snprintf(buf, sizeof(buf), (spec + "s").c_str(), a.text.c_str());
        }
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
      case 'a':
      case 'A':
        // Doubles travel in floating-point registers, not in the message's arguments: the
        // reference prints whatever those registers held. Print 0 and consume no argument.
        n = std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), 0.0);
        break;
      case 'n':
        take();
        continue;
      default:
        out->append(fmt, start, i - start);
        continue;
    }
    if (n > 0) out->append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
  }
  return true;
}

Arg ReadStringArg(dac::DacProcess& dac, uint64_t address, bool wide) {
  Arg a;
  a.is_string = true;
  a.is_wide = wide;
  constexpr size_t kStringRead = 256;
  if (wide) {
    uint8_t w[kStringRead * 2] = {};
    if (dac.ReadTargetMemory(address, w, sizeof(w)) == 0) {
      // The reference substitutes a UTF-16 message: still not printable by %S.
      a.wide_first = '(';
    } else {
      a.wide_first = Load<uint32_t>(w);
    }
    return a;
  }
  char s[kStringRead + 1] = {};
  if (dac.ReadTargetMemory(address, s, kStringRead) == 0) {
    a.text = "(#Could not read address of string#)";
  } else {
    a.text.assign(s, strnlen(s, kStringRead));
  }
  return a;
}

}  // namespace

std::string FormatStressMessage(dac::DacProcess& dac, const StressLogMessage& m) {
  // The log is shown newest first, so braces are turned around.
  std::string fmt = m.format;
  for (char& c : fmt) {
    if (c == '{') {
      c = '}';
    } else if (c == '}') {
      c = '{';
    }
  }
  std::vector<Arg> args;
  for (uint64_t v : m.args) {
    Arg a;
    a.value = v;
    args.push_back(a);
  }
  // The reference passes seven arguments per printf call; what lies past a message's own
  // arguments reads as zero here.
  while (args.size() < 64) args.push_back(Arg{});
  std::string out;
  size_t segment_start = 0;  // in fmt
  size_t segment_arg = 0;    // first argument of the segment
  size_t cursor = 0;         // arguments consumed by conversions so far
  int conversion = 0;        // conversions in the segment, counting %% as the reference does
  for (size_t i = 0; i < fmt.size();) {
    if (fmt[i++] != '%') continue;
    ++cursor;
    if (i < fmt.size() && fmt[i] == '%') {
      ++i;
      --cursor;
    } else if (i < fmt.size() && fmt[i] == 'p') {
      ++i;
      if (i < fmt.size() && std::isalpha(static_cast<unsigned char>(fmt[i]))) {
        char kind = fmt[i];
        PrintSegment(fmt.substr(segment_start, i - segment_start), args, segment_arg, &out);
        segment_start = i + 1;
        segment_arg = cursor;
        conversion = -1;
        uint64_t arg = cursor > 0 ? args[cursor - 1].value : 0;
        switch (kind) {
          case 'M':
            if (!dac.GetMethodDesc(arg).ok()) {
              if (arg != 0) out += " (BAD Method)";
            } else {
              out += " (";  // the name is UTF-16 given to %S: glibc stops there
            }
            break;
          case 'T':
            if (arg & 3) {
              arg &= ~uint64_t{3};
              out += " Low Bit(s) Set";
            }
            out += dac.GetMethodTable(arg).ok() ? " (" : " (BAD MethodTable)";
            break;
          case 'V':
            out += " (Unknown VTable)";
            break;
          case 'K':
            out += " (Unknown function)";
            break;
          default:
            segment_start = i;  // an ordinary letter after %p
        }
      }
    } else if (i < fmt.size() &&
               (fmt[i] == 's' || (fmt[i] == 'h' && i + 1 < fmt.size() && fmt[i + 1] == 's'))) {
      if (fmt[i] == 'h') ++i;
      size_t slot = segment_arg + static_cast<size_t>(conversion);
      if (slot < args.size()) args[slot] = ReadStringArg(dac, args[slot].value, false);
    } else if (i < fmt.size() &&
               (fmt[i] == 'S' || (fmt[i] == 'l' && i + 1 < fmt.size() && fmt[i + 1] == 's'))) {
      if (fmt[i] == 'l') ++i;
      size_t slot = segment_arg + static_cast<size_t>(conversion);
      if (slot < args.size()) args[slot] = ReadStringArg(dac, args[slot].value, true);
    }
    ++conversion;
  }
  PrintSegment(fmt.substr(segment_start), args, segment_arg, &out);
  return out;
}

}  // namespace clrdiag::sos
