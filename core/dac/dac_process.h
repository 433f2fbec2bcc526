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
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "core/base/cancel.h"
#include "core/dac/clr_data.h"
#include "core/dac/dac_library.h"
#include "core/dac/data_target.h"
#include "core/dac/sos_dac.h"
#include "core/dac/stack_walk.h"
#include "core/elf/core_file.h"

namespace clrdiag::dac {

class IMetaDataImport;

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
  // Head of the thread's nested exception chain (GetNestedExceptionData), or 0.
  uint64_t first_nested_exception = 0;
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

// The app domains as the runtime lists them (dumpdomain).
struct AppDomainStore {
  uint64_t shared_domain = 0;  // 0 on .NET Core.
  uint64_t system_domain = 0;
  std::vector<uint64_t> domains;  // GetAppDomainList, in the runtime's order.
};

// One domain (DacpAppDomainData) and its friendly name.
struct AppDomainDetails {
  uint64_t address = 0;
  uint64_t security_descriptor = 0;
  uint64_t low_frequency_heap = 0;
  uint64_t high_frequency_heap = 0;
  uint64_t stub_heap = 0;
  uint32_t id = 0;
  int32_t assembly_count = 0;
  int32_t stage = 0;      // DacpAppDomainDataStage
  bool has_name = false;  // GetAppDomainName succeeded
  std::string name;
};

// One assembly of a domain (DacpAssemblyData) and its name (for .NET Core, its path).
struct AssemblyDetails {
  uint64_t address = 0;
  uint64_t security_descriptor = 0;
  bool is_dynamic = false;
  uint32_t module_count = 0;
  uint64_t parent_domain = 0;
  bool has_name = false;  // GetAssemblyName succeeded
  std::string name;
};

// One module: DacpModuleData, the IXCLRDataModule view of its PE image, and its names the
// ways SOS (GetPEFileName, then IXCLRDataModule::GetFileName) and ClrMD (GetFileName) get them.
struct ModuleDetails {
  uint64_t address = 0;
  uint64_t assembly = 0;
  uint64_t pe_assembly = 0;  // .NET 9+: the module address; 0 for a dynamic module.
  uint64_t il_base = 0;
  uint64_t metadata_start = 0;
  uint64_t metadata_size = 0;
  bool is_reflection = false;
  bool is_pe_file = false;
  // From IXCLRDataModule::Request(GET_MODULEDATA); valid when has_image_data.
  bool has_image_data = false;
  bool image_dynamic = false;
  bool image_in_memory = false;
  bool flat_layout = false;
  uint64_t loaded_pe_address = 0;
  uint64_t loaded_pe_size = 0;
  // DacpModuleData's maps and flags (dumpmodule).
  uint32_t transient_flags = 0;
  uint64_t loader_allocator = 0;
  uint64_t type_def_map = 0, type_ref_map = 0, method_def_map = 0, field_def_map = 0;
  uint64_t member_ref_map = 0, file_references_map = 0, assembly_references_map = 0;
  std::string pe_file_name;    // GetPEFileName (after GetPEFileBase succeeded), may be "".
  std::string data_file_name;  // IXCLRDataModule::GetFileName, may be "".
};

// What the DAC says about one object (GetObjectData).
struct ObjectInfo {
  uint64_t mt = 0;
  uint64_t size = 0;  // The DAC's size (string: real base size + length * 2).
  int32_t kind = 0;   // DacpObjectType
  uint64_t components = 0;
  uint64_t component_size = 0;
};

// The rest of GetObjectData (dumpobj): array shape and interop wrappers.
struct ObjectDetails {
  uint64_t mt = 0;
  int32_t kind = 0;  // DacpObjectType
  uint64_t size = 0;
  uint64_t element_type_handle = 0;  // Arrays: the element's MethodTable.
  int32_t element_type = 0;          // Arrays: CorElementType of the elements.
  uint32_t rank = 0;
  uint64_t components = 0;
  uint64_t component_size = 0;
  uint64_t array_data = 0;
  uint64_t rcw = 0;
  uint64_t ccw = 0;
};

// All of DacpMethodTableData (dumpmt).
struct MethodTableDetails {
  bool is_free = false;
  uint64_t module = 0;
  uint64_t klass = 0;  // EEClass, or (.NET 9+) the canonical MethodTable.
  uint64_t parent = 0;
  uint16_t num_interfaces = 0;
  uint16_t num_methods = 0;
  uint16_t num_vtable_slots = 0;
  uint16_t num_virtuals = 0;
  uint32_t base_size = 0;
  uint32_t component_size = 0;
  uint32_t token = 0;
  uint32_t attributes = 0;
  bool is_shared = false;
  bool is_dynamic = false;
  bool contains_pointers = false;
};

// GetMethodTableFieldData: counts and the head of the type's own FieldDesc list.
struct MethodTableFields {
  uint16_t num_instance = 0;  // Includes the parents' instance fields.
  uint16_t num_static = 0;
  uint16_t num_thread_static = 0;
  uint64_t first_field = 0;
};

// One FieldDesc (GetFieldDescData).
struct FieldDescInfo {
  uint64_t address = 0;
  int32_t type = 0;      // CorElementType as stored (string fields: CLASS)
  int32_t sig_type = 0;  // CorElementType from the signature
  uint64_t mt_of_type = 0;
  uint64_t module_of_type = 0;
  uint32_t token_of_type = 0;
  uint32_t token = 0;  // mdFieldDef
  uint64_t enclosing_mt = 0;
  uint32_t offset = 0;  // From the start of the instance data.
  bool is_thread_local = false;
  bool is_context_local = false;
  bool is_static = false;
  uint64_t next = 0;
};

// GetMethodDescData, the parts dumpmt -md uses.
struct MethodDescInfo {
  bool has_native_code = false;
  uint64_t native_code = 0;
  uint64_t method_table = 0;
  uint64_t module = 0;
  uint32_t token = 0;
  uint16_t slot = 0;
};

// Where a method's IL is (dumpil; dac_process_il.cc): profiler-replaced IL, else the module's
// base plus the method's RVA. `problem` is SOS's message when it is not found; dynamic
// methods (is_dynamic with their DynamicMethod object) and token-less stubs have no address.
struct MethodIlLocation {
  uint64_t il_address = 0;
  bool profiler_modified = false;
  uint64_t module = 0;
  uint32_t token = 0;
  bool is_dynamic = false;
  uint64_t dynamic_method_object = 0;
  uint64_t import = 0;  // the module's IMetaDataImport in this process
  std::string problem;
};

// One IL-to-native map entry (CLRDATA_IL_ADDRESS_MAP): native code [start, end) for the IL at
// `il_offset`, or for one of the special offsets (0xfffffffe prolog, 0xfffffffd epilog,
// 0xffffffff no mapping). The last entry's end is the code start (the DAC's end offset 0).
struct IlAddressMapEntry {
  uint32_t il_offset = 0;
  uint64_t start = 0;
  uint64_t end = 0;
};

struct StackFrame;  // stack_walk.h

// A method's code versions as dumpmd shows them (ISOSDacInterface7 and 5).
struct MethodVersions {
  uint32_t rejit_id = 0;    // the current ReJIT version (0: the original IL)
  uint64_t il_address = 0;  // its IL, 0 if unknown
  uint64_t il_version_node = 0;
  bool has_pending = false;  // a ReJIT requested but not compiled yet
  int32_t pending_rejit_id = 0;
  uint64_t pending_il_address = 0;
  uint64_t pending_il_version_node = 0;
  struct Native {
    uint64_t code = 0;
    int32_t tier = 0;  // DacpTieredVersionData::OptimizationTier
    uint64_t version_node = 0;
  };
  bool has_tiers = false;     // GetTieredVersions answered
  std::vector<Native> tiers;  // as the DAC lists them (SOS prints them in reverse)
  bool is_jitted = false;
  uint64_t native_code = 0;
};

// GetCodeHeaderData for a code address.
struct CodeHeaderInfo {
  uint64_t method_desc = 0;
  int32_t jit_type = 0;  // DacJitType
  uint64_t method_start = 0;
  // clru: the code's extent (a hot/cold split when cold_region_start != 0) and its GC info.
  uint32_t method_size = 0;
  uint32_t hot_region_size = 0;
  uint64_t cold_region_start = 0;
  uint32_t cold_region_size = 0;
  uint64_t gc_info = 0;
};

// One slot of a MethodTable's vtable (ISOSDacInterface15 enumerator).
struct MethodSlot {
  uint64_t method_desc = 0;
  uint64_t entry_point = 0;
  uint64_t defining_mt = 0;
  uint64_t defining_module = 0;
  uint32_t token = 0;
  uint32_t slot = 0;
  // Only without ISOSDacInterface15 (.NET 8): GetMethodTableSlot failed for `slot`; SOS prints
  // "<error getting slot N>" in its place.
  bool unreadable = false;
};

// A module's DomainLocalModule statics blocks (.NET 8 and older; see GetDomainLocalModule).
struct DomainLocalModule {
  uint64_t class_data = 0;  // Class-init flag bytes, indexed by TypeDef RID - 1.
  uint64_t gc_statics = 0;
  uint64_t non_gc_statics = 0;
};

// One entry of the sync block table (GetSyncBlockData).
struct SyncBlockInfo {
  uint64_t object = 0;
  bool free = false;
  uint64_t sync_block = 0;  // The SyncBlock*.
  uint32_t count = 0;       // Entries in the table: valid numbers are 1..count.
  // The monitor: 1 while held, plus 2 for each thread waiting to enter it.
  uint32_t monitor_held = 0;
  uint32_t recursion = 0;
  uint64_t holding_thread = 0;  // The owner's Thread*; 0 none, ~0 orphaned (owner died).
  uint32_t com_flags = 0;
};

// Where a type's statics live (ISOSDacInterface14); 0 if not allocated.
struct StaticBases {
  uint64_t non_gc = 0;
  uint64_t gc = 0;
};

// The fields of a System.Exception as ISOSDacInterface2::GetObjectExceptionData reports them.
struct ExceptionObjectFields {
  uint64_t message = 0;  // System.String, or 0
  uint64_t inner_exception = 0;
  uint64_t stack_trace = 0;  // _stackTrace: byte[] or (.NET 9+) object[] whose [0] is the byte[]
  uint64_t watson_buckets = 0;
  uint64_t stack_trace_string = 0;
  uint64_t remote_stack_trace_string = 0;
  int32_t hresult = 0;
  uint32_t xcode = 0;
};

// One handle-table entry (GetHandles); `object` is read from the handle's slot.
struct HandleEntry {
  uint64_t handle = 0;
  uint64_t object = 0;
  uint64_t secondary = 0;  // Dependent handles: the object kept alive with `object`.
  uint32_t type = 0;       // SOSHandleData::Type (2 strong, 6 dependent, ...).
  uint32_t ref_count = 0;
  uint64_t app_domain = 0;  // The domain the handle belongs to (gchandles -perdomain).
};

// One entry of the runtime's sync block cleanup list (GetSyncBlockCleanupData).
struct SyncBlockCleanup {
  uint64_t sync_block = 0;
  uint64_t rcw = 0;
  uint64_t ccw = 0;
  uint64_t class_factory = 0;
};

// One RCW waiting for the finalizer thread's cleanup (TraverseRCWCleanupList; COM only).
struct RcwCleanup {
  uint64_t rcw = 0;
  uint64_t context = 0;
  uint64_t thread = 0;
  bool free_threaded = false;
};

// One GC reference of a thread's stack (GetStackReferences).
struct StackReference {
  uint64_t address = 0;  // The slot.
  uint64_t object = 0;
  bool interior = false;
  bool pinned = false;
  // Where the reference was found: a register (number in the DAC's order, with an offset
  // for register-relative slots) or not; the frame's instruction pointer (source_type 0) or
  // runtime Frame (1), and its stack pointer.
  bool has_register = false;
  int32_t register_number = 0;
  int32_t register_offset = 0;
  uint32_t source_type = 0;
  uint64_t source = 0;
  uint64_t stack_pointer = 0;
};

// One GC heap's details as the DAC reports them (gc_layout.cc builds a GcLayout from them).
struct GcHeapRaw {
  uint64_t address = 0;  // Server GC: the gc_heap*; workstation: 0.
  DacpGcHeapDetails details{};
  std::vector<DacpGenerationData> generations;  // 5 (with POH) through ISOSDacInterface8, else 4
};

// One block of a loader heap (eeheap -loader): [start, start + size), and whether the heap is
// allocating from it now.
struct LoaderHeapBlock {
  uint64_t start = 0;
  uint64_t size = 0;
  bool current = false;
};
// A loader heap's blocks and its kind as the runtime names it ("LowFrequencyHeap", ...;
// "LoaderCodeHeap"/"HostCodeHeap" for code heaps, "" when the runtime gives no name).
struct LoaderHeap {
  std::string kind;
  std::vector<LoaderHeapBlock> blocks;
};

// The GC's record of its last out-of-memory failure on one heap (DacpOomData); reason 0 and
// get_memory_failure 0 mean there was none.
struct OomInfo {
  int heap = 0;
  int32_t reason = 0;              // oom_reason: 1 budget, 2 can't commit, 3 can't reserve, ...
  int32_t get_memory_failure = 0;  // failure_get_memory: 1 reserve segment, ...
  uint64_t alloc_size = 0;
  uint64_t available_pagefile_mb = 0;
  uint64_t gc_index = 0;
  uint64_t size = 0;
  bool large_object_heap = false;
};

// One exception handling clause of jitted code (DACEHInfo): offsets from the code's start.
struct EhClause {
  int32_t type = 0;  // 0 fault, 1 finally, 2 filter, 3 typed
  uint64_t try_start = 0, try_end = 0, handler_start = 0, handler_end = 0;
  bool is_duplicate = false;
  uint64_t filter = 0;        // filter clauses
  bool is_catch_all = false;  // typed clauses
  // Typed clauses: the caught type as a MethodTable (module 0) or as a token of `module`.
  uint64_t module = 0;
  uint64_t catch_mt = 0;
  uint32_t catch_token = 0;
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
  // Exceptions (exception.cc). GetExceptionObjectData is ISOSDacInterface2's view of an
  // exception object (Unimplemented without that interface); GetNestedException follows one
  // link of a thread's nested exception chain: (exception object, next link or 0).
  absl::StatusOr<ExceptionObjectFields> GetExceptionObjectData(uint64_t obj);
  absl::StatusOr<std::pair<uint64_t, uint64_t>> GetNestedException(uint64_t nested);
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
  // Whether `mt` may be handed to the DAC as a MethodTable: 8-byte aligned, its parent pointer
  // (+0x10) null or readable, its loader module (+0x18) one of the runtime's modules. .NET 8's
  // GetMethodTableData crashes (SIGSEGV) on readable memory that is not a MethodTable, so every
  // MethodTable a user types is checked with this first (the layout holds for .NET 8-10).
  bool LooksLikeMethodTable(uint64_t mt);
  // Whether `md` may be handed to the DAC as a MethodDesc: 8-byte aligned, and the MethodTable at
  // the start of its chunk (found from the chunk index byte at +2: the chunk's 0x18-byte header
  // lies index * 8 bytes before the MethodDesc) passes LooksLikeMethodTable. The same layout on
  // .NET 8-10.
  bool LooksLikeMethodDesc(uint64_t md);
  // The DAC's raw type name, e.g. "System.Collections.Generic.List`1[[System.String,
  // System.Private.CoreLib]]". Cached per MT.
  absl::StatusOr<std::string> GetMethodTableName(uint64_t mt);
  absl::StatusOr<ObjectInfo> GetObject(uint64_t address);
  // Modules of all assemblies of the app domain(s), in the runtime's order.
  absl::StatusOr<std::vector<ManagedModule>> GetModules();
  // The pieces of dumpdomain / clrmodules, one DAC request each.
  absl::StatusOr<AppDomainStore> GetAppDomainStore();
  absl::StatusOr<AppDomainDetails> GetAppDomainDetails(uint64_t domain);
  absl::StatusOr<std::vector<uint64_t>> GetDomainAssemblies(uint64_t domain);
  absl::StatusOr<AssemblyDetails> GetAssemblyDetails(uint64_t domain, uint64_t assembly);
  absl::StatusOr<std::vector<uint64_t>> GetAssemblyModules(uint64_t assembly, uint32_t count);
  absl::StatusOr<ModuleDetails> GetModuleDetails(uint64_t module);
  // Reads target memory the way the DAC does (the dump, then verified local copies of mapped
  // files); returns the number of bytes read contiguously from `address`.
  size_t ReadTargetMemory(uint64_t address, void* buffer, size_t size);
  // The runtime's StressLog::theLog (dumplog, hist*); the log may be empty (stress log off).
  absl::StatusOr<uint64_t> GetStressLogAddress();

