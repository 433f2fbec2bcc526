// Unit tests of the DAC host that need no dump: COM ABI layout, struct layouts, names.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/match.h"
#include "core/dac/clr_data.h"
#include "core/dac/com.h"
#include "core/dac/dac_locator.h"
#include "core/dac/metadata_import.h"
#include "core/dac/pe_image.h"
#include "core/dac/root_graph.h"
#include "core/dac/sos_dac.h"
#include "core/dac/thread_context.h"
#include "core/dac/type_name.h"
#include "core/elf/elf_file.h"
#include "gtest/gtest.h"

namespace clrdiag::dac {
namespace {

// Under the Itanium C++ ABI a pointer to a virtual member function stores 1 + the byte offset
// of its vtable slot; this recovers the COM slot number the DAC will call.
template <typename F>
size_t VtableSlot(F pmf) {
  static_assert(sizeof(F) == 2 * sizeof(uintptr_t));
  uintptr_t raw = 0;
  std::memcpy(&raw, &pmf, sizeof(raw));
  EXPECT_EQ(raw & 1, 1u) << "not a virtual function";
  return (raw - 1) / sizeof(void*);
}

TEST(ComAbi, IUnknownSlots) {
  EXPECT_EQ(VtableSlot(&IUnknown::QueryInterface), 0u);
  EXPECT_EQ(VtableSlot(&IUnknown::AddRef), 1u);
  EXPECT_EQ(VtableSlot(&IUnknown::Release), 2u);
}

TEST(ComAbi, DataTargetSlotsMatchIdl) {
  EXPECT_EQ(VtableSlot(&ICLRDataTarget::GetMachineType), 3u);
  EXPECT_EQ(VtableSlot(&ICLRDataTarget::GetImageBase), 5u);
  EXPECT_EQ(VtableSlot(&ICLRDataTarget::ReadVirtual), 6u);
  EXPECT_EQ(VtableSlot(&ICLRDataTarget::GetCurrentThreadID), 10u);
  EXPECT_EQ(VtableSlot(&ICLRDataTarget::GetThreadContext), 11u);
  EXPECT_EQ(VtableSlot(&ICLRDataTarget::Request), 13u);
  EXPECT_EQ(VtableSlot(&ICLRRuntimeLocator::GetRuntimeBase), 3u);
  EXPECT_EQ(VtableSlot(&ICLRMetadataLocator::GetMetadata), 3u);
}

TEST(ComAbi, StackWalkSlotsMatchIdl) {
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::StartEnumMethodInstancesByAddress), 27u);
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::EnumMethodInstanceByAddress), 28u);
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::EndEnumMethodInstancesByAddress), 29u);
  EXPECT_EQ(VtableSlot(&IXCLRDataTask::CreateStackWalk), 11u);
  EXPECT_EQ(VtableSlot(&IXCLRDataTask::GetOSThreadID), 12u);
  EXPECT_EQ(VtableSlot(&IXCLRDataTask::GetLastExceptionState), 18u);
  EXPECT_EQ(VtableSlot(&IXCLRDataStackWalk::GetContext), 3u);
  EXPECT_EQ(VtableSlot(&IXCLRDataStackWalk::Next), 5u);
  EXPECT_EQ(VtableSlot(&IXCLRDataStackWalk::GetFrame), 8u);
  EXPECT_EQ(VtableSlot(&IXCLRDataStackWalk::Request), 9u);
  EXPECT_EQ(VtableSlot(&IXCLRDataStackWalk::SetContext2), 10u);
  EXPECT_EQ(VtableSlot(&IXCLRDataFrame::GetNumArguments), 6u);
  EXPECT_EQ(VtableSlot(&IXCLRDataFrame::GetLocalVariableByIndex), 9u);
  EXPECT_EQ(VtableSlot(&IXCLRDataFrame::GetMethodInstance), 11u);
  EXPECT_EQ(VtableSlot(&IXCLRDataFrame::GetTypeArgumentByIndex), 14u);
  EXPECT_EQ(VtableSlot(&IXCLRDataMethodInstance::GetTokenAndScope), 5u);
  EXPECT_EQ(VtableSlot(&IXCLRDataMethodInstance::GetILOffsetsByAddress), 12u);
  EXPECT_EQ(VtableSlot(&IXCLRDataMethodInstance::GetILAddressMap), 14u);
  EXPECT_EQ(VtableSlot(&IXCLRDataMethodInstance::GetRepresentativeEntryAddress), 19u);
  EXPECT_EQ(VtableSlot(&IXCLRDataValue::GetBytes), 6u);
  EXPECT_EQ(VtableSlot(&IXCLRDataValue::GetNumLocations), 28u);
  EXPECT_EQ(VtableSlot(&IXCLRDataValue::GetLocationByIndex), 29u);
}

