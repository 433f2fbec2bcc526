// Conformance of the object commands with dotnet-dump (filled in by their family).
#include "tests/integration/util.h"