  // Object and type inspection (dumpobj, dumpmt). Each is one DAC request unless noted;
  // interfaces the DAC does not offer give Unimplemented.
  absl::StatusOr<ObjectDetails> GetObjectDetails(uint64_t address);
  absl::StatusOr<MethodTableDetails> GetMethodTableDetails(uint64_t mt);
  absl::StatusOr<uint64_t> GetMethodTableForEEClass(uint64_t eeclass);
  absl::StatusOr<MethodTableFields> GetMethodTableFields(uint64_t mt);
  absl::StatusOr<FieldDescInfo> GetFieldDesc(uint64_t field_desc);
  // The module's file the way SOS finds it: GetPEFileName (after GetPEFileBase), else
  // IXCLRDataModule::GetFileName; "" if neither names it.
  absl::StatusOr<std::string> GetModuleFileName(uint64_t module);
  // The metadata name of a TypeDef (nested types as Outer+Inner), FieldDef or MethodDef token
  // of `module`, through the DAC's IMetaDataImport; with `with_type`, members are prefixed
  // with their type's name and a dot. The importer is cached per module.
  absl::StatusOr<std::string> GetMetadataName(uint64_t module, uint32_t token,
                                              bool with_type = false);
  // Runs `use` with `module`'s IMetaDataImport (cached per module) under the DAC lock, for
  // readers that walk metadata themselves (signatures, IL operands). `use` must not call back
  // into this DacProcess.
  absl::Status WithMetadataImport(uint64_t module,
                                  absl::FunctionRef<absl::Status(IMetaDataImport*)> use);
  absl::StatusOr<std::string> GetMethodDescName(uint64_t method_desc);
  absl::StatusOr<MethodDescInfo> GetMethodDesc(uint64_t method_desc);
  absl::StatusOr<CodeHeaderInfo> GetCodeHeader(uint64_t ip);
  // The name of the JIT helper at `address` (GetJitHelperFunctionName), NotFound if none.
  absl::StatusOr<std::string> GetJitHelperName(uint64_t address);
  // dumpmd's "Version History": the current ReJIT version, a pending one, the native code
  // versions (tiers). Parts the DAC lacks stay empty.
  absl::StatusOr<MethodVersions> GetMethodVersions(uint64_t method_desc);
  // The IL offset and metadata token of the managed code at `ip` (as the stack walk finds
  // them for a frame's source line; no return-address adjustment). Fills `f` like a frame.
  void FindIlOffsetAt(uint64_t ip, StackFrame* f);
  // The IL-to-native map of the jitted code starting at `code_start` (SOS's
  // GetIntermediateLangMap for `u -il`): the method instance found by that address, then
  // IXCLRDataMethodInstance::GetILAddressMap, entries in the DAC's (native) order. Any status
  // other than S_OK fails, the error naming the call and its HRESULT (an empty map is the DAC's
  // E_NOINTERFACE).
  absl::StatusOr<std::vector<IlAddressMapEntry>> GetIlAddressMap(uint64_t code_start);
  // The MethodTable's method slots: ISOSDacInterface15's enumerator (.NET 9+); on older DACs,
  // as SOS does, slots 0 .. NumMethods-1 through GetMethodTableSlot, each MethodDesc found
  // from the entry point's code header (defining MT/module/token stay 0).
  absl::StatusOr<std::vector<MethodSlot>> GetMethodTableSlots(uint64_t mt);
  // The characters of a System.String (GetObjectStringData), at most `max_chars` and up to
  // the first NUL (as SOS prints them).
  absl::StatusOr<std::u16string> GetObjectString(uint64_t address, uint32_t max_chars);
  absl::StatusOr<uint64_t> GetThreadFromThinLockId(uint32_t thin_lock_id);
  // Entry `number` (1-based; an object header's sync block index) of the sync block table.
  absl::StatusOr<SyncBlockInfo> GetSyncBlock(uint32_t number);
  // Unimplemented without ISOSDacInterface14 (.NET 8 and older): use GetDomainLocalModule.
  absl::StatusOr<StaticBases> GetStaticBases(uint64_t mt);
  bool HasStaticBaseApi() const { return static_cast<bool>(sos14_); }
  // GetDomainLocalModuleDataFromModule: where `module`'s statics live before .NET 9.
  absl::StatusOr<DomainLocalModule> GetDomainLocalModule(uint64_t module);
  absl::StatusOr<StaticBases> GetThreadStaticBases(uint64_t mt, uint64_t thread);
  absl::StatusOr<int32_t> GetMethodTableInitializationFlags(uint64_t mt);
  // 0 when the type's AssemblyLoadContext has no managed object yet (the default one).
  absl::StatusOr<uint64_t> GetAssemblyLoadContext(uint64_t mt);
  // The LoaderAllocator handle of a collectible type, 0 otherwise.
  absl::StatusOr<uint64_t> GetLoaderAllocatorHandle(uint64_t mt);
  // ComWrappers: the object's RCW (0 if none) and its CCWs.
  absl::StatusOr<std::pair<uint64_t, std::vector<uint64_t>>> GetObjectComWrappers(uint64_t obj);
  // Objective-C interop (tracked type, tagged memory); Unimplemented off Apple platforms.
  absl::StatusOr<std::pair<bool, bool>> IsTrackedType(uint64_t obj);

