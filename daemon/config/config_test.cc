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
  EXPECT_FALSE(c->insecure);
  EXPECT_TRUE(ValidateConfig(*c).ok());
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
