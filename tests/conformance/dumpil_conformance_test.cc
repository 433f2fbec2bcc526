// Conformance of dumpil with dotnet-dump, on Heap and Full dumps of `HeapApp 100 --pool` on each
// runtime: dumpil of every MethodDesc of the fixture's types Fixture.IlShapes (switch, numbers,
// strings of 79/80/81+ characters, try/catch/filter/finally, generic methods and MethodSpecs,
// calls into the generic class Fixture.IlBox`1, closures, an async state machine, an iterator,
// arrays, a P/Invoke), the struct Fixture.IlPair, Fixture.Pool (lambdas, async chains, try/finally)
// and their nested compiler-generated types (display classes, <>c, state machines), and the methods
// these MethodTables inherit from System.Object (framework IL). The MethodDescs come from clrdiag's
// own name2ee and dumpmt -md. Each run is compared line by line with the reference.
//
// Intentional differences:
//  - "ilAddr is <address> pImport is <pointer>": pImport is the address of the module's
//    IMetaDataImport inside the analysing process (dotnet-dump's own, which changes on every
//    run; here the worker's). The value is masked on both sides; the rest of the line (the IL
//    address) is compared.
//  - Bad input (no argument, an address that is no MethodDesc): the reference prints its
//    message ("Must pass a valid expression", "<address> is not a MethodDesc") and succeeds;
//    clrdiag prints the same line and fails (exit status non-zero, the reason on stderr).
//    Their stdout is compared in ErrorsSameTextAndFail.
//  - A method without IL (a P/Invoke): same stdout as the reference; both fail (the reference
//    also drops its remaining -c commands, so it is run alone).
//  - An object that is not a DynamicMethod: the reference prints "Error gathering dynamic info
//    from object at <address>." and succeeds; clrdiag prints the same and fails.
//
// DumpIlDynamicConformanceTest: the DynamicMethod of `HeapApp 1000 --parked-exception` (shared
// dump heap1000_parked; its IL loads a static field, calls GC.KeepAlive, boxes an int, then
// throws a NotSupportedException with a string literal), given as its object and as its
// MethodDesc, compared with the reference on Heap and Full dumps of each runtime (except the
// MethodDesc in a Heap dump: the reference crashes there, so the Full dump's answer is used).
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/conformance/compare.h"
#include "tests/conformance/shared_dumps.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using conformance::Body;
using conformance::DotnetDump;
using conformance::ExpectSameOutput;
using conformance::WithCommands;

std::string MaskImport(const std::string& text) {
  static const std::regex kImport("pImport is [0-9A-F]{16}");
  return std::regex_replace(text, kImport, "pImport is <pImport>");
}

// `text` without its trailing empty lines.
std::string TrimEnd(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// The words following `label` at the start of each line of `text`.
std::vector<std::string> Values(const std::string& text, const std::string& label) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(label, 0) != 0) continue;
    std::istringstream w(line.substr(label.size()));
    std::string v;
    if (w >> v) out.push_back(v);
  }
  return out;
}

class DumpIlConformanceTest : public ::testing::TestWithParam<conformance::RuntimeAndDumpType> {
 protected:
  static void SetUpTestSuite() {
    if (!FileExists(DotnetDump())) {
      setup_error_ =
          "the reference dotnet-dump is missing: run WITH_REFERENCE=1 scripts/install-deps.sh";
      return;
    }
    daemon_ = new Daemon();
    if (!daemon_->Start()) setup_error_ = "daemon did not start: " + daemon_->log();
  }

  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    app_ = StartFixture("HeapApp", {"100", "--pool"}, std::get<0>(GetParam()));
    ASSERT_TRUE(app_) << "HeapApp did not start";
    RunResult c = daemon_->Client({"collect", "-p", std::to_string(app_->pid()), "--type",
                                   std::get<1>(GetParam()), "--json"});
    auto info = ParseJson(c.out);
    ASSERT_TRUE(c.exit_code == 0 && info.is_object() && info.contains("id")) << c.out << c.err;
    id_ = info["id"].get<std::string>();
    path_ = info["path"].get<std::string>();
    app_.reset();

