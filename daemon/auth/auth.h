// Who is calling, and what they may do. One Authenticator resolves the caller of a gRPC call
// (unix socket: SO_PEERCRED; TCP: the TLS client certificate and/or a bearer token) into an
// Identity; one function, Authorize, decides every action. Handlers call both first.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"
#include "daemon/config/config.h"
#include "daemon/service/peer_registry.h"

namespace grpc {
class ServerContext;
}

namespace clrdiag::auth {

// Ordered: each role may do what the ones before it may.
enum class Role { kViewer = 0, kCollector = 1, kAnalyst = 2, kAdmin = 3 };
const char* RoleName(Role r);
std::optional<Role> ParseRole(const std::string& name);

enum class Action {
  kListProcesses,  // viewer
  kListDumps,      // viewer (also GetDump)
  kCollect,        // collector
  kDownload,       // collector
  kAnalyze,        // analyst (dumps in the catalog and files on the daemon's host)
  kSessions,       // analyst: list/close one's own sessions; admin: everyone's
  kDelete,         // admin; owner-scoped callers: their own dumps
};
const char* ActionName(Action a);

struct Identity {
  enum class Method { kUnix, kCertificate, kToken, kInsecure };
  std::string name;  // "uid:1000(alice)", a configured identity's name, or "anonymous"
  Method method = Method::kUnix;
  Role role = Role::kViewer;
  // Unix callers: their uid/gid. Owner-scoped callers act only on what their uid owns.
  std::optional<uid_t> uid;
  gid_t gid = 0;
  bool owner_scoped = false;
  std::string peer;  // the gRPC peer string (address or fd)

  // The uid recorded as a dump's requester and a session's owner: the caller's uid, or -1
  // for remote identities.
  int64_t owner_id() const { return uid ? static_cast<int64_t>(*uid) : -1; }
  // Who owns an analysis session (per-user limits, who sees and closes it): the uid for unix
  // callers; for remote identities a negative number of their own, derived from the name, so
  // that one remote analyst neither sees nor closes another's sessions.
  int64_t session_owner() const;
  const char* method_name() const;
};

// PERMISSION_DENIED with a message saying what is missing, or OK. `owner` is the uid that owns
// the target (a process's uid, a dump's requester); nullopt when there is no single target.
absl::Status Authorize(const Identity& who, Action action, std::optional<int64_t> owner,
                       const std::string& what = "");

// The SHA-256 of a bearer token, lower-case hex (what `auth.identities[].token_sha256` holds).
std::string HashToken(const std::string& token);

class Authenticator {
 public:
  // `tcp_tls`: whether TCP listeners use TLS (else they are plaintext, `insecure: true`).
  // `unix_peer`: the credentials of a local connection from its gRPC peer string (nullopt: not
  // a unix connection of ours).
  using PeerLookup = std::function<std::optional<service::PeerCred>(const std::string& peer)>;
  Authenticator(const config::AuthConfig& cfg, bool tcp_tls, PeerLookup unix_peer);

  // UNAUTHENTICATED (no or unknown credentials) or the caller's identity.
  absl::StatusOr<Identity> Resolve(const grpc::ServerContext& ctx) const;
  // A unix caller with these credentials (root and admin-group members are admins).
  Identity ForUnixPeer(const service::PeerCred& cred, const std::string& peer) const;

  const std::string& admin_group() const { return admin_group_; }

 private:
  bool InAdminGroup(uid_t uid, gid_t gid) const;

  std::vector<config::IdentityConfig> identities_;
  bool tcp_tls_;
  PeerLookup unix_peer_;
  std::string admin_group_;  // resolved; empty: none
  std::optional<gid_t> admin_gid_;
};

// Opens `path` read-only with the rights of `uid` (its primary group `gid` and supplementary
// groups), so a root daemon never opens, for a caller, a file the caller could not open: the
// kernel checks every directory on the way, ACLs included. Done in a short-lived child that
// drops to the caller's ids and passes the open file back. PERMISSION_DENIED / NOT_FOUND.
absl::StatusOr<UniqueFd> OpenAsUser(const std::string& path, uid_t uid, gid_t gid);

}  // namespace clrdiag::auth
