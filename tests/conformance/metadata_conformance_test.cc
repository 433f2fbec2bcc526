// Conformance of the metadata commands (dumpclass, dumpmodule, dumpassembly, dumpalc,
// findappdomain, name2ee, token2ee, ehinfo) with dotnet-dump, on Heap and Full dumps of HeapApp
// --zoo on each runtime: the same lines for one session's sequence of commands on Fixture.Customer
// (its MethodTable, EEClass or canonical MethodTable, module, assembly, constructor and field
// tokens), the class with statics Fixture.Zoo, the object Fixture.ChainEnd, the try/catch of
// Fixture.HeapProgram.ThrowOuter (by MethodDesc and by code address), wildcard searches over all
// modules and names that match nothing. The addresses and tokens come from clrdiag's own output
// (name2ee, dumpmt, dumpmodule, dumpclass, dumpheap).
//
// Intentional differences (not compared line by line; checked separately below):
//  - Bad input: the reference prints its usage or a message on stdout and, for some commands,
//    drops its remaining -c commands; clrdiag reports the problem (with the usage for wrong
//    arguments) on stderr with a non-zero exit status and runs the next command.
//  - A name or token that matches nothing: the reference prints the module header (or the
//    "Scanned N modules" summary) and succeeds; clrdiag prints the same lines and also reports
//    on stderr that nothing matched, exit status non-zero. Their stdout is compared.
//  - A module that no name matches: the reference prints "Failed to find module matching
//    '...'." (token2ee: "Failed to request module list.") on stdout; clrdiag prints it as the
//    error.
//  - dumpmodule / dumpassembly of an address that is no Module / Assembly of the process: the
//    DAC reads any memory as one and the reference prints what it reads; clrdiag only shows the
//    modules and assemblies the runtime lists and reports the others as errors.
//  - ehinfo of a catch clause whose type the runtime gives as a metadata token: the reference
//    prints an empty name ("catch() "), and so does clrdiag's text; the JSON form has the token
//    and, for a TypeDef, the name.
//  - dumpclass of an address whose MethodTable does not point back to it: an error (the
//    reference prints whatever the memory holds).
#include <map>
#include <memory>
#include <sstream>

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

// The first word after `label` on the first line at or after `from` that starts with it, or "".
std::string Field(const std::string& text, const std::string& label, size_t from = 0) {
  size_t at = from;
  while (true) {
    at = text.find(label, at);
    if (at == std::string::npos) return "";
    if (at == 0 || text[at - 1] == '\n') break;
    ++at;
  }
  std::istringstream in(text.substr(at + label.size()));
  std::string v;
  in >> v;
  return v;
}

class MetadataConformanceTest : public conformance::SharedDumpTest {
 protected:
  static void SetUpTestSuite() { StartDaemon({"heap100_zoo_chain10"}); }
  static void TearDownTestSuite() { StopDaemon(); }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(UseDump("heap100_zoo_chain10"));

    RunResult found =
        Ours({"name2ee HeapApp.dll Fixture.Customer", "name2ee HeapApp.dll Fixture.Customer..ctor",
              "dumpheap -type Fixture.ChainEnd -short"});
    ASSERT_EQ(found.exit_code, 0) << found.out << found.err;
    const std::string out = Body(found.out);
    module_ = Field(out, "Module:      ");
    customer_mt_ = Field(out, "MethodTable: ");
    customer_token_ = Field(out, "Token:       ");
    size_t ctor = out.find("MethodDesc:  ");
    ASSERT_NE(ctor, std::string::npos) << out;
    ctor_token_ = Field(out.substr(0, ctor), "Token:       ", out.rfind("Module:", ctor));
    std::istringstream last(out.substr(out.find("JITTED Code Address:")));
    std::string skip;
    std::getline(last, skip);
    last >> chain_end_;
    ASSERT_FALSE(module_.empty() || customer_mt_.empty() || chain_end_.empty()) << out;

    // A method with a try/catch (ehinfo), and its code.
    RunResult thrower = Ours({"name2ee HeapApp.dll Fixture.HeapProgram.ThrowOuter"});
    ASSERT_EQ(thrower.exit_code, 0) << thrower.err;
    thrower_md_ = Field(thrower.out, "MethodDesc:  ");
    thrower_code_ = Field(thrower.out, "JITTED Code Address: ");
    ASSERT_FALSE(thrower_md_.empty() || thrower_code_.empty()) << thrower.out;

