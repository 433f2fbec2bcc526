#!/usr/bin/env bash
# Side-by-side timing of the heap-graph commands, clrdiag vs dotnet-dump, in one run:
#   - gcroot of the Fixture.ChainEnd object (held only through a chain of CHAIN links);
#   - objsize of the List<Fixture.Customer> (the root list of the customers);
#   - verifyheap, if this build has it (another part of issue 6: the slot is below).
# Fixture: `HeapApp CUSTOMERS MB --objects OBJECTS --zoo --chain CHAIN` (defaults: 10000
# customers, 30 MiB of blobs, 5,000,000 Items, 100,000 links: about 506 MB of objects, 10.1 M
# of them), one Full dump collected through a private daemon; both tools read that one file
# (warm page cache). DUMP=/abs/path/to/dump skips the fixture and times that dump instead.
# Each command: RUNS (3) runs of each tool, interleaved, each in a fresh session; the table has
# clrdiag's first run (for gcroot: the heap pass, and the graph saved in the store's cache/),
# the median of its later runs (gcroot: the graph mapped from that file), the reference's
# median and the ratios; the outputs are compared (after the first line, without the
# reference's "(static variable: ...)" notes).
# Needs a built tree (build/bin) and the fixtures (build/fixtures); not part of `make test`.
# Stops only what it started (by pid) and removes its temp dir on exit (KEEP_DUMP=FILE keeps a
# copy of the dump).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
FIX=${FIXTURES:-$ROOT/build/fixtures}
DD=${DOTNET_DUMP:-$HOME/.dotnet/tools/dotnet-dump}
RUNS=${RUNS:-3}
CUSTOMERS=${CUSTOMERS:-10000}
MB=${MB:-30}
OBJECTS=${OBJECTS:-5000000}
CHAIN=${CHAIN:-100000}
T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/clrdiag-hc.XXXXXX")
D=""; A=""
cleanup() {
  set +e
  for p in "$A" "$D"; do
    [[ -n $p ]] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
die() { echo "heap_commands: $*" >&2; exit 1; }
now_us() { NOW_US=${EPOCHREALTIME/./}; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

[[ -x $DD ]] || die "no dotnet-dump at $DD (WITH_REFERENCE=1 scripts/install-deps.sh)"
# Private copies: a rebuild of build/bin during the run must not swap binaries.
mkdir -p "$T/bin"
cp "$BIN/clrdiagd" "$BIN/clrdiag" "$BIN/clrdiag-worker" "$T/bin/"
"$T/bin/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/daemon.log" & D=$!
C=("$T/bin/clrdiag" --server "unix:$T/d.sock")
for _ in $(seq 1 100); do [[ -S $T/d.sock ]] && break; sleep 0.1; done
[[ -S $T/d.sock ]] || { cat "$T/daemon.log"; die "the daemon did not start"; }
if [[ -n ${DUMP:-} ]]; then
  [[ $DUMP == /* && -f $DUMP ]] || die "DUMP must be an absolute path to a dump file"
  ID=$DUMP
else
  [[ -x $FIX/HeapApp/HeapApp ]] || die "no HeapApp in $FIX (scripts/build-fixtures.sh build/fixtures)"
  "$FIX/HeapApp/HeapApp" "$CUSTOMERS" "$MB" --objects "$OBJECTS" --zoo --chain "$CHAIN" \
    >"$T/app" 2>&1 </dev/null & A=$!
  for _ in $(seq 1 900); do grep -q READY "$T/app" 2>/dev/null && break; sleep 0.2; done
  grep -q READY "$T/app" || { cat "$T/app"; die "HeapApp not ready"; }
  "${C[@]}" collect -p "$A" --type Full >"$T/c.txt" 2>&1 || { cat "$T/c.txt"; die "collect failed"; }
  ID=$(awk '/Dump id/{print $3}' "$T/c.txt")
  DUMP="$T/store/dumps/$ID/dump"
  [[ -f $DUMP ]] || die "cannot find the stored dump of $ID"
  kill "$A"; wait "$A" 2>/dev/null || true; A=""
fi

# The objects: clrdiag's dumpheap finds them (the same addresses for both tools).
first_address() {  # first_address DUMPHEAP-ARGS: the first address `dumpheap ARGS -short` prints
  "${C[@]}" analyze "$ID" -c "dumpheap $1 -short" -c exit | awk 'NR > 1 && /^[0-9a-f]+$/ { print; exit }'
}
stat_line() { "${C[@]}" analyze "$ID" -c "dumpheap -stat" -c exit | awk '/^Total /'; }
CHAIN_END=$(first_address "-type Fixture.ChainEnd")
LIST=$(first_address "-type System.Collections.Generic.List<Fixture.Customer>")
[[ -n $CHAIN_END && -n $LIST ]] || die "Fixture.ChainEnd or List<Fixture.Customer> not found"
HEAP=$(stat_line)
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at start; dump $(( $(stat -c %s "$DUMP") >> 20 )) MiB;" \
  "heap: ${HEAP#Total }; ChainEnd $CHAIN_END, List<Customer> $LIST"
cat "$DUMP" >/dev/null  # warm the page cache for both

timed() {  # timed OUT CMD...: sets MS
  local s; now_us; s=$NOW_US
  "${@:2}" >"$1" 2>"$1.err" || { cat "$1" "$1.err" >&2; die "failed: ${*:2}"; }
  now_us; MS=$(calc '%.1f' "($NOW_US - $s) / 1000")
}
# The reference's static-variable notes are left out by clrdiag (see
# tests/conformance/roots_conformance_test.cc), and it may print progress lines under load.
normalize() { tail -n +2 "$1" | sed -E 's/ \(static variable: [^)]*\)$/ /' | grep -v '^Scanning heap: ' || true; }

ROWS=()
bench() {  # bench NAME TARGET COMMAND
  local name=$1 target=$2 cmd=$3 i ours=() ref=() same=no mo mr m1 ml
  for ((i = 1; i <= RUNS; i++)); do
    timed "$T/o" "${C[@]}" analyze "$ID" -c "$cmd" -c exit; ours+=("$MS")
    timed "$T/r" "$DD" analyze "$DUMP" -c "$cmd" -c exit; ref+=("$MS")
  done
  cmp -s <(normalize "$T/o") <(normalize "$T/r") && same=yes
  mo=$(median "${ours[@]}"); mr=$(median "${ref[@]}")
  # clrdiag's first run of a command is its first on this dump (gcroot builds the heap graph
  # and keeps it in the store's cache/; later sessions map it): shown apart from the later runs.
  m1=${ours[0]}; ml=$m1
  ((RUNS > 1)) && ml=$(median "${ours[@]:1}")
  ROWS+=("| \`$cmd\` | $m1 | $ml | $mr | $(calc '%.3f' "$m1 / $mr")× | $(calc '%.3f' "$ml / $mr")× | ≤ $target× | $same |")
  echo "$name runs (ms): clrdiag ${ours[*]}; dotnet-dump ${ref[*]}; same output: $same ($(wc -l <"$T/o") lines)"
}
bench gcroot 0.1 "gcroot $CHAIN_END"
bench objsize 0.25 "objsize $LIST"
# verifyheap: timed only when this build has the command (issue 6, another part).
if "${C[@]}" analyze "$ID" -c "help verifyheap" -c exit >/dev/null 2>&1; then
  bench verifyheap 0.5 "verifyheap"
else
  ROWS+=("| \`verifyheap\` | – | – | – | – | – | ≤ 0.5× | not in this build |")
fi

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| command (ms) | clrdiag 1st run | clrdiag later runs (median) | dotnet-dump (median of $RUNS) | ratio 1st | ratio later | target | same output |"
echo "|---|---:|---:|---:|---:|---:|---|---|"
printf '%s\n' "${ROWS[@]}"
if [[ -n ${KEEP_DUMP:-} ]]; then cp "$DUMP" "$KEEP_DUMP" && echo "dump copied to $KEEP_DUMP"; fi
