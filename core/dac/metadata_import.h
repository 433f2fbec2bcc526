// IMetaDataImport (cor.h), the metadata reader the DAC hands out for a module: QueryInterface
// the IXCLRDataModule from ISOSDacInterface::GetModule for it. SOS names fields, methods and
// types through it. Declared from the public header in vtable order; only the methods clrdiag
// calls have typed arguments, the others keep their slots with elided argument lists.
#pragma once

#include "core/dac/com.h"

namespace clrdiag::dac {

inline constexpr IID kIID_IMetaDataImport = ParseGuid("7DAC8207-D3AE-4C75-9B67-92801A497D44");

// Token types (corhdr.h CorTokenType): the high byte of a metadata token.
inline constexpr uint32_t kMdtTypeRef = 0x01000000;
inline constexpr uint32_t kMdtTypeDef = 0x02000000;
inline constexpr uint32_t kMdtFieldDef = 0x04000000;
inline constexpr uint32_t kMdtMethodDef = 0x06000000;
inline constexpr uint32_t kMdtTypeSpec = 0x1b000000;
inline constexpr uint32_t kMdTypeDefNil = kMdtTypeDef;
// TypeDef flags: the visibility bits, and the ones meaning "nested" (tdNested*).
inline constexpr uint32_t kTdVisibilityMask = 0x7;
inline constexpr uint32_t kTdNestedPublic = 0x2;

class IMetaDataImport : public IUnknown {
 public:
  virtual void CloseEnum(void* e) = 0;                                                // 3
  virtual HRESULT CountEnum(void*, ULONG*) = 0;                                       // 4
  virtual HRESULT ResetEnum(void*, ULONG) = 0;                                        // 5
  virtual HRESULT EnumTypeDefs(void*, uint32_t*, ULONG, ULONG*) = 0;                  // 6
  virtual HRESULT EnumInterfaceImpls(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;  // 7
  virtual HRESULT EnumTypeRefs(void*, uint32_t*, ULONG, ULONG*) = 0;                  // 8
  virtual HRESULT FindTypeDefByName(const WCHAR*, uint32_t, uint32_t*) = 0;           // 9
  virtual HRESULT GetScopeProps(WCHAR*, ULONG, ULONG*, GUID*) = 0;                    // 10
  virtual HRESULT GetModuleFromScope(uint32_t*) = 0;                                  // 11
  virtual HRESULT GetTypeDefProps(uint32_t type_def, WCHAR* name, ULONG name_capacity,
                                  ULONG* name_length, DWORD* flags,
                                  uint32_t* extends) = 0;                           // 12
  virtual HRESULT GetInterfaceImplProps(uint32_t, uint32_t*, uint32_t*) = 0;        // 13
  virtual HRESULT GetTypeRefProps(uint32_t, uint32_t*, WCHAR*, ULONG, ULONG*) = 0;  // 14
  virtual HRESULT ResolveTypeRef(uint32_t, const IID&, IUnknown**, uint32_t*) = 0;  // 15
  virtual HRESULT EnumMembers(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;       // 16
  virtual HRESULT EnumMembersWithName(void*, uint32_t, const WCHAR*, uint32_t*, ULONG,
                                      ULONG*) = 0;                             // 17
  virtual HRESULT EnumMethods(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;  // 18
  virtual HRESULT EnumMethodsWithName(void*, uint32_t, const WCHAR*, uint32_t*, ULONG,
                                      ULONG*) = 0;                            // 19
  virtual HRESULT EnumFields(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;  // 20
  virtual HRESULT EnumFieldsWithName(void*, uint32_t, const WCHAR*, uint32_t*, ULONG,
                                     ULONG*) = 0;                                 // 21
  virtual HRESULT EnumParams(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;      // 22
  virtual HRESULT EnumMemberRefs(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;  // 23
  virtual HRESULT EnumMethodImpls(void*, uint32_t, uint32_t*, uint32_t*, ULONG, ULONG*) = 0;
  virtual HRESULT EnumPermissionSets(void*, uint32_t, DWORD, uint32_t*, ULONG, ULONG*) = 0;
  virtual HRESULT FindMember(uint32_t, const WCHAR*, const BYTE*, ULONG, uint32_t*) = 0;  // 26
  virtual HRESULT FindMethod(uint32_t, const WCHAR*, const BYTE*, ULONG, uint32_t*) = 0;  // 27
  virtual HRESULT FindField(uint32_t, const WCHAR*, const BYTE*, ULONG, uint32_t*) = 0;   // 28
  virtual HRESULT FindMemberRef(uint32_t, const WCHAR*, const BYTE*, ULONG, uint32_t*) = 0;
  virtual HRESULT GetMethodProps(uint32_t method, uint32_t* klass, WCHAR* name, ULONG name_capacity,
                                 ULONG* name_length, DWORD* attributes, const BYTE** signature,
                                 ULONG* signature_size, ULONG* rva,
                                 DWORD* impl_flags) = 0;  // 30
  virtual HRESULT GetMemberRefProps(uint32_t, uint32_t*, WCHAR*, ULONG, ULONG*, const BYTE**,
                                    ULONG*) = 0;                                  // 31
  virtual HRESULT EnumProperties(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;  // 32
  virtual HRESULT EnumEvents(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;      // 33
  virtual HRESULT GetEventProps(uint32_t, uint32_t*, WCHAR*, ULONG, ULONG*, DWORD*, uint32_t*,
                                uint32_t*, uint32_t*, uint32_t*, uint32_t*, ULONG,
                                ULONG*) = 0;                                              // 34
  virtual HRESULT EnumMethodSemantics(void*, uint32_t, uint32_t*, ULONG, ULONG*) = 0;     // 35
  virtual HRESULT GetMethodSemantics(uint32_t, uint32_t, DWORD*) = 0;                     // 36
  virtual HRESULT GetClassLayout(uint32_t, DWORD*, void*, ULONG, ULONG*, ULONG*) = 0;     // 37
  virtual HRESULT GetFieldMarshal(uint32_t, const BYTE**, ULONG*) = 0;                    // 38
  virtual HRESULT GetRVA(uint32_t, ULONG*, DWORD*) = 0;                                   // 39
  virtual HRESULT GetPermissionSetProps(uint32_t, DWORD*, const void**, ULONG*) = 0;      // 40
  virtual HRESULT GetSigFromToken(uint32_t, const BYTE**, ULONG*) = 0;                    // 41
  virtual HRESULT GetModuleRefProps(uint32_t, WCHAR*, ULONG, ULONG*) = 0;                 // 42
  virtual HRESULT EnumModuleRefs(void*, uint32_t*, ULONG, ULONG*) = 0;                    // 43
  virtual HRESULT GetTypeSpecFromToken(uint32_t, const BYTE**, ULONG*) = 0;               // 44
  virtual HRESULT GetNameFromToken(uint32_t, const char**) = 0;                           // 45
  virtual HRESULT EnumUnresolvedMethods(void*, uint32_t*, ULONG, ULONG*) = 0;             // 46
  virtual HRESULT GetUserString(uint32_t, WCHAR*, ULONG, ULONG*) = 0;                     // 47
  virtual HRESULT GetPinvokeMap(uint32_t, DWORD*, WCHAR*, ULONG, ULONG*, uint32_t*) = 0;  // 48
  virtual HRESULT EnumSignatures(void*, uint32_t*, ULONG, ULONG*) = 0;                    // 49
  virtual HRESULT EnumTypeSpecs(void*, uint32_t*, ULONG, ULONG*) = 0;                     // 50
  virtual HRESULT EnumUserStrings(void*, uint32_t*, ULONG, ULONG*) = 0;                   // 51
  virtual HRESULT GetParamForMethodIndex(uint32_t, ULONG, uint32_t*) = 0;                 // 52
  virtual HRESULT EnumCustomAttributes(void*, uint32_t, uint32_t, uint32_t*, ULONG,
                                       ULONG*) = 0;  // 53
  virtual HRESULT GetCustomAttributeProps(uint32_t, uint32_t*, uint32_t*, const void**,
                                          ULONG*) = 0;                 // 54
  virtual HRESULT FindTypeRef(uint32_t, const WCHAR*, uint32_t*) = 0;  // 55
  virtual HRESULT GetMemberProps(uint32_t, uint32_t*, WCHAR*, ULONG, ULONG*, DWORD*, const BYTE**,
                                 ULONG*, ULONG*, DWORD*, DWORD*, const void**,
                                 ULONG*) = 0;  // 56
  virtual HRESULT GetFieldProps(uint32_t field, uint32_t* klass, WCHAR* name, ULONG name_capacity,
                                ULONG* name_length, DWORD* attributes, const BYTE** signature,
                                ULONG* signature_size, DWORD* value_type, const void** value,
                                ULONG* value_length) = 0;  // 57
  virtual HRESULT GetPropertyProps(uint32_t, uint32_t*, const WCHAR*, ULONG, ULONG*, DWORD*,
                                   const BYTE**, ULONG*, DWORD*, const void**, ULONG*, uint32_t*,
                                   uint32_t*, uint32_t*, ULONG, ULONG*) = 0;  // 58
  virtual HRESULT GetParamProps(uint32_t, uint32_t*, ULONG*, WCHAR*, ULONG, ULONG*, DWORD*, DWORD*,
                                const void**, ULONG*) = 0;  // 59
  virtual HRESULT GetCustomAttributeByName(uint32_t, const WCHAR*, const void**,
                                           ULONG*) = 0;                           // 60
  virtual BOOL IsValidToken(uint32_t token) = 0;                                  // 61
  virtual HRESULT GetNestedClassProps(uint32_t nested, uint32_t* enclosing) = 0;  // 62
  virtual HRESULT GetNativeCallConvFromSig(const void*, ULONG, ULONG*) = 0;       // 63
  virtual HRESULT IsGlobal(uint32_t, int*) = 0;                                   // 64
};

}  // namespace clrdiag::dac
