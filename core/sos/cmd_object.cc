// Object and type commands (dumpobj, dumpmt).
#include "core/sos/command.h"

namespace clrdiag::sos {

void RegisterObjectCommands(CommandRegistry& r) {}

}  // namespace clrdiag::sos