    // The MethodTables of the types (name2ee also lists their nested types), then their
    // MethodDescs from dumpmt -md's table.
    RunResult types =
        Ours({"name2ee HeapApp.dll Fixture.IlShapes", "name2ee HeapApp.dll Fixture.Pool",
              "name2ee HeapApp.dll Fixture.IlPair"});
    ASSERT_EQ(types.exit_code, 0) << types.out << types.err;
    std::vector<std::string> mts = Values(types.out, "MethodTable: ");
    ASSERT_GE(mts.size(), 5u) << types.out;
    std::vector<std::string> dumpmt;
    for (const std::string& mt : mts) {
      if (mt != "0000000000000000") dumpmt.push_back("dumpmt -md " + mt);
    }
    RunResult tables = Ours(dumpmt);
    ASSERT_EQ(tables.exit_code, 0) << tables.err;
    // Rows of the tables: "<entry> <MethodDesc> <JIT> <slot> <name>".
    static const std::regex kRow("^[0-9A-F]{16} ([0-9A-F]{16}) +\\S+ [0-9A-F]{16} .*");
    std::set<std::string> seen;
    std::istringstream in(tables.out);
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (!std::regex_match(line, m, kRow)) continue;
      // The P/Invoke has no IL: the error test runs it alone.
      if (line.find("Fixture.IlShapes.External(") != std::string::npos) {
        external_ = m[1].str();
        continue;
      }
      // Framework methods: those of System.Object with IL on every runtime (others, such as
      // GetType or MemberwiseClone on .NET 8, are runtime-implemented: no IL).
      if (line.find(" System.") != std::string::npos &&
          line.find("System.Object.ToString()") == std::string::npos &&
          line.find("System.Object.Equals(System.Object)") == std::string::npos &&
          line.find("System.Object.Finalize()") == std::string::npos) {
        continue;
      }
      if (seen.insert(m[1].str()).second) method_descs_.push_back(m[1].str());
    }
    ASSERT_GE(method_descs_.size(), 40u) << tables.out;
  }

  RunResult Ours(const std::vector<std::string>& commands) {
    return daemon_->Client(WithCommands({"analyze", id_}, commands));
  }
  RunResult Reference(const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  }
  // The MethodDesc of `method` of Fixture.IlShapes (name2ee), or "".
  std::string MethodDesc(const std::string& method) {
    RunResult r = Ours({"name2ee HeapApp.dll Fixture.IlShapes." + method});
    std::vector<std::string> v = Values(r.out, "MethodDesc:  ");
    if (v.empty()) return "";
    std::string md = v[0];
    for (char& ch : md) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return md;
  }

  static Daemon* daemon_;
  static std::string setup_error_;
  std::unique_ptr<Process> app_;
  std::string id_, path_;
  std::vector<std::string> method_descs_;
  std::string external_;
};

Daemon* DumpIlConformanceTest::daemon_ = nullptr;
std::string DumpIlConformanceTest::setup_error_;

TEST_P(DumpIlConformanceTest, EveryMethodSameAsDotnetDump) {
  ASSERT_FALSE(external_.empty());
  std::vector<std::string> commands;
  for (const std::string& md : method_descs_) commands.push_back("dumpil " + md);
  RunResult ours = Ours(commands);
  EXPECT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ref = Reference(commands);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(MaskImport(Body(ours.out)), MaskImport(Body(ref.out)));
  // The shapes are there: exception blocks, a switch, strings and generic instantiations.
  EXPECT_CONTAINS(ours.out, "} // end .finally");
  EXPECT_CONTAINS(ours.out, ".catch");
  EXPECT_CONTAINS(ours.out, "switch (IL_");
  EXPECT_CONTAINS(ours.out, "ldstr \"hello\"");
  EXPECT_CONTAINS(ours.out, "<unknown token type 2b000000>");
  EXPECT_CONTAINS(ours.out, "ldc.r8 -2.250000");
  EXPECT_CONTAINS(ours.out, "class [System.Runtime]System.Func`2<");
}

