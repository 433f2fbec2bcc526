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

// Field, method and code structs for dumpobj / dumpmt (dacprivate.h).
struct DacpFieldDescData {
  int32_t Type;              // CorElementType as the runtime stores it (String fields: CLASS).
  int32_t sigType;           // CorElementType from the signature.
  CLRDATA_ADDRESS MTOfType;  // 0 if the field's type is not loaded.
  CLRDATA_ADDRESS ModuleOfType;
  uint32_t TokenOfType;  // mdTypeDef
  uint32_t mb;           // mdFieldDef
  CLRDATA_ADDRESS MTOfEnclosingClass;
  DWORD dwOffset;  // From the start of the instance data (after the MethodTable pointer).
  BOOL bIsThreadLocal;
  BOOL bIsContextLocal;
  BOOL bIsStatic;
  CLRDATA_ADDRESS NextField;
};
static_assert(sizeof(DacpFieldDescData) == 0x40);
static_assert(offsetof(DacpFieldDescData, TokenOfType) == 24);
static_assert(offsetof(DacpFieldDescData, NextField) == 56);

struct DacpMethodTableFieldData {
  WORD wNumInstanceFields;  // Includes the parents' instance fields.
  WORD wNumStaticFields;
  WORD wNumThreadStaticFields;
  CLRDATA_ADDRESS FirstField;
  WORD wContextStaticOffset;
  WORD wContextStaticsSize;
};
static_assert(sizeof(DacpMethodTableFieldData) == 0x18);

struct DacpMethodTableCollectibleData {
  CLRDATA_ADDRESS LoaderAllocatorObjectHandle;
  BOOL bCollectible;
};
static_assert(sizeof(DacpMethodTableCollectibleData) == 0x10);

struct DacpReJitData {
  int32_t type;  // Unmodified, ILModified, ReJITModified
  CLRDATA_ADDRESS il;
  ULONG rejitID;
};
static_assert(sizeof(DacpReJitData) == 0x18);

struct DacpMethodDescData {
  BOOL bHasNativeCode;
  BOOL bIsDynamic;
  WORD wSlotNumber;
  CLRDATA_ADDRESS NativeCodeAddr;
  CLRDATA_ADDRESS AddressOfNativeCodeSlot;
  CLRDATA_ADDRESS MethodDescPtr;
  CLRDATA_ADDRESS MethodTablePtr;
  CLRDATA_ADDRESS ModulePtr;
  uint32_t MDToken;
  CLRDATA_ADDRESS GCInfo;
  CLRDATA_ADDRESS GCStressCodeCopy;
  CLRDATA_ADDRESS managedDynamicMethodObject;
  CLRDATA_ADDRESS requestedIP;
  DacpReJitData rejitDataCurrent;
  DacpReJitData rejitDataRequested;
  ULONG cJittedRejitVersions;
};
static_assert(sizeof(DacpMethodDescData) == 0x98);
static_assert(offsetof(DacpMethodDescData, NativeCodeAddr) == 16);
static_assert(offsetof(DacpMethodDescData, rejitDataCurrent) == 96);

enum DacJitType : int32_t { kJitTypeUnknown = 0, kJitTypeJit = 1, kJitTypePreJit = 2 };

struct DacpCodeHeaderData {
  CLRDATA_ADDRESS GCInfo;
  int32_t JITType;  // DacJitType
  CLRDATA_ADDRESS MethodDescPtr;
  CLRDATA_ADDRESS MethodStart;
  DWORD MethodSize;
  CLRDATA_ADDRESS ColdRegionStart;
  DWORD ColdRegionSize;
  DWORD HotRegionSize;
};
static_assert(sizeof(DacpCodeHeaderData) == 0x38);

// A module's DomainLocalModule (GetDomainLocalModuleDataFromModule): where its statics live
// on .NET 8 and older, before ISOSDacInterface14 replaced it.
struct DacpDomainLocalModuleData {
  CLRDATA_ADDRESS appDomainAddr;
  uint64_t ModuleID;
  CLRDATA_ADDRESS pClassData;  // One byte of class-init flags per TypeDef RID (RID-1).
  CLRDATA_ADDRESS pDynamicClassTable;
  CLRDATA_ADDRESS pGCStaticDataStart;
  CLRDATA_ADDRESS pNonGCStaticDataStart;
};
static_assert(sizeof(DacpDomainLocalModuleData) == 0x30);

