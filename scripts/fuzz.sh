#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a while.
#
# Usage: scripts/fuzz.sh [--seconds N] [--build-dir DIR] [--build-only] [TARGET...]
#   TARGET: core_file_fuzz, ipc_codec_fuzz, procfs_fuzz, portable_pdb_fuzz, cgroup_fuzz,
#           s3_xml_fuzz, nettrace_fuzz (default: all seven)
#   --seconds N   time per target (default 300; `make test` runs each for 25 s, as the ctest
#                 tests fuzz_<target>, beside the other tests)
#   --build-only  build the targets and their seeds, fuzz nothing
# Several runs on one DIR may go at once (different targets): the build is serialized.
#
# The corpus of each target grows in DIR/fuzz-corpus/<target>/ across runs; seeds come from
# a real core (gcore of a short-lived `sleep`, truncated to 64 KiB so the notes stay and the
# memory is cut off). A crash leaves its input in DIR/fuzz-artifacts/ and fails the run
# (exit 1); reproduce with `DIR/bin/<target> DIR/fuzz-artifacts/<file>`.
set -euo pipefail

seconds=300
build_dir=""
build_only=0
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${build_dir:-$repo/build-fuzz}"
((${#targets[@]})) || targets=(core_file_fuzz ipc_codec_fuzz procfs_fuzz portable_pdb_fuzz cgroup_fuzz
  s3_xml_fuzz nettrace_fuzz)

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found: run scripts/install-deps.sh" >&2
  exit 1
fi
# A separate build tree: only the fuzz targets, built with clang.
exec 9>"${build_dir}.lock"
flock 9
cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLRDIAG_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCLRDIAG_STATIC_CLIENT=OFF \
  -DCLRDIAG_STATIC_DAEMON=OFF >"$build_dir.configure.log" 2>&1 ||
  { cat "$build_dir.configure.log" >&2; exit 1; }
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}" >"$build_dir.build.log" 2>&1 ||
  { tail -50 "$build_dir.build.log" >&2; exit 1; }

# Seeds for the core reader: a real core's first 64 KiB.
seed_dir="$build_dir/fuzz-seeds/core_file_fuzz"
if [[ ! -s "$seed_dir/sleep-core-64k" ]] && command -v gcore >/dev/null; then
  mkdir -p "$seed_dir"
  tmp="$(mktemp -d)"
  sleep 30 &
  sleeper=$!
  if gcore -o "$tmp/core" "$sleeper" >/dev/null 2>&1; then
    head -c 65536 "$tmp/core.$sleeper" >"$seed_dir/sleep-core-64k"
  fi
  kill "$sleeper" 2>/dev/null || true
  wait "$sleeper" 2>/dev/null || true
  rm -rf "$tmp"
fi

# Seeds for the portable PDB reader: the fixtures' PDBs, when the main build has built them.
pdb_seeds="$build_dir/fuzz-seeds/portable_pdb_fuzz"
for pdb in "$repo"/build/fixtures/*/*.pdb; do
  [[ -f "$pdb" ]] || continue
  mkdir -p "$pdb_seeds"
  cp "$pdb" "$pdb_seeds/"
done

# Seeds for the cgroup parser: the recorded /proc/<pid>/cgroup samples.
mkdir -p "$build_dir/fuzz-seeds/cgroup_fuzz"
cp "$repo"/tests/data/cgroup/* "$build_dir/fuzz-seeds/cgroup_fuzz/"

# Seeds for the S3 XML readers: answers of the shapes S3 sends.
mkdir -p "$build_dir/fuzz-seeds/s3_xml_fuzz"
printf '%s' '<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><Message>a &amp; b</Message></Error>' \
  >"$build_dir/fuzz-seeds/s3_xml_fuzz/error.xml"
printf '%s' '<InitiateMultipartUploadResult><UploadId>abc&#34;x&quot;</UploadId></InitiateMultipartUploadResult>' \
  >"$build_dir/fuzz-seeds/s3_xml_fuzz/initiate.xml"
# Seeds for the nettrace parser: streams recorded from real runtimes.
mkdir -p "$build_dir/fuzz-seeds/nettrace_fuzz"
cp "$repo"/tests/data/eventpipe/*.nettrace "$build_dir/fuzz-seeds/nettrace_fuzz/"

mkdir -p "$build_dir/fuzz-artifacts"
# UBSan's default is to print a finding and go on, which libFuzzer does not count as a crash:
# make each finding end the run (and leave its input), as ASan's do.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
# Built: other runs on this tree may go on while this one fuzzes.
flock -u 9
if ((build_only)); then
  echo "fuzz.sh: built ${targets[*]} in $build_dir"
  exit 0
fi
status=0
for t in "${targets[@]}"; do
  corpus="$build_dir/fuzz-corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [[ -d "$build_dir/fuzz-seeds/$t" ]] && seeds=("$build_dir/fuzz-seeds/$t")
  log="$build_dir/fuzz-$t.log"
  if "$build_dir/bin/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
      -artifact_prefix="$build_dir/fuzz-artifacts/$t-" -print_final_stats=1 \
      "$corpus" "${seeds[@]}" >"$log" 2>&1; then
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    echo "fuzz.sh: $t: no crash in ${seconds}s, $runs inputs, corpus $(ls "$corpus" | wc -l) files"
  else
    tail -40 "$log" >&2
    echo "fuzz.sh: $t FAILED: see $log and $build_dir/fuzz-artifacts/" >&2
    status=1
  fi
done
exit $status
