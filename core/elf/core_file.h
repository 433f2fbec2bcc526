// An ELF core dump (x86-64 today; arm64 kept in mind): memory map from PT_LOAD segments with
// fast address lookup, threads from NT_PRSTATUS, mapped files from NT_FILE, auxv, and the GNU
// build-ids of mapped modules. The file is not mapped: its headers and notes are read once at
// open, and memory reads go through pread into a small LRU cache of aligned chunks (reads of a
// chunk or more bypass it), so a walk over a multi-GB core keeps the process's RSS bounded by
// the cache. Every read is bounds-checked and a corrupt or truncated core yields a Status,
// never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/elf/elf_file.h"

namespace clrdiag::elf {

inline constexpr uint16_t kEmX86_64 = 62, kEmAarch64 = 183;

// The memory budget of CoreFile::Open's read cache, in one place: chunks of kCoreCacheChunkBytes
// (aligned in the file), at most kCoreCacheBytes of them. A read of kCoreCacheChunkBytes or
// more goes straight to the caller's buffer.
inline constexpr size_t kCoreCacheChunkBytes = size_t{16} << 10;
inline constexpr size_t kCoreCacheBytes = size_t{16} << 20;
// Note segments bigger than this in total are refused (DataLoss): they are read into memory
// at open, and no real core comes near it (a thread costs a few KiB of notes).
inline constexpr uint64_t kMaxCoreNoteBytes = uint64_t{256} << 20;

// General-purpose registers of one thread, as the kernel's user_regs_struct (x86-64 order).
struct X64Registers {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip,
      cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};

struct CoreThread {
  uint32_t tid = 0;                 // pr_pid of NT_PRSTATUS (the thread id)
  int32_t signal = 0;               // pr_cursig
  X64Registers regs{};              // valid when machine == kEmX86_64
  std::vector<uint8_t> raw_regs;    // pr_reg bytes as stored (for other architectures)
  std::span<const uint8_t> fpregs;  // NT_FPREGSET that follows, if any (user_fpregs_struct);
                                    // points into the CoreFile's copy of the notes
};

// One NT_FILE entry: [start, end) mapped from `path` at file offset `offset`.
struct MappedRange {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // in bytes
  std::string path;
};

// A module: all NT_FILE ranges of one path, with its load base (lowest start with offset 0)
// and GNU build-id read from the module's ELF header in the dump's memory when present.
struct CoreModule {
  std::string path;
  uint64_t base = 0;
  uint64_t end = 0;
  std::string build_id;  // hex, "" if not found in the dump
};

class CoreFile {
 public:
  // Opens and indexes a core file (read with pread, never mapped). InvalidArgument if it is
  // not an ELF core; DataLoss if it is truncated or malformed in a way that makes it unusable.
  static absl::StatusOr<std::unique_ptr<CoreFile>> Open(const std::string& path);
  // The same over bytes already in memory (tests, fuzzing). Nothing is copied: `bytes` must
  // outlive the CoreFile.
  static absl::StatusOr<std::unique_ptr<CoreFile>> OpenBytes(std::span<const uint8_t> bytes);

  uint16_t machine() const;
  const std::vector<CoreThread>& threads() const;
  const std::vector<MappedRange>& mapped_files() const;
  const std::vector<CoreModule>& modules() const;
  // auxv as (type, value) pairs.
  const std::vector<std::pair<uint64_t, uint64_t>>& auxv() const;

  // Copies up to `size` bytes at virtual address `addr` into `out`; returns the number of
  // bytes copied contiguously from `addr` (0 if `addr` is not in the dump). Bytes of a segment
  // whose memsz exceeds its filesz read as zero. O(log n) per segment.
  size_t ReadMemory(uint64_t addr, void* out, size_t size) const;
  // Like ReadMemory, but stops at the first byte the file does not hold: the memsz > filesz
  // tail of a segment counts as missing instead of zero. Kernel cores record file-backed pages
  // they did not dump that way (filesz 0 or one page, memsz the whole mapping), so this is the
  // read a DAC data target wants (ReadVirtual must fail on missing pages, never zero-fill).
  // createdump writes memsz == filesz, where both reads agree.
  size_t ReadDumpedMemory(uint64_t addr, void* out, size_t size) const;
  // True if `addr` lies in a PT_LOAD segment with file bytes.
  bool Contains(uint64_t addr) const;

  ~CoreFile();

 private:
  CoreFile();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clrdiag::elf
