#!/usr/bin/env bash
# Build the .NET test fixtures (tests/fixtures/<Name>/<Name>.csproj) into OUTDIR.
#
# Usage: scripts/build-fixtures.sh OUTDIR
#
# Result: OUTDIR/<Name>/<Name> (apphost, run directly) and OUTDIR/<Name>/<Name>.dll
# (run with `dotnet OUTDIR/<Name>/<Name>.dll`), framework-dependent, Release, net10.0.
# Intermediate files go to OUTDIR/.build/<Name>/{obj,bin}: the source tree stays clean.
# A fixture is rebuilt only when a file in its folder (or this script) is newer than
# its stamp OUTDIR/.build/<Name>.stamp. Works offline: restore of these projects needs
# no package (the SDK's targeting and apphost packs are enough); nothing is fetched.
# Prints one summary line on success; on failure prints the build log and exits 1.
# No stdin needed; leaves no MSBuild/compiler server processes behind.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

script_path="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
repo_root="$(cd "$(dirname "$script_path")/.." && pwd)"
fixtures_dir="$repo_root/tests/fixtures"

mkdir -p "$1"
outdir="$(cd "$1" && pwd)"
build_root="$outdir/.build"
mkdir -p "$build_root"
# Serialise concurrent invocations on the same OUTDIR (e.g. parallel ctest setups).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$build_root/lock"
    flock 9
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE=1
export DOTNET_GENERATE_ASPNET_CERTIFICATE=false
# No long-lived build servers: they would outlive the build and show up as .NET
# processes in discovery tests (dotnet-dump ps, the daemon's own process list).
export DOTNET_CLI_USE_MSBUILD_SERVER=0
export MSBUILDDISABLENODEREUSE=1
export UseSharedCompilation=false
if [[ -z "${HOME:-}" ]]; then
    export DOTNET_CLI_HOME="$build_root/dotnet-home"
    export NUGET_PACKAGES="$build_root/nuget-packages"
fi

if ! command -v dotnet >/dev/null 2>&1; then
    echo "build-fixtures: dotnet not found on PATH" >&2
    exit 1
fi

start=$SECONDS
built=()
current=0

for proj in "$fixtures_dir"/*/*.csproj; do
    [[ -e "$proj" ]] || continue
    dir="$(dirname "$proj")"
    name="$(basename "$proj" .csproj)"
    [[ "$(basename "$dir")" == "$name" ]] || continue

    stamp="$build_root/$name.stamp"
    if [[ -f "$stamp" && -x "$outdir/$name/$name" && -f "$outdir/$name/$name.dll" \
          && "$script_path" -ot "$stamp" ]]; then
        newer="$(find "$dir" \( -name bin -o -name obj \) -prune -o -type f -newer "$stamp" -print -quit)"
        if [[ -z "$newer" ]]; then
            current=$((current + 1))
            continue
        fi
    fi

    rm -f "$stamp"
    log="$build_root/$name.log"
    if ! dotnet build "$proj" \
            -c Release \
            -o "$outdir/$name" \
            -nologo -v:quiet -nodeReuse:false \
            -p:BaseIntermediateOutputPath="$build_root/$name/obj/" \
            -p:BaseOutputPath="$build_root/$name/bin/" \
            -p:UseSharedCompilation=false \
            </dev/null >"$log" 2>&1; then
        cat "$log" >&2
        echo "build-fixtures: FAILED to build $name (log: $log)" >&2
        exit 1
    fi
    touch "$stamp"
    built+=("$name")
done

total=$(( ${#built[@]} + current ))
if [[ $total -eq 0 ]]; then
    echo "build-fixtures: no fixtures found under $fixtures_dir" >&2
    exit 1
fi
echo "build-fixtures: $total fixtures in $outdir (built ${#built[@]}${built[*]:+: ${built[*]}}, up to date $current) in $((SECONDS - start))s"
