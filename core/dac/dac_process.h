// A .NET process as seen through its DAC: typed, Status-returning wrappers over
// IXCLRDataProcess / ISOSDacInterface for one core dump.
//
// Every method takes the process-wide DacMutex() for the duration of its DAC calls, so a
// DacProcess may be used from several threads, one call at a time. Results are plain structs
// that stay valid after the DacProcess is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dac/clr_data.h"
#include "core/dac/dac_library.h"
#include "core/dac/data_target.h"
#include "core/dac/sos_dac.h"
#include "core/elf/core_file.h"

namespace clrdiag::dac {

// Thread::ThreadState bits used by clrthreads-like output.
inline constexpr uint32_t kThreadStateBackground = 0x00000200;
inline constexpr uint32_t kThreadStateUnstarted = 0x00000400;
inline constexpr uint32_t kThreadStateDead = 0x00000800;
inline constexpr uint32_t kThreadStateThreadPoolWorker = 0x01000000;
inline constexpr uint32_t kThreadStateCompletionPort = 0x08000000;

struct ManagedThread {
  uint64_t address = 0;     // The runtime's Thread*.
  uint32_t managed_id = 0;  // Thread.ManagedThreadId.
  uint32_t os_id = 0;       // LWP id; 0 for a thread that has not started or has died.
  uint32_t state = 0;       // Thread::ThreadState bits.
  bool preemptive = true;   // GC mode: false = cooperative.
  uint64_t alloc_ptr = 0;   // Allocation context [alloc_ptr, alloc_limit).
  uint64_t alloc_limit = 0;
  uint64_t domain = 0;
  int32_t lock_count = 0;
  uint64_t last_thrown_handle = 0;  // Handle to the last thrown exception object, or 0.
  bool is_finalizer = false;
  bool is_gc = false;
};

struct ThreadStore {
  int32_t thread_count = 0;
  int32_t unstarted_count = 0;
  int32_t background_count = 0;
  int32_t pending_count = 0;
  int32_t dead_count = 0;
  std::vector<ManagedThread> threads;  // In the runtime's list order.
};

struct GcHeapSummary {
  bool server = false;
  bool structures_valid = false;
  uint32_t heap_count = 0;
  uint32_t max_generation = 0;
  bool regions = false;  // .NET 7+ regions rather than segments.
};

enum class SegmentKind { kGen0, kGen1, kGen2, kEphemeral, kLarge, kPinned, kFrozen };
const char* SegmentKindName(SegmentKind kind);

// A GC segment or region and the address range its objects occupy.
struct HeapSegment {
  uint64_t address = 0;  // The heap_segment* (region descriptor).
  uint64_t start = 0;    // First object.
  uint64_t end = 0;      // End of allocated objects.
  uint64_t committed = 0;
  uint64_t reserved = 0;
  SegmentKind kind = SegmentKind::kGen2;
  int heap = 0;  // Server GC heap index.
};

struct UsefulGlobals {
  uint64_t array_mt = 0;
  uint64_t string_mt = 0;
  uint64_t object_mt = 0;
  uint64_t exception_mt = 0;
  uint64_t free_mt = 0;
};

struct MethodTableInfo {
  uint32_t base_size = 0;       // As the DAC reports it (System.String: 2 less than real).
  uint32_t component_size = 0;  // 0 unless the type has a variable-length tail.
  bool is_free = false;
  bool contains_pointers = false;
  uint64_t parent = 0;
  uint64_t module = 0;
  uint32_t token = 0;
};

// One loaded module (clrmodules / `assemblies`).
struct ManagedModule {
  uint64_t address = 0;   // The runtime's Module*.
  uint64_t assembly = 0;  // Assembly*.
  uint64_t il_base = 0;   // Where the image is mapped, 0 for dynamic modules.
  uint64_t metadata_start = 0;
  uint64_t metadata_size = 0;
  bool is_dynamic = false;
  std::string file;  // Path of the PE file, "" for dynamic/in-memory modules.
};

// What the DAC says about one object (GetObjectData).
struct ObjectInfo {
  uint64_t mt = 0;
  uint64_t size = 0;  // The DAC's size (string: real base size + length * 2).
  int32_t kind = 0;   // DacpObjectType
  uint64_t components = 0;
  uint64_t component_size = 0;
};

class DacProcess {
 public:
  struct Options {
    std::string dac_path;      // libmscordaccore.so to load.
    DataTargetOptions target;  // How the target answers the DAC.
    DacLoader loader;          // Default: LoadDacLibrary.
  };

