// ISOSDacInterface (sospriv.idl) and the Dacp* structs it fills (dacprivate.h), written from
// the public sources. The structs are frozen by the runtime ("Dacp structs cannot be
// modified"): natural x64 alignment, sizes pinned below. Interface methods are in vtable
// order; those clrdiag does not call yet have elided argument lists.
#pragma once

#include <cstddef>

#include "core/dac/com.h"

namespace clrdiag::dac {

inline constexpr IID kIID_ISOSDacInterface = ParseGuid("436f00f2-b42a-4b9f-870c-e73db66ae930");
inline constexpr IID kIID_ISOSDacInterface8 = ParseGuid("c12f35a9-e55c-4520-a894-b3dc5165dfce");
inline constexpr IID kIID_ISOSDacInterface12 = ParseGuid("1b93bacc-8ca4-432d-943a-3e6e7ec0b0a3");

struct DacpThreadStoreData {
  int32_t threadCount;
  int32_t unstartedThreadCount;
  int32_t backgroundThreadCount;
  int32_t pendingThreadCount;
  int32_t deadThreadCount;
  CLRDATA_ADDRESS firstThread;
  CLRDATA_ADDRESS finalizerThread;
  CLRDATA_ADDRESS gcThread;
  DWORD fHostConfig;
};
static_assert(sizeof(DacpThreadStoreData) == 0x38);

struct DacpThreadData {
  DWORD corThreadId;  // Managed thread id.
  DWORD osThreadId;   // LWP id on Linux.
  int32_t state;      // Thread::ThreadState bits.
  ULONG preemptiveGCDisabled;
  CLRDATA_ADDRESS allocContextPtr;
  CLRDATA_ADDRESS allocContextLimit;
  CLRDATA_ADDRESS context;
  CLRDATA_ADDRESS domain;
  CLRDATA_ADDRESS pFrame;
  DWORD lockCount;
  CLRDATA_ADDRESS firstNestedException;
  CLRDATA_ADDRESS teb;
  CLRDATA_ADDRESS fiberData;
  CLRDATA_ADDRESS lastThrownObjectHandle;
  CLRDATA_ADDRESS nextThread;
};
static_assert(sizeof(DacpThreadData) == 0x68);
static_assert(offsetof(DacpThreadData, allocContextPtr) == 16);
static_assert(offsetof(DacpThreadData, nextThread) == 96);

struct DacpAppDomainStoreData {
  CLRDATA_ADDRESS sharedDomain;
  CLRDATA_ADDRESS systemDomain;
  int32_t DomainCount;
};
static_assert(sizeof(DacpAppDomainStoreData) == 0x18);

struct DacpUsefulGlobalsData {
  CLRDATA_ADDRESS ArrayMethodTable;
  CLRDATA_ADDRESS StringMethodTable;
  CLRDATA_ADDRESS ObjectMethodTable;
  CLRDATA_ADDRESS ExceptionMethodTable;
  CLRDATA_ADDRESS FreeMethodTable;
};
static_assert(sizeof(DacpUsefulGlobalsData) == 0x28);

struct DacpGcHeapData {
  BOOL bServerMode;
  BOOL bGcStructuresValid;
  uint32_t HeapCount;
  uint32_t g_max_generation;
};
static_assert(sizeof(DacpGcHeapData) == 0x10);

struct DacpGenerationData {
  CLRDATA_ADDRESS start_segment;
  CLRDATA_ADDRESS allocation_start;
  // Only meaningful for generation 0.
  CLRDATA_ADDRESS allocContextPtr;
  CLRDATA_ADDRESS allocContextLimit;
};
static_assert(sizeof(DacpGenerationData) == 0x20);

inline constexpr int kDacNumberGenerations = 4;  // What DacpGcHeapDetails holds (no POH).

struct DacpGcHeapDetails {
  CLRDATA_ADDRESS heapAddr;  // Server GC only.
  CLRDATA_ADDRESS alloc_allocated;
  CLRDATA_ADDRESS mark_array;
  CLRDATA_ADDRESS current_c_gc_state;
  CLRDATA_ADDRESS next_sweep_obj;
  CLRDATA_ADDRESS saved_sweep_ephemeral_seg;  // (ADDR)-1 with regions.
  CLRDATA_ADDRESS saved_sweep_ephemeral_start;
  CLRDATA_ADDRESS background_saved_lowest_address;
  CLRDATA_ADDRESS background_saved_highest_address;
  DacpGenerationData generation_table[kDacNumberGenerations];
  CLRDATA_ADDRESS ephemeral_heap_segment;
  CLRDATA_ADDRESS finalization_fill_pointers[kDacNumberGenerations + 3];
  CLRDATA_ADDRESS lowest_address;
  CLRDATA_ADDRESS highest_address;
  CLRDATA_ADDRESS card_table;
};
static_assert(sizeof(DacpGcHeapDetails) == 0x120);
static_assert(offsetof(DacpGcHeapDetails, generation_table) == 72);

struct DacpHeapSegmentData {
  CLRDATA_ADDRESS segmentAddr;
  CLRDATA_ADDRESS allocated;
  CLRDATA_ADDRESS committed;
  CLRDATA_ADDRESS reserved;
  CLRDATA_ADDRESS used;
  CLRDATA_ADDRESS mem;  // First object.
  CLRDATA_ADDRESS next;
  CLRDATA_ADDRESS gc_heap;  // Server GC only.
  CLRDATA_ADDRESS highAllocMark;
  uint64_t flags;  // size_t; kHeapSegmentReadOnly = frozen (NonGC) segment.
  CLRDATA_ADDRESS background_allocated;
};
static_assert(sizeof(DacpHeapSegmentData) == 0x58);
inline constexpr uint64_t kHeapSegmentReadOnly = 1;

struct DacpMethodTableData {
  BOOL bIsFree;
  CLRDATA_ADDRESS Module;
  CLRDATA_ADDRESS Class;  // .NET 9+: the canonical MethodTable, not an EEClass.
  CLRDATA_ADDRESS ParentMethodTable;
  WORD wNumInterfaces;
  WORD wNumMethods;
  WORD wNumVtableSlots;
  WORD wNumVirtuals;
  DWORD BaseSize;       // For System.String, 2 bytes less than the real base size.
  DWORD ComponentSize;  // 0 unless array-like (arrays, strings, Free).
  uint32_t cl;          // mdTypeDef
  DWORD dwAttrClass;
  BOOL bIsShared;
  BOOL bIsDynamic;
  BOOL bContainsPointers;
};
static_assert(sizeof(DacpMethodTableData) == 0x48);
static_assert(offsetof(DacpMethodTableData, Module) == 8);
static_assert(offsetof(DacpMethodTableData, BaseSize) == 40);

enum DacpObjectType : int32_t { kObjString = 0, kObjFree, kObjObject, kObjArray, kObjOther };

struct DacpObjectData {
  CLRDATA_ADDRESS MethodTable;
  DacpObjectType ObjectType;
  uint64_t Size;
  CLRDATA_ADDRESS ElementTypeHandle;
  int32_t ElementType;  // CorElementType
  DWORD dwRank;
  uint64_t dwNumComponents;
  uint64_t dwComponentSize;
  CLRDATA_ADDRESS ArrayDataPtr;
  CLRDATA_ADDRESS ArrayBoundsPtr;
  CLRDATA_ADDRESS ArrayLowerBoundsPtr;
  CLRDATA_ADDRESS RCW;
  CLRDATA_ADDRESS CCW;
};
static_assert(sizeof(DacpObjectData) == 0x60);
static_assert(offsetof(DacpObjectData, Size) == 16);

struct DacpModuleData {
  CLRDATA_ADDRESS Address;
  CLRDATA_ADDRESS PEAssembly;  // .NET 9+: the Module address.
  CLRDATA_ADDRESS ilBase;
  CLRDATA_ADDRESS metadataStart;
  uint64_t metadataSize;
  CLRDATA_ADDRESS Assembly;
  BOOL bIsReflection;
  BOOL bIsPEFile;
  uint64_t dwBaseClassIndex;
  uint64_t dwModuleID;
  DWORD dwTransientFlags;
  CLRDATA_ADDRESS TypeDefToMethodTableMap;
  CLRDATA_ADDRESS TypeRefToMethodTableMap;
  CLRDATA_ADDRESS MethodDefToDescMap;
  CLRDATA_ADDRESS FieldDefToDescMap;
  CLRDATA_ADDRESS MemberRefToDescMap;
  CLRDATA_ADDRESS FileReferencesMap;
  CLRDATA_ADDRESS ManifestModuleReferencesMap;
  CLRDATA_ADDRESS pLookupTableHeap;
  CLRDATA_ADDRESS pThunkHeap;
  uint64_t dwModuleIndex;
};
static_assert(sizeof(DacpModuleData) == 0xa0);

struct DacpAppDomainData {
  CLRDATA_ADDRESS AppDomainPtr;
  CLRDATA_ADDRESS AppSecDesc;
  CLRDATA_ADDRESS pLowFrequencyHeap;
  CLRDATA_ADDRESS pHighFrequencyHeap;
  CLRDATA_ADDRESS pStubHeap;
  CLRDATA_ADDRESS DomainLocalBlock;
  CLRDATA_ADDRESS pDomainLocalModules;
  DWORD dwId;
  int32_t AssemblyCount;
  int32_t FailedAssemblyCount;
  int32_t appDomainStage;
};
static_assert(sizeof(DacpAppDomainData) == 0x48);

struct DacpAssemblyData {
  CLRDATA_ADDRESS AssemblyPtr;
  CLRDATA_ADDRESS ClassLoader;
  CLRDATA_ADDRESS ParentDomain;
  CLRDATA_ADDRESS BaseDomainPtr;
  CLRDATA_ADDRESS AssemblySecDesc;
  BOOL isDynamic;
  uint32_t ModuleCount;
  uint32_t LoadContext;
  BOOL isDomainNeutral;
  DWORD dwLocationFlags;
};
static_assert(sizeof(DacpAssemblyData) == 0x40);

// The private half of the DAC (what SOS uses). Slot numbers count IUnknown.
class ISOSDacInterface : public IUnknown {
 public:
  virtual HRESULT GetThreadStoreData(DacpThreadStoreData* data) = 0;        // 3
  virtual HRESULT GetAppDomainStoreData(DacpAppDomainStoreData* data) = 0;  // 4
  virtual HRESULT GetAppDomainList(uint32_t count, CLRDATA_ADDRESS* values,
                                   uint32_t* needed) = 0;                               // 5
  virtual HRESULT GetAppDomainData(CLRDATA_ADDRESS addr, DacpAppDomainData* data) = 0;  // 6
  virtual HRESULT GetAppDomainName(CLRDATA_ADDRESS addr, uint32_t count, WCHAR* name,
                                   uint32_t* needed) = 0;                       // 7
  virtual HRESULT GetDomainFromContext(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;  // 8
  virtual HRESULT GetAssemblyList(CLRDATA_ADDRESS app_domain, int32_t count,
                                  CLRDATA_ADDRESS* values, int32_t* needed) = 0;  // 9
  virtual HRESULT GetAssemblyData(CLRDATA_ADDRESS base_domain, CLRDATA_ADDRESS assembly,
                                  DacpAssemblyData* data) = 0;  // 10
  virtual HRESULT GetAssemblyName(CLRDATA_ADDRESS assembly, uint32_t count, WCHAR* name,
                                  uint32_t* needed) = 0;                            // 11
  virtual HRESULT GetModule(CLRDATA_ADDRESS addr, IUnknown** module) = 0;           // 12
  virtual HRESULT GetModuleData(CLRDATA_ADDRESS module, DacpModuleData* data) = 0;  // 13
  virtual HRESULT TraverseModuleMap(int32_t, CLRDATA_ADDRESS, void*, void*) = 0;    // 14
  virtual HRESULT GetAssemblyModuleList(CLRDATA_ADDRESS assembly, uint32_t count,
                                        CLRDATA_ADDRESS* modules, uint32_t* needed) = 0;  // 15
  virtual HRESULT GetILForModule(CLRDATA_ADDRESS, DWORD, CLRDATA_ADDRESS*) = 0;           // 16
  virtual HRESULT GetThreadData(CLRDATA_ADDRESS thread, DacpThreadData* data) = 0;        // 17
  virtual HRESULT GetThreadFromThinlockID(uint32_t, CLRDATA_ADDRESS*) = 0;                // 18
  virtual HRESULT GetStackLimits(CLRDATA_ADDRESS, CLRDATA_ADDRESS*, CLRDATA_ADDRESS*,
                                 CLRDATA_ADDRESS*) = 0;  // 19
  virtual HRESULT GetMethodDescData(CLRDATA_ADDRESS, CLRDATA_ADDRESS, void*, ULONG, void*,
                                    ULONG*) = 0;                                  // 20
  virtual HRESULT GetMethodDescPtrFromIP(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;  // 21
  virtual HRESULT GetMethodDescName(CLRDATA_ADDRESS md, uint32_t count, WCHAR* name,
                                    uint32_t* needed) = 0;                           // 22
  virtual HRESULT GetMethodDescPtrFromFrame(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;  // 23
  virtual HRESULT GetMethodDescFromToken(CLRDATA_ADDRESS, uint32_t, CLRDATA_ADDRESS*) = 0;
  virtual HRESULT GetMethodDescTransparencyData(CLRDATA_ADDRESS, void*) = 0;  // 25
  virtual HRESULT GetCodeHeaderData(CLRDATA_ADDRESS, void*) = 0;              // 26
  virtual HRESULT GetJitManagerList(uint32_t, void*, uint32_t*) = 0;          // 27
  virtual HRESULT GetJitHelperFunctionName(CLRDATA_ADDRESS, uint32_t, char*, uint32_t*) = 0;
  virtual HRESULT GetJumpThunkTarget(void*, CLRDATA_ADDRESS*, CLRDATA_ADDRESS*) = 0;  // 29
  virtual HRESULT GetThreadpoolData(void*) = 0;                                       // 30
  virtual HRESULT GetWorkRequestData(CLRDATA_ADDRESS, void*) = 0;                     // 31
  virtual HRESULT GetHillClimbingLogEntry(CLRDATA_ADDRESS, void*) = 0;                // 32
  virtual HRESULT GetObjectData(CLRDATA_ADDRESS obj, DacpObjectData* data) = 0;       // 33
  virtual HRESULT GetObjectStringData(CLRDATA_ADDRESS obj, uint32_t count, WCHAR* data,
                                      uint32_t* needed) = 0;  // 34
  virtual HRESULT GetObjectClassName(CLRDATA_ADDRESS obj, uint32_t count, WCHAR* name,
                                     uint32_t* needed) = 0;  // 35
  virtual HRESULT GetMethodTableName(CLRDATA_ADDRESS mt, uint32_t count, WCHAR* name,
                                     uint32_t* needed) = 0;                               // 36
  virtual HRESULT GetMethodTableData(CLRDATA_ADDRESS mt, DacpMethodTableData* data) = 0;  // 37
  virtual HRESULT GetMethodTableSlot(CLRDATA_ADDRESS, uint32_t, CLRDATA_ADDRESS*) = 0;    // 38
  virtual HRESULT GetMethodTableFieldData(CLRDATA_ADDRESS, void*) = 0;                    // 39
  virtual HRESULT GetMethodTableTransparencyData(CLRDATA_ADDRESS, void*) = 0;             // 40
  virtual HRESULT GetMethodTableForEEClass(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;        // 41
  virtual HRESULT GetFieldDescData(CLRDATA_ADDRESS, void*) = 0;                           // 42
  virtual HRESULT GetFrameName(CLRDATA_ADDRESS, uint32_t, WCHAR*, uint32_t*) = 0;         // 43
  virtual HRESULT GetPEFileBase(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;                   // 44
  virtual HRESULT GetPEFileName(CLRDATA_ADDRESS addr, uint32_t count, WCHAR* name,
                                uint32_t* needed) = 0;      // 45
  virtual HRESULT GetGCHeapData(DacpGcHeapData* data) = 0;  // 46
  virtual HRESULT GetGCHeapList(uint32_t count, CLRDATA_ADDRESS* heaps,
                                uint32_t* needed) = 0;  // 47
  virtual HRESULT GetGCHeapDetails(CLRDATA_ADDRESS heap, DacpGcHeapDetails* details) = 0;
  virtual HRESULT GetGCHeapStaticData(DacpGcHeapDetails* details) = 0;                     // 49
  virtual HRESULT GetHeapSegmentData(CLRDATA_ADDRESS seg, DacpHeapSegmentData* data) = 0;  // 50
  virtual HRESULT GetOOMData(CLRDATA_ADDRESS, void*) = 0;                                  // 51
  virtual HRESULT GetOOMStaticData(void*) = 0;                                             // 52
  virtual HRESULT GetHeapAnalyzeData(CLRDATA_ADDRESS, void*) = 0;                          // 53
  virtual HRESULT GetHeapAnalyzeStaticData(void*) = 0;                                     // 54
  virtual HRESULT GetDomainLocalModuleData(CLRDATA_ADDRESS, void*) = 0;                    // 55
  virtual HRESULT GetDomainLocalModuleDataFromAppDomain(CLRDATA_ADDRESS, int32_t, void*) = 0;
  virtual HRESULT GetDomainLocalModuleDataFromModule(CLRDATA_ADDRESS, void*) = 0;  // 57
  virtual HRESULT GetThreadLocalModuleData(CLRDATA_ADDRESS, uint32_t, void*) = 0;  // 58
  virtual HRESULT GetSyncBlockData(uint32_t, void*) = 0;                           // 59
  virtual HRESULT GetSyncBlockCleanupData(CLRDATA_ADDRESS, void*) = 0;             // 60
  virtual HRESULT GetHandleEnum(IUnknown**) = 0;                                   // 61
  virtual HRESULT GetHandleEnumForTypes(uint32_t*, uint32_t, IUnknown**) = 0;      // 62
  virtual HRESULT GetHandleEnumForGC(uint32_t, IUnknown**) = 0;                    // 63
  virtual HRESULT TraverseEHInfo(CLRDATA_ADDRESS, void*, void*) = 0;               // 64
  virtual HRESULT GetNestedExceptionData(CLRDATA_ADDRESS, CLRDATA_ADDRESS*,
                                         CLRDATA_ADDRESS*) = 0;                      // 65
  virtual HRESULT GetStressLogAddress(CLRDATA_ADDRESS*) = 0;                         // 66
  virtual HRESULT TraverseLoaderHeap(CLRDATA_ADDRESS, void*) = 0;                    // 67
  virtual HRESULT GetCodeHeapList(CLRDATA_ADDRESS, uint32_t, void*, uint32_t*) = 0;  // 68
  virtual HRESULT TraverseVirtCallStubHeap(CLRDATA_ADDRESS, int32_t, void*) = 0;     // 69
  virtual HRESULT GetUsefulGlobals(DacpUsefulGlobalsData* data) = 0;                 // 70
  // Slots 71-90 (GetClrWatsonBuckets ... GetFailedAssemblyDisplayName) are not called yet.
};

// Generation tables with all 5 generations (incl. the pinned object heap), .NET 5+.
class ISOSDacInterface8 : public IUnknown {
 public:
  virtual HRESULT GetNumberGenerations(uint32_t* generations) = 0;  // 3
  virtual HRESULT GetGenerationTable(uint32_t count, DacpGenerationData* data,
                                     uint32_t* needed) = 0;  // 4
  virtual HRESULT GetFinalizationFillPointers(uint32_t count, CLRDATA_ADDRESS* pointers,
                                              uint32_t* needed) = 0;  // 5
  virtual HRESULT GetGenerationTableSvr(CLRDATA_ADDRESS heap, uint32_t count,
                                        DacpGenerationData* data, uint32_t* needed) = 0;  // 6
  virtual HRESULT GetFinalizationFillPointersSvr(CLRDATA_ADDRESS heap, uint32_t count,
                                                 CLRDATA_ADDRESS* pointers,
                                                 uint32_t* needed) = 0;                  // 7
  virtual HRESULT GetAssemblyLoadContext(CLRDATA_ADDRESS mt, CLRDATA_ADDRESS* alc) = 0;  // 8
};

// The allocation context shared by threads without their own (.NET 7+).
class ISOSDacInterface12 : public IUnknown {
 public:
  virtual HRESULT GetGlobalAllocationContext(CLRDATA_ADDRESS* ptr,
                                             CLRDATA_ADDRESS* limit) = 0;  // 3
};

}  // namespace clrdiag::dac