TEST(ComAbi, ProcessAndSosSlotsMatchIdl) {
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::Flush), 3u);
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::GetTaskByOSThreadID), 7u);
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::GetRuntimeNameByAddress), 15u);
  EXPECT_EQ(VtableSlot(&IXCLRDataProcess::Request), 33u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetThreadStoreData), 3u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetAssemblyList), 9u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetModuleData), 13u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetThreadData), 17u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetMethodDescName), 22u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetObjectData), 33u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetMethodTableName), 36u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetMethodTableData), 37u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetPEFileName), 45u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetGCHeapData), 46u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetGCHeapStaticData), 49u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetHeapSegmentData), 50u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetUsefulGlobals), 70u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface8::GetGenerationTableSvr), 6u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface12::GetGlobalAllocationContext), 3u);
}

TEST(ComAbi, GcRootSlotsMatchIdl) {
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetGCHeapDetails), 48u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetHandleEnum), 61u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetClrWatsonBuckets), 71u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::TraverseRCWCleanupList), 78u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetStackReferences), 79u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface8::GetFinalizationFillPointers), 5u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface8::GetFinalizationFillPointersSvr), 7u);
  EXPECT_EQ(VtableSlot(&ISOSEnum::GetCount), 5u);
  EXPECT_EQ(VtableSlot(&ISOSHandleEnum::Next), 6u);
  EXPECT_EQ(VtableSlot(&ISOSStackRefEnum::Next), 6u);
  EXPECT_EQ(VtableSlot(&ISOSStackRefEnum::EnumerateErrors), 7u);
}

TEST(ComAbi, ExceptionSlotsMatchIdl) {
  // printexception: ISOSDacInterface2 and the nested exception chain (sospriv.idl).
  EXPECT_EQ(VtableSlot(&ISOSDacInterface2::GetObjectExceptionData), 3u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface2::IsRCWDCOMProxy), 4u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetNestedExceptionData), 65u);
  EXPECT_EQ(offsetof(DacpExceptionObjectData, HResult), 48u);
}

TEST(ComAbi, ModuleSlotsMatchIdl) {
  // ISOSDacInterface::GetModule / GetPEFileBase and IXCLRDataModule (xclrdata.idl), used by
  // the module commands.
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetAppDomainData), 6u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetAppDomainName), 7u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetAssemblyData), 10u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetAssemblyName), 11u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetModule), 12u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetAssemblyModuleList), 15u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetPEFileBase), 44u);
  EXPECT_EQ(VtableSlot(&IXCLRDataModule::GetName), 29u);
  EXPECT_EQ(VtableSlot(&IXCLRDataModule::GetFileName), 30u);
  EXPECT_EQ(VtableSlot(&IXCLRDataModule::Request), 36u);
  EXPECT_EQ(VtableSlot(&IXCLRDataModule::GetVersionId), 40u);
}

