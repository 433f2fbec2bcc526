// Conformance with dotnet-dump of the code-and-state commands of issue 7 finished here:
// `dumpasync --fields` (each async frame's state machine, or task, fields), on Heap and Full
// dumps of `HeapApp --pool` (tests/fixtures/HeapApp/Pool.cs: an async chain AsyncA -> AsyncB ->
// AsyncC awaiting a never-completed TaskCompletionSource, and queued tasks) on each runtime:
// the same lines, strictly, for each command, and the facts the fixture guarantees read from
// clrdiag's JSON forms.
//
// dumpsig / dumpsigelem run on every signature a user can point them at in the fixture's
// module: each blob of HeapApp.dll's #Blob heap, read from the dump's copy of its metadata (the
// module and its metadata address from clrdiag's name2ee / dumpmodule JSON), with and without
// the module, each compared strictly with the reference.
//
// Intentional differences (checked below, not compared):
//  - Bad arguments: the reference's parser message and its remaining -c commands dropped;
//    clrdiag reports the problem with the usage (exit status non-zero) and runs the next
//    command.
//  - dumpsig/dumpsigelem on an unreadable address or on bytes that are no signature: the
//    reference prints nothing and succeeds; clrdiag prints nothing on stdout either, but says
//    why on stderr with a non-zero status.
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/elf/core_file.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

class IlConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap100_pool"}); }
  static void TearDownTestSuite() { StopDaemon(); }

  void SetUp() override { ASSERT_NO_FATAL_FAILURE(UseDump("heap100_pool")); }
};

// dumpsig reads any blob as a signature: a calling convention byte, a generic parameter count if
// its 0x10 bit is set, a parameter count, then the types. Blobs that are no signatures (a
// TypeSpec starting with GENERICINST, 0x15, reads as a generic VARARG method) can claim more
// parameters than they have bytes: the reference then parses on past the blob into the next
// ones, whose bytes change from build to build, and prints a different line each time. Such
// blobs are left out (about 40 of 370 in HeapApp.dll); every blob whose counts fit is compared.
bool ParameterCountFits(const std::vector<uint8_t>& md, size_t begin, size_t end) {
  auto compressed = [&](size_t* p, uint32_t* v) {
    if (*p >= end) return false;
    const uint8_t b = md[*p];
    if ((b & 0x80) == 0) {
      *v = b, *p += 1;
    } else if ((b & 0xc0) == 0x80) {
      if (*p + 1 >= end) return false;
      *v = ((b & 0x3fu) << 8) | md[*p + 1], *p += 2;
    } else {
      if (*p + 3 >= end) return false;
      *v = ((b & 0x1fu) << 24) | (md[*p + 1] << 16) | (md[*p + 2] << 8) | md[*p + 3], *p += 4;
    }
    return true;
  };
  const uint8_t conv = md[begin];
  const uint8_t kind = conv & 0x0f;
  const bool has_count = kind <= 5 || kind == 7 || kind == 8 || kind == 0x0a;
  if (!has_count) return true;
  size_t p = begin + 1;
  uint32_t count = 0;
  if ((conv & 0x10) != 0 && !compressed(&p, &count)) return false;
  if (!compressed(&p, &count)) return false;
  return count <= end - p;
}

// The addresses of the blobs (their first byte after the length) of the #Blob heap of the
// metadata at [metadata, metadata + size) in the dump at `path`.
std::vector<uint64_t> BlobAddresses(const std::string& path, uint64_t metadata, uint64_t size) {
  std::vector<uint64_t> out;
  auto core = elf::CoreFile::Open(path);
  if (!core.ok()) {
    ADD_FAILURE() << core.status();
    return out;
  }
  std::vector<uint8_t> md(size);
  if ((*core)->ReadMemory(metadata, md.data(), size) != size) {
    ADD_FAILURE() << "the dump lacks the metadata at " << std::hex << metadata;
    return out;
  }
  auto u32 = [&](size_t at) {
    return at + 4 <= md.size() ? md[at] | (md[at + 1] << 8) | (md[at + 2] << 16) |
                                     (static_cast<uint32_t>(md[at + 3]) << 24)
                               : 0u;
  };
  if (u32(0) != 0x424a5342) {  // "BSJB"
    ADD_FAILURE() << "no metadata root at " << std::hex << metadata;
    return out;
  }
  // The stream headers follow the version string: offset, size, NUL-padded name.
  size_t at = 16 + u32(12) + 2;
  const size_t streams = at + 2 <= md.size() ? md[at] | (md[at + 1] << 8) : 0;
  at += 2;
  size_t blob = 0, blob_size = 0;
  for (size_t i = 0; i < streams && at + 8 < md.size(); ++i) {
    const uint32_t offset = u32(at), length = u32(at + 4);
    std::string name(reinterpret_cast<const char*>(&md[at + 8]));
    at += 8 + (name.size() + 4) / 4 * 4;
    if (name == "#Blob") blob = offset, blob_size = length;
  }
  if (blob == 0 || blob + blob_size > md.size()) {
    ADD_FAILURE() << "no #Blob heap";
    return out;
  }
  for (size_t q = blob + 1; q < blob + blob_size;) {  // blob 0 is the empty one
    const uint8_t b = md[q];
    size_t n = 0;
    if ((b & 0x80) == 0) {
      n = b, q += 1;
    } else if ((b & 0xc0) == 0x80) {
      n = ((b & 0x3f) << 8) | md[q + 1], q += 2;
    } else {
      n = ((b & 0x1f) << 24) | (md[q + 1] << 16) | (md[q + 2] << 8) | md[q + 3], q += 4;
    }
    if (n > 0 && ParameterCountFits(md, q, q + n)) out.push_back(metadata + q);
    q += n;
  }
  return out;
}

