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