  // GC roots (gc_roots.cc). Every handle of the handle table (GetHandleEnum), the GC
  // references of one OS thread's stack (GetStackReferences), and per heap the finalizer
  // queue's ready-for-finalization range [begin, end) of object slots.
  absl::StatusOr<std::vector<HandleEntry>> GetHandles(const CancellationToken* cancel);
  absl::StatusOr<std::vector<StackReference>> GetStackReferences(uint32_t os_thread_id);
  absl::StatusOr<std::vector<std::pair<uint64_t, uint64_t>>> GetFinalizerReadyRanges();
  // Finalization (finalization.cc). Per GC heap (index order): the finalize queue's fill
  // pointers as the DAC reports them (6 with segments, 7 with regions).
  absl::StatusOr<std::vector<std::vector<uint64_t>>> GetFinalizationFillPointers();
  // The sync block cleanup list the way ClrMD reads it: starting from 0 (the DAC answers
  // E_INVALIDARG and a zeroed entry, which ClrMD keeps), following the next links.
  absl::StatusOr<std::vector<SyncBlockCleanup>> GetSyncBlockCleanupList();
  // Empty where the runtime has no COM interop (everywhere but Windows).
  std::vector<RcwCleanup> GetRcwCleanupList();

  // GC layout (gc_layout.cc): every heap's details and generation table, one segment's data,
  // and the DATAS mode (ISOSDacInterface16; NotFound when the DAC does not report one).
  absl::StatusOr<std::vector<GcHeapRaw>> GetGcHeapsRaw();
  absl::StatusOr<DacpHeapSegmentData> GetHeapSegmentRaw(uint64_t segment);
  // The GC's internal root array of heap `heap_address` (0: workstation GC), filled only while
  // a GC runs (ISOSDacInterface::GetHeapAnalyzeData): [start, end), or {0, 0} when empty.
  absl::StatusOr<std::pair<uint64_t, uint64_t>> GetInternalRootArray(uint64_t heap_address);
  absl::StatusOr<int32_t> GetGcDynamicAdaptationMode();
  // dumpgcdata (ISOSDacInterface3): the GC's global mechanisms (6 counters) when `global`, else
  // one heap's interesting data (9 data points, 11 compact reasons, 6 expand mechanisms, 2
  // mechanism bits, in that order); `heap` is the server gc_heap*, 0 for workstation.
  absl::StatusOr<std::vector<uint64_t>> GetGcInterestingInfo(uint64_t heap, bool global);
  // Loader heaps (loader_heaps.cc, ISOSDacInterface13, .NET 8+; Unimplemented without it): a
  // domain's LoaderAllocator, the heaps of a LoaderAllocator, the JIT managers and the code
  // heaps of one.
  absl::StatusOr<uint64_t> GetDomainLoaderAllocator(uint64_t domain);
  absl::StatusOr<std::vector<LoaderHeap>> GetLoaderAllocatorHeaps(uint64_t loader_allocator);
  absl::StatusOr<std::vector<uint64_t>> GetJitManagers();
  absl::StatusOr<std::vector<LoaderHeap>> GetCodeHeaps(uint64_t jit_manager);

