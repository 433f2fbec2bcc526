// A MethodDesc described the way dumpmd (and ip2md, ehinfo) show it.
#pragma once

#include <cstdint>
#include <string>

#include "core/sos/command.h"
#include "core/sos/json.h"

namespace clrdiag::sos {

// Appends the MethodDesc's description to `out` ("Method Name:", "Class:", ... "Version
// History:" and its versions) and fills `j`; false if `md` is not a MethodDesc (cmd_code.cc).
bool DescribeMethodDesc(CommandContext& ctx, uint64_t md, std::string* out, Json* j);

}  // namespace clrdiag::sos
