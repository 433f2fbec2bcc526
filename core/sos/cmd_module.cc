// Module and domain commands (clrmodules, lm, dumpdomain, runtimes).
#include "core/sos/command.h"

namespace clrdiag::sos {

void RegisterModuleCommands(CommandRegistry& r) {}

}  // namespace clrdiag::sos