struct DacpSyncBlockData {
  CLRDATA_ADDRESS Object;
  BOOL bFree;  // If set, nothing else is meaningful.
  CLRDATA_ADDRESS SyncBlockPointer;
  DWORD COMFlags;
  uint32_t MonitorHeld;
  uint32_t Recursion;
  CLRDATA_ADDRESS HoldingThread;
  uint32_t AdditionalThreadCount;
  CLRDATA_ADDRESS appDomainPtr;
  uint32_t SyncBlockCount;  // Always filled in: valid numbers are 1..SyncBlockCount.
};
static_assert(sizeof(DacpSyncBlockData) == 0x48);
static_assert(offsetof(DacpSyncBlockData, SyncBlockPointer) == 16);
static_assert(offsetof(DacpSyncBlockData, SyncBlockCount) == 64);

// One vtable slot of a MethodTable (ISOSMethodEnum).
struct SOSMethodData {
  CLRDATA_ADDRESS MethodDesc;
  CLRDATA_ADDRESS Entrypoint;
  CLRDATA_ADDRESS DefiningMethodTable;
  CLRDATA_ADDRESS DefiningModule;
  uint32_t Token;
  uint32_t Slot;  // 0xFFFFFFFF for methods added by Edit and Continue.
};
static_assert(sizeof(SOSMethodData) == 0x28);

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
  virtual HRESULT GetMethodDescData(CLRDATA_ADDRESS md, CLRDATA_ADDRESS ip,
                                    DacpMethodDescData* data, ULONG rejit_count, void* rejit_data,
                                    ULONG*) = 0;                                  // 20
  virtual HRESULT GetMethodDescPtrFromIP(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;  // 21
  virtual HRESULT GetMethodDescName(CLRDATA_ADDRESS md, uint32_t count, WCHAR* name,
                                    uint32_t* needed) = 0;                           // 22
  virtual HRESULT GetMethodDescPtrFromFrame(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;  // 23
  virtual HRESULT GetMethodDescFromToken(CLRDATA_ADDRESS, uint32_t, CLRDATA_ADDRESS*) = 0;
  virtual HRESULT GetMethodDescTransparencyData(CLRDATA_ADDRESS, void*) = 0;            // 25
  virtual HRESULT GetCodeHeaderData(CLRDATA_ADDRESS ip, DacpCodeHeaderData* data) = 0;  // 26
  virtual HRESULT GetJitManagerList(uint32_t, void*, uint32_t*) = 0;                    // 27
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
  virtual HRESULT GetMethodTableFieldData(CLRDATA_ADDRESS mt,
                                          DacpMethodTableFieldData* data) = 0;        // 39
  virtual HRESULT GetMethodTableTransparencyData(CLRDATA_ADDRESS, void*) = 0;         // 40
  virtual HRESULT GetMethodTableForEEClass(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;    // 41
  virtual HRESULT GetFieldDescData(CLRDATA_ADDRESS fd, DacpFieldDescData* data) = 0;  // 42
  virtual HRESULT GetFrameName(CLRDATA_ADDRESS, uint32_t, WCHAR*, uint32_t*) = 0;     // 43
  virtual HRESULT GetPEFileBase(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;               // 44
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
  virtual HRESULT GetSyncBlockData(uint32_t number, DacpSyncBlockData* data) = 0;  // 59
  virtual HRESULT GetSyncBlockCleanupData(CLRDATA_ADDRESS, void*) = 0;             // 60
  virtual HRESULT GetHandleEnum(IUnknown**) = 0;                                   // 61
  virtual HRESULT GetHandleEnumForTypes(uint32_t*, uint32_t, IUnknown**) = 0;      // 62
  virtual HRESULT GetHandleEnumForGC(uint32_t, IUnknown**) = 0;                    // 63
  virtual HRESULT TraverseEHInfo(CLRDATA_ADDRESS, void*, void*) = 0;               // 64
  virtual HRESULT GetNestedExceptionData(CLRDATA_ADDRESS, CLRDATA_ADDRESS*,
                                         CLRDATA_ADDRESS*) = 0;                       // 65
  virtual HRESULT GetStressLogAddress(CLRDATA_ADDRESS*) = 0;                          // 66
  virtual HRESULT TraverseLoaderHeap(CLRDATA_ADDRESS, void*) = 0;                     // 67
  virtual HRESULT GetCodeHeapList(CLRDATA_ADDRESS, uint32_t, void*, uint32_t*) = 0;   // 68
  virtual HRESULT TraverseVirtCallStubHeap(CLRDATA_ADDRESS, int32_t, void*) = 0;      // 69
  virtual HRESULT GetUsefulGlobals(DacpUsefulGlobalsData* data) = 0;                  // 70
  virtual HRESULT GetClrWatsonBuckets(CLRDATA_ADDRESS, void*) = 0;                    // 71
  virtual HRESULT GetTLSIndex(uint32_t*) = 0;                                         // 72
  virtual HRESULT GetDacModuleHandle(void**) = 0;                                     // 73
  virtual HRESULT GetRCWData(CLRDATA_ADDRESS, void*) = 0;                             // 74
  virtual HRESULT GetRCWInterfaces(CLRDATA_ADDRESS, uint32_t, void*, uint32_t*) = 0;  // 75
  virtual HRESULT GetCCWData(CLRDATA_ADDRESS, void*) = 0;                             // 76
  virtual HRESULT GetCCWInterfaces(CLRDATA_ADDRESS, uint32_t, void*, uint32_t*) = 0;  // 77
  virtual HRESULT TraverseRCWCleanupList(CLRDATA_ADDRESS, void*, void*) = 0;          // 78
  // Hands back an ISOSStackRefEnum (declared below) of the thread's GC references.
  virtual HRESULT GetStackReferences(DWORD os_thread_id, IUnknown** refs) = 0;  // 79
  // Slots 80-90 (GetRegisterName ... GetFailedAssemblyDisplayName) are not called yet.
};

// An exception object's fields (ISOSDacInterface2::GetObjectExceptionData).
struct DacpExceptionObjectData {
  CLRDATA_ADDRESS Message;
  CLRDATA_ADDRESS InnerException;
  CLRDATA_ADDRESS StackTrace;
  CLRDATA_ADDRESS WatsonBuckets;
  CLRDATA_ADDRESS StackTraceString;
  CLRDATA_ADDRESS RemoteStackTraceString;
  int32_t HResult;
  int32_t XCode;
};
static_assert(sizeof(DacpExceptionObjectData) == 0x38);

inline constexpr IID kIID_ISOSDacInterface2 = ParseGuid("A16026EC-96F4-40BA-87FB-5575986FB7AF");
class ISOSDacInterface2 : public IUnknown {
 public:
  virtual HRESULT GetObjectExceptionData(CLRDATA_ADDRESS obj,
                                         DacpExceptionObjectData* data) = 0;  // 3
  virtual HRESULT IsRCWDCOMProxy(CLRDATA_ADDRESS, BOOL*) = 0;                 // 4
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

// Collectible types (loader allocator), .NET Core 2.0+.
inline constexpr IID kIID_ISOSDacInterface6 = ParseGuid("11206399-4B66-4EDB-98EA-85654E59AD45");
class ISOSDacInterface6 : public IUnknown {
 public:
  virtual HRESULT GetMethodTableCollectibleData(CLRDATA_ADDRESS mt,
                                                DacpMethodTableCollectibleData* data) = 0;  // 3
};

// ComWrappers (.NET 5+).
inline constexpr IID kIID_ISOSDacInterface10 = ParseGuid("90B8FCC3-7251-4B0A-AE3D-5C13A67EC9AA");
class ISOSDacInterface10 : public IUnknown {
 public:
  virtual HRESULT GetObjectComWrappersData(CLRDATA_ADDRESS obj, CLRDATA_ADDRESS* rcw,
                                           uint32_t count, CLRDATA_ADDRESS* mow_list,
                                           uint32_t* needed) = 0;                          // 3
  virtual HRESULT IsComWrappersCCW(CLRDATA_ADDRESS ccw, BOOL* is_ccw) = 0;                 // 4
  virtual HRESULT GetComWrappersCCWData(CLRDATA_ADDRESS, CLRDATA_ADDRESS*, int32_t*) = 0;  // 5
  virtual HRESULT IsComWrappersRCW(CLRDATA_ADDRESS rcw, BOOL* is_rcw) = 0;                 // 6
  virtual HRESULT GetComWrappersRCWData(CLRDATA_ADDRESS, CLRDATA_ADDRESS*) = 0;            // 7
};

// Objective-C tracked types (Apple platforms).
inline constexpr IID kIID_ISOSDacInterface11 = ParseGuid("96BA1DB9-14CD-4492-8065-1CAAECF6E5CF");
class ISOSDacInterface11 : public IUnknown {
 public:
  virtual HRESULT IsTrackedType(CLRDATA_ADDRESS obj, BOOL* is_tracked, BOOL* has_tagged) = 0;
  virtual HRESULT GetTaggedMemory(CLRDATA_ADDRESS obj, CLRDATA_ADDRESS* tagged,
                                  uint64_t* size_in_bytes) = 0;  // 4
};

// Statics without DomainLocalModule (.NET 9+).
inline constexpr IID kIID_ISOSDacInterface14 = ParseGuid("9aa22aca-6dc6-4a0c-b4e0-70d2416b9837");
inline constexpr int32_t kMethodTableInitialized = 1;
inline constexpr int32_t kMethodTableInitializationFailed = 2;
class ISOSDacInterface14 : public IUnknown {
 public:
  virtual HRESULT GetStaticBaseAddress(CLRDATA_ADDRESS mt, CLRDATA_ADDRESS* non_gc,
                                       CLRDATA_ADDRESS* gc) = 0;  // 3
  virtual HRESULT GetThreadStaticBaseAddress(CLRDATA_ADDRESS mt, CLRDATA_ADDRESS thread,
                                             CLRDATA_ADDRESS* non_gc,
                                             CLRDATA_ADDRESS* gc) = 0;  // 4
  virtual HRESULT GetMethodTableInitializationFlags(CLRDATA_ADDRESS mt,
                                                    int32_t* flags) = 0;  // 5
};

// A method's native code versions (tiers), newest last (sospriv.idl ISOSDacInterface5).
struct DacpTieredVersionData {
  CLRDATA_ADDRESS NativeCodeAddr;
  int32_t OptimizationTier;  // 0 unknown, 1 MinOptJitted, 2 Optimized, 3 QuickJitted,
                             // 4 OptimizedTier1, 5 ReadyToRun, 6 OptimizedTier1OSR,
                             // 7 QuickJittedInstrumented, 8 OptimizedTier1Instrumented
  CLRDATA_ADDRESS NativeCodeVersionNodePtr;
};
static_assert(sizeof(DacpTieredVersionData) == 0x18);
inline constexpr IID kIID_ISOSDacInterface5 = ParseGuid("127d6abe-6c86-4e48-8e7b-220781c58101");
class ISOSDacInterface5 : public IUnknown {
 public:
  virtual HRESULT GetTieredVersions(CLRDATA_ADDRESS method_desc, int32_t rejit_id,
                                    DacpTieredVersionData* versions, int32_t capacity,
                                    int32_t* count) = 0;  // 3
};

// A method's IL code version for a ReJIT id (ISOSDacInterface7).
struct DacpReJitData2 {
  uint32_t rejitID;
  uint32_t flags;
  CLRDATA_ADDRESS il;
  CLRDATA_ADDRESS ilCodeVersionNodePtr;
};
static_assert(sizeof(DacpReJitData2) == 0x18);
inline constexpr IID kIID_ISOSDacInterface7 = ParseGuid("c1020dde-fe98-4536-a53b-f35a74c327eb");
class ISOSDacInterface7 : public IUnknown {
 public:
  virtual HRESULT GetPendingReJITID(CLRDATA_ADDRESS method_desc, int32_t* rejit_id) = 0;  // 3
  virtual HRESULT GetReJITInformation(CLRDATA_ADDRESS method_desc, int32_t rejit_id,
                                      DacpReJitData2* data) = 0;                 // 4
  virtual HRESULT GetProfilerModifiedILInformation(CLRDATA_ADDRESS, void*) = 0;  // 5
  virtual HRESULT GetMethodsWithProfilerModifiedIL(CLRDATA_ADDRESS, CLRDATA_ADDRESS*, int32_t,
                                                   int32_t*) = 0;  // 6
};

// The common base of the DAC's enumerators (sospriv.idl ISOSEnum).
class ISOSEnum : public IUnknown {
 public:
  virtual HRESULT Skip(uint32_t count) = 0;       // 3
  virtual HRESULT Reset() = 0;                    // 4
  virtual HRESULT GetCount(uint32_t* count) = 0;  // 5
};

class ISOSMethodEnum : public ISOSEnum {
 public:
  virtual HRESULT Next(uint32_t count, SOSMethodData* values, uint32_t* fetched) = 0;  // 6
};

// One handle-table entry (sospriv.idl SOSHandleData). Type: 0 WeakShort, 1 WeakLong,
// 2 Strong, 3 Pinned, 4 Variable, 5 RefCounted, 6 Dependent (Secondary = the dependent
// object), 7 AsyncPinned, 8 SizedRef, 9 WeakNativeCom, 10 WeakInteriorPointer,
// 11 CrossReference.
struct SOSHandleData {
  CLRDATA_ADDRESS AppDomain;
  CLRDATA_ADDRESS Handle;  // The handle's slot; the object is what it points to.
  CLRDATA_ADDRESS Secondary;
  uint32_t Type;
  BOOL StrongReference;
  uint32_t RefCount;
  uint32_t JupiterRefCount;
  BOOL IsPegged;
};
static_assert(sizeof(SOSHandleData) == 48);
static_assert(offsetof(SOSHandleData, Type) == 24);
static_assert(offsetof(SOSHandleData, RefCount) == 32);

// One GC reference of a thread's stack (sospriv.idl SOSStackRefData). Flags: 1 interior,
// 2 pinned. SourceType: 0 the frame's IP, 1 an explicit Frame.
struct SOSStackRefData {
  BOOL HasRegisterInformation;
  int32_t Register;
  int32_t Offset;
  CLRDATA_ADDRESS Address;  // The slot (stack or register save area).
  CLRDATA_ADDRESS Object;
  uint32_t Flags;
  uint32_t SourceType;
  CLRDATA_ADDRESS Source;
  CLRDATA_ADDRESS StackPointer;
};
static_assert(sizeof(SOSStackRefData) == 56);
static_assert(offsetof(SOSStackRefData, Address) == 16);
static_assert(offsetof(SOSStackRefData, Flags) == 32);

// GetHandleEnum's result (IID 3E269830-4A2B-4301-8EE2-D6805B29B2FA).
class ISOSHandleEnum : public ISOSEnum {
 public:
  virtual HRESULT Next(uint32_t count, SOSHandleData* values, uint32_t* fetched) = 0;  // 6
};

// GetStackReferences' result (IID 8FA642BD-9F10-4799-9AA3-512AE78C77EE).
class ISOSStackRefEnum : public ISOSEnum {
 public:
  virtual HRESULT Next(uint32_t count, SOSStackRefData* values, uint32_t* fetched) = 0;  // 6
  virtual HRESULT EnumerateErrors(IUnknown** errors) = 0;                                // 7
};

// The slots of a MethodTable (.NET 9+).
inline constexpr IID kIID_ISOSDacInterface15 = ParseGuid("7ed81261-52a9-4a23-a358-c3313dea30a8");
class ISOSDacInterface15 : public IUnknown {
 public:
  virtual HRESULT GetMethodTableSlotEnumerator(CLRDATA_ADDRESS mt,
                                               ISOSMethodEnum** enumerator) = 0;  // 3
};

// The allocation context shared by threads without their own (.NET 7+).
class ISOSDacInterface12 : public IUnknown {
 public:
  virtual HRESULT GetGlobalAllocationContext(CLRDATA_ADDRESS* ptr,
                                             CLRDATA_ADDRESS* limit) = 0;  // 3
};

// What IXCLRDataModule::Request(DACDATAMODULEPRIV_REQUEST_GET_MODULEDATA) fills (dacprivate.h):
// the module's loaded PE image as the runtime sees it.
inline constexpr ULONG32 kDacDataModulePrivRequestGetModuleData = 0xf0000001;
struct DacpGetModuleData {
  BOOL IsDynamic;
  BOOL IsInMemory;
  BOOL IsFileLayout;           // The image is mapped flat (as the file), not as sections.
  CLRDATA_ADDRESS PEAssembly;  // .NET 9+: the Module address.
  CLRDATA_ADDRESS LoadedPEAddress;
  uint64_t LoadedPESize;  // File size for a flat layout, SizeOfImage for a mapped one.
  CLRDATA_ADDRESS InMemoryPdbAddress;
  uint64_t InMemoryPdbSize;
};
static_assert(sizeof(DacpGetModuleData) == 0x38);
static_assert(offsetof(DacpGetModuleData, PEAssembly) == 16);

inline constexpr IID kIID_IXCLRDataModule = ParseGuid("88E32849-0A0A-4cb0-9022-7CD2E9E139E2");

// One module as xclrdata.idl describes it; what ISOSDacInterface::GetModule hands out. Only
// GetFileName and Request are called; the others keep their vtable slots.
class IXCLRDataModule : public IUnknown {
 public:
  virtual HRESULT StartEnumAssemblies(void*) = 0;                                    // 3
  virtual HRESULT EnumAssembly(void*, void*) = 0;                                    // 4
  virtual HRESULT EndEnumAssemblies(ULONG64) = 0;                                    // 5
  virtual HRESULT StartEnumTypeDefinitions(void*) = 0;                               // 6
  virtual HRESULT EnumTypeDefinition(void*, void*) = 0;                              // 7
  virtual HRESULT EndEnumTypeDefinitions(ULONG64) = 0;                               // 8
  virtual HRESULT StartEnumTypeInstances(void*, void*) = 0;                          // 9
  virtual HRESULT EnumTypeInstance(void*, void*) = 0;                                // 10
  virtual HRESULT EndEnumTypeInstances(ULONG64) = 0;                                 // 11
  virtual HRESULT StartEnumTypeDefinitionsByName(const WCHAR*, ULONG32, void*) = 0;  // 12
  virtual HRESULT EnumTypeDefinitionByName(void*, void*) = 0;                        // 13
  virtual HRESULT EndEnumTypeDefinitionsByName(ULONG64) = 0;                         // 14
  virtual HRESULT StartEnumTypeInstancesByName(const WCHAR*, ULONG32, void*, void*) = 0;
  virtual HRESULT EnumTypeInstanceByName(void*, void*) = 0;                            // 16
  virtual HRESULT EndEnumTypeInstancesByName(ULONG64) = 0;                             // 17
  virtual HRESULT GetTypeDefinitionByToken(uint32_t, void*) = 0;                       // 18
  virtual HRESULT StartEnumMethodDefinitionsByName(const WCHAR*, ULONG32, void*) = 0;  // 19
  virtual HRESULT EnumMethodDefinitionByName(void*, void*) = 0;                        // 20
  virtual HRESULT EndEnumMethodDefinitionsByName(ULONG64) = 0;                         // 21
  virtual HRESULT StartEnumMethodInstancesByName(const WCHAR*, ULONG32, void*, void*) = 0;
  virtual HRESULT EnumMethodInstanceByName(void*, void*) = 0;       // 23
  virtual HRESULT EndEnumMethodInstancesByName(ULONG64) = 0;        // 24
  virtual HRESULT GetMethodDefinitionByToken(uint32_t, void*) = 0;  // 25
  virtual HRESULT StartEnumDataByName(const WCHAR*, ULONG32, void*, void*, void*) = 0;
  virtual HRESULT EnumDataByName(void*, void*) = 0;                              // 27
  virtual HRESULT EndEnumDataByName(ULONG64) = 0;                                // 28
  virtual HRESULT GetName(ULONG32 buf_len, ULONG32* name_len, WCHAR* name) = 0;  // 29
  // Faults on a null buffer: always pass one.
  virtual HRESULT GetFileName(ULONG32 buf_len, ULONG32* name_len, WCHAR* name) = 0;  // 30
  virtual HRESULT GetFlags(ULONG32* flags) = 0;                                      // 31
  virtual HRESULT IsSameObject(IXCLRDataModule* other) = 0;                          // 32
  virtual HRESULT StartEnumExtents(void*) = 0;                                       // 33
  virtual HRESULT EnumExtent(void*, void*) = 0;                                      // 34
  virtual HRESULT EndEnumExtents(ULONG64) = 0;                                       // 35
  virtual HRESULT Request(ULONG32 code, ULONG32 in_size, BYTE* in, ULONG32 out_size,
                          BYTE* out) = 0;           // 36
  virtual HRESULT StartEnumAppDomains(void*) = 0;   // 37
  virtual HRESULT EnumAppDomain(void*, void*) = 0;  // 38
  virtual HRESULT EndEnumAppDomains(ULONG64) = 0;   // 39
  virtual HRESULT GetVersionId(GUID* vid) = 0;      // 40
};

}  // namespace clrdiag::dac
