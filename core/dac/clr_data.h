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
                                          CLRDATA_ADDRESS* displacement) = 0;            // 15
  virtual HRESULT StartEnumAppDomains(void*) = 0;                                        // 16
  virtual HRESULT EnumAppDomain(void*, void*) = 0;                                       // 17
  virtual HRESULT EndEnumAppDomains(ULONG64) = 0;                                        // 18
  virtual HRESULT GetAppDomainByUniqueID(ULONG64, void*) = 0;                            // 19
  virtual HRESULT StartEnumAssemblies(void*) = 0;                                        // 20
  virtual HRESULT EnumAssembly(void*, void*) = 0;                                        // 21
  virtual HRESULT EndEnumAssemblies(ULONG64) = 0;                                        // 22
  virtual HRESULT StartEnumModules(void*) = 0;                                           // 23
  virtual HRESULT EnumModule(void*, void*) = 0;                                          // 24
  virtual HRESULT EndEnumModules(ULONG64) = 0;                                           // 25
  virtual HRESULT GetModuleByAddress(CLRDATA_ADDRESS, void*) = 0;                        // 26
  virtual HRESULT StartEnumMethodInstancesByAddress(CLRDATA_ADDRESS, void*, void*) = 0;  // 27
  virtual HRESULT EnumMethodInstanceByAddress(void*, void*) = 0;                         // 28
  virtual HRESULT EndEnumMethodInstancesByAddress(ULONG64) = 0;                          // 29
  virtual HRESULT GetDataByAddress(CLRDATA_ADDRESS, ULONG32, void*, void*, ULONG32, void*, void*,
                                   void*, void*) = 0;                        // 30
  virtual HRESULT GetExceptionStateByExceptionRecord(void*, void*) = 0;      // 31
  virtual HRESULT TranslateExceptionRecordToNotification(void*, void*) = 0;  // 32
  virtual HRESULT Request(ULONG32 code, ULONG32 in_size, BYTE* in, ULONG32 out_size,
                          BYTE* out) = 0;  // 33
  // Slots 34-48 (CreateMemoryValue ... DumpNativeImage) are not declared: never called.
};

// IXCLRDataProcess::Request code returning the DAC interface revision (a ULONG32).
inline constexpr ULONG32 kClrDataRequestRevision = 0xE0000000;

// The DAC's entry point: CLRDataCreateInstance(REFIID, ICLRDataTarget*, void**). REFIID is a
// reference to GUID, i.e. a pointer in the C ABI.
using ClrDataCreateInstanceFn = HRESULT (*)(const IID* iid, ICLRDataTarget* target, void** iface);
// DllMain(HINSTANCE, DWORD reason, LPVOID): reason 1 = DLL_PROCESS_ATTACH initialises the PAL.
using DllMainFn = BOOL (*)(void* instance, DWORD reason, void* reserved);

}  // namespace clrdiag::dac