TEST_P(IlConformanceTest, DumpSigOnEverySignatureOfTheModule) {
  auto n2e = OursJson("name2ee HeapApp.dll Fixture.Pool.Start");
  std::string module;
  for (const auto& m : n2e["matches"]) {
    if (m.contains("module")) module = m["module"].get<std::string>();
  }
  ASSERT_FALSE(module.empty()) << n2e;
  auto dm = OursJson("dumpmodule " + module);
  ASSERT_TRUE(dm.contains("metadata") && dm["metadata"].is_object()) << dm;
  const uint64_t md = std::stoull(dm["metadata"]["address"].get<std::string>(), nullptr, 16);
  const uint64_t md_size = dm["metadata"]["size"].get<uint64_t>();
  const std::vector<uint64_t> blobs = BlobAddresses(path_, md, md_size);
  ASSERT_GT(blobs.size(), 50u);

  std::vector<std::string> commands;
  for (size_t i = 0; i < blobs.size(); ++i) {
    const std::string a = absl::StrCat(absl::Hex(blobs[i]));
    commands.push_back(absl::StrCat("dumpsig ", a, " ", module));
    commands.push_back(absl::StrCat("dumpsigelem ", a, " ", module));
    if (i < 30) {  // without the module: tokens, not names
      commands.push_back(absl::StrCat("dumpsig 0x", a));
      commands.push_back(absl::StrCat("dumpsigelem ", a));
    }
    if (i < 3) {  // a module address that is none: the reference says so, then goes on
      commands.push_back(absl::StrCat("dumpsig ", a, " abcdef12"));
      commands.push_back(absl::StrCat("dumpsigelem ", a, " 1234"));
    }
  }
  RunResult ours = Ours(commands);
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));
  // Some blobs are no signatures (custom attribute values...): the reference prints nothing for
  // those, clrdiag also says why on stderr.
  EXPECT_CONTAINS(ours.out, "[DEFAULT] [hasThis] Void ()\n");
  EXPECT_CONTAINS(ours.out, "[LOCALSIG] ");

  // The JSON form: the address, the module and the text.
  const std::string first = absl::StrCat(absl::Hex(blobs[0]));
  auto j = OursJson(absl::StrCat("dumpsig ", first, " ", module));
  EXPECT_EQ(j["address"], "0x" + first) << j;
  EXPECT_EQ(j["module"], module) << j;
  EXPECT_EQ(j["signature"].get<std::string>() + "\n",
            Body(Ours({absl::StrCat("dumpsig ", first, " ", module)}).out))
      << j;
}

TEST_P(IlConformanceTest, SameAsDotnetDumpAndTheFixturesFacts) {
  // All in one session each (the reference takes seconds to start).
  const std::vector<std::string> commands = {"dumpasync --fields", "dumpasync -f --tasks",
                                             "dumpasync --fields --coalesce"};
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out), Body(ref.out));

  // dumpasync --fields: every frame of the chain AsyncC <- AsyncB <- AsyncA lists its state
  // machine's fields: the state (-1 running, 0.. awaiting), the builder and the awaiter.
  auto da = OursJson("dumpasync --fields");
  int machines = 0;
  for (const auto& stack : da["stacks"]) {
    for (const auto& f : stack["frames"]) {
      ASSERT_TRUE(f.contains("fields")) << f;
      const std::string d = f["description"].get<std::string>();
      if (d.rfind("Fixture.Pool+<Async", 0) != 0) continue;
      ++machines;
      std::set<std::string> names;
      for (const auto& field : f["fields"]) names.insert(field["name"].get<std::string>());
      EXPECT_TRUE(names.count("<>1__state") && names.count("<>t__builder") && names.count("<>u__1"))
          << f;
    }
  }
  EXPECT_EQ(machines, 3) << da;
}

// clrdiag's own handling of bad input; the same whatever the runtime, so checked on one.
class IlErrorTest : public IlConformanceTest {};

TEST_P(IlErrorTest, BadInputIsAnErrorAndTheSessionGoesOn) {
  RunResult r = Ours({"dumpasync --fields extra", "dumpasync -f -addr zz", "dumpasync -f -c"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "unexpected argument 'extra'");
  EXPECT_CONTAINS(r.err, "-addr needs a hexadecimal address");
  EXPECT_CONTAINS(r.out, "Name\n");  // the last one ran, with its fields
}

TEST_P(IlErrorTest, DumpSigBadInput) {
  // Not an address: the reference's message (it then drops the session; clrdiag goes on).
  RunResult r = Ours({"dumpsig zz", "dumpsigelem 0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "Invalid parameter zz");
  EXPECT_CONTAINS(r.err, "Invalid parameter 0");
  RunResult ref = RunCommand(WithCommands({DotnetDump(), "analyze", path_}, {"dumpsig zz"}));
  EXPECT_CONTAINS(ref.out, "Invalid parameter zz");
  // No argument, too many: the usage.
  r = Ours({"dumpsig"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "dumpsig <sigaddr> [<moduleaddr>]");
  r = Ours({"dumpsigelem 1 2 3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "dumpsigelem <sigaddr> [<moduleaddr>]");
  // An unreadable address: nothing on stdout, like the reference; the reason on stderr.
  r = Ours({"dumpsig 10", "dumpsigelem 10"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "Failed to read memory at 10");
  ref =
      RunCommand(WithCommands({DotnetDump(), "analyze", path_}, {"dumpsig 10", "dumpsigelem 10"}));
  EXPECT_EQ(Body(r.out), Body(ref.out));
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, IlConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, IlErrorTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
