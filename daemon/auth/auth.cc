#include "daemon/auth/auth.h"

#include <fcntl.h>
#include <grp.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/fd_passing.h"
#include "core/base/sha256.h"

namespace clrdiag::auth {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kCollector:
      return "collector";
    case Role::kAnalyst:
      return "analyst";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> ParseRole(const std::string& name) {
  for (Role r : {Role::kViewer, Role::kCollector, Role::kAnalyst, Role::kAdmin}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

const char* ActionName(Action a) {
  switch (a) {
    case Action::kListProcesses:
      return "ps";
    case Action::kListDumps:
      return "dumps";
    case Action::kCollect:
      return "collect";
    case Action::kDownload:
      return "download";
    case Action::kAnalyze:
      return "analyze";
    case Action::kSessions:
      return "sessions";
    case Action::kDelete:
      return "delete";
  }
  return "?";
}

int64_t Identity::session_owner() const {
  if (uid) return static_cast<int64_t>(*uid);
  if (method == Method::kInsecure) return -1;
  uint32_t h = 2166136261u;  // FNV-1a of the configured identity's name
  for (unsigned char ch : name) h = (h ^ ch) * 16777619u;
  return -2 - static_cast<int64_t>(h & 0x7fffffff);
}

const char* Identity::method_name() const {
  switch (method) {
    case Method::kUnix:
      return "unix";
    case Method::kCertificate:
      return "certificate";
    case Method::kToken:
      return "token";
    case Method::kInsecure:
      return "insecure";
  }
  return "?";
}

namespace {

Role Needed(Action a) {
  switch (a) {
    case Action::kListProcesses:
    case Action::kListDumps:
      return Role::kViewer;
    case Action::kCollect:
    case Action::kDownload:
      return Role::kCollector;
    case Action::kAnalyze:
    case Action::kSessions:
      return Role::kAnalyst;
    case Action::kDelete:
      return Role::kAdmin;
  }
  return Role::kAdmin;
}

std::string UserName(uid_t uid) {
  struct passwd pw, *res = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res) return res->pw_name;
  return "";
}

}  // namespace

absl::Status Authorize(const Identity& who, Action action, std::optional<int64_t> owner,
                       const std::string& what) {
  Role need = Needed(action);
  // Owner-scoped callers (local non-admin users) may remove what they collected themselves.
  if (action == Action::kDelete && who.owner_scoped) need = Role::kAnalyst;
  if (who.role < need) {
    return absl::PermissionDeniedError(absl::StrCat(
        who.name, " has the role ", RoleName(who.role), "; ", ActionName(action), " needs ",
        RoleName(need), " or more (ask the daemon's administrator to change auth.identities)"));
  }
  if (who.owner_scoped && owner && (!who.uid || *owner != static_cast<int64_t>(*who.uid))) {
    std::string whose = *owner < 0
                            ? std::string("a remote user")
                            : absl::StrCat("uid ", *owner,
                                           UserName(static_cast<uid_t>(*owner)).empty()
                                               ? ""
                                               : " (" + UserName(static_cast<uid_t>(*owner)) + ")");
    return absl::PermissionDeniedError(absl::StrCat(
        what.empty() ? "that" : what, " belongs to ", whose, "; ", who.name, " may ",
        ActionName(action),
        " only its own processes and dumps. Run as that user or as root, or ask to be added to "
        "the daemon's admin group (auth.admin_group)"));
  }
  return absl::OkStatus();
}

std::string HashToken(const std::string& token) {
  Sha256 h;
  h.Update(token.data(), token.size());
  return h.HexDigest();
}

Authenticator::Authenticator(const config::AuthConfig& cfg, bool tcp_tls, PeerLookup unix_peer)
    : identities_(cfg.identities),
      tcp_tls_(tcp_tls),
      unix_peer_(std::move(unix_peer)),
      admin_group_(config::ResolveGroupSetting(cfg.admin_group, "clrdiag-admin")) {
  if (!admin_group_.empty()) {
    if (struct group* g = ::getgrnam(admin_group_.c_str())) admin_gid_ = g->gr_gid;
  }
}

bool Authenticator::InAdminGroup(uid_t uid, gid_t gid) const {
  if (!admin_gid_) return false;
  if (gid == *admin_gid_) return true;
  std::string name = UserName(uid);
  if (name.empty()) return false;
  int n = 64;
  std::vector<gid_t> groups(n);
  while (::getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n) + 16);
    n = static_cast<int>(groups.size());
  }
  for (int i = 0; i < n; ++i) {
    if (groups[i] == *admin_gid_) return true;
  }
  return false;
}