    RunResult mt = Ours(
        {"dumpmt " + customer_mt_, "dumpmodule " + module_, "name2ee HeapApp.dll Fixture.Zoo"});
    ASSERT_EQ(mt.exit_code, 0) << mt.err;
    // .NET 9+: no EEClass line; the canonical MethodTable stands for the class.
    eeclass_ = Field(mt.out, "EEClass:             ");
    if (eeclass_.empty()) eeclass_ = Field(mt.out, "Canonical:           ");
    if (eeclass_.empty()) eeclass_ = customer_mt_;
    assembly_ = Field(mt.out, "Assembly:                ");
    size_t zoo = mt.out.find("Name:        Fixture.Zoo\n");
    ASSERT_NE(zoo, std::string::npos) << mt.out;
    zoo_mt_ = Field(mt.out.substr(0, zoo), "MethodTable: ", mt.out.rfind("Token:", zoo));
    ASSERT_FALSE(assembly_.empty() || zoo_mt_.empty()) << mt.out;

    RunResult zoo_mt = Ours({"dumpmt " + zoo_mt_, "dumpclass " + eeclass_});
    ASSERT_EQ(zoo_mt.exit_code, 0) << zoo_mt.err;
    zoo_eeclass_ = Field(zoo_mt.out, "EEClass:             ");
    if (zoo_eeclass_.empty()) zoo_eeclass_ = zoo_mt_;
    // The field token of Customer.Id from dumpclass's field table ("MT Field Offset ...").
    size_t id_row = zoo_mt.out.find(" Id\n");
    ASSERT_NE(id_row, std::string::npos) << zoo_mt.out;
    size_t row_start = zoo_mt.out.rfind('\n', id_row) + 1;
    std::istringstream row(zoo_mt.out.substr(row_start));
    row >> skip >> id_token_;
    ASSERT_FALSE(id_token_.empty());
  }

  std::string module_, assembly_, customer_mt_, customer_token_, ctor_token_, eeclass_;
  std::string zoo_mt_, zoo_eeclass_, chain_end_, id_token_, thrower_md_, thrower_code_;
};

TEST_P(MetadataConformanceTest, SameAsDotnetDump) {
  const std::vector<std::string> commands = {
      "name2ee HeapApp.dll Fixture.Customer",
      "name2ee *!Fixture.Customer",
      "name2ee HeapApp!Fixture.Customer..ctor",
      "name2ee HeapApp.dll Fixture.Customer.Id",
      "name2ee heapapp.DLL Fixture.Zoo",
      "name2ee *!System.Collections.Generic.List",
      "token2ee HeapApp.dll " + customer_token_,
      "token2ee * 0x" + customer_token_,
      "token2ee HeapApp.dll " + ctor_token_,
      "token2ee HeapApp.dll " + id_token_,
      "dumpclass " + eeclass_,
      "dumpclass " + zoo_eeclass_,
      "dumpmodule " + module_,
      "dumpmodule -mt " + module_,
      "dumpmodule -prof " + module_,
      "dumpassembly " + assembly_,
      "dumpalc " + chain_end_,
      "findappdomain " + chain_end_,
      "ehinfo " + thrower_md_,
      "ehinfo " + absl::StrFormat("%x", std::stoull(thrower_code_, nullptr, 16) + 0x10),
  };
  // Names and tokens that match nothing: the same stdout as the reference's, and an error each.
  const std::vector<std::string> no_match = {
      "name2ee HeapApp.dll Fixture.NoSuchType",
      "name2ee *!Fixture.NoSuchType",
      "token2ee HeapApp.dll 02000fff",
      "token2ee HeapApp.dll 01000001",
      "token2ee * 06ffffff",
  };
  RunResult ours = Ours(commands);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  RunResult ours_no_match = Ours(no_match);
  EXPECT_NE(ours_no_match.exit_code, 0);
  std::vector<std::string> all = commands;
  all.insert(all.end(), no_match.begin(), no_match.end());
  RunResult ref = Reference(all);
  ASSERT_EQ(ref.exit_code, 0) << ref.out << ref.err;
  ExpectSameOutput(Body(ours.out) + Body(ours_no_match.out), Body(ref.out));
  EXPECT_CONTAINS(ours_no_match.err,
                  "no loaded type, method or field matches 'Fixture.NoSuchType' in HeapApp.dll");
  EXPECT_CONTAINS(ours_no_match.err,
                  "no loaded type, method or field matches 'Fixture.NoSuchType' in any module");
  EXPECT_CONTAINS(ours_no_match.err,
                  "token 02000fff is not a loaded type, method or field of HeapApp.dll");
  EXPECT_CONTAINS(ours_no_match.err,
                  "token 01000001 is not a loaded type, method or field of HeapApp.dll");
  EXPECT_CONTAINS(ours_no_match.err,
                  "token 06ffffff is not a loaded type, method or field of any module");
  // What a user would check by eye.
  EXPECT_CONTAINS(ours.out, "Name:        Fixture.Customer\n");
  EXPECT_CONTAINS(ours.out, "Name:        Fixture.Customer..ctor(Int32, System.String)\n");
  EXPECT_CONTAINS(ours.out, "Field Id (mdToken token) of\n");
  EXPECT_CONTAINS(ours.out, "Field name:  Id\n");
  EXPECT_CONTAINS(ours.out, "Class Name:      Fixture.Customer\n");
  EXPECT_CONTAINS(ours.out, "Types defined in this module\n");
  EXPECT_CONTAINS(ours.out, " Fixture.ChainEnd\n");
  EXPECT_CONTAINS(ours.out, "System.Collections.Generic.List<T1>\n");
  EXPECT_CONTAINS(ours.out, "Name:        System.Runtime.Loader.DefaultAssemblyLoadContext\n");
  EXPECT_CONTAINS(ours.out, "Name:      clrhost\n");
  EXPECT_CONTAINS(ours.out, "This module has no methods with profiler modified IL.\n");
  EXPECT_CONTAINS(ours.out, "Method Name:          Fixture.HeapProgram.ThrowOuter()\n");
  EXPECT_CONTAINS(ours.out, "EHHandler 0: TYPED catch(");
}

