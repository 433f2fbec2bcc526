#include "daemon/config/config.h"

#include <gtest/gtest.h>

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
  EXPECT_FALSE(c->insecure_tcp);
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
      "listen: [unix:/tmp/a.sock, \"127.0.0.1:7070\"]\ninsecure_tcp: true\n"
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

}  // namespace
}  // namespace clrdiag::config