Identity Authenticator::ForUnixPeer(const service::PeerCred& cred, const std::string& peer) const {
  Identity id;
  id.method = Identity::Method::kUnix;
  id.uid = cred.uid;
  id.gid = cred.gid;
  id.peer = peer;
  std::string user = UserName(cred.uid);
  id.name = absl::StrCat("uid:", cred.uid, user.empty() ? "" : "(" + user + ")");
  if (cred.uid == 0 || InAdminGroup(cred.uid, cred.gid)) {
    id.role = Role::kAdmin;
  } else {
    id.role = Role::kAnalyst;
    id.owner_scoped = true;
  }
  return id;
}

absl::StatusOr<Identity> Authenticator::Resolve(const grpc::ServerContext& ctx) const {
  std::string peer = ctx.peer();
  if (unix_peer_) {
    if (auto cred = unix_peer_(peer)) return ForUnixPeer(*cred, peer);
  }
  if (absl::StartsWith(peer, "fd:")) {
    return absl::UnauthenticatedError("unknown local connection");
  }
  Identity id;
  id.peer = peer;
  // A bearer token, when given, must be valid (even with a valid certificate).
  auto md = ctx.client_metadata().find("authorization");
  if (md != ctx.client_metadata().end()) {
    std::string value(md->second.data(), md->second.size());
    if (!absl::StartsWithIgnoreCase(value, "Bearer ")) {
      return absl::UnauthenticatedError(
          "the authorization header must be 'Bearer <token>' (clrdiag --token)");
    }
    std::string hash = HashToken(value.substr(7));
    for (const auto& c : identities_) {
      if (c.token_sha256.empty() || c.token_sha256.size() != hash.size()) continue;
      // Constant time: no early exit on the first differing digit.
      unsigned diff = 0;
      for (size_t i = 0; i < hash.size(); ++i)
        diff |= static_cast<unsigned>(hash[i] ^ c.token_sha256[i]);
      if (diff == 0) {
        id.name = c.name;
        id.method = Identity::Method::kToken;
        id.role = *ParseRole(c.role);
        return id;
      }
    }
    return absl::UnauthenticatedError("the token is not valid for this daemon");
  }
  auto auth = ctx.auth_context();
  if (tcp_tls_ && auth && auth->IsPeerAuthenticated()) {
    std::vector<std::string> names;
    for (const char* prop : {"x509_common_name", "x509_subject_alternative_name"}) {
      for (const auto& v : auth->FindPropertyValues(prop)) names.emplace_back(v.data(), v.size());
    }
    for (const auto& c : identities_) {
      if (c.cert.empty()) continue;
      for (const auto& n : names) {
        if (n == c.cert) {
          id.name = c.name;
          id.method = Identity::Method::kCertificate;
          id.role = *ParseRole(c.role);
          return id;
        }
      }
    }
    return absl::UnauthenticatedError(
        absl::StrCat("the client certificate (", names.empty() ? std::string("no name") : names[0],
                     ") is not mapped to an identity in the daemon's auth.identities"));
  }
  if (!tcp_tls_) {
    // Plaintext TCP (`insecure: true`): the operator chose to trust the network.
    id.name = "anonymous";
    id.method = Identity::Method::kInsecure;
    id.role = Role::kAdmin;
    return id;
  }
  return absl::UnauthenticatedError(
      "no credentials: give a bearer token (--token or CLRDIAG_TOKEN) or a client certificate "
      "(--cert and --key)");
}

absl::StatusOr<UniqueFd> OpenAsUser(const std::string& path, uid_t uid, gid_t gid) {
  // Everything the child needs is computed here: after fork() only raw system calls.
  std::vector<gid_t> groups(64);
  std::string name = UserName(uid);
  int n = 0;
  if (!name.empty()) {
    n = static_cast<int>(groups.size());
    while (::getgrouplist(name.c_str(), gid, groups.data(), &n) < 0) {
      groups.resize(static_cast<size_t>(n) + 16);
      n = static_cast<int>(groups.size());
    }
  } else {
    groups[0] = gid;
    n = 1;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  UniqueFd parent(sv[0]), child_end(sv[1]);
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    int err = 0;
    if (::syscall(SYS_setgroups, n, groups.data()) != 0 ||
        ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
        ::syscall(SYS_setresuid, uid, uid, uid) != 0) {
      err = errno;
    }
    int fd = err ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) ::_exit(err ? err : errno);  // the exit status carries the errno
    ::_exit(SendFd(child_end.get(), fd) ? 0 : 255);
  }
  child_end.Reset();
  UniqueFd got = ReceiveFd(parent.get());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got) return got;
  int err = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
  if (err == ENOENT || err == ENOTDIR) {
    return absl::NotFoundError(absl::StrCat("no file ", path, " on the daemon's host"));
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "uid ", uid, " may not read ", path,
      " (the daemon opens host files with the caller's rights; make it readable to you, or run "
      "as its owner)"));
}

}  // namespace clrdiag::auth