  // Loads the DAC, creates the data target and the DAC's process object, and checks that the
  // runtime is readable (GetThreadStoreData succeeds). Errors say which step failed with
  // which HRESULT and, for the well-known ones, what it usually means.
  static absl::StatusOr<std::unique_ptr<DacProcess>> Open(std::shared_ptr<const elf::CoreFile> core,
                                                          Options options);
  ~DacProcess();
  DacProcess(const DacProcess&) = delete;
  DacProcess& operator=(const DacProcess&) = delete;

  const elf::CoreFile& core() const { return *core_; }
  // CLRDATA_REQUEST_REVISION of the DAC (9 or 10 for current runtimes), 0 if unknown.
  uint32_t revision() const { return revision_; }

  absl::StatusOr<ThreadStore> GetThreadStore();
  absl::StatusOr<GcHeapSummary> GetGcHeapSummary();
  absl::StatusOr<UsefulGlobals> GetUsefulGlobals();
  // All segments/regions of all heaps: per heap, gen 3 (LOH), gen 2, with regions gen 1 and
  // gen 0, then gen 4 (POH); each list deduplicated.
  absl::StatusOr<std::vector<HeapSegment>> GetHeapSegments();
  // Allocation contexts [ptr, limit) that hold no objects yet: per-thread contexts, each
  // heap's gen0 context and the global one. Keyed by start.
  absl::StatusOr<std::unordered_map<uint64_t, uint64_t>> GetAllocationContexts();
  // Cached per MT.
  absl::StatusOr<MethodTableInfo> GetMethodTable(uint64_t mt);
  // The DAC's raw type name, e.g. "System.Collections.Generic.List`1[[System.String,
  // System.Private.CoreLib]]". Cached per MT.
  absl::StatusOr<std::string> GetMethodTableName(uint64_t mt);
  absl::StatusOr<ObjectInfo> GetObject(uint64_t address);
  // Modules of all assemblies of the app domain(s), in the runtime's order.
  absl::StatusOr<std::vector<ManagedModule>> GetModules();

 private:
  DacProcess() = default;
  // A UTF-16 string from a (count, buffer, needed) DAC call, as UTF-8.
  template <typename Call>
  absl::StatusOr<std::string> GetStringLocked(std::string_view what, Call call);
  absl::StatusOr<std::vector<HeapSegment>> SegmentsOfHeapLocked(int heap_index,
                                                                const DacpGcHeapDetails& details,
                                                                uint64_t heap_addr);

  std::shared_ptr<const elf::CoreFile> core_;
  ComPtr<ICLRDataTarget> target_;
  ComPtr<IXCLRDataProcess> process_;
  ComPtr<ISOSDacInterface> sos_;
  ComPtr<ISOSDacInterface8> sos8_;    // May be null.
  ComPtr<ISOSDacInterface12> sos12_;  // May be null.
  uint32_t revision_ = 0;
  std::unordered_map<uint64_t, MethodTableInfo> mt_cache_;
  std::unordered_map<uint64_t, std::string> name_cache_;
};

// Status for a failed DAC call: "<call>: <hresult>[: <meaning>]".
absl::Status DacError(std::string_view call, HRESULT hr);

}  // namespace clrdiag::dac