// clrdiag's own behaviour (errors, JSON) is the same whatever the runtime and dump type: checked
// on one (each test under ctest runs in its own process and costs a fixture and a dump).
class MetadataCommandTest : public MetadataConformanceTest {};

TEST_P(MetadataCommandTest, BadInputIsAnError) {
  RunResult r = Ours({"dumpclass",
                      "dumpclass 1234",
                      "dumpclass " + customer_mt_ + " extra",
                      "dumpmodule",
                      "dumpmodule 1234",
                      "dumpmodule -x " + module_,
                      "dumpassembly",
                      "dumpassembly 1234",
                      "dumpalc",
                      "dumpalc 1234",
                      "findappdomain zz",
                      "findappdomain 1234",
                      "name2ee",
                      "name2ee HeapApp.dll",
                      "name2ee nosuch.dll Fixture.Customer",
                      "token2ee",
                      "token2ee HeapApp.dll xyz",
                      "token2ee HeapApp.dll 0a000001",
                      "token2ee nosuch.dll 02000002",
                      "ehinfo",
                      "ehinfo 10",
                      "ehinfo qq",
                      "dumpmodule " + module_});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "Missing EEClass address");
  EXPECT_CONTAINS(r.err, "0000000000001234 is not an EEClass");
  EXPECT_CONTAINS(r.err, "unexpected argument 'extra'");
  EXPECT_CONTAINS(r.err, "give one Module address");
  EXPECT_CONTAINS(r.err, "Fail to fill Module 0000000000001234");
  EXPECT_CONTAINS(r.err, "unknown option '-x'");
  EXPECT_CONTAINS(r.err, "give one Assembly address");
  EXPECT_CONTAINS(r.err, "0000000000001234 is not an Assembly of this process");
  EXPECT_CONTAINS(r.err, "give one object address");
  EXPECT_CONTAINS(r.err, "0000000000001234 is not a valid object");
  EXPECT_CONTAINS(r.err, "Invalid parameter zz");
  EXPECT_CONTAINS(r.err, "give a module name and a type, method or field name");
  EXPECT_CONTAINS(r.err, "Failed to find module matching 'nosuch.dll'.");
  EXPECT_CONTAINS(r.err, "give a module name and a metadata token");
  EXPECT_CONTAINS(r.err, "'xyz' is not a hex metadata token");
  EXPECT_CONTAINS(r.err, "This token type is not supported");
  EXPECT_CONTAINS(r.err, "give one MethodDesc or code address");
  EXPECT_CONTAINS(r.err, "0000000000000000 is not a MethodDesc");
  EXPECT_CONTAINS(r.err, "Invalid parameter qq");
  EXPECT_CONTAINS(r.out, "TypeDefToMethodTableMap: ");  // the last command still ran
}

