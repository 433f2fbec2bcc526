#include "daemon/config/config.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/base/paths.h"

namespace clrdiag::config {
namespace {

TEST(ConfigTest, ShippedConfigLoadsAndMatchesDefaults) {
  auto c = LoadConfigFile(CLRDIAG_SOURCE_DIR "/config/clrdiagd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].kind, ListenAddress::Kind::kUnix);
  EXPECT_EQ(c->listen[0].address, DefaultSocketPath());
  EXPECT_EQ(c->dump_dir, DefaultDumpDir());
  EXPECT_EQ(c->socket_mode, 0660u);
  EXPECT_FALSE(c->insecure);
  EXPECT_TRUE(ValidateConfig(*c).ok());
  EXPECT_TRUE(c->diagnostic_ports.empty());
}

TEST(ConfigTest, DiagnosticPortsParseWithDefaults) {
  auto c = ParseConfig(
      "diagnostic_ports:\n"
      "  - path: /diag/clrdiag.sock\n"
      "  - {path: /run/b.sock, mode: \"0660\", resume: false, dump_dir: /srv/shared,\n"
      "     dump_dir_in_app: /diag}\n",
      "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->diagnostic_ports.size(), 2u);
  const auto& a = c->diagnostic_ports[0];
  EXPECT_EQ(a.path, "/diag/clrdiag.sock");
  EXPECT_EQ(a.mode, 0666u);
  EXPECT_TRUE(a.resume);
  EXPECT_EQ(a.dump_dir, "");  // the listen server defaults it to the socket's directory
  const auto& b = c->diagnostic_ports[1];
  EXPECT_EQ(b.mode, 0660u);
  EXPECT_FALSE(b.resume);
  EXPECT_EQ(b.dump_dir, "/srv/shared");
  EXPECT_EQ(b.dump_dir_in_app, "/diag");
  EXPECT_TRUE(ValidateConfig(*c).ok());
}

TEST(ConfigTest, BadDiagnosticPortsAreErrorsNamingTheirPath) {
  auto c = ParseConfig(
      "diagnostic_ports:\n"
      "  - path: relative.sock\n"
      "  - {path: /a.sock, colour: red, mode: \"rw\", resume: maybe}\n"
      "  - {mode: \"0600\"}\n"
      "  - {path: \"/a,b.sock\", dump_dir: diag}\n"
      "  - /plain/string.sock\n",
      "t.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  for (const char* want :
       {"t.yaml: diagnostic_ports[0].path: 'relative.sock': a diagnostic port must be an absolute",
        "diagnostic_ports[1].colour: unknown key", "diagnostic_ports[1].mode: expected octal",
        "diagnostic_ports[1].resume: expected true or false", "diagnostic_ports[2].path: missing",
        "diagnostic_ports[3].path: '/a,b.sock'",
        "diagnostic_ports[3].dump_dir: must be an absolute",
        "diagnostic_ports[4]: expected a mapping"}) {
    EXPECT_NE(msg.find(want), std::string::npos) << want << "\n" << msg;
  }
  auto twice = ParseConfig("diagnostic_ports: [{path: /a.sock}, {path: /a.sock}]\n", "t.yaml");
  ASSERT_TRUE(twice.ok());
  EXPECT_NE(std::string(ValidateConfig(*twice).message()).find("listed twice"), std::string::npos);
  auto clash = ParseConfig("listen: [unix:/a.sock]\ndiagnostic_ports: [{path: /a.sock}]\n", "t");
  ASSERT_TRUE(clash.ok());
  EXPECT_NE(std::string(ValidateConfig(*clash).message()).find("client socket"), std::string::npos);
}

TEST(ConfigTest, CrashDumpDirectoriesParse) {
  auto c = ParseConfig(
      "crash_dumps:\n"
      "  directories:\n"
      "    - path: /var/lib/clrdiag/crash\n"
      "    - {path: /srv/crash-full, type: full}\n"
      "  settle: 1s\n"
      "  scan_interval: 2s\n",
      "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->crash_dumps.directories.size(), 2u);
  EXPECT_EQ(c->crash_dumps.directories[0].path, "/var/lib/clrdiag/crash");
  EXPECT_EQ(c->crash_dumps.directories[0].type, "Heap");  // the runtime's default
  EXPECT_EQ(c->crash_dumps.directories[1].type, "full");
  EXPECT_EQ(c->crash_dumps.settle, absl::Seconds(1));
  EXPECT_EQ(c->crash_dumps.scan_interval, absl::Seconds(2));
  EXPECT_TRUE(DefaultConfig().crash_dumps.directories.empty());  // off unless configured
}

TEST(ConfigTest, BadCrashDumpSettingsAreAllErrorsNamingTheirPath) {
  auto c = ParseConfig(
      "crash_dumps:\n"
      "  directories:\n"
      "    - path: relative/dir\n"
      "    - {path: /a, type: Huge, colour: red}\n"
      "    - {type: Mini}\n"
      "    - {path: /a}\n"
      "  settle: soon\n"
      "  scan_interval: 1ms\n",
      "t.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  for (const char* want :
       {"t.yaml: crash_dumps.directories[0].path: must be an absolute path, got 'relative/dir'",
        "crash_dumps.directories[1].type: expected Full, Heap, Mini or Triage, got 'Huge'",
        "crash_dumps.directories[1].colour: unknown key",
        "crash_dumps.directories[2].path: missing",
        "crash_dumps.directories[3].path: /a is listed twice",
        "crash_dumps.settle: expected a duration", "crash_dumps.scan_interval: must be at least"}) {
    EXPECT_NE(msg.find(want), std::string::npos) << want << "\n" << msg;
  }
}

TEST(ConfigTest, UnknownKeysAreErrorsNamingTheirPath) {
  auto c = ParseConfig(
      "listen: [unix:/tmp/x.sock]\nlimits:\n  max_concurent_collections: 3\n"
      "colour: blue\n",
      "test.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  EXPECT_NE(msg.find("test.yaml: limits.max_concurent_collections: unknown key"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("test.yaml: colour: unknown key"), std::string::npos) << msg;
}

TEST(ConfigTest, UnknownKeysInEverySectionNameTheirPath) {
  auto c = ParseConfig(
      "socket:\n  mode: \"0600\"\n  owner: root\n"
      "analysis:\n  max_sessions: 2\n  idle_timeot: 5m\n"
      "limits: {process_info_timeout: 1s, retries: 3}\n",
      "n.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  EXPECT_NE(msg.find("n.yaml: socket.owner: unknown key (known: group, mode)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("n.yaml: analysis.idle_timeot: unknown key (known: command_timeout, "
                     "idle_timeout,"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("n.yaml: limits.retries: unknown key"), std::string::npos) << msg;
  // Only the three unknown keys: the known ones around them are fine.
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 2) << msg;
}

TEST(ConfigTest, PrebuildHeapGraphIsOnByDefaultAndCanBeTurnedOff) {
  auto def = ParseConfig("analysis:\n  max_sessions: 2\n", "a.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_TRUE(def->analysis.prebuild_heap_graph);
  auto off = ParseConfig("analysis:\n  prebuild_heap_graph: false\n", "b.yaml");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->analysis.prebuild_heap_graph);
  auto bad = ParseConfig("analysis:\n  prebuild_heap_graph: sometimes\n", "c.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("c.yaml: analysis.prebuild_heap_graph"), std::string::npos)
      << bad.status();
}

TEST(ConfigTest, WarmWorkersHaveDefaultsAndBounds) {
  auto def = ParseConfig("analysis:\n  max_sessions: 2\n", "a.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->analysis.warm_workers, 2);
  EXPECT_EQ(def->analysis.warm_worker_idle, absl::Seconds(60));
  EXPECT_EQ(def->analysis.warm_worker_max_rss_mib, 1024);
  auto set = ParseConfig(
      "analysis:\n  warm_workers: 0\n  warm_worker_idle: 5m\n  warm_worker_max_rss_mib: 300\n",
      "b.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->analysis.warm_workers, 0);
  EXPECT_EQ(set->analysis.warm_worker_idle, absl::Minutes(5));
  EXPECT_EQ(set->analysis.warm_worker_max_rss_mib, 300);
  for (const char* yaml :
       {"analysis:\n  warm_workers: -1\n", "analysis:\n  warm_workers: 65\n",
        "analysis:\n  warm_worker_idle: soon\n", "analysis:\n  warm_worker_max_rss_mib: 1\n"}) {
    auto bad = ParseConfig(yaml, "c.yaml");
    ASSERT_FALSE(bad.ok()) << yaml;
    EXPECT_NE(bad.status().message().find("c.yaml: analysis.warm_worker"), std::string::npos)
        << bad.status();
  }
}

TEST(ConfigTest, RepeatedKeysAreErrors) {
  // A YAML parser keeps one of the two values without a word; here the second one is even
  // invalid and would go unnoticed.
  auto c = ParseConfig("log_level: debug\nlog_level: chatty\n", "d.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("d.yaml: log_level: duplicate key"), std::string::npos)
      << c.status();
  auto nested = ParseConfig("analysis:\n  max_sessions: 2\n  max_sessions: 3\n", "d.yaml");
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("d.yaml: analysis.max_sessions: duplicate key"),
            std::string::npos)
      << nested.status();
}

TEST(ConfigTest, KeysMustBePlainNames) {
  auto c = ParseConfig("? [a, b]\n: 1\nanalysis:\n  {x: 1}: 2\n", "k.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  EXPECT_NE(msg.find("k.yaml: (top level): a key must be a plain name"), std::string::npos) << msg;
  EXPECT_NE(msg.find("k.yaml: analysis: a key must be a plain name"), std::string::npos) << msg;
}

TEST(ConfigTest, AllErrorsAreReportedAtOnce) {
  auto c = ParseConfig(
      "listen: [tcp-nonsense]\nlog_level: loud\ndump_dir: relative\nsocket: {mode: \"999\"}\n"
      "limits: {process_info_timeout: soon, max_concurrent_collections: 0}\n",
      "t.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  for (const char* path : {"listen[0]", "log_level", "dump_dir", "socket.mode",
                           "limits.process_info_timeout", "limits.max_concurrent_collections"}) {
    EXPECT_NE(msg.find(std::string("t.yaml: ") + path + ":"), std::string::npos) << path << "\n"
                                                                                 << msg;
  }
}

TEST(ConfigTest, ValuesAreParsed) {
  auto c = ParseConfig(
      "listen: [unix:/tmp/a.sock, \"127.0.0.1:7070\"]\ninsecure: true\n"
      "dump_dir: /srv/dumps\nsocket: {mode: \"0600\", group: adm}\n"
      "limits: {max_concurrent_collections: 4, process_info_timeout: 2s}\n",
      "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->listen.size(), 2u);
  EXPECT_EQ(c->listen[1].kind, ListenAddress::Kind::kTcp);
  EXPECT_EQ(c->dump_dir, "/srv/dumps");
  EXPECT_EQ(c->socket_mode, 0600u);
  EXPECT_EQ(c->socket_group, "adm");
  EXPECT_EQ(c->max_concurrent_collections, 4);
  EXPECT_EQ(c->process_info_timeout, absl::Seconds(2));
  EXPECT_TRUE(ValidateConfig(*c).ok());
}

TEST(ConfigTest, TcpWithoutTlsIsRefused) {
  auto c = ParseConfig("listen: [\"0.0.0.0:7070\"]\n", "t.yaml");
  ASSERT_TRUE(c.ok());
  auto st = ValidateConfig(*c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("TLS"), std::string::npos);
}

TEST(ConfigTest, InvalidYamlAndEmptyFile) {
  EXPECT_FALSE(ParseConfig("listen: [unclosed\n", "t.yaml").ok());
  EXPECT_FALSE(ParseConfig("- a\n- b\n", "t.yaml").ok());
  EXPECT_TRUE(ParseConfig("", "t.yaml").ok());
  EXPECT_EQ(LoadConfigFile("/nonexistent.yaml").status().code(), absl::StatusCode::kNotFound);
}

TEST(ListenAddressTest, Forms) {
  EXPECT_TRUE(ParseListenAddress("unix:/run/x.sock").ok());
  EXPECT_FALSE(ParseListenAddress("unix:relative.sock").ok());
  EXPECT_FALSE(ParseListenAddress("unix:/" + std::string(200, 'a')).ok());
  EXPECT_TRUE(ParseListenAddress("localhost:1").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:0").ok());
  EXPECT_FALSE(ParseListenAddress("localhost").ok());
}

TEST(MetricsConfigTest, OffByDefaultAndInTheShippedConfig) {
  EXPECT_EQ(DefaultConfig().metrics.listen, "");
  auto c = LoadConfigFile(CLRDIAG_SOURCE_DIR "/config/clrdiagd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics.listen, "");
}

TEST(MetricsConfigTest, ListenIsParsedAndNormalized) {
  auto c = ParseConfig("metrics:\n  listen: \"127.0.0.1:9464\"\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(*ParseMetricsAddress("localhost:9464"), "127.0.0.1:9464");
  EXPECT_EQ(*ParseMetricsAddress("0.0.0.0:0"), "0.0.0.0:0");
  EXPECT_TRUE(ParseConfig("metrics: {listen: }\n", "t.yaml").ok());
}

TEST(MetricsConfigTest, BadAddressesAndUnknownKeysAreErrorsNamingTheKeyPath) {
  for (const char* bad : {"9464", "example.com:9464", "127.0.0.1:http", "127.0.0.1:70000",
                          "[::1]:9464", "1.2.3:9464", ":9464"}) {
    auto a = ParseMetricsAddress(bad);
    ASSERT_FALSE(a.ok()) << bad;
    EXPECT_NE(std::string(a.status().message()).find("use IPV4:PORT, e.g. 127.0.0.1:9464"),
              std::string::npos)
        << a.status();
    auto c = ParseConfig(std::string("metrics: {listen: \"") + bad + "\"}\n", "t.yaml");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(std::string(c.status().message()).find("t.yaml: metrics.listen: '"),
              std::string::npos)
        << c.status();
  }
  auto c = ParseConfig("metrics: {listen: \"127.0.0.1:1\", port: 2}\n", "t.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("t.yaml: metrics.port: unknown key"),
            std::string::npos)
      << c.status();
  EXPECT_FALSE(ParseConfig("metrics: \"127.0.0.1:1\"\n", "t.yaml").ok());
}

TEST(ConfigTest, StoreSafetyDefaultsMatchTheShippedConfig) {
  auto c = LoadConfigFile(CLRDIAG_SOURCE_DIR "/config/clrdiagd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  StoreSafety d;
  EXPECT_EQ(c->store.max_age, d.max_age);
  EXPECT_EQ(c->store.max_total_mib, d.max_total_mib);
  EXPECT_EQ(c->store.max_count, d.max_count);
  EXPECT_EQ(c->store.preflight, d.preflight);
  EXPECT_EQ(c->store.free_space_reserve_mib, d.free_space_reserve_mib);
}

TEST(ConfigTest, RetentionAndStoreKeys) {
  auto c = ParseConfig(
      "retention: {max_age: 7d, max_total_mib: 2048, max_count: 20}\n"
      "store: {preflight: false, free_space_reserve_mib: 0}\n",
      "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->store.max_age, absl::Hours(24 * 7));
  EXPECT_EQ(c->store.max_total_mib, 2048u);
  EXPECT_EQ(c->store.max_count, 20u);
  EXPECT_FALSE(c->store.preflight);
  EXPECT_EQ(c->store.free_space_reserve_mib, 0u);
  auto h = ParseConfig("retention: {max_age: 36h}\n", "t.yaml");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->store.max_age, absl::Hours(36));

  auto bad = ParseConfig(
      "retention: {max_age: soon, max_count: -1, max_total_mib: lots, keep: 3}\n"
      "store: {preflight: maybe, free_space_reserve_mib: 1.5, reserve: 1}\n",
      "t.yaml");
  ASSERT_FALSE(bad.ok());
  std::string msg(bad.status().message());
  for (const char* path :
       {"retention.max_age", "retention.max_count", "retention.max_total_mib", "retention.keep",
        "store.preflight", "store.free_space_reserve_mib", "store.reserve"}) {
    EXPECT_NE(msg.find(std::string("t.yaml: ") + path + ":"), std::string::npos) << path << "\n"
                                                                                 << msg;
  }
}

}  // namespace
}  // namespace clrdiag::config

namespace clrdiag::config {
namespace {

TEST(ConfigSecurityTest, TcpWithoutTlsIsRefusedWithATlsMessage) {
  auto c = ParseConfig("listen: [\"127.0.0.1:7070\"]\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::Status st = ValidateConfig(*c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("TCP requires TLS"), std::string::npos) << st;
  EXPECT_NE(std::string(st.message()).find("tls.cert"), std::string::npos) << st;
}

TEST(ConfigSecurityTest, OldInsecureKeyNamesTheNewOne) {
  auto c = ParseConfig("insecure_tcp: true\n", "t.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("insecure: true"), std::string::npos);
}

TEST(ConfigSecurityTest, TlsAndIdentitiesAreParsed) {
  std::string hash(64, 'a');
  auto c = ParseConfig(
      "listen: [\"127.0.0.1:7070\"]\n"
      "tls: {cert: /etc/s.crt, key: /etc/s.key, client_ca: /etc/ca.crt}\n"
      "auth:\n  admin_group: ops\n  identities:\n"
      "    - {name: alice, role: analyst, cert: alice.example}\n"
      "    - {name: mon, role: viewer, token_sha256: " +
          hash + "}\naudit: {path: /var/log/clrdiag-audit.jsonl}\n",
      "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(ValidateConfig(*c).ok());
  EXPECT_EQ(c->tls.client_ca, "/etc/ca.crt");
  EXPECT_EQ(c->auth.admin_group, "ops");
  ASSERT_EQ(c->auth.identities.size(), 2u);
  EXPECT_EQ(c->auth.identities[0].cert, "alice.example");
  EXPECT_EQ(c->auth.identities[1].token_sha256, hash);
  EXPECT_EQ(c->audit.path, "/var/log/clrdiag-audit.jsonl");
}

TEST(ConfigSecurityTest, BadIdentitiesNameTheirKeyPath) {
  auto c = ParseConfig(
      "tls: {cert: /etc/s.crt}\n"
      "auth:\n  identities:\n"
      "    - {name: a, role: root, token_sha256: abc}\n"
      "    - {name: b, role: viewer}\n",
      "t.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  EXPECT_NE(msg.find("tls: cert and key go together"), std::string::npos) << msg;
  EXPECT_NE(msg.find("auth.identities[0].role"), std::string::npos) << msg;
  EXPECT_NE(msg.find("auth.identities[0].token_sha256"), std::string::npos) << msg;
  EXPECT_NE(msg.find("auth.identities[1]: give cert"), std::string::npos) << msg;
}

}  // namespace
}  // namespace clrdiag::config

namespace clrdiag::config {
namespace {

// The issue's example, verbatim in shape.
constexpr char kIssueExample[] = R"(
collection_rules:
  - name: shop-heap
    filter: { process_name: Shop }
    trigger: { type: counter, provider: System.Runtime, counter: gc-heap-size, greater_than: 10, window: 5s }
    action: { collect: { type: Mini }, egress: s3-main }
    limits: { action_count: 1, window: 1h }
egress:
  s3-main: { type: s3, endpoint: "http://127.0.0.1:9000", bucket: dumps, region: us-east-1,
             access_key_id: test, secret_access_key_file: /etc/clrdiag/s3-secret, path_style: true, prefix: "{pod}/{name}/" }
  local: { type: filesystem, directory: /var/lib/clrdiag/egress }
)";

TEST(AutomationConfigTest, TheIssueExampleParses) {
  auto c = ParseConfig(kIssueExample, "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& a = c->automation;
  ASSERT_EQ(a.rules.size(), 1u);
  const automation::Rule& r = a.rules[0];
  EXPECT_EQ(r.name, "shop-heap");
  ASSERT_TRUE(r.filter.process_name.has_value());
  EXPECT_EQ(r.filter.process_name->text, "Shop");
  EXPECT_EQ(r.trigger.type, automation::TriggerType::kCounter);
  EXPECT_EQ(r.trigger.provider, "System.Runtime");
  EXPECT_EQ(r.trigger.counter, "gc-heap-size");
  ASSERT_TRUE(r.trigger.greater_than.has_value());
  EXPECT_EQ(*r.trigger.greater_than, 10);
  EXPECT_FALSE(r.trigger.less_than.has_value());
  EXPECT_EQ(r.trigger.window, absl::Seconds(5));
  EXPECT_EQ(r.trigger.counter_interval, absl::Seconds(1));
  EXPECT_EQ(r.action.collect.type, "Mini");
  EXPECT_EQ(r.action.egress, std::vector<std::string>{"s3-main"});
  EXPECT_EQ(r.limits.action_count, 1);
  EXPECT_EQ(r.limits.window, absl::Hours(1));
  ASSERT_EQ(a.egress.size(), 2u);
  const automation::EgressConfig* s3 = a.FindEgress("s3-main");
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->type, automation::EgressConfig::Type::kS3);
  EXPECT_EQ(s3->endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(s3->bucket, "dumps");
  EXPECT_EQ(s3->region, "us-east-1");
  EXPECT_EQ(s3->access_key_id, "test");
  EXPECT_EQ(s3->secret_access_key_file, "/etc/clrdiag/s3-secret");
  EXPECT_TRUE(s3->path_style);
  EXPECT_EQ(s3->prefix, "{pod}/{name}/");
  const automation::EgressConfig* local = a.FindEgress("local");
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->type, automation::EgressConfig::Type::kFilesystem);
  EXPECT_EQ(local->directory, "/var/lib/clrdiag/egress");
}

TEST(AutomationConfigTest, EveryTriggerTypeFilterAndLimit) {
  auto c = ParseConfig(R"(
automation: { poll_interval: 200ms, counter_interval: 2s, event_buffer: 50 }
egress:
  local: { type: filesystem, directory: /srv/egress, prefix: "{namespace}/{pod}/" }
collection_rules:
  - name: a
    filter: { process_name: "Shop*", command_line: "*--port*", entry_assembly: Shop,
              k8s_namespace: prod, pod: "shop-*", container_id: "abc*" }
    trigger: { type: startup }
    action: { collect: { type: heap, flags: [diag, crash_report] }, egress: [local] }
    limits: { action_count: 3, window: 10m, rule_duration: 1d, cooldown: 30s }
  - { name: b, trigger: { type: working_set, greater_than: 200 }, action: { collect: {} } }
  - { name: c, trigger: { type: cpu, greater_than: 80, window: 2s }, action: { collect: {} } }
  - { name: d, trigger: { type: threads, greater_than: 100, window: 1s }, action: { collect: {} } }
  - { name: e, trigger: { type: fds, less_than: 5 }, action: { collect: {} } }
  - { name: f, trigger: { type: gc_heap_size }, action: { collect: {} } }
  - { name: g, trigger: { type: cpu_usage, less_than: 5 }, action: { collect: {} } }
  - { name: h, trigger: { type: threadpool_queue_length, interval: 3s }, action: { collect: {} } }
  - { name: i, trigger: { type: exception_rate, greater_than: 1 }, action: { collect: {} } }
  - { name: j, trigger: { type: exception, exception_type: "System.*Exception", message: "*boom*" },
      action: { collect: {} } }
  - { name: k, trigger: { type: crash }, action: { collect: { type: Full } } }
)",
                       "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& a = c->automation;
  EXPECT_EQ(a.options.poll_interval, absl::Milliseconds(200));
  EXPECT_EQ(a.options.counter_interval, absl::Seconds(2));
  EXPECT_EQ(a.options.event_buffer, 50u);
  ASSERT_EQ(a.rules.size(), 11u);
  using automation::TriggerType;
  const auto& r0 = a.rules[0];
  EXPECT_EQ(r0.filter.container_id->text, "abc*");
  EXPECT_EQ(r0.filter.command_line->text, "*--port*");
  EXPECT_EQ(r0.action.collect.type, "Heap");
  EXPECT_TRUE(r0.action.collect.diag);
  EXPECT_TRUE(r0.action.collect.crash_report);
  EXPECT_EQ(r0.limits.action_count, 3);
  EXPECT_EQ(r0.limits.window, absl::Minutes(10));
  EXPECT_EQ(r0.limits.rule_duration, absl::Hours(24));
  EXPECT_EQ(r0.limits.cooldown, absl::Seconds(30));
  EXPECT_EQ(a.rules[1].trigger.type, TriggerType::kWorkingSet);
  EXPECT_EQ(a.rules[1].limits.action_count, 5);  // dotnet-monitor's default
  EXPECT_EQ(a.rules[1].action.collect.type, "Full");
  EXPECT_EQ(a.rules[2].trigger.type, TriggerType::kCpu);
  EXPECT_EQ(a.rules[2].trigger.window, absl::Seconds(2));
  EXPECT_EQ(a.rules[3].trigger.type, TriggerType::kThreads);
  EXPECT_EQ(a.rules[4].trigger.type, TriggerType::kFds);
  EXPECT_EQ(*a.rules[4].trigger.less_than, 5);
  const auto& f = a.rules[5].trigger;
  EXPECT_EQ(f.type, TriggerType::kCounter);
  EXPECT_EQ(f.provider, "System.Runtime");
  EXPECT_EQ(f.counter, "gc-heap-size");
  EXPECT_EQ(*f.greater_than, 10);  // the shortcut's default
  EXPECT_EQ(f.window, absl::Minutes(1));
  EXPECT_EQ(f.counter_interval, absl::Seconds(2));            // automation.counter_interval
  EXPECT_FALSE(a.rules[6].trigger.greater_than.has_value());  // less_than drops the default
  EXPECT_EQ(a.rules[6].trigger.counter, "cpu-usage");
  EXPECT_EQ(a.rules[7].trigger.counter, "threadpool-queue-length");
  EXPECT_EQ(a.rules[7].trigger.counter_interval, absl::Seconds(3));
  EXPECT_EQ(a.rules[8].trigger.counter, "exception-count");
  EXPECT_EQ(a.rules[9].trigger.type, TriggerType::kException);
  EXPECT_EQ(a.rules[9].trigger.exception_type.text, "System.*Exception");
  EXPECT_EQ(a.rules[9].trigger.exception_message->text, "*boom*");
  EXPECT_EQ(a.rules[10].trigger.type, TriggerType::kCrash);
}

TEST(AutomationConfigTest, AllErrorsAreListedWithTheirKeyPaths) {
  auto c = ParseConfig(R"(
automation: { poll_interval: 1ms, colour: red }
egress:
  local: { type: filesystem, directory: relative/dir }
  s3: { type: s3, endpoint: "ftp://x", bucket: "Bad_Bucket", access_key_id: k,
        secret_access_key_file: secret, path_style: maybe, prefix: "{nope}/" }
  odd: { type: ftp }
collection_rules:
  - name: a
    trigger: { type: counter, provider: System.Runtime, greater_than: 10, window: 5x }
    action: { collect: { type: Mini }, egress: nowhere }
  - name: a
    filter: { process: Shop }
    trigger: { type: bogus }
    action: { collect: { type: Tiny, flags: [fast] }, egress: [local, missing] }
    limits: { action_count: 0, window: soon, rule_duration: 1h, cooldown: -5s, extra: 1 }
  - name: "bad name!"
    trigger: { type: working_set }
  - { name: c, trigger: { type: cpu, greater_than: 90, less_than: 10 }, action: { collect: {} } }
)",
                       "t.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  for (const char* want : {
           "t.yaml: automation.poll_interval: must be from 50ms to 1h",
           "t.yaml: automation.colour: unknown key",
           "t.yaml: egress.local.directory: must be an absolute path, got 'relative/dir'",
           "t.yaml: egress.s3.endpoint: expected http://host[:port]",
           "t.yaml: egress.s3.bucket: 'Bad_Bucket' is not a bucket name",
           "t.yaml: egress.s3.secret_access_key_file: must be an absolute path",
           "t.yaml: egress.s3.path_style: expected true or false",
           "t.yaml: egress.s3.prefix: ",
           "t.yaml: egress.odd.type: unknown egress type 'ftp' (known: filesystem, s3)",
           "t.yaml: collection_rules[0].trigger.window: bad duration \"5x\"",
           "t.yaml: collection_rules[0].trigger.counter: missing",
           "t.yaml: collection_rules[0].action.egress: no egress named 'nowhere'",
           "t.yaml: collection_rules[1].name: 'a' is used twice",
           "t.yaml: collection_rules[1].filter.process: unknown key",
           "t.yaml: collection_rules[1].trigger.type: unknown trigger type 'bogus'",
           "t.yaml: collection_rules[1].action.collect.type: unknown dump type 'Tiny'",
           "t.yaml: collection_rules[1].action.collect.flags[0]: unknown flag 'fast'",
           "t.yaml: collection_rules[1].action.egress[1]: no egress named 'missing'",
           "t.yaml: collection_rules[1].limits.action_count: expected an integer from 1",
           "t.yaml: collection_rules[1].limits.window: bad duration \"soon\"",
           "t.yaml: collection_rules[1].limits.cooldown: bad duration \"-5s\"",
           "t.yaml: collection_rules[1].limits.extra: unknown key",
           "t.yaml: collection_rules[2].name: 'bad name!'",
           "t.yaml: collection_rules[2].trigger: a working_set trigger needs greater_than",
           "t.yaml: collection_rules[2].action: missing",
           "t.yaml: collection_rules[3].trigger: greater_than must be below less_than",
       }) {
    EXPECT_NE(msg.find(want), std::string::npos) << "missing: " << want << "\nin:\n" << msg;
  }
  // The egress that is defined (local) is not reported as missing.
  EXPECT_EQ(msg.find("no egress named 'local'"), std::string::npos) << msg;
}

TEST(AutomationConfigTest, NoRulesByDefaultAndInTheShippedConfig) {
  EXPECT_TRUE(DefaultConfig().automation.rules.empty());
  auto c = LoadConfigFile(CLRDIAG_SOURCE_DIR "/config/clrdiagd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->automation.rules.empty());
  EXPECT_TRUE(c->automation.egress.empty());
  EXPECT_EQ(c->automation.options.poll_interval, absl::Seconds(1));
}

}  // namespace
}  // namespace clrdiag::config

namespace clrdiag::config {
namespace {

TEST(CrashTriggerConfigTest, CaptureExceptionAndSpeculativeLimits) {
  auto c = ParseConfig(R"(
collection_rules:
  - { name: a, trigger: { type: crash }, action: { collect: { type: Mini } } }
  - name: b
    trigger: { type: crash, capture: both, exception: "System.*Exception", confirm_window: 1500ms,
               speculative: { max: 2, window: 5m } }
    action: { collect: { type: Heap } }
  - { name: c, trigger: { type: crash, capture: eventpipe }, action: { collect: {} } }
  # way 1 checks `exception` against the crash report; per_process limits
  - { name: d, trigger: { type: crash, exception: "System.Invalid*" }, action: { collect: {} },
      limits: { action_count: 1, per_process: true } }
)",
                       "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  using C = automation::Trigger::CrashCapture;
  const auto& r = c->automation.rules;
  EXPECT_EQ(r[0].trigger.crash_capture, C::kRuntime);  // the default: no session is held
  EXPECT_TRUE(r[0].trigger.crash_runtime());
  EXPECT_FALSE(r[0].trigger.crash_eventpipe());
  EXPECT_EQ(r[1].trigger.crash_capture, C::kBoth);
  EXPECT_EQ(r[1].trigger.exception_type.text, "System.*Exception");
  EXPECT_EQ(r[1].trigger.confirm_window, absl::Milliseconds(1500));
  EXPECT_EQ(r[1].trigger.speculative_max, 2);
  EXPECT_EQ(r[1].trigger.speculative_window, absl::Minutes(5));
  EXPECT_EQ(r[2].trigger.crash_capture, C::kEventPipe);
  EXPECT_EQ(r[2].trigger.exception_type.text, "*");
  EXPECT_EQ(r[2].trigger.confirm_window, absl::Seconds(3));
  EXPECT_EQ(r[2].trigger.speculative_max, 3);
  EXPECT_FALSE(r[2].limits.per_process);
  EXPECT_EQ(r[3].trigger.crash_capture, C::kRuntime);
  EXPECT_EQ(r[3].trigger.exception_type.text, "System.Invalid*");
  EXPECT_TRUE(r[3].limits.per_process);
  EXPECT_EQ(r[3].limits.action_count, 1);
}

TEST(CrashTriggerConfigTest, BadCrashKeysNameTheirPaths) {
  auto c = ParseConfig(R"(
collection_rules:
  - name: a
    trigger: { type: crash, capture: ptrace, confirm_window: 10ms, colour: red,
               speculative: { max: 0, window: never, extra: 1 } }
    action: { collect: {} }
  - { name: b, trigger: { type: crash, exception: "System.*", confirm_window: 1s },
      action: { collect: {} } }
  - { name: c, trigger: { type: crash, capture: both, speculative: 3 }, action: { collect: {} } }
  - { name: d, trigger: { type: startup }, action: { collect: {} },
      limits: { per_process: sometimes } }
)",
                       "t.yaml");
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  for (const char* want : {
           "t.yaml: collection_rules[0].trigger.capture: unknown capture 'ptrace' (known: "
           "runtime, eventpipe, both)",
           "collection_rules[0].trigger.confirm_window: must be from 100ms to 1m",
           "collection_rules[0].trigger.colour: unknown key",
           "collection_rules[0].trigger.speculative.max: expected an integer from 1 to 1000",
           "collection_rules[0].trigger.speculative.window: bad duration \"never\"",
           "collection_rules[0].trigger.speculative.extra: unknown key",
           "collection_rules[1].trigger.capture: confirm_window and speculative apply to "
           "capture: eventpipe or both",
           "collection_rules[3].limits.per_process: ",
           "collection_rules[2].trigger.speculative: expected a mapping like {max: 3, window: "
           "10m}",
       }) {
    EXPECT_NE(msg.find(want), std::string::npos) << "missing: " << want << "\nin:\n" << msg;
  }
}

}  // namespace
}  // namespace clrdiag::config