TEST_P(DumpIlConformanceTest, ErrorsSameTextAndFail) {
  const std::string external = external_;
  ASSERT_FALSE(external.empty());
  const std::vector<std::vector<std::string>> cases = {
      {"dumpil"}, {"dumpil 1234"}, {"dumpil " + external}};
  for (const auto& c : cases) {
    RunResult ours = Ours(c);
    EXPECT_NE(ours.exit_code, 0) << c[0] << ": " << ours.out;
    EXPECT_FALSE(ours.err.empty()) << c[0];
    // (The reference fails for the method without IL, and succeeds for the others; after a
    // failed command it prints an empty line, not compared.)
    RunResult ref = Reference(c);
    ExpectSameOutput(TrimEnd(Body(ours.out)), TrimEnd(Body(ref.out)));
  }
}

TEST_P(DumpIlConformanceTest, JsonForm) {
  const std::string md = MethodDesc("Switch");
  ASSERT_FALSE(md.empty());
  RunResult r = daemon_->Client(WithCommands({"analyze", id_, "--json"}, {"dumpil " + md}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j;
  std::istringstream docs(r.out);
  for (std::string doc; std::getline(docs, doc);) {
    if (doc.find("\"instructions\"") != std::string::npos) j = ParseJson(doc)["result"];
  }
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_TRUE(j.contains("instructions") && j["instructions"].is_array()) << r.out;
  bool saw_switch = false;
  for (const auto& ins : j["instructions"]) {
    if (ins["opcode"] == "switch") {
      saw_switch = true;
      EXPECT_EQ(ins["targets"].size(), 5u);
    }
  }
  EXPECT_TRUE(saw_switch) << r.out;
  EXPECT_TRUE(j.contains("il_address") && j.contains("lines"));
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, DumpIlConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

// The words of each line of `text`.
std::vector<std::vector<std::string>> Rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream w(line);
    std::vector<std::string> words;
    for (std::string v; w >> v;) words.push_back(v);
    rows.push_back(std::move(words));
  }
  return rows;
}

class DumpIlDynamicConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap1000_parked"}); }
  static void TearDownTestSuite() { StopDaemon(); }
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(UseDump("heap1000_parked"));
    std::vector<std::string> methods = Objects("System.Reflection.Emit.DynamicMethod");
    ASSERT_EQ(methods.size(), 1u);
    object_ = methods[0];
    // Its MethodDesc: the DynamicMethod's method handle (a RuntimeMethodInfoStub) holds it in
    // m_value (a RuntimeMethodHandleInternal), field m_handle.
    std::string stub = FieldValue("dumpobj " + object_, {"_methodHandle", "m_methodHandle"});
    ASSERT_FALSE(stub.empty());
    RunResult r = Ours({"dumpobj " + stub});
    for (const auto& row : Rows(r.out)) {
      if (row.size() >= 8 && row.back() == "m_value") {
        method_desc_ = FieldValue("dumpvc " + row[0] + " " + row[row.size() - 2], {"m_handle"});
      }
    }
    ASSERT_FALSE(method_desc_.empty()) << r.out;
  }

  // The addresses of the objects whose type is exactly `type` (clrdiag's dumpheap).
  std::vector<std::string> Objects(const std::string& type) {
    RunResult stat = Ours({"dumpheap -stat -type " + type});
    std::vector<std::string> out;
    for (const auto& row : Rows(stat.out)) {
      if (row.size() == 4 && row[3] == type) {
        RunResult r = Ours({"dumpheap -mt " + row[0] + " -short"});
        for (const auto& a : Rows(Body(r.out))) {
          if (a.size() == 1) out.push_back(a[0]);
        }
      }
    }
    return out;
  }
  // The value of the first of the fields `names` in `command`'s field table (clrdiag's).
  std::string FieldValue(const std::string& command, const std::vector<std::string>& names) {
    RunResult r = Ours({command});
    for (const auto& row : Rows(r.out)) {
      for (const std::string& name : names) {
        if (row.size() >= 8 && row.back() == name) return row[row.size() - 2];
      }
    }
    ADD_FAILURE() << command << ": none of the fields\n" << r.out;
    return "";
  }

  std::string object_, method_desc_;
};

