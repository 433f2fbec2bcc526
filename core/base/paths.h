// Default locations shared by the daemon and the client.
#pragma once

#include <string>

namespace clrdiag {

// root: /run/clrdiag/clrdiagd.sock; others: $XDG_RUNTIME_DIR/clrdiag/clrdiagd.sock
// (or /tmp/clrdiag-<uid>/clrdiagd.sock without XDG_RUNTIME_DIR).
std::string DefaultSocketPath();
// The system daemon's socket, whatever the caller's uid.
inline constexpr char kSystemSocketPath[] = "/run/clrdiag/clrdiagd.sock";
// root: /var/lib/clrdiag; others: $XDG_DATA_HOME/clrdiag or ~/.local/share/clrdiag.
std::string DefaultDumpDir();

}  // namespace clrdiag