  // The managed stack of one OS thread, innermost frame first (stack_walk.cc). A thread the
  // runtime does not know comes back with `not_managed` set, not as an error.
  // dac_process_objects.cc: the MethodDesc of code at `ip`; the GC's OOM records, one per heap.
  absl::StatusOr<uint64_t> GetMethodDescFromIp(uint64_t ip);
  absl::StatusOr<std::vector<OomInfo>> GetOomInfo();

  // Metadata (dac_process_metadata.cc): a module's TypeDef (or TypeRef) to MethodTable map as
  // (index = the token's RID, MethodTable) entries, loaded types only; ISOSDacInterface7's
  // methods with profiler-modified IL (at most `max`) and the kind of change of one
  // (1 IL modified, 2 ReJIT modified). Unimplemented without ISOSDacInterface7.
  absl::StatusOr<std::vector<std::pair<uint32_t, uint64_t>>> GetModuleMap(uint64_t module,
                                                                          bool type_refs);
  absl::StatusOr<std::vector<uint64_t>> GetMethodsWithProfilerModifiedIL(uint64_t module,
                                                                         int32_t max);
  absl::StatusOr<int32_t> GetProfilerModifiedILType(uint64_t method_desc);
  absl::StatusOr<MethodIlLocation> GetMethodIl(uint64_t method_desc);
  // The exception handling clauses of the jitted code starting at `native_code`
  // (TraverseEHInfo), in the runtime's order.
  absl::StatusOr<std::vector<EhClause>> GetEhClauses(uint64_t native_code);