TEST(ComAbi, ObjectSlotsMatchIdl) {
  // What dumpobj / dumpmt call: sospriv.idl ISOSDacInterface, 6, 10, 11, 14, 15, ISOSMethodEnum
  // and cor.h IMetaDataImport.
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetThreadFromThinlockID), 18u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetMethodDescData), 20u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetCodeHeaderData), 26u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetObjectStringData), 34u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetMethodTableFieldData), 39u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetMethodTableForEEClass), 41u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface::GetFieldDescData), 42u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface6::GetMethodTableCollectibleData), 3u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface8::GetAssemblyLoadContext), 8u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface10::GetObjectComWrappersData), 3u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface10::GetComWrappersRCWData), 7u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface11::IsTrackedType), 3u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface14::GetStaticBaseAddress), 3u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface14::GetThreadStaticBaseAddress), 4u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface14::GetMethodTableInitializationFlags), 5u);
  EXPECT_EQ(VtableSlot(&ISOSMethodEnum::GetCount), 5u);
  EXPECT_EQ(VtableSlot(&ISOSMethodEnum::Next), 6u);
  EXPECT_EQ(VtableSlot(&ISOSDacInterface15::GetMethodTableSlotEnumerator), 3u);
  EXPECT_EQ(VtableSlot(&IMetaDataImport::GetTypeDefProps), 12u);
  EXPECT_EQ(VtableSlot(&IMetaDataImport::GetMethodProps), 30u);
  EXPECT_EQ(VtableSlot(&IMetaDataImport::GetMemberProps), 56u);
  EXPECT_EQ(VtableSlot(&IMetaDataImport::GetFieldProps), 57u);
  EXPECT_EQ(VtableSlot(&IMetaDataImport::GetNestedClassProps), 62u);
  EXPECT_EQ(VtableSlot(&IMetaDataImport::IsGlobal), 64u);
}

TEST(Guid, ParsesRegistryFormat) {
  constexpr GUID g = ParseGuid("3E11CCEE-D08B-43e5-AF01-32717A64DA03");
  EXPECT_EQ(g.data1, 0x3E11CCEEu);
  EXPECT_EQ(g.data2, 0xD08Bu);
  EXPECT_EQ(g.data3, 0x43e5u);
  EXPECT_EQ(g.data4[0], 0xAF);
  EXPECT_EQ(g.data4[7], 0x03);
  EXPECT_EQ(GuidToString(g), "3e11ccee-d08b-43e5-af01-32717a64da03");
  EXPECT_EQ(GuidToString(kIID_IUnknown), "00000000-0000-0000-c000-000000000046");
}

TEST(Utf16, RoundTrip) {
  EXPECT_EQ(Utf16ToUtf8(u"System.String"), "System.String");
  EXPECT_EQ(Utf16ToUtf8(u"\u00e9\u4e2d\U0001F600"), "\u00e9\u4e2d\U0001F600");
  EXPECT_EQ(Utf8ToUtf16("\u00e9\u4e2d\U0001F600"), u"\u00e9\u4e2d\U0001F600");
  EXPECT_EQ(Utf16ToUtf8(std::u16string(1, u'\xD800')), "\uFFFD");
}

TEST(HResult, Names) {
  EXPECT_EQ(HResultToString(kE_FAIL), "0x80004005 (E_FAIL)");
  EXPECT_EQ(HResultToString(static_cast<HRESULT>(0x80131C4F)),
            "0x80131C4F (CORDBG_E_MISSING_DEBUGGER_EXPORTS)");
  EXPECT_EQ(HResultToString(static_cast<HRESULT>(0x80131234)), "0x80131234");
}

struct NameCase {
  const char* dac;
  const char* pretty;
};

TEST(PrettyTypeName, MatchesClrMdStyle) {
  const NameCase cases[] = {
      {"System.String", "System.String"},
      {"Free", "Free"},
      {"System.String[,]", "System.String[,]"},
      {"System.Int32[][]", "System.Int32[][]"},
      {"Fixture.HeapProgram+<>c__DisplayClass8_0", "Fixture.HeapProgram+<>c__DisplayClass8_0"},
      {"System.Collections.Generic.List`1[[Fixture.Customer, HeapApp]]",
       "System.Collections.Generic.List<Fixture.Customer>"},
      {"System.Collections.Generic.Dictionary`2+Entry[[System.String, System.Private.CoreLib],"
       "[System.Object, System.Private.CoreLib]][]",
       "System.Collections.Generic.Dictionary<System.String, System.Object>+Entry[]"},
      {"System.Buffers.SharedArrayPool`1+<>c[[System.Char, System.Private.CoreLib]]",
       "System.Buffers.SharedArrayPool<System.Char>+<>c"},
      {"System.Collections.Generic.Dictionary`2[[System.String, mscorlib],[System.Object[,,], "
       "mscorlib]]",
       "System.Collections.Generic.Dictionary<System.String, System.Object[,,]>"},
      {"System.ValueTuple`3[TCheapVersion,[System.String, mscorlib],TExpensiveVersion]",
       "System.ValueTuple<TCheapVersion, System.String, TExpensiveVersion>"},
      {"Test.Foo`2", "Test.Foo<T1, T2>"},
      {"Outer`1+Inner`1[[A, x],[B, y]][]", "Outer<A>+Inner<B>[]"},
      {"a37[akx]", "a37<akx>"},
      {"System.Func`2[[System.Collections.Generic.List`1[[System.Int32, x]], x],[B, y]]",
       "System.Func<System.Collections.Generic.List<System.Int32>, B>"},
      // Malformed: returned unchanged.
      {"Broken`1[[A, x]", "Broken`1[[A, x]"},
  };
  for (const NameCase& c : cases) EXPECT_EQ(PrettyTypeName(c.dac), c.pretty) << c.dac;
}

