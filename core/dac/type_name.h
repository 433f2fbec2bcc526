// Type names as .NET diagnostics tools print them. The DAC returns reflection-style names
// ("System.Collections.Generic.Dictionary`2+Entry[[System.String, System.Private.CoreLib],
// [System.Int32, System.Private.CoreLib]][]"); dotnet-dump's managed commands (ClrMD) show
// C#-like ones ("System.Collections.Generic.Dictionary<System.String, System.Int32>+Entry[]").
#pragma once

#include <string>
#include <string_view>

namespace clrdiag::dac {

// Converts a DAC type name to the C#-like form: generic arity markers (`N) become <...> with
// the arguments distributed over the nested names by arity, assembly qualifiers are dropped,
// array suffixes are kept. Generic definitions without arguments get T1..Tn placeholders.
// A name that does not parse is returned unchanged.
std::string PrettyTypeName(std::string_view dac_name);

}  // namespace clrdiag::dac