TEST_P(MetadataCommandTest, JsonHasTheSameValues) {
  const std::vector<std::string> commands = {"name2ee HeapApp.dll Fixture.Customer",
                                             "token2ee HeapApp.dll " + ctor_token_,
                                             "dumpclass " + eeclass_,
                                             "dumpmodule -mt " + module_,
                                             "dumpassembly " + assembly_,
                                             "dumpalc " + chain_end_,
                                             "findappdomain " + chain_end_,
                                             "ehinfo " + thrower_md_};
  RunResult json = daemon_->Client(WithCommands({"analyze", id_, "--json"}, commands));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::istringstream docs(json.out);
  std::string line;
  std::vector<nlohmann::json> results;
  while (std::getline(docs, line)) {
    auto doc = ParseJson(line);
    if (doc.is_object() && doc.contains("result") && doc["command"] != "exit") {
      results.push_back(doc["result"]);
    }
  }
  ASSERT_EQ(results.size(), commands.size()) << json.out;
  auto hex = [](const std::string& s) {
    return absl::StrFormat("0x%x", std::stoull(s, nullptr, 16));
  };
  const auto& type = results[0]["matches"][0];
  EXPECT_EQ(type["kind"], "type");
  EXPECT_EQ(type["method_table"], hex(customer_mt_));
  EXPECT_EQ(type["module"], hex(module_));
  EXPECT_EQ(type["token"], hex(customer_token_));
  EXPECT_EQ(type["name"], "Fixture.Customer");
  const auto& method = results[1]["matches"][0];
  EXPECT_EQ(method["kind"], "method");
  EXPECT_EQ(method["name"], "Fixture.Customer..ctor(Int32, System.String)");
  EXPECT_TRUE(method["found"].get<bool>());
  EXPECT_EQ(results[2]["name"], "Fixture.Customer");
  EXPECT_EQ(results[2]["method_table"], hex(customer_mt_));
  EXPECT_EQ(results[2]["num_instance_fields"], 2);
  EXPECT_EQ(results[3]["assembly"], hex(assembly_));
  bool customer_listed = false;
  for (const auto& t : results[3]["types_defined"]) {
    if (t["name"] == "Fixture.Customer") {
      customer_listed = true;
      EXPECT_EQ(t["method_table"], hex(customer_mt_));
      EXPECT_EQ(t["type_def"], hex(customer_token_));
    }
  }
  EXPECT_TRUE(customer_listed) << results[3];
  EXPECT_EQ(results[4]["modules"][0]["address"], hex(module_));
  EXPECT_EQ(results[5]["instance_exists"], false);
  EXPECT_EQ(results[6]["name"], "clrhost");
  EXPECT_EQ(results[6]["id"], 1);
  EXPECT_EQ(results[7]["method_desc"], hex(thrower_md_));
  EXPECT_EQ(results[7]["name"], "Fixture.HeapProgram.ThrowOuter()");
  ASSERT_EQ(results[7]["clauses"].size(), 1u) << results[7];
  EXPECT_EQ(results[7]["clauses"][0]["type"], "TYPED");
  EXPECT_LT(results[7]["clauses"][0]["try"]["start"].get<uint64_t>(),
            results[7]["clauses"][0]["handler"]["start"].get<uint64_t>());
}

INSTANTIATE_TEST_SUITE_P(RuntimesAndDumpTypes, MetadataConformanceTest,
                         conformance::AllRuntimesAndDumpTypes(), conformance::ParamName);
INSTANTIATE_TEST_SUITE_P(DefaultRuntime, MetadataCommandTest,
                         ::testing::Combine(::testing::Values(std::string(kDefaultRuntime)),
                                            ::testing::Values("Heap")),
                         conformance::ParamName);

}  // namespace
}  // namespace clrdiag::testing
