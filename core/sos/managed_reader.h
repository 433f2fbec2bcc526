// Reading managed objects by field name, the way ClrMD-based commands of the reference do
// (ReadObjectField, ReadField<T>, value-type fields, arrays), and naming managed methods from
// code pointers (delegates, timers) the way ClrMD's GetMethodByInstructionPointer does. Used by
// the thread-pool, timer and stack commands (cmd_threadpool.cc, cmd_pstacks.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base/cancel.h"
#include "core/dac/dac_process.h"

namespace clrdiag::sos {

class ManagedReader {
 public:
  explicit ManagedReader(dac::DacProcess& dac) : dac_(dac) {}

  dac::DacProcess& dac() { return dac_; }

  // The MethodTable of the object at `obj` (0 if none / unreadable).
  uint64_t TypeOf(uint64_t obj);
  // ClrMD's name of a type (C#-like generics), cached; "" if unknown.
  std::string TypeName(uint64_t mt);
  // The type name of the object at `obj`, "" if it is not one.
  std::string ObjectTypeName(uint64_t obj) { return TypeName(TypeOf(obj)); }

  struct Field {
    uint32_t offset = 0;  // from the start of the instance data (after the MethodTable)
    dac::FieldDescInfo fd;
  };
  // An instance field of `mt` or a parent, by name.
  std::optional<Field> FindField(uint64_t mt, const std::string& name);

  // An object's field by name: a reference (0 if null) / a primitive. False if the object or
  // field is not there.
  bool ReadObjectField(uint64_t obj, const std::string& name, uint64_t* out);
  template <typename T>
  bool ReadField(uint64_t obj, const std::string& name, T* out) {
    return ReadRaw(obj, name, out, sizeof(T));
  }
  bool ReadRaw(uint64_t obj, const std::string& name, void* out, size_t size);
  // The address of a field's data inside an object / inside a value type's data at `data`
  // of type `mt`; *field_mt gets the field's type MT (value types), if known.
  std::optional<uint64_t> FieldAddress(uint64_t obj, const std::string& name,
                                       uint64_t* field_mt = nullptr);
  std::optional<uint64_t> ValueFieldAddress(uint64_t data, uint64_t mt, const std::string& name,
                                            uint64_t* field_mt = nullptr);

  // Arrays: length, element MT, element size, start of the elements.
  struct ArrayInfo {
    uint64_t length = 0;
    uint64_t element_mt = 0;
    uint64_t element_size = 0;
    uint64_t data = 0;
  };
  std::optional<ArrayInfo> Array(uint64_t obj);

  bool ReadPointer(uint64_t addr, uint64_t* out) {
    return dac_.ReadTargetMemory(addr, out, sizeof(*out)) == sizeof(*out);
  }

  // The MethodDesc of code at `ip` (GetMethodDescPtrFromIP, then the code header), 0 if none.
  uint64_t MethodAt(uint64_t ip);
  // ClrMD's ClrMethod.Signature (the DAC's name), Name (the method part of it) and its type's
  // name (C#-like).
  std::string MethodSignature(uint64_t md);
  std::string MethodName(uint64_t md);
  std::string MethodTypeName(uint64_t md);

  // Every object on the heap whose type's DAC name is one of `names`, in heap order, grouped
  // by name. Honours `cancel`.
  absl::StatusOr<std::unordered_map<std::string, std::vector<uint64_t>>> FindObjects(
      const std::vector<std::string>& names, const CancellationToken& cancel);

 private:
  dac::DacProcess& dac_;
  std::unordered_map<uint64_t, std::string> type_names_;
  std::unordered_map<uint64_t, std::unordered_map<std::string, std::optional<Field>>> fields_;
};

// ClrMD's ClrMethod.Name from a signature "Ns.Type.Method(Args)": the part between the dot
// that ends the type name and the parameter list ("" when there is none).
std::string MethodNameFromSignature(const std::string& signature, const std::string& type_name);

}  // namespace clrdiag::sos
