// The data-target side of the CLR data access interfaces (clrdata.idl): what a host implements
// so the DAC can read the target, plus IXCLRDataProcess, the object CLRDataCreateInstance
// returns (xclrdata.idl). Declarations are written from the public IDL; method order is the
// vtable order and must not change. Methods of IXCLRDataProcess that clrdiag does not call are
// declared with elided argument lists: only their position in the vtable matters.
#pragma once

#include "core/dac/com.h"

namespace clrdiag::dac {

inline constexpr ULONG32 kImageFileMachineAmd64 = 0x8664;
inline constexpr ULONG32 kImageFileMachineArm64 = 0xAA64;

inline constexpr IID kIID_ICLRDataTarget = ParseGuid("3E11CCEE-D08B-43e5-AF01-32717A64DA03");
inline constexpr IID kIID_ICLRDataTarget2 = ParseGuid("6d05fae3-189c-4630-a6dc-1c251e1c01ab");
inline constexpr IID kIID_ICLRDataTarget3 = ParseGuid("a5664f95-0af4-4a1b-960e-2f3346b4214c");
inline constexpr IID kIID_ICLRRuntimeLocator = ParseGuid("b760bf44-9377-4597-8be7-58083bdc5146");
inline constexpr IID kIID_ICLRContractLocator = ParseGuid("17d5b8c6-34a9-407f-af4f-a930201d4e02");
inline constexpr IID kIID_ICLRMetadataLocator = ParseGuid("aa8fa804-bc05-4642-b2c5-c353ed22fc63");
inline constexpr IID kIID_IXCLRDataTarget3 = ParseGuid("59d9b5e1-4a6f-4531-84c3-51d12da22fd4");
inline constexpr IID kIID_ICorDebugDataTarget4 = ParseGuid("E799DC06-E099-4713-BDD9-906D3CC02CF2");
inline constexpr IID kIID_IXCLRDataProcess = ParseGuid("5c552ab6-fc09-4cb3-8e36-22fa03c798b7");

// Implemented by the host: the DAC's only window onto the target.
class ICLRDataTarget : public IUnknown {
 public:
  virtual HRESULT GetMachineType(ULONG32* machine_type) = 0;  // 3
  virtual HRESULT GetPointerSize(ULONG32* pointer_size) = 0;  // 4
  // Without a directory in `image_path`, match the file name only, case-insensitively.
  virtual HRESULT GetImageBase(const WCHAR* image_path, CLRDATA_ADDRESS* base) = 0;  // 5
  virtual HRESULT ReadVirtual(CLRDATA_ADDRESS address, BYTE* buffer, ULONG32 requested,
                              ULONG32* done) = 0;  // 6
  virtual HRESULT WriteVirtual(CLRDATA_ADDRESS address, BYTE* buffer, ULONG32 requested,
                               ULONG32* done) = 0;  // 7
  virtual HRESULT GetTLSValue(ULONG32 thread_id, ULONG32 index, CLRDATA_ADDRESS* value) = 0;
  virtual HRESULT SetTLSValue(ULONG32 thread_id, ULONG32 index, CLRDATA_ADDRESS value) = 0;
  virtual HRESULT GetCurrentThreadID(ULONG32* thread_id) = 0;  // 10
  virtual HRESULT GetThreadContext(ULONG32 thread_id, ULONG32 context_flags, ULONG32 size,
                                   BYTE* context) = 0;  // 11
  virtual HRESULT SetThreadContext(ULONG32 thread_id, ULONG32 size, BYTE* context) = 0;
  virtual HRESULT Request(ULONG32 code, ULONG32 in_size, BYTE* in, ULONG32 out_size,
                          BYTE* out) = 0;  // 13
};

// Optional: lets the DAC find libcoreclr without GetImageBase("libcoreclr.so").
class ICLRRuntimeLocator : public IUnknown {
 public:
  virtual HRESULT GetRuntimeBase(CLRDATA_ADDRESS* base) = 0;  // 3
};

// Optional: serves assembly metadata the dump does not contain (file-backed image pages are
// often missing from Linux cores). `data_size` may be NULL.
class ICLRMetadataLocator : public IUnknown {
 public:
  virtual HRESULT GetMetadata(const WCHAR* image_path, ULONG32 image_timestamp, ULONG32 image_size,
                              GUID* mvid, ULONG32 md_rva, ULONG32 flags, ULONG32 buffer_size,
                              BYTE* buffer, ULONG32* data_size) = 0;  // 3
};

// CLRDataCreateInstance's product. Only Flush and Request are used by clrdiag today.
class IXCLRDataProcess : public IUnknown {
 public:
  virtual HRESULT Flush() = 0;                                                     // 3
  virtual HRESULT StartEnumTasks(void*) = 0;                                       // 4
  virtual HRESULT EnumTask(void*, void*) = 0;                                      // 5
  virtual HRESULT EndEnumTasks(ULONG64) = 0;                                       // 6
  virtual HRESULT GetTaskByOSThreadID(ULONG32 os_thread_id, IUnknown** task) = 0;  // 7
  virtual HRESULT GetTaskByUniqueID(ULONG64, void*) = 0;                           // 8
  virtual HRESULT GetFlags(ULONG32*) = 0;                                          // 9
  virtual HRESULT IsSameObject(void*) = 0;                                         // 10
  virtual HRESULT GetManagedObject(void*) = 0;                                     // 11
  virtual HRESULT GetDesiredExecutionState(ULONG32*) = 0;                          // 12
  virtual HRESULT SetDesiredExecutionState(ULONG32) = 0;                           // 13
  virtual HRESULT GetAddressType(CLRDATA_ADDRESS, void*) = 0;                      // 14
  virtual HRESULT GetRuntimeNameByAddress(CLRDATA_ADDRESS address, ULONG32 flags, ULONG32 buf_len,
                                          ULONG32* name_len, WCHAR* name,
                                          CLRDATA_ADDRESS* displacement) = 0;  // 15
  virtual HRESULT StartEnumAppDomains(void*) = 0;                              // 16
  virtual HRESULT EnumAppDomain(void*, void*) = 0;                             // 17
  virtual HRESULT EndEnumAppDomains(ULONG64) = 0;                              // 18
  virtual HRESULT GetAppDomainByUniqueID(ULONG64, void*) = 0;                  // 19
  virtual HRESULT StartEnumAssemblies(void*) = 0;                              // 20
  virtual HRESULT EnumAssembly(void*, void*) = 0;                              // 21
  virtual HRESULT EndEnumAssemblies(ULONG64) = 0;                              // 22
  virtual HRESULT StartEnumModules(void*) = 0;                                 // 23
  virtual HRESULT EnumModule(void*, void*) = 0;                                // 24
  virtual HRESULT EndEnumModules(ULONG64) = 0;                                 // 25
  virtual HRESULT GetModuleByAddress(CLRDATA_ADDRESS, void*) = 0;              // 26
  // Method instances whose code holds an address; `app_domain` may be null.
  virtual HRESULT StartEnumMethodInstancesByAddress(CLRDATA_ADDRESS address, IUnknown* app_domain,
                                                    ULONG64* handle) = 0;               // 27
  virtual HRESULT EnumMethodInstanceByAddress(ULONG64* handle, IUnknown** method) = 0;  // 28
  virtual HRESULT EndEnumMethodInstancesByAddress(ULONG64) = 0;                         // 29
  virtual HRESULT GetDataByAddress(CLRDATA_ADDRESS, ULONG32, void*, void*, ULONG32, void*, void*,
                                   void*, void*) = 0;                        // 30
  virtual HRESULT GetExceptionStateByExceptionRecord(void*, void*) = 0;      // 31
  virtual HRESULT TranslateExceptionRecordToNotification(void*, void*) = 0;  // 32
  virtual HRESULT Request(ULONG32 code, ULONG32 in_size, BYTE* in, ULONG32 out_size,
                          BYTE* out) = 0;  // 33
  // Slots 34-48 (CreateMemoryValue ... DumpNativeImage) are not declared: never called.
};

// ---- Tasks and stack walks (xclrdata.idl) ----
// Declared in IDL order; parameters of methods clrdiag does not call are elided as in
// IXCLRDataProcess above.

inline constexpr IID kIID_IXCLRDataTask = ParseGuid("A5B0BEEA-EC62-4618-8012-A24FFC23934C");
inline constexpr IID kIID_IXCLRDataStackWalk = ParseGuid("E59D8D22-ADA7-49a2-89B5-A415AFCFC95F");
inline constexpr IID kIID_IXCLRDataFrame = ParseGuid("271498C2-4085-4766-BC3A-7F8ED188A173");
inline constexpr IID kIID_IXCLRDataMethodInstance =
    ParseGuid("ECD73800-22CA-4b0d-AB55-E9BA7E6318A5");
inline constexpr IID kIID_IXCLRDataValue = ParseGuid("96EC93C7-1000-4e93-8991-98D8766E6666");

// CLRDataSimpleFrameType: which frames a stack walk stops at.
inline constexpr ULONG32 kClrDataSimpFrameUnrecognized = 0x1;
inline constexpr ULONG32 kClrDataSimpFrameManagedMethod = 0x2;
inline constexpr ULONG32 kClrDataSimpFrameRuntimeManagedCode = 0x4;
inline constexpr ULONG32 kClrDataSimpFrameRuntimeUnmanagedCode = 0x8;
inline constexpr ULONG32 kClrDataSimpFrameAll =
    kClrDataSimpFrameUnrecognized | kClrDataSimpFrameManagedMethod |
    kClrDataSimpFrameRuntimeManagedCode | kClrDataSimpFrameRuntimeUnmanagedCode;

// IXCLRDataStackWalk::Request code (dacprivate.h DACSTACKPRIV_REQUEST_FRAME_DATA): writes the
// address of the runtime Frame the walk stands on (0 for a frame of managed code).
inline constexpr ULONG32 kDacStackPrivRequestFrameData = 0xF0000000;
struct DacpFrameData {
  CLRDATA_ADDRESS frameAddr;
};
static_assert(sizeof(DacpFrameData) == 8);

// CLRDATA_IL_OFFSET_MARKER values returned in place of an IL offset.
inline constexpr ULONG32 kClrDataIlOffsetNoMapping = 0xFFFFFFFF;  // -1
inline constexpr ULONG32 kClrDataIlOffsetProlog = 0xFFFFFFFE;     // -2
inline constexpr ULONG32 kClrDataIlOffsetEpilog = 0xFFFFFFFD;     // -3

struct CLRDATA_IL_ADDRESS_MAP {
  ULONG32 ilOffset;
  CLRDATA_ADDRESS startAddress;
  CLRDATA_ADDRESS endAddress;
  int32_t type;  // CLRDataSourceType
};
static_assert(sizeof(CLRDATA_IL_ADDRESS_MAP) == 32);

// ClrDataValueLocationFlag.
inline constexpr ULONG32 kClrDataVlocMemory = 0;
inline constexpr ULONG32 kClrDataVlocRegister = 1;

using CLRDATA_ENUM = ULONG64;

class IXCLRDataMethodInstance : public IUnknown {
 public:
  virtual HRESULT GetTypeInstance(IUnknown**) = 0;                           // 3
  virtual HRESULT GetDefinition(IUnknown**) = 0;                             // 4
  virtual HRESULT GetTokenAndScope(uint32_t* token, IUnknown** module) = 0;  // 5
  virtual HRESULT GetName(ULONG32 flags, ULONG32 buf_len, ULONG32* name_len,
                          WCHAR* name) = 0;                         // 6
  virtual HRESULT GetFlags(ULONG32*) = 0;                           // 7
  virtual HRESULT IsSameObject(IXCLRDataMethodInstance*) = 0;       // 8
  virtual HRESULT GetEnCVersion(ULONG32*) = 0;                      // 9
  virtual HRESULT GetNumTypeArguments(ULONG32*) = 0;                // 10
  virtual HRESULT GetTypeArgumentByIndex(ULONG32, IUnknown**) = 0;  // 11
  virtual HRESULT GetILOffsetsByAddress(CLRDATA_ADDRESS address, ULONG32 offsets_len,
                                        ULONG32* offsets_needed, ULONG32* il_offsets) = 0;  // 12
  virtual HRESULT GetAddressRangesByILOffset(ULONG32, ULONG32, ULONG32*, void*) = 0;        // 13
  virtual HRESULT GetILAddressMap(ULONG32 map_len, ULONG32* map_needed,
                                  CLRDATA_IL_ADDRESS_MAP* maps) = 0;            // 14
  virtual HRESULT StartEnumExtents(CLRDATA_ENUM*) = 0;                          // 15
  virtual HRESULT EnumExtent(CLRDATA_ENUM*, void*) = 0;                         // 16
  virtual HRESULT EndEnumExtents(CLRDATA_ENUM) = 0;                             // 17
  virtual HRESULT Request(ULONG32, ULONG32, BYTE*, ULONG32, BYTE*) = 0;         // 18
  virtual HRESULT GetRepresentativeEntryAddress(CLRDATA_ADDRESS* address) = 0;  // 19
};

// An argument, local or field value.
class IXCLRDataValue : public IUnknown {
 public:
  virtual HRESULT GetFlags(ULONG32* flags) = 0;              // 3
  virtual HRESULT GetAddress(CLRDATA_ADDRESS* address) = 0;  // 4
  virtual HRESULT GetSize(ULONG64* size) = 0;                // 5
  // With buf_len too small: HRESULT_FROM_WIN32(ERROR_BUFFER_OVERFLOW) and the size needed.
  virtual HRESULT GetBytes(ULONG32 buf_len, ULONG32* data_size, BYTE* buffer) = 0;  // 6
  virtual HRESULT SetBytes(ULONG32, ULONG32*, BYTE*) = 0;                           // 7
  virtual HRESULT GetType(IUnknown**) = 0;                                          // 8
  virtual HRESULT GetNumFields(ULONG32*) = 0;                                       // 9
  virtual HRESULT GetFieldByIndex(ULONG32, IXCLRDataValue**, ULONG32, ULONG32*, WCHAR*,
                                  uint32_t*) = 0;                          // 10
  virtual HRESULT Request(ULONG32, ULONG32, BYTE*, ULONG32, BYTE*) = 0;    // 11
  virtual HRESULT GetNumFields2(ULONG32, IUnknown*, ULONG32*) = 0;         // 12
  virtual HRESULT StartEnumFields(ULONG32, IUnknown*, CLRDATA_ENUM*) = 0;  // 13
  virtual HRESULT EnumField(CLRDATA_ENUM*, IXCLRDataValue**, ULONG32, ULONG32*, WCHAR*,
                            uint32_t*) = 0;         // 14
  virtual HRESULT EndEnumFields(CLRDATA_ENUM) = 0;  // 15
  virtual HRESULT StartEnumFieldsByName(const WCHAR*, ULONG32, ULONG32, IUnknown*,
                                        CLRDATA_ENUM*) = 0;                         // 16
  virtual HRESULT EnumFieldByName(CLRDATA_ENUM*, IXCLRDataValue**, uint32_t*) = 0;  // 17
  virtual HRESULT EndEnumFieldsByName(CLRDATA_ENUM) = 0;                            // 18
  virtual HRESULT GetFieldByToken(uint32_t, IXCLRDataValue**, ULONG32, ULONG32*, WCHAR*) = 0;
  virtual HRESULT GetAssociatedValue(IXCLRDataValue**) = 0;  // 20
  virtual HRESULT GetAssociatedType(IUnknown**) = 0;         // 21
  virtual HRESULT GetString(ULONG32, ULONG32*, WCHAR*) = 0;  // 22
  virtual HRESULT GetArrayProperties(ULONG32*, ULONG32*, ULONG32, ULONG32*, ULONG32,
                                     int32_t*) = 0;                          // 23
  virtual HRESULT GetArrayElement(ULONG32, int32_t*, IXCLRDataValue**) = 0;  // 24
  virtual HRESULT EnumField2(CLRDATA_ENUM*, IXCLRDataValue**, ULONG32, ULONG32*, WCHAR*, IUnknown**,
                             uint32_t*) = 0;  // 25
  virtual HRESULT EnumFieldByName2(CLRDATA_ENUM*, IXCLRDataValue**, IUnknown**,
                                   uint32_t*) = 0;  // 26
  virtual HRESULT GetFieldByToken2(IUnknown*, uint32_t, IXCLRDataValue**, ULONG32, ULONG32*,
                                   WCHAR*) = 0;         // 27
  virtual HRESULT GetNumLocations(ULONG32* count) = 0;  // 28
  virtual HRESULT GetLocationByIndex(ULONG32 index, ULONG32* flags,
                                     CLRDATA_ADDRESS* address) = 0;  // 29
};

class IXCLRDataFrame : public IUnknown {
 public:
  virtual HRESULT GetFrameType(int32_t* simple_type, int32_t* detailed_type) = 0;  // 3
  virtual HRESULT GetContext(ULONG32 flags, ULONG32 buf_size, ULONG32* size,
                             BYTE* buffer) = 0;         // 4
  virtual HRESULT GetAppDomain(IUnknown**) = 0;         // 5
  virtual HRESULT GetNumArguments(ULONG32* count) = 0;  // 6
  virtual HRESULT GetArgumentByIndex(ULONG32 index, IXCLRDataValue** value, ULONG32 buf_len,
                                     ULONG32* name_len, WCHAR* name) = 0;  // 7
  virtual HRESULT GetNumLocalVariables(ULONG32* count) = 0;                // 8
  virtual HRESULT GetLocalVariableByIndex(ULONG32 index, IXCLRDataValue** value, ULONG32 buf_len,
                                          ULONG32* name_len, WCHAR* name) = 0;  // 9
  virtual HRESULT GetCodeName(ULONG32 flags, ULONG32 buf_len, ULONG32* name_len,
                              WCHAR* name) = 0;                             // 10
  virtual HRESULT GetMethodInstance(IXCLRDataMethodInstance** method) = 0;  // 11
  virtual HRESULT Request(ULONG32, ULONG32, BYTE*, ULONG32, BYTE*) = 0;     // 12
  virtual HRESULT GetNumTypeArguments(ULONG32*) = 0;                        // 13
  virtual HRESULT GetTypeArgumentByIndex(ULONG32, IUnknown**) = 0;          // 14
};

class IXCLRDataStackWalk : public IUnknown {
 public:
  // S_FALSE when the walk stands on no frame. The buffer must be at least the DAC's own
  // CONTEXT size for `flags` (ask with buf_size 0 first).
  virtual HRESULT GetContext(ULONG32 flags, ULONG32 buf_size, ULONG32* size, BYTE* buffer) = 0;
  virtual HRESULT SetContext(ULONG32, BYTE*) = 0;  // 4
  // S_FALSE at the end of the stack; a failure means the walk could not go on.
  virtual HRESULT Next() = 0;                                                      // 5
  virtual HRESULT GetStackSizeSkipped(ULONG64*) = 0;                               // 6
  virtual HRESULT GetFrameType(int32_t* simple_type, int32_t* detailed_type) = 0;  // 7
  virtual HRESULT GetFrame(IXCLRDataFrame** frame) = 0;                            // 8
  virtual HRESULT Request(ULONG32 code, ULONG32 in_size, BYTE* in, ULONG32 out_size,
                          BYTE* out) = 0;                    // 9
  virtual HRESULT SetContext2(ULONG32, ULONG32, BYTE*) = 0;  // 10
};

// A thread (task) the runtime knows.
class IXCLRDataTask : public IUnknown {
 public:
  virtual HRESULT GetProcess(IUnknown**) = 0;                                     // 3
  virtual HRESULT GetCurrentAppDomain(IUnknown**) = 0;                            // 4
  virtual HRESULT GetUniqueID(ULONG64*) = 0;                                      // 5
  virtual HRESULT GetFlags(ULONG32*) = 0;                                         // 6
  virtual HRESULT IsSameObject(IXCLRDataTask*) = 0;                               // 7
  virtual HRESULT GetManagedObject(IXCLRDataValue**) = 0;                         // 8
  virtual HRESULT GetDesiredExecutionState(ULONG32*) = 0;                         // 9
  virtual HRESULT SetDesiredExecutionState(ULONG32) = 0;                          // 10
  virtual HRESULT CreateStackWalk(ULONG32 flags, IXCLRDataStackWalk** walk) = 0;  // 11
  virtual HRESULT GetOSThreadID(ULONG32* id) = 0;                                 // 12
  virtual HRESULT GetContext(ULONG32, ULONG32, ULONG32*, BYTE*) = 0;              // 13
  virtual HRESULT SetContext(ULONG32, BYTE*) = 0;                                 // 14
  virtual HRESULT GetCurrentExceptionState(IUnknown**) = 0;                       // 15
  virtual HRESULT Request(ULONG32, ULONG32, BYTE*, ULONG32, BYTE*) = 0;           // 16
  virtual HRESULT GetName(ULONG32, ULONG32*, WCHAR*) = 0;                         // 17
  virtual HRESULT GetLastExceptionState(IUnknown**) = 0;                          // 18
};

// IXCLRDataProcess::Request code returning the DAC interface revision (a ULONG32).
inline constexpr ULONG32 kClrDataRequestRevision = 0xE0000000;

// The DAC's entry point: CLRDataCreateInstance(REFIID, ICLRDataTarget*, void**). REFIID is a
// reference to GUID, i.e. a pointer in the C ABI.
using ClrDataCreateInstanceFn = HRESULT (*)(const IID* iid, ICLRDataTarget* target, void** iface);
// DllMain(HINSTANCE, DWORD reason, LPVOID): reason 1 = DLL_PROCESS_ATTACH initialises the PAL.
using DllMainFn = BOOL (*)(void* instance, DWORD reason, void* reserved);

}  // namespace clrdiag::dac
