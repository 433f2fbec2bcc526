#include "tests/conformance/shared_dumps.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <system_error>

#include "tests/integration/util.h"

namespace clrdiag::testing::conformance {
namespace {

namespace fs = std::filesystem;

// config -> "runtime/type" -> dump, for the configurations provided to this process's daemon.
std::map<std::string, std::map<std::string, SharedDump>>& Provided() {
  static auto* provided = new std::map<std::string, std::map<std::string, SharedDump>>();
  return *provided;
}

const DumpConfig* ConfigNamed(const std::string& name) {
  for (const auto& c : SharedDumpConfigs()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Hard-links (or, across filesystems, copies) every file below `from` to the same place below
// `to`, creating directories 0700; files already there are kept.
std::string LinkTree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  fs::permissions(to, fs::perms::owner_all, ec);
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const fs::path target = to / entry.path().filename();
    if (entry.is_directory()) {
      std::string error = LinkTree(entry.path(), target);
      if (!error.empty()) return error;
    } else if (!fs::exists(target)) {
      std::error_code link_ec;
      fs::create_hard_link(entry.path(), target, link_ec);
      if (link_ec) fs::copy_file(entry.path(), target, link_ec);
      if (link_ec) return "cannot link " + entry.path().string() + ": " + link_ec.message();
    }
  }
  if (ec) return "cannot list " + from.string() + ": " + ec.message();
  return "";
}

// The root used when there is no manifest: this process collects there, once per config.
std::string PrivateRoot() {
  static TempDir dir("clrdiag-shared-dumps");  // removed at exit
  return dir.path();
}

}  // namespace

const std::vector<DumpConfig>& SharedDumpConfigs() {
  static const auto* configs = new std::vector<DumpConfig>{
      // il_conformance_test, threads_conformance_test: async chains and queued work items.
      {"heap100_pool", "HeapApp", {"100", "--pool"}, {}},
      // exception_conformance_test: a thread parked in a catch block, and none; clru_conformance_test:
      // CatcherMain's nested try/catch and the DynamicMethod.
      {"heap1000_parked", "HeapApp", {"1000", "--parked-exception"}, {}},
      {"heap1000", "HeapApp", {"1000"}, {}},
      // gcinfo_conformance_test.
      {"heap100_zoo", "HeapApp", {"100", "--zoo"}, {}},
      // memory_conformance_test.
      {"heap200", "HeapApp", {"200"}, {}},
      // metadata_conformance_test.
      {"heap100_zoo_chain10", "HeapApp", {"100", "--zoo", "--chain", "10"}, {}},
      // clru_, clru_annotations_, module_ and object_conformance_test.
      {"heap2000", "HeapApp", {"2000"}, {}},
      // stack_conformance_test.
      {"heap500", "HeapApp", {"500"}, {}, {"Heap", "Full", "Mini", "Triage"}},
      // heapstats_conformance_test (DroppedExceptions.cs), stray_methodtable_test.
      {"heap200_exceptions", "HeapApp", {"200"}, {{"CLRDIAG_HEAPAPP_EXCEPTIONS", "40"}}},
      // dumpheap_conformance_test (Fragment.cs: free blocks over 0.5 MB).
      {"heap2000_zoo_fragment", "HeapApp", {"2000", "--zoo"}, {{"CLRDIAG_HEAPAPP_FRAGMENT", "1"}}},
      // roots_conformance_test (StackRoot.cs, the finalizer queue's roots).
      {"heap2000_zoo_roots",
       "HeapApp",
       {"2000", "--zoo"},
       {{"CLRDIAG_HEAPAPP_STACK_ROOT", "1"}, {"CLRDIAG_HEAPAPP_FREACHABLE", "1"}}},
      // handles_conformance_test.
      {"heap200_zoo", "HeapApp", {"200", "--zoo"}, {}},
      // gc_conformance_test (workstation GC, regions).
      {"zoo_customers500", "HeapApp", {"--zoo", "--customers", "500"}, {}},
      // objects_conformance_test (ZooArrays.cs).
      {"heap200_zoo_chain20_arrays",
       "HeapApp",
       {"200", "--zoo", "--chain", "20"},
       {{"CLRDIAG_FIXTURE_ARRAYS", "1"}}},
      // objects_conformance_test's analyzeoom: a real OutOfMemoryException under a 128 MiB heap.
      {"heap10_oom", "HeapApp", {"10", "--oom"}, {{"DOTNET_GCHeapHardLimit", "0x8000000"}}},
      // live_conformance_test (300 unreachable Fixture.Garbage).
      {"heap2000_garbage300", "HeapApp", {"2000", "--garbage", "300"}, {}},
      // sync_conformance_test (two threads deadlocked on two monitors).
      {"heap100_deadlock", "HeapApp", {"100", "--deadlock"}, {}},
      // stresslog_conformance_test (the runtime's stress log on, every facility, level 6).
      {"heap100_stresslog",
       "HeapApp",
       {"100"},
       {{"DOTNET_StressLog", "1"},
        {"DOTNET_LogFacility", "0xffffffff"},
        {"DOTNET_LogLevel", "6"},
        {"DOTNET_StressLogSize", "0x100000"}}},
  };
  return *configs;
}

std::string SharedDumpsRoot() { return CLRDIAG_SHARED_DUMPS_DIR; }

std::string CollectSharedDumps(const std::string& root, const std::string& config_name) {
  const DumpConfig* config = ConfigNamed(config_name);
  if (!config) return "unknown shared dump configuration '" + config_name + "'";
  const fs::path dir = fs::path(root) / config_name;
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return "cannot create " + dir.string() + ": " + ec.message();
  // No background heap graph: the suites' daemons build their own when gcroot asks.
  std::ofstream(dir / "clrdiagd.yaml") << "analysis:\n  prebuild_heap_graph: false\n";
  Daemon::Options o;
  o.dump_dir = dir / "store";
  o.extra_args = {"--config", dir / "clrdiagd.yaml"};
  Daemon daemon(o);
  if (!daemon.Start()) return "daemon did not start: " + daemon.log();
  nlohmann::json manifest = nlohmann::json::object();
  for (const auto& runtime : FixtureRuntimes()) {
    SpawnOptions opts;
    opts.env = config->env;
    auto app = StartFixture(config->fixture, config->args, runtime, opts);
    if (!app) return config->fixture + " (" + config_name + ", " + runtime + ") did not start";
    for (const std::string& type : config->types) {
      RunResult c =
          daemon.Client({"collect", "-p", std::to_string(app->pid()), "--type", type, "--json"});
      auto info = ParseJson(c.out);
      if (c.exit_code != 0 || !info.is_object() || !info.contains("id")) {
        return "collect --type " + type + " of " + config_name + " on " + runtime +
               " failed: " + c.out + c.err;
      }
      manifest[runtime + "/" + type] = {{"id", info["id"]}, {"pid", app->pid()}};
    }
  }
  if (!daemon.Stop().has_value()) daemon.Kill();
  const fs::path tmp = dir / "manifest.json.tmp";
  std::ofstream(tmp) << manifest.dump(2) << "\n";
  fs::rename(tmp, dir / "manifest.json", ec);
  if (ec) return "cannot write the manifest: " + ec.message();
  return "";
}

std::string ProvideSharedDumps(const Daemon& daemon, const std::vector<std::string>& configs) {
  for (const auto& name : configs) {
    if (!ConfigNamed(name)) return "unknown shared dump configuration '" + name + "'";
    std::string root = SharedDumpsRoot();
    if (!FileExists(root + "/" + name + "/manifest.json")) {
      // Run alone: collect them here, once per process.
      root = PrivateRoot();
      if (!FileExists(root + "/" + name + "/manifest.json")) {
        std::string error = CollectSharedDumps(root, name);
        if (!error.empty()) return error;
      }
    }
    auto manifest = ParseJson(ReadFile(root + "/" + name + "/manifest.json"));
    if (!manifest.is_object()) return "unreadable manifest of " + name + " in " + root;
    const fs::path store = fs::path(root) / name / "store";
    const fs::path target = daemon.dump_dir();
    for (const auto& [key, entry] : manifest.items()) {
      const std::string id = entry.value("id", "");
      std::string error = LinkTree(store / "dumps" / id, target / "dumps" / id);
      if (!error.empty()) return error;
      Provided()[name][key] = {id, (target / "dumps" / id / "dump").string(),
                               entry.value("pid", 0)};
    }
    if (fs::exists(store / "runtimes")) {
      std::string error = LinkTree(store / "runtimes", target / "runtimes");
      if (!error.empty()) return error;
    }
  }
  std::error_code ec;
  fs::permissions(daemon.dump_dir(), fs::perms::owner_all, ec);
  return "";
}

std::string StartDaemonWithSharedDumps(Daemon& daemon, const std::vector<std::string>& configs) {
  if (!FileExists(DotnetDump())) {
    return "the reference dotnet-dump is missing: run WITH_REFERENCE=1 scripts/install-deps.sh";
  }
  std::string error = ProvideSharedDumps(daemon, configs);
  if (!error.empty()) return error;
  if (!daemon.Start()) return "daemon did not start: " + daemon.log();
  return "";
}

Daemon::Options WithoutGraphPrebuild() {
  static const std::string config = [] {
    std::string path = PrivateRoot() + "/no-graph-prebuild.yaml";
    std::ofstream(path) << "analysis:\n  prebuild_heap_graph: false\n";
    return path;
  }();
  Daemon::Options o;
  o.extra_args = {"--config", config};
  return o;
}

SharedDump FindSharedDump(const std::string& config, const std::string& runtime,
                          const std::string& type) {
  auto c = Provided().find(config);
  if (c == Provided().end()) return {};
  auto d = c->second.find(runtime + "/" + type);
  return d == c->second.end() ? SharedDump{} : d->second;
}

}  // namespace clrdiag::testing::conformance
