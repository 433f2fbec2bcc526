// Minimal sd_notify(3): sends `state` to $NOTIFY_SOCKET if set (path or abstract "@name").
#pragma once

#include <string>

namespace clrdiag {
bool SdNotify(const std::string& state);
}
