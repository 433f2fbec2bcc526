// Dumps shared by the conformance suites within one ctest run.
//
// A dump configuration (a fixture, its arguments and environment) is dumped once per ctest run,
// on every fixture runtime, Heap and Full (and Mini, Triage where asked), by the setup tests
// `conformance_dumps_<config>` (ctest fixture "conformance_dumps"; the program is
// shared_dumps_main.cc): each runs its own daemon on <build>/conformance-dumps/<config>/store,
// collects the dumps from fresh fixture processes and writes <config>/manifest.json last. The test
// `conformance_dumps_cleanup` removes the directory at the end of the run; nothing is kept between
// runs.
//
// A suite asks for its configurations before starting its daemon:
//
//   daemon_ = new Daemon();
//   std::string error = conformance::ProvideSharedDumps(*daemon_, {"pool"});
//   if (error.empty() && !daemon_->Start()) error = ...;
//   ...
//   conformance::SharedDump d = conformance::FindSharedDump("pool", "net8.0", "Heap");
//   // d.id: the catalog id in this daemon; d.path: the dump file (for dotnet-dump)
//
// ProvideSharedDumps hard-links the dumps and their stored runtime files into the daemon's
// (not yet opened) store, so the daemon finds them in its catalog as if it had collected them.
// Run alone (no manifest: the binary run by hand, or ctest without the setup tests), the suite
// collects the configurations itself, once per process, the same way.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tests/conformance/compare.h"
#include "tests/harness/harness.h"
#include "tests/integration/util.h"

namespace clrdiag::testing::conformance {

// What is dumped: build/fixtures/<fixture> started with `args` and `env` on each runtime.
struct DumpConfig {
  std::string name;  // [a-z0-9_]: a directory and ctest test name
  std::string fixture;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::vector<std::string> types = {"Heap", "Full"};  // collect --type, each from the same process
};

// Every known configuration (shared_dumps.cc). A new one is added there and to
// CLRDIAG_SHARED_DUMP_CONFIGS in tests/CMakeLists.txt.
const std::vector<DumpConfig>& SharedDumpConfigs();

// Where the setup tests leave the dumps (<build>/conformance-dumps).
std::string SharedDumpsRoot();

// Collects `config`'s dumps (FixtureRuntimes() x its types) under <root>/<config>/, with
// manifest.json written last. Returns "" or what went wrong.
std::string CollectSharedDumps(const std::string& root, const std::string& config);

// Before daemon.Start(): links the dumps of `configs` into the daemon's store. Returns "" or
// what went wrong.
std::string ProvideSharedDumps(const Daemon& daemon, const std::vector<std::string>& configs);

struct SharedDump {
  std::string id;    // catalog id in the daemon given to ProvideSharedDumps
  std::string path;  // the dump file in that daemon's store
  int pid = 0;       // the fixture process that was dumped (it has ended)
};
// One provided dump; empty id if `config` was not provided or lacks the runtime or type.
SharedDump FindSharedDump(const std::string& config, const std::string& runtime,
                          const std::string& type);

// Starts `daemon` (not yet started) with the shared dumps of `configs` in its store, after
// checking that the reference dotnet-dump is installed. Returns "" or what went wrong.
std::string StartDaemonWithSharedDumps(Daemon& daemon, const std::vector<std::string>& configs);

// Options of a suite's daemon whose tests never use gcroot's heap graph (gcroot, pathto,
// objsize): `analysis.prebuild_heap_graph: false`. A daemon that starts with dumps
// in its store queues a graph build for each (at nice 19; at normal priority once a session
// opens the dump), which such a suite would only pay for: a dozen worker runs per test process.
// The suites that use the graph start theirs with the defaults, as for a collected dump.
Daemon::Options WithoutGraphPrebuild();

// The common shape of a suite over (runtime, dump type) whose tests read one shared dump:
//
//   class FooConformanceTest : public conformance::SharedDumpTest {
//    protected:
//     static void SetUpTestSuite() { StartDaemon({"heap100_pool"}); }
//     static void TearDownTestSuite() { StopDaemon(); }
//     void SetUp() override { UseDump("heap100_pool"); }
//   };
//
// and its tests run `Ours({...})` on `id_` and the reference on `path_`.
class SharedDumpTest : public ::testing::TestWithParam<RuntimeAndDumpType> {
 protected:
  static void StartDaemon(const std::vector<std::string>& configs) {
    daemon_ = new Daemon(WithoutGraphPrebuild());
    setup_error_ = StartDaemonWithSharedDumps(*daemon_, configs);
  }
  static void StopDaemon() {
    delete daemon_;
    daemon_ = nullptr;
  }
  // Sets id_ and path_ to `config`'s dump of this test's runtime and type (a fatal failure if
  // the suite's setup failed or the dump is missing: check with ASSERT_NO_FATAL_FAILURE).
  void UseDump(const std::string& config) {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    const auto& [runtime, type] = GetParam();
    SharedDump d = FindSharedDump(config, runtime, type);
    ASSERT_FALSE(d.id.empty()) << "no shared dump " << config << " " << runtime << " " << type;
    id_ = d.id;
    path_ = d.path;
  }
  // clrdiag analyze of this test's dump, with `commands` (then exit).
  RunResult Ours(const std::vector<std::string>& commands, bool json = false) {
    std::vector<std::string> argv = {"analyze", id_};
    if (json) argv.push_back("--json");
    return daemon_->Client(WithCommands(argv, commands));
  }
  // dotnet-dump analyze of this test's dump, with `commands` (then exit).
  RunResult Reference(const std::vector<std::string>& commands) {
    return RunCommand(WithCommands({DotnetDump(), "analyze", path_}, commands));
  }
  // The result of one command's JSON form.
  nlohmann::json OursJson(const std::string& command) {
    RunResult r = Ours({command}, true);
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.err;
    auto doc = ParseJson(r.out.substr(0, r.out.find('\n')));
    EXPECT_TRUE(doc.is_object() && doc.contains("result")) << command << ": " << r.out;
    return doc.is_object() && doc.contains("result") ? doc["result"] : nlohmann::json();
  }

  inline static Daemon* daemon_ = nullptr;
  inline static std::string setup_error_;
  std::string id_, path_;
};

}  // namespace clrdiag::testing::conformance
