// The JSON forms of SOS commands. In JSON mode (RunOptions::json) each command writes exactly
// one JSON value, its result; the engine wraps it as {"command": LINE, "result": VALUE} (or
// {"command": LINE, "error": MESSAGE}) and ends the document with a newline. Numbers are
// numbers; addresses, MethodTables and handles are hex strings "0x..." (64-bit values do not
// survive a trip through a double in many JSON readers). docs/json-output.md lists the shapes.
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace clrdiag::sos {

using Json = nlohmann::ordered_json;

// 0x7f12ab → "0x7f12ab" (lower case, no padding).
std::string JsonHex(uint64_t value);

// Writes `value` as the command's result (once per command).
struct CommandContext;
void WriteJson(CommandContext& ctx, const Json& value);

}  // namespace clrdiag::sos