template <typename T>
T At(const std::vector<uint8_t>& buf, size_t off) {
  T v{};
  std::memcpy(&v, buf.data() + off, sizeof(T));
  return v;
}

TEST(ThreadContext, Amd64LayoutFromPrstatus) {
  elf::CoreThread t;
  t.tid = 42;
  elf::X64Registers& r = t.regs;
  r.rax = 0x1111;
  r.rcx = 0x2222;
  r.rdx = 0x3333;
  r.rbx = 0x4444;
  r.rsp = 0x7ffc0000;
  r.rbp = 0x5555;
  r.rsi = 0x6666;
  r.rdi = 0x7777;
  r.r8 = 0x8888;
  r.r9 = 0x9999;
  r.r15 = 0xF15;
  r.rip = 0x7f0012345678;
  r.cs = 0x33;
  r.ss = 0x2b;
  r.eflags = 0x246;
  std::vector<uint8_t> fx(512, 0);
  const uint32_t mxcsr = 0x1f80;
  std::memcpy(fx.data() + 24, &mxcsr, 4);
  fx[160] = 0xAB;  // First byte of XMM0.
  t.fpregs = fx;

  std::vector<uint8_t> ctx(kAmd64ContextSize, 0xCC);
  ASSERT_TRUE(FillAmd64Context(t, ctx).ok());
  namespace c = amd64_context;
  EXPECT_EQ(At<uint32_t>(ctx, c::kContextFlags),
            kContextControl | kContextInteger | kContextSegments | kContextFloatingPoint);
  EXPECT_EQ(At<uint64_t>(ctx, c::kRax), 0x1111u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kRcx), 0x2222u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kRdx), 0x3333u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kRbx), 0x4444u);
  EXPECT_EQ(At<uint64_t>(ctx, 0x98), 0x7ffc0000u);  // Rsp
  EXPECT_EQ(At<uint64_t>(ctx, c::kRbp), 0x5555u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kRsi), 0x6666u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kRdi), 0x7777u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kR8), 0x8888u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kR9), 0x9999u);
  EXPECT_EQ(At<uint64_t>(ctx, c::kR15), 0xF15u);
  EXPECT_EQ(At<uint64_t>(ctx, 0xF8), 0x7f0012345678u);  // Rip
  EXPECT_EQ(At<uint16_t>(ctx, c::kSegCs), 0x33);
  EXPECT_EQ(At<uint16_t>(ctx, c::kSegSs), 0x2b);
  EXPECT_EQ(At<uint32_t>(ctx, c::kEFlags), 0x246u);
  EXPECT_EQ(At<uint32_t>(ctx, c::kMxCsr), 0x1f80u);
  EXPECT_EQ(ctx[0x100 + 160], 0xAB);  // FltSave.Xmm0
  EXPECT_EQ(ctx[0x4C8], 0);           // Tail zeroed.

  std::vector<uint8_t> small(0x80);
  EXPECT_FALSE(FillAmd64Context(t, small).ok());
}

TEST(ThreadContext, WithoutFpregsNoFloatingPointFlag) {
  elf::CoreThread t;
  std::vector<uint8_t> ctx(kAmd64ContextSize);
  ASSERT_TRUE(FillAmd64Context(t, ctx).ok());
  EXPECT_EQ(At<uint32_t>(ctx, amd64_context::kContextFlags),
            kContextControl | kContextInteger | kContextSegments);
}