TEST_P(DumpIlDynamicConformanceTest, ObjectAndMethodDescSameAsDotnetDump) {
  // The reference dies (SIGSEGV) on `dumpil <MethodDesc>` of a dynamic method in a Heap dump:
  // there it is run on the Full dump of the same process (the same addresses) instead.
  const auto& [runtime, type] = GetParam();
  const std::string full = conformance::FindSharedDump("heap1000_parked", runtime, "Full").path;
  ASSERT_FALSE(full.empty());
  for (const std::string& address : {object_, method_desc_}) {
    RunResult ours = Ours({"dumpil " + address});
    RunResult ref =
        address == method_desc_ && type == "Heap"
            ? RunCommand(WithCommands({DotnetDump(), "analyze", full}, {"dumpil " + address}))
            : Reference({"dumpil " + address});
    ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
    ExpectSameOutput(Body(ours.out), Body(ref.out));
    EXPECT_EQ(ours.exit_code, 0) << ours.err;
    EXPECT_CONTAINS(ours.out, "This is dynamic IL.");
  }
  // The object itself decodes on every runtime, with each kind of token named.
  RunResult ours = Ours({"dumpil " + object_});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  EXPECT_CONTAINS(ours.out, "This is dynamic IL. Exception info is not reported at this time.\n");
  EXPECT_CONTAINS(ours.out, "by\nrunning \"dumparray ");
  EXPECT_CONTAINS(ours.out, "\".\n\nIL_0000: ldsfld 4");
  EXPECT_CONTAINS(ours.out, ": call 6");
  EXPECT_CONTAINS(ours.out, " System.GC.KeepAlive(System.Object)\n");
  EXPECT_CONTAINS(ours.out, ": box 2");
  EXPECT_CONTAINS(ours.out, " \"System.Int32\"\n");
  EXPECT_CONTAINS(ours.out, ": ldstr 70");
  EXPECT_CONTAINS(ours.out, " \"clrdiag dynamic exception\"\n");
  EXPECT_CONTAINS(ours.out, " System.NotSupportedException..ctor(System.String)\n");
  EXPECT_CONTAINS(ours.out, ": throw \n");
}

TEST_P(DumpIlDynamicConformanceTest, NotADynamicMethodSameTextAndFails) {
  std::vector<std::string> strings = Objects("System.String");
  ASSERT_FALSE(strings.empty());
  std::vector<std::string> exceptions = Objects("System.NotSupportedException");
  ASSERT_FALSE(exceptions.empty());
  for (const std::string& address : {strings[0], exceptions[0]}) {
    RunResult ours = Ours({"dumpil " + address});
    EXPECT_NE(ours.exit_code, 0) << ours.out;
    EXPECT_FALSE(ours.err.empty());
    EXPECT_CONTAINS(ours.out, "Error gathering dynamic info from object at ");
    RunResult ref = Reference({"dumpil " + address});
    ExpectSameOutput(TrimEnd(Body(ours.out)), TrimEnd(Body(ref.out)));
    // The JSON form fails too, with the reason.
    RunResult json = Ours({"dumpil " + address}, true);
    EXPECT_NE(json.exit_code, 0) << json.out;
    EXPECT_CONTAINS(json.out + json.err, "Error gathering dynamic info from object at ");
  }
}

TEST_P(DumpIlDynamicConformanceTest, JsonForm) {
  nlohmann::json j = OursJson("dumpil " + object_);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["dynamic"], true);
  ASSERT_TRUE(j["instructions"].is_array());
  std::set<std::string> kinds;
  for (const auto& ins : j["instructions"]) {
    kinds.insert(ins["operand_kind"].get<std::string>());
    if (ins["opcode"] == "ldstr") {
      EXPECT_EQ(ins["operand"].get<std::string>().find(" \"clrdiag dynamic exception\""), 8u);
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"field", "method", "type", "string", "none"}));
  // The token table is the one the text form names.
  RunResult text = Ours({"dumpil " + object_});
  const uint64_t table = std::stoull(j["token_table"].get<std::string>().substr(2), nullptr, 16);
  EXPECT_CONTAINS(text.out, absl::StrFormat("running \"dumparray %016X\".\n", table));
  EXPECT_EQ(j["lines"].size(), j["instructions"].size());
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, DumpIlDynamicConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
