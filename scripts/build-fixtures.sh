#!/usr/bin/env bash
# Build the .NET test fixtures (tests/fixtures/<Name>/<Name>.csproj) into OUTDIR.
#
# Usage: scripts/build-fixtures.sh OUTDIR
#
# Result: OUTDIR/<Name>/<Name> (apphost, run directly) and OUTDIR/<Name>/<Name>.dll
# (run with `dotnet OUTDIR/<Name>/<Name>.dll`), framework-dependent, Release, net10.0.
# Intermediate files go to OUTDIR/.build/<Name>/{obj,bin}: the source tree stays clean.
# A fixture is rebuilt only when a file in its folder (or this script) is newer than
# its stamp OUTDIR/.build/<Name>.stamp. The net10.0 builds work offline: their restore
# needs no package (the SDK's targeting and apphost packs are enough); nothing is fetched.
# On failure of one of them: prints the build log and exits 1.
#
# Older runtimes: the fixtures named in OLDER_FIXTURES are also published self-contained
# for each TFM in OLDER_TFMS, as OUTDIR/<tfm>/<Name>/<Name>, with that runtime's
# libcoreclr.so and libmscordaccore.so beside the app (what the multi-runtime conformance
# tests analyze). Stamps: OUTDIR/.build/<tfm>/<Name>.stamp. Their first publish restores the
# Microsoft.NETCore.App Ref/Host/Runtime packs of that TFM (the SDK picks the versions) from
# the configured NuGet feed into the NuGet cache (~190 MB per TFM); later runs use the cache
# and fetch nothing. If that publish fails (e.g. offline with an empty cache), the other
# fixtures are still usable: the log is kept as OUTDIR/<tfm>/<Name>.error (the harness shows
# it when a test asks for that fixture), a warning is printed, and the script exits 0.
#
# Prints one summary line on success. No stdin needed; leaves no MSBuild/compiler server
# processes behind.
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
failed=()
OLDER_TFMS=(net8.0 net9.0)
OLDER_FIXTURES=(HeapApp)

# True if the stamp $1 exists, this script is older than it, and no file under the fixture
# folder $2 is newer.
up_to_date() {
    local stamp="$1" dir="$2" newer
    [[ -f "$stamp" && "$script_path" -ot "$stamp" ]] || return 1
    newer="$(find "$dir" \( -name bin -o -name obj \) -prune -o -type f -newer "$stamp" -print -quit)"
    [[ -z "$newer" ]]
}

for proj in "$fixtures_dir"/*/*.csproj; do
    [[ -e "$proj" ]] || continue
    dir="$(dirname "$proj")"
    name="$(basename "$proj" .csproj)"
    [[ "$(basename "$dir")" == "$name" ]] || continue

    stamp="$build_root/$name.stamp"
    if [[ -x "$outdir/$name/$name" && -f "$outdir/$name/$name.dll" ]] && up_to_date "$stamp" "$dir"; then
        current=$((current + 1))
        continue
    fi

    rm -f "$stamp"
    log="$build_root/$name.log"
    if ! dotnet build "$proj" \
            -c Release \
            -o "$outdir/$name" \
            -nologo -v:quiet -nodeReuse:false \
            -p:TargetFrameworks=net10.0 \
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

# Self-contained copies for the older runtimes. -p:TargetFrameworks=<tfm> restricts restore
# to that TFM (no other TFM's packs are fetched); DisableTransitiveFrameworkReferenceDownloads
# keeps restore to the Microsoft.NETCore.App packs this console app uses; NuGetAudit=false: no
# vulnerability-data download (the packs are the runtime under test, and with
# TreatWarningsAsErrors an offline audit warning would fail a build the cache could serve).
for tfm in "${OLDER_TFMS[@]}"; do
    for name in "${OLDER_FIXTURES[@]}"; do
        dir="$fixtures_dir/$name"
        proj="$dir/$name.csproj"
        [[ -f "$proj" ]] || continue
        out="$outdir/$tfm/$name"
        stamp="$build_root/$tfm/$name.stamp"
        error="$outdir/$tfm/$name.error"
        if [[ -x "$out/$name" && -f "$out/libmscordaccore.so" && ! -e "$error" ]] \
                && up_to_date "$stamp" "$dir"; then
            current=$((current + 1))
            continue
        fi
        mkdir -p "$build_root/$tfm" "$outdir/$tfm"
        rm -f "$stamp" "$error"
        log="$build_root/$tfm/$name.log"
        if ! dotnet publish "$proj" \
                -c Release \
                -f "$tfm" -r linux-x64 --self-contained \
                -o "$out" \
                -nologo -v:quiet -nodeReuse:false \
                -p:TargetFrameworks="$tfm" \
                -p:DisableTransitiveFrameworkReferenceDownloads=true \
                -p:NuGetAudit=false \
                -p:BaseIntermediateOutputPath="$build_root/$tfm/$name/obj/" \
                -p:BaseOutputPath="$build_root/$tfm/$name/bin/" \
                -p:UseSharedCompilation=false \
                </dev/null >"$log" 2>&1; then
            { echo "build-fixtures: could not publish $name self-contained for $tfm:"; cat "$log"; } \
                >"$error"
            rm -rf "$out"  # no stale build for the tests to pick up
            echo "build-fixtures: WARNING: could not publish $name for $tfm (see $error);" \
                 "tests of that runtime will fail" >&2
            failed+=("$tfm/$name")
            continue
        fi
        touch "$stamp"
        built+=("$tfm/$name")
    done
done
total=$(( ${#built[@]} + current + ${#failed[@]} ))
echo "build-fixtures: $total fixtures in $outdir (built ${#built[@]}${built[*]:+: ${built[*]}}, up to date $current${failed[*]:+, FAILED ${#failed[@]}: ${failed[*]}}) in $((SECONDS - start))s"