TEST(Version, FindsMarkerInBytes) {
  const char blob[] = "junk\0@(#)Version \0more@(#)Version 10.0.1226.42308 @Commit: abc\0tail";
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(blob), sizeof(blob));
  EXPECT_EQ(FindVersionString(bytes), "10.0.1226.42308 @Commit: abc");
  EXPECT_EQ(FindVersionString({}), "");
}

// A scratch directory tree, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/clrdiag-dac-unit-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string Touch(const std::string& rel) {
    std::string p = path_ + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p) << "x";
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class LocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_.path = "/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/libcoreclr.so";
    runtime_.build_id = "79945f51fb2612f13b7667a10a8fd29122664791";
    runtime_.version = "10.0.1226.42308";
    runtime_.framework_version = "10.0.12";
    opts_.host_framework_roots = {dir_.path() + "/host"};
    opts_.read_build_id = [this](const std::string& p) -> absl::StatusOr<std::string> {
      auto it = ids_.find(p);
      if (it == ids_.end()) return absl::NotFoundError("no build-id");
      return it->second;
    };
  }
  // A runtime directory with both files; libcoreclr.so gets `build_id`.
  std::string MakeRuntimeDir(const std::string& rel, const std::string& build_id,
                             bool with_dac = true) {
    ids_[dir_.Touch(rel + "/libcoreclr.so")] = build_id;
    if (with_dac) dir_.Touch(rel + "/libmscordaccore.so");
    return dir_.path() + "/" + rel;
  }

  ScratchDir dir_;
  RuntimeModule runtime_;
  DacSearchOptions opts_;
  std::map<std::string, std::string> ids_;
};

TEST_F(LocatorTest, PicksHostFrameworkWithSameBuildId) {
  MakeRuntimeDir("host/10.0.11", "1111111111111111111111111111111111111111");
  const std::string good = MakeRuntimeDir("host/10.0.12", runtime_.build_id);
  auto loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->dir, good);
  EXPECT_EQ(loc->dac_path, good + "/libmscordaccore.so");
  EXPECT_EQ(loc->source, "host");
}

TEST_F(LocatorTest, SetClrPathWinsThenStore) {
  MakeRuntimeDir("host/10.0.12", runtime_.build_id);
  const std::string store_dir =
      MakeRuntimeDir("store/runtimes/" + runtime_.build_id, runtime_.build_id);
  opts_.store_root = dir_.path() + "/store";
  auto loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->dir, store_dir);
  EXPECT_EQ(loc->source, "store");

  const std::string user = MakeRuntimeDir("mine", runtime_.build_id);
  opts_.extra_dirs = {user};
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->dir, user);
  EXPECT_EQ(loc->source, "setclrpath");

  // A directory others may write to could hold anyone's "DAC", which the root worker would
  // run: refused, with the reason, and the next candidate (the store) is used.
  ASSERT_EQ(::chmod(user.c_str(), 0777), 0);
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->source, "store");
  opts_.store_root.clear();
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->source, "host");
  // Nothing else matches: the refusal is named in the error.
  opts_.host_framework_roots.clear();
  loc = LocateDac(runtime_, opts_);
  ASSERT_FALSE(loc.ok());
  EXPECT_TRUE(
      absl::StrContains(loc.status().message(), user + ": matching runtime, but not owned by root"))
      << loc.status();
  ASSERT_EQ(::chmod(user.c_str(), 0755), 0);
}

