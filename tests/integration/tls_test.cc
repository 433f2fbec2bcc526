// Remote access (issue 5): TCP requires TLS; client certificates and bearer tokens mapped to
// roles; wrong CA, expired certificate, bad tokens, plaintext clients. Certificates are made
// with openssl at test time.
#include <unistd.h>

#include <fstream>

#include "core/base/sha256.h"
#include "tests/integration/auth_util.h"
#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

std::string Hash(const std::string& token) {
  Sha256 h;
  h.Update(token.data(), token.size());
  return h.HexDigest();
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Two CAs; a server certificate for 127.0.0.1/localhost; client certificates: valid
    // (CN alice), from the other CA, and expired.
    ASSERT_TRUE(MakeCa("ca"));
    ASSERT_TRUE(MakeCa("otherca"));
    ASSERT_TRUE(
        MakeCert("server", "ca", "localhost", "1", "subjectAltName=IP:127.0.0.1,DNS:localhost"));
    ASSERT_TRUE(MakeCert("alice", "ca", "alice", "1", ""));
    ASSERT_TRUE(MakeCert("mallory", "otherca", "alice", "1", ""));
    ASSERT_TRUE(MakeCert("old", "ca", "alice", "-1", ""));  // notAfter before now: expired
    ASSERT_TRUE(MakeCert("stranger", "ca", "bob", "1", ""));
    port_ = 21000 + (::getpid() % 20000);
    std::ofstream(dir_ / "d.yaml")
        << "listen: [\"127.0.0.1:" << port_ << "\"]\n"
        << "tls: {cert: " << dir_ / "server.crt"
        << ", key: " << dir_ / "server.key"
        << ", client_ca: " << dir_ / "ca.crt"
        << "}\n"
        << "auth:\n  identities:\n"
        << "    - {name: alice, role: collector, cert: alice}\n"
        << "    - {name: viewer-bot, role: viewer, token_sha256: " << Hash("tok-viewer") << "}\n"
        << "    - {name: collector-bot, role: collector, token_sha256: " << Hash("tok-collector")
        << "}\n"
        << "    - {name: analyst-bot, role: analyst, token_sha256: " << Hash("tok-analyst") << "}\n"
        << "    - {name: analyst-two, role: analyst, token_sha256: " << Hash("tok-analyst2")
        << "}\n"
        << "    - {name: admin-bot, role: admin, token_sha256: " << Hash("tok-admin") << "}\n";
    Daemon::Options o;
    // The harness adds a unix listener; this --listen replaces the config's list, so give both.
    o.extra_args = {"--config", dir_ / "d.yaml", "--listen", server()};
    daemon_ = std::make_unique<Daemon>(o);
  }

  bool Openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions so;
    so.cwd = dir_.path();
    RunResult r = RunCommand(argv, so);
    if (r.exit_code != 0) ADD_FAILURE() << "openssl failed: " << r.err;
    return r.exit_code == 0;
  }
  bool MakeCa(const std::string& name) {
    return Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", name + ".key", "-out", name + ".crt", "-subj",
                    "/CN=clrdiag test " + name, "-days", "2"});
  }
  bool MakeCert(const std::string& name, const std::string& ca, const std::string& cn,
                const std::string& days, const std::string& ext) {
    if (!Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn})) {
      return false;
    }
    std::vector<std::string> args = {
        "x509",        "-req",   "-in",       name + ".csr",     "-CA",
        ca + ".crt",   "-CAkey", ca + ".key", "-CAcreateserial", "-out",
        name + ".crt", "-days",  days};
    if (!ext.empty()) {
      std::ofstream(dir_ / (name + ".ext")) << ext << "\n";
      args.push_back("-extfile");
      args.push_back(name + ".ext");
    }
    return Openssl(args);
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  // The real client over TCP with `args` before the command.
  RunResult Remote(const std::vector<std::string>& opts, const std::vector<std::string>& cmd) {
    std::vector<std::string> argv = {BinDir() + "/clrdiag", "--server", server()};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    SpawnOptions so;
    so.unset_env = {"CLRDIAG_TOKEN"};
    return RunCommand(argv, so, std::chrono::seconds(60));
  }
  std::vector<std::string> Token(const std::string& t) {
    return {"--ca", dir_ / "ca.crt", "--token", t};
  }
  std::vector<std::string> Cert(const std::string& name, const std::string& ca = "ca") {
    return {"--ca",  dir_ / (ca + ".crt"),  "--cert", dir_ / (name + ".crt"),
            "--key", dir_ / (name + ".key")};
  }

  TempDir dir_{"clrdiag-tls"};
  int port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(TlsTest, TcpWithoutTlsIsRefusedAtStartUp) {
  TempDir t;
  RunResult r = RunCommand({BinDir() + "/clrdiagd", "--listen", server(), "--dump-dir", t / "s"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_CONTAINS(r.err, "TCP requires TLS");
  EXPECT_CONTAINS(r.err, "tls.cert");
  // `insecure: true` allows it, with a loud warning.
  std::ofstream(t / "i.yaml") << "insecure: true\n";
  Daemon::Options o;
  o.extra_args = {"--config", t / "i.yaml", "--listen", server()};
  Daemon d(o);
  ASSERT_TRUE(d.Start()) << d.log();
  EXPECT_CONTAINS(d.log(), "WITHOUT TLS (insecure: true)");
  RunResult ps = Remote({}, {"ps"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  // A wrong token is refused even there.
  RunResult bad = Remote({"--token", "nope"}, {"ps"});
  EXPECT_EQ(bad.exit_code, 5) << bad.err;
}

// Each remote identity owns its sessions: another analyst neither sees nor closes them; an
// admin does both.
TEST_F(TlsTest, RemoteAnalystsSeeAndCloseOnlyTheirOwnSessions) {
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  RunResult c =
      Remote(Token("tok-admin"), {"collect", "-p", std::to_string(app->pid()), "--type", "Mini"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string id = DumpIdFrom(c.out);
  ASSERT_FALSE(id.empty());

  std::vector<std::string> argv = {BinDir() + "/clrdiag", "--server", server()};
  for (const auto& o : Token("tok-analyst")) argv.push_back(o);
  argv.insert(argv.end(), {"analyze", id});
  SpawnOptions so;
  so.unset_env = {"CLRDIAG_TOKEN"};
  InteractiveClient session(argv, dir_.path(), "analyst", so);
  session.Send("eeversion");
  ASSERT_TRUE(session.WaitOut("Workstation", std::chrono::seconds(60))) << session.err();

  auto sessions_of = [&](const std::string& token) {
    RunResult r = Remote(Token(token), {"sessions", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseJson(r.out);
  };
  auto mine = sessions_of("tok-analyst");
  ASSERT_EQ(mine.size(), 1u) << mine.dump();
  EXPECT_EQ(mine[0]["owner"], "analyst-bot");
  std::string sid = mine[0]["id"];
  EXPECT_TRUE(sessions_of("tok-analyst2").empty());
  RunResult steal = Remote(Token("tok-analyst2"), {"sessions", "--close", sid});
  EXPECT_EQ(steal.exit_code, 5) << steal.err;
  EXPECT_CONTAINS(steal.err, "belongs to another user");
  EXPECT_EQ(sessions_of("tok-admin").size(), 1u);
  RunResult table = Remote(Token("tok-admin"), {"sessions"});
  EXPECT_CONTAINS(table.out, "analyst-bot");
  RunResult close = Remote(Token("tok-admin"), {"sessions", "--close", sid});
  EXPECT_EQ(close.exit_code, 0) << close.err;
  EXPECT_TRUE(session.proc().Wait(std::chrono::seconds(30)).has_value());
}

TEST_F(TlsTest, RolesDecideWhatTokensMayDo) {
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  auto app = StartFixture("SleepApp");
  ASSERT_TRUE(app);
  const std::string pid = std::to_string(app->pid());
  TempDir out;

  // viewer: ps and dumps; not collect.
  EXPECT_EQ(Remote(Token("tok-viewer"), {"ps"}).exit_code, 0);
  EXPECT_EQ(Remote(Token("tok-viewer"), {"dumps"}).exit_code, 0);
  // ... and the automation views (issue 8): rules and events (none configured here).
  RunResult vr = Remote(Token("tok-viewer"), {"rules"});
  EXPECT_EQ(vr.exit_code, 0) << vr.err;
  EXPECT_CONTAINS(vr.out, "No collection rules configured");
  RunResult ve = Remote(Token("tok-viewer"), {"events", "--json"});
  EXPECT_EQ(ve.exit_code, 0) << ve.err;
  EXPECT_NE(Remote({"--ca", dir_ / "ca.crt", "--token", "nope"}, {"events"}).exit_code, 0);
  RunResult vc = Remote(Token("tok-viewer"), {"collect", "-p", pid, "--type", "Mini"});
  EXPECT_EQ(vc.exit_code, 5) << vc.err;
  EXPECT_CONTAINS(vc.err, "viewer-bot has the role viewer; collect needs collector");

  // collector: collect and download; not analyze or rm.
  RunResult cc = Remote(Token("tok-collector"), {"collect", "-p", pid, "--type", "Mini"});
  ASSERT_EQ(cc.exit_code, 0) << cc.err;
  std::string id = DumpIdFrom(cc.out);
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Remote(Token("tok-collector"), {"download", id, "-o", out / "d.core"}).exit_code, 0);
  EXPECT_EQ(Remote(Token("tok-viewer"), {"download", id, "-o", out / "v.core"}).exit_code, 5);
  RunResult ca = Remote(Token("tok-collector"), {"analyze", id});
  EXPECT_EQ(ca.exit_code, 5) << ca.err;
  EXPECT_CONTAINS(ca.err, "analyze needs analyst");
  EXPECT_EQ(Remote(Token("tok-collector"), {"rm", id}).exit_code, 5);

  // analyst: analyze (a session opens and ends at end of input), own sessions; not rm.
  RunResult aa = Remote(Token("tok-analyst"), {"analyze", id});
  EXPECT_EQ(aa.exit_code, 0) << aa.out << aa.err;
  EXPECT_EQ(Remote(Token("tok-analyst"), {"sessions"}).exit_code, 0);
  EXPECT_EQ(Remote(Token("tok-viewer"), {"sessions"}).exit_code, 5);
  RunResult ar = Remote(Token("tok-analyst"), {"rm", id});
  EXPECT_EQ(ar.exit_code, 5) << ar.err;
  EXPECT_CONTAINS(ar.err, "delete needs admin");
  // Files on the daemon's host are not for remote identities.
  RunResult ap = Remote(Token("tok-analyst"), {"analyze", "/etc/hostname"});
  EXPECT_EQ(ap.exit_code, 5) << ap.err;

  // admin: rm.
  EXPECT_EQ(Remote(Token("tok-admin"), {"rm", id}).exit_code, 0);

  // The audit log names the identities, denied attempts included.
  auto lines = AuditLines(daemon_->dump_dir() + "/audit.jsonl");
  auto has = [&](const std::string& who, const std::string& action, const std::string& result) {
    for (const auto& l : lines) {
      if (l.value("identity", "") == who && l.value("action", "") == action &&
          l.value("result", "") == result && l.value("auth", "") == "token") {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(has("viewer-bot", "collect", "denied"));
  EXPECT_TRUE(has("collector-bot", "collect", "ok"));
  EXPECT_TRUE(has("collector-bot", "download", "ok"));
  EXPECT_TRUE(has("viewer-bot", "download", "denied"));
  EXPECT_TRUE(has("collector-bot", "analyze.open", "denied"));
  EXPECT_TRUE(has("analyst-bot", "analyze.open", "ok"));
  EXPECT_TRUE(has("analyst-bot", "analyze.close", "ok"));
  EXPECT_TRUE(has("analyst-bot", "delete", "denied"));
  EXPECT_TRUE(has("admin-bot", "delete", "ok"));
}

TEST_F(TlsTest, BadTokensAreRefused) {
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  RunResult none = Remote({"--ca", dir_ / "ca.crt"}, {"ps"});
  EXPECT_EQ(none.exit_code, 5) << none.err;
  EXPECT_CONTAINS(none.err, "no credentials");
  RunResult wrong = Remote(Token("tok-nobody"), {"ps"});
  EXPECT_EQ(wrong.exit_code, 5) << wrong.err;
  EXPECT_CONTAINS(wrong.err, "the token is not valid");
  // From the environment, as documented.
  SpawnOptions so;
  so.env["CLRDIAG_TOKEN"] = "tok-viewer";
  RunResult env = RunCommand(
      {BinDir() + "/clrdiag", "--server", server(), "--ca", dir_ / "ca.crt", "dumps"}, so);
  EXPECT_EQ(env.exit_code, 0) << env.err;
  RunResult spaced = Remote(Token("two words"), {"ps"});
  EXPECT_EQ(spaced.exit_code, 2) << spaced.err;
  // A failed authentication is audited when the RPC is audited.
  Remote(Token("tok-nobody"), {"rm", "abc"});
  bool found = false;
  for (const auto& l : AuditLines(daemon_->dump_dir() + "/audit.jsonl")) {
    found |= l.value("action", "") == "delete" && l.value("result", "") == "denied" &&
             l.value("code", "") == "UNAUTHENTICATED" && l["identity"].is_null();
  }
  EXPECT_TRUE(found) << ReadFile(daemon_->dump_dir() + "/audit.jsonl");
}

TEST_F(TlsTest, ClientCertificates) {
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  // Valid, mapped to alice (collector).
  RunResult ok = Remote(Cert("alice"), {"dumps"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  RunResult rm = Remote(Cert("alice"), {"rm", "abc"});
  EXPECT_EQ(rm.exit_code, 5) << rm.err;
  EXPECT_CONTAINS(rm.err, "alice has the role collector");
  // Valid but not mapped to an identity.
  RunResult bob = Remote(Cert("stranger"), {"dumps"});
  EXPECT_EQ(bob.exit_code, 5) << bob.err;
  EXPECT_CONTAINS(bob.err, "(bob) is not mapped");
  // Signed by another CA: the handshake fails.
  RunResult other = Remote(Cert("mallory"), {"dumps"});
  EXPECT_EQ(other.exit_code, 5) << other.err;
  EXPECT_CONTAINS(other.err, "did not accept the client certificate");
  // Expired.
  RunResult old = Remote(Cert("old"), {"dumps"});
  EXPECT_EQ(old.exit_code, 5) << old.err;
  EXPECT_CONTAINS(old.err, "did not accept the client certificate");
  // The client does not trust the server's CA.
  RunResult distrust = Remote({"--ca", dir_ / "otherca.crt", "--token", "tok-viewer"}, {"dumps"});
  EXPECT_EQ(distrust.exit_code, 5) << distrust.err;
  EXPECT_CONTAINS(distrust.err, "TLS handshake");
  // Plaintext client to the TLS port.
  RunResult plain = Remote({"--token", "tok-viewer"}, {"dumps"});
  EXPECT_NE(plain.exit_code, 0) << plain.err;
  EXPECT_CONTAINS(plain.err, "give --ca");
  // Client option errors.
  RunResult half = Remote({"--cert", dir_ / "alice.crt"}, {"dumps"});
  EXPECT_EQ(half.exit_code, 2) << half.err;
  EXPECT_CONTAINS(half.err, "--cert and --key go together");
  RunResult missing = Remote({"--ca", dir_ / "nothing.crt"}, {"dumps"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_CONTAINS(missing.err, "--ca: cannot read");
  // The unix socket still works, as root (admin).
  EXPECT_EQ(daemon_->Client({"dumps"}).exit_code, 0);
}

TEST(HashTokenToolTest, PrintsTheSha256OfStdin) {
  TempDir t;
  std::ofstream(t / "tok") << "s3cret-token\n";
  SpawnOptions so;
  so.stdin_file = t / "tok";
  RunResult r = RunCommand({BinDir() + "/clrdiagd", "--hash-token"}, so);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Hash("s3cret-token") + "\n");
  RunResult empty = RunCommand({BinDir() + "/clrdiagd", "--hash-token"});
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_CONTAINS(empty.err, "give the token on standard input");
}

}  // namespace
}  // namespace clrdiag::testing
