// Conformance of the module commands with dotnet-dump (filled in by their family).
#include "tests/integration/util.h"