// A self-contained app's runtime, still where the dump says: found beside it, after the store
// and before the host's frameworks; a different build there is passed over (and reported).
TEST_F(LocatorTest, RuntimeDirectoryOfTheDump) {
  MakeRuntimeDir("host/10.0.12", runtime_.build_id);
  const std::string app = MakeRuntimeDir("app", runtime_.build_id);
  runtime_.path = app + "/libcoreclr.so";
  runtime_.framework_version = "";
  auto loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->dir, app);
  EXPECT_EQ(loc->source, "dump");

  const std::string store_dir =
      MakeRuntimeDir("store/runtimes/" + runtime_.build_id, runtime_.build_id);
  opts_.store_root = dir_.path() + "/store";
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->source, "store");

  opts_.store_root.clear();
  // Writable by others: anyone could have put a DAC there; not loaded.
  ASSERT_EQ(::chmod(app.c_str(), 0777), 0);
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->source, "host");
  ASSERT_EQ(::chmod(app.c_str(), 0755), 0);

  ids_[app + "/libcoreclr.so"] = "3333333333333333333333333333333333333333";
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->source, "host");

  opts_.runtime_dir = false;
  ids_[app + "/libcoreclr.so"] = runtime_.build_id;
  loc = LocateDac(runtime_, opts_);
  ASSERT_TRUE(loc.ok()) << loc.status();
  EXPECT_EQ(loc->source, "host");
}

TEST_F(LocatorTest, MismatchExplainsWhatIsNeeded) {
  MakeRuntimeDir("host/10.0.11", "1111111111111111111111111111111111111111");
  const std::string wrong = MakeRuntimeDir("mine", "2222222222222222222222222222222222222222");
  const std::string no_dac = MakeRuntimeDir("nodac", runtime_.build_id, /*with_dac=*/false);
  opts_.extra_dirs = {wrong, no_dac};
  opts_.store_root = dir_.path() + "/store";
  auto loc = LocateDac(runtime_, opts_);
  ASSERT_EQ(loc.status().code(), absl::StatusCode::kNotFound);
  const std::string msg(loc.status().message());
  EXPECT_TRUE(absl::StrContains(msg, runtime_.build_id)) << msg;
  EXPECT_TRUE(absl::StrContains(msg, ".NET runtime 10.0.12 (file version 10.0.1226.42308)")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "setclrpath")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "/store/runtimes/" + runtime_.build_id)) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "2222222222222222222222222222222222222222")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "no libmscordaccore.so")) << msg;
}

TEST_F(LocatorTest, DumpWithoutBuildIdIsRefused) {
  MakeRuntimeDir("host/10.0.12", runtime_.build_id);
  runtime_.build_id.clear();
  auto loc = LocateDac(runtime_, opts_);
  EXPECT_EQ(loc.status().code(), absl::StatusCode::kFailedPrecondition);
}

// A managed assembly from this host's shared framework, if there is one.
std::string FindFrameworkAssembly() {
  std::error_code ec;
  for (const char* root : {"/usr/share/dotnet/shared/Microsoft.NETCore.App",
                           "/usr/lib/dotnet/shared/Microsoft.NETCore.App"}) {
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      std::string p = e.path().string() + "/System.Runtime.dll";
      if (std::filesystem::exists(p)) return p;
    }
  }
  return "";
}

TEST(PeImage, ReadsMetadataOfARealAssembly) {
  const std::string path = FindFrameworkAssembly();
  ASSERT_FALSE(path.empty()) << "no .NET shared framework on this host (install the .NET SDK)";
  auto file = elf::MappedFile::Open(path);
  ASSERT_TRUE(file.ok());
  auto pe = PeImage::Parse(file->bytes());
  ASSERT_TRUE(pe.ok()) << pe.status();
  EXPECT_GT(pe->size_of_image(), 0u);
  auto md = pe->Metadata();
  ASSERT_TRUE(md.ok()) << md.status();
  ASSERT_GE(md->size(), 16u);
  EXPECT_EQ(std::memcmp(md->data(), "BSJB", 4), 0);
}