  absl::StatusOr<ThreadStack> WalkStack(uint32_t os_thread_id, const StackWalkOptions& options,
                                        const CancellationToken& cancel);

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
  // Object and type inspection (dac_process_types.cc); each may be null.
  ComPtr<ISOSDacInterface6> sos6_;
  ComPtr<ISOSDacInterface10> sos10_;
  ComPtr<ISOSDacInterface11> sos11_;
  ComPtr<ISOSDacInterface14> sos14_;
  ComPtr<ISOSDacInterface15> sos15_;
  ComPtr<ISOSDacInterface5> sos5_;  // code versions (dumpmd)
  ComPtr<ISOSDacInterface7> sos7_;
  // The module's cached importer (DAC lock held).
  absl::StatusOr<IMetaDataImport*> MetadataImportLocked(uint64_t module);
  std::unordered_map<uint64_t, ComPtr<IUnknown>> metadata_cache_;  // module -> IMetaDataImport
  uint32_t revision_ = 0;
  std::unordered_map<uint64_t, MethodTableInfo> mt_cache_;
  std::unordered_map<uint64_t, std::string> name_cache_;
  // LooksLikeMethodTable's modules, set once GetModules succeeded (DAC lock).
  std::shared_ptr<const std::unordered_set<uint64_t>> module_set_;
};

// Status for a failed DAC call: "<call>: <hresult>[: <meaning>]".
absl::Status DacError(std::string_view call, HRESULT hr);

}  // namespace clrdiag::dac
