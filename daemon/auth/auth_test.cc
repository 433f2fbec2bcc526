#include "daemon/auth/auth.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "daemon/auth/audit.h"

namespace clrdiag::auth {
namespace {

Identity Remote(Role r) {
  Identity id;
  id.name = "remote";
  id.method = Identity::Method::kToken;
  id.role = r;
  return id;
}

TEST(AuthorizeTest, RolesAreOrdered) {
  struct Row {
    Action action;
    Role least;
  } rows[] = {{Action::kListProcesses, Role::kViewer}, {Action::kListDumps, Role::kViewer},
              {Action::kCollect, Role::kCollector},    {Action::kDownload, Role::kCollector},
              {Action::kAnalyze, Role::kAnalyst},      {Action::kSessions, Role::kAnalyst},
              {Action::kDelete, Role::kAdmin}};
  for (const Row& row : rows) {
    for (Role r : {Role::kViewer, Role::kCollector, Role::kAnalyst, Role::kAdmin}) {
      absl::Status st = Authorize(Remote(r), row.action, std::nullopt);
      EXPECT_EQ(st.ok(), r >= row.least) << ActionName(row.action) << " as " << RoleName(r);
      if (!st.ok()) {
        EXPECT_TRUE(absl::IsPermissionDenied(st));
        EXPECT_NE(std::string(st.message()).find(RoleName(row.least)), std::string::npos) << st;
      }
    }
  }
}

TEST(AuthorizeTest, OwnerScopedCallersActOnlyOnTheirOwn) {
  Authenticator a(config::AuthConfig{"none", {}}, false, nullptr);
  Identity user = a.ForUnixPeer({1, 4242, 4242}, "fd:7");
  EXPECT_TRUE(user.owner_scoped);
  EXPECT_EQ(user.role, Role::kAnalyst);
  EXPECT_TRUE(Authorize(user, Action::kCollect, 4242).ok());
  EXPECT_TRUE(Authorize(user, Action::kDelete, 4242).ok());
  absl::Status st = Authorize(user, Action::kCollect, 0, "process 1");
  ASSERT_TRUE(absl::IsPermissionDenied(st));
  EXPECT_NE(std::string(st.message()).find("process 1 belongs to uid 0 (root)"), std::string::npos)
      << st;
  EXPECT_FALSE(Authorize(user, Action::kDownload, -1).ok());  // a remote identity's dump
  Identity root = a.ForUnixPeer({1, 0, 0}, "fd:8");
  EXPECT_FALSE(root.owner_scoped);
  EXPECT_EQ(root.role, Role::kAdmin);
  EXPECT_TRUE(Authorize(root, Action::kDelete, 4242).ok());
}

TEST(AuthorizeTest, AdminGroupMembersAreAdmins) {
  // The primary group counts: a peer whose gid is the admin group's is an admin.
  config::AuthConfig cfg;
  cfg.admin_group = "root";  // gid 0 exists everywhere
  Authenticator a(cfg, false, nullptr);
  EXPECT_EQ(a.ForUnixPeer({1, 4242, 0}, "fd:9").role, Role::kAdmin);
  EXPECT_EQ(a.ForUnixPeer({1, 4242, 4242}, "fd:9").role, Role::kAnalyst);
}

TEST(HashTokenTest, IsSha256Hex) {
  EXPECT_EQ(HashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(OpenAsUserTest, UsesTheCallersRights) {
  ASSERT_EQ(::geteuid(), 0u) << "the tests run as root (make test)";
  struct passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  char dir[] = "/tmp/clrdiag-openas-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ::chmod(dir, 0755);
  std::string open_file = std::string(dir) + "/open", closed = std::string(dir) + "/closed";
  std::ofstream(open_file) << "x";
  std::ofstream(closed) << "x";
  ::chmod(open_file.c_str(), 0644);
  ::chmod(closed.c_str(), 0600);
  auto ok = OpenAsUser(open_file, nobody->pw_uid, nobody->pw_gid);
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto denied = OpenAsUser(closed, nobody->pw_uid, nobody->pw_gid);
  EXPECT_TRUE(absl::IsPermissionDenied(denied.status())) << denied.status();
  auto missing = OpenAsUser(std::string(dir) + "/nothing", nobody->pw_uid, nobody->pw_gid);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  // A readable file in a directory the caller cannot enter is not readable either.
  ::chmod(dir, 0700);
  auto hidden = OpenAsUser(open_file, nobody->pw_uid, nobody->pw_gid);
  EXPECT_TRUE(absl::IsPermissionDenied(hidden.status())) << hidden.status();
  EXPECT_TRUE(OpenAsUser(open_file, 0, 0).ok());
  ::unlink(open_file.c_str());
  ::unlink(closed.c_str());
  ::rmdir(dir);
}

TEST(AuditLogTest, WritesJsonLinesMode0600) {
  char dir[] = "/tmp/clrdiag-audit-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/audit.jsonl";
  auto log = AuditLog::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  Identity who = Remote(Role::kViewer);
  who.peer = "ipv4:127.0.0.1:5555";
  (*log)->Record(&who, "", {"collect", "pid:12", 0}, 7, "needs \"collector\"");
  (*log)->Record(nullptr, "ipv4:1.2.3.4:1", {"download", "abc", 0}, 16, "no credentials");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(path);
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_NE(l1.find("\"identity\":\"remote\",\"auth\":\"token\",\"role\":\"viewer\""),
            std::string::npos)
      << l1;
  EXPECT_NE(l1.find("\"action\":\"collect\",\"target\":\"pid:12\",\"result\":\"denied\","
                    "\"code\":\"PERMISSION_DENIED\",\"message\":\"needs \\\"collector\\\"\""),
            std::string::npos)
      << l1;
  EXPECT_NE(l2.find("\"identity\":null"), std::string::npos) << l2;
  EXPECT_NE(l2.find("\"peer\":\"ipv4:1.2.3.4:1\""), std::string::npos) << l2;
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace clrdiag::auth