TEST(PeImage, RejectsTruncatedAndForeignFiles) {
  const uint8_t elf_magic[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
  EXPECT_FALSE(PeImage::Parse(elf_magic).ok());
  std::vector<uint8_t> mz(0x40, 0);
  mz[0] = 'M';
  mz[1] = 'Z';
  mz[0x3C] = 0x80;  // e_lfanew beyond the end.
  EXPECT_FALSE(PeImage::Parse(mz).ok());
  mz.resize(0x200, 0);
  std::memcpy(mz.data() + 0x80, "PE\0\0", 4);
  EXPECT_FALSE(PeImage::Parse(mz).ok());  // No optional header magic.
}

// The heap-graph files of the store's cache/ (gcroot): a missing, damaged, truncated or
// foreign file is refused with an error (the session then builds the graph), never trusted.
TEST(HeapGraphFileTest, DamagedOrForeignFilesAreRefused) {
  ScratchDir dir;
  const std::vector<uint64_t> key = {1, 2, 3, 4};
  const std::string path = dir.path() + "/heapgraph";
  auto write = [&](const std::vector<uint8_t>& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  };
  // magic, key (4 words), objects, uniform size, ranges, starts, pointers, edges, dependents,
  // warnings.
  auto header = [&](std::vector<uint64_t> k, std::vector<uint64_t> counts) {
    std::vector<uint8_t> b = {'C', 'L', 'R', 'D', 'H', 'G', '0', '1'};
    for (uint64_t w : k)
      b.insert(b.end(), reinterpret_cast<uint8_t*>(&w), reinterpret_cast<uint8_t*>(&w) + 8);
    for (uint64_t w : counts)
      b.insert(b.end(), reinterpret_cast<uint8_t*>(&w), reinterpret_cast<uint8_t*>(&w) + 8);
    return b;
  };
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kNotFound);
  write({});
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kDataLoss);
  write(std::vector<uint8_t>(200, 0x5a));
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kDataLoss);
  // Another dump's graph.
  write(header({1, 2, 3, 5}, {0, 5, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kDataLoss);
  // Counts the file does not hold.
  write(header(key, {10, 5, 1, 1, 1, 4, 0, 0}));
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kDataLoss);
  // An empty heap, well formed: one edge offset (0), nothing else.
  std::vector<uint8_t> empty = header(key, {0, 5, 0, 0, 0, 0, 0, 0});
  empty.insert(empty.end(), 4, 0);
  write(empty);
  absl::StatusOr<std::unique_ptr<HeapGraph>> g = HeapGraph::Load(path, key);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->size(), 0u);
  EXPECT_EQ((*g)->IndexOf(0x1000), HeapGraph::kNone);
  // The same with an edge that names an object the graph does not have.
  std::vector<uint8_t> bad_edge = header(key, {0, 5, 0, 0, 0, 1, 0, 0});
  const uint32_t offsets_and_edge[] = {0, 7};
  bad_edge.insert(bad_edge.end(), reinterpret_cast<const uint8_t*>(offsets_and_edge),
                  reinterpret_cast<const uint8_t*>(offsets_and_edge) + sizeof(offsets_and_edge));
  write(bad_edge);
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kDataLoss);
  // One object at 0x1000 whose one reference names object 7: Load checks only what is cheap
  // (the whole file is not read); the search that reads the reference refuses it (not used,
  // the graph marked damaged: the command then builds the graph again).
  std::vector<uint8_t> one = header(key, {1, 5, 1, 1, 1, 1, 0, 0});
  auto put64 = [&](uint64_t w) {
    one.insert(one.end(), reinterpret_cast<uint8_t*>(&w), reinterpret_cast<uint8_t*>(&w) + 8);
  };
  auto put32 = [&](uint32_t w) {
    one.insert(one.end(), reinterpret_cast<uint8_t*>(&w), reinterpret_cast<uint8_t*>(&w) + 4);
  };
  put64(0x1000);  // range: start, end, first bit
  put64(0x1040);
  put64(0);
  put64(1);  // start bitmap: the object at 0x1000
  put64(1);  // has-pointers bits
  put32(0);  // rank
  put32(0);  // edge offsets
  put32(1);
  put32(7);  // the reference
  write(one);
  g = HeapGraph::Load(path, key);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->IndexOf(0x1000), 0u);
  EXPECT_EQ((*g)->address(0), 0x1000u);
  EXPECT_FALSE((*g)->damaged());
  PathFinder finder(**g, HeapGraph::kNone, nullptr);
  absl::StatusOr<std::vector<uint32_t>> chain = finder.FindPathFrom(0);
  ASSERT_TRUE(chain.ok());
  EXPECT_TRUE(chain->empty());
  EXPECT_TRUE((*g)->damaged());
  // Ranks that do not add up to the object count are refused at Load.
  one[one.size() - 16] = 3;  // the rank
  write(one);
  EXPECT_EQ(HeapGraph::Load(path, key).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace clrdiag::dac
