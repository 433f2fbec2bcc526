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

}  // namespace
}  // namespace clrdiag::config
