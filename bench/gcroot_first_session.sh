#!/usr/bin/env bash
# issue 6, the FIRST session on a catalog dump: collect into the catalog -> wait for the heap
# graph -> first `gcroot` session, beside the reference dotnet-dump on the same dump file.
#
# HeapApp with bench/heap_commands.sh's defaults (10000 customers, 30 MiB of blobs, 5,000,000
# Items, a chain of 100,000 links: a ~670 MiB Full dump) is collected into a private daemon's
# catalog (default config but warm_worker_idle: 10m, so that finding the address below cannot
# outlast the kept worker). The script waits until the daemon has built the dump's heap graph
# in the background and kept the build's worker (`kept idle after building the heap graph of
# dump ID`), finds the Fixture.ChainEnd object with a second private daemon that reads the
# dump file by path (so the measured session is the first one of the catalog's daemon on that
# dump), warms the page cache for both tools, then times ONE session
#   clrdiag analyze ID -c "gcroot <ChainEnd>" -c exit
# (wall; CPU: client from /usr/bin/time, daemon and worker from /proc/PID/stat deltas) and
# RUNS (3) runs of `dotnet-dump analyze DUMP -c "gcroot <ChainEnd>" -c exit` (wall and CPU,
# medians), and compares the outputs (as bench/heap_commands.sh does).
# Needs a built tree (build/bin) and the fixtures (build/fixtures); not part of `make test`.
# Stops only what it started (by pid) and removes its temp dir on exit.
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
T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/clrdiag-first.XXXXXX")
D=""; D2=""; A=""
cleanup() {
  set +e
  for p in "$A" "$D2" "$D"; do
    [[ -n $p ]] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
die() { echo "gcroot_first_session: $*" >&2; exit 1; }
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
start_daemon() {  # start_daemon NAME [CONFIG]: sets STARTED to its pid
  local args=(--listen "unix:$T/$1.sock" --dump-dir "$T/$1-store")
  [[ -n ${2:-} ]] && args+=(--config "$2")
  "$T/bin/clrdiagd" "${args[@]}" 2>"$T/$1.log" & STARTED=$!
  for _ in $(seq 1 100); do [[ -S $T/$1.sock ]] && break; sleep 0.1; done
  [[ -S $T/$1.sock ]] || { cat "$T/$1.log"; die "daemon $1 did not start"; }
}

[[ -x $DD ]] || die "no dotnet-dump at $DD (WITH_REFERENCE=1 scripts/install-deps.sh)"
[[ -x $FIX/HeapApp/HeapApp ]] || die "no HeapApp in $FIX (scripts/build-fixtures.sh build/fixtures)"
mkdir -p "$T/bin"
cp "$BIN/clrdiagd" "$BIN/clrdiag" "$BIN/clrdiag-worker" "$T/bin/"
printf 'analysis:\n  warm_worker_idle: 10m\n' >"$T/d.yaml"
start_daemon d "$T/d.yaml"; D=$STARTED
C=("$T/bin/clrdiag" --server "unix:$T/d.sock")
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

"$FIX/HeapApp/HeapApp" "$CUSTOMERS" "$MB" --objects "$OBJECTS" --zoo --chain "$CHAIN" \
  >"$T/app" 2>&1 </dev/null & A=$!
for _ in $(seq 1 900); do grep -q READY "$T/app" 2>/dev/null && break; sleep 0.2; done
grep -q READY "$T/app" || { cat "$T/app"; die "HeapApp not ready"; }
t0=$(now_ms)
"${C[@]}" collect -p "$A" --type Full >"$T/c.txt" 2>&1 || { cat "$T/c.txt"; die "collect failed"; }
t1=$(now_ms)
ID=$(awk '/Dump id/{print $3}' "$T/c.txt")
DUMP="$T/d-store/dumps/$ID/dump"
[[ -f $DUMP ]] || die "cannot find the stored dump of $ID"
kill "$A"; wait "$A" 2>/dev/null || true; A=""

# The graph built and the build's worker kept (or the reason it was not).
W=""
for _ in $(seq 1 6000); do
  W=$(sed -n "s/.*analyze: worker \([0-9]*\) kept idle after building the heap graph of dump $ID.*/\1/p" "$T/d.log" | head -1)
  [[ -n $W ]] && break
  grep -q "heap graph of dump $ID not built" "$T/d.log" && break
  grep -q "worker [0-9]* not kept" "$T/d.log" && break
  sleep 0.1
done
t2=$(now_ms)
grep "heap graph of dump $ID\|not kept" "$T/d.log" | sed 's/^/daemon: /'
[[ -n $W ]] || die "the graph build's worker was not kept (see the daemon's lines above)"
echo "dump $(( $(stat -c %s "$DUMP") >> 20 )) MiB; collect $(( t1 - t0 )) ms; graph built and worker $W kept $(( t2 - t1 )) ms after the collect;" \
  "build worker: $(( $(ticks "$W") * 1000 / HZ )) ms CPU, $(awk '/VmRSS/{print $2 / 1024 " MiB"}' "/proc/$W/status") resident;" \
  "nice of its threads: $(cat /proc/"$W"/task/*/stat | awk '{ sub(/.*\) /, ""); print $17 }' | sort -u | tr '\n' ' ')"

# The object, found by another daemon reading the file by path (no session on $ID here).
printf 'analysis:\n  warm_workers: 0\n  prebuild_heap_graph: false\n' >"$T/d2.yaml"
start_daemon d2 "$T/d2.yaml"; D2=$STARTED
ADDR=$("$T/bin/clrdiag" --server "unix:$T/d2.sock" analyze "$DUMP" \
  -c "dumpheap -type Fixture.ChainEnd -short" -c exit | awk 'NR > 1 && /^[0-9a-f]+$/ { print; exit }')
kill "$D2"; wait "$D2" 2>/dev/null || true; D2=""
[[ -n $ADDR ]] || die "Fixture.ChainEnd not found"
cat "$DUMP" >/dev/null  # warm the page cache for both tools
grep -q "analyze: session" "$T/d.log" && die "a session ran on the catalog's daemon before the measured one"

# ONE first session on the catalog dump.
d0=$(ticks "$D"); w0=$(ticks "$W"); s=$(now_ms)
/usr/bin/time -f '%U %S' -o "$T/ct" "${C[@]}" analyze "$ID" -c "gcroot $ADDR" -c exit >"$T/o" 2>"$T/o.err" \
  || { cat "$T/o.err"; die "clrdiag gcroot failed"; }
e=$(now_ms); d1=$(ticks "$D"); w1=$(ticks "$W")
OURS=$(( e - s ))
CC=$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/ct")
DC=$(( (d1 - d0) * 1000 / HZ )); WC=$(( (w1 - w0) * 1000 / HZ ))
SESSION=$(grep "analyze: session" "$T/d.log" | head -1)
echo "daemon: ${SESSION#*] }"
TOOK=no
[[ $SESSION == *"worker pid $W, kept from the build of the dump's heap graph"* ]] && TOOK=yes

REF=(); REFCPU=()
for ((i = 1; i <= RUNS; i++)); do
  s=$(now_ms)
  /usr/bin/time -f '%U %S' -o "$T/rt" "$DD" analyze "$DUMP" -c "gcroot $ADDR" -c exit >"$T/r" 2>"$T/r.err" \
    || { cat "$T/r.err"; die "dotnet-dump gcroot failed"; }
  e=$(now_ms)
  REF+=($(( e - s ))); REFCPU+=("$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/rt")")
done
normalize() { tail -n +2 "$1" | sed -E 's/ \(static variable: [^)]*\)$/ /' | grep -v '^Scanning heap: ' || true; }
SAME=no
cmp -s <(normalize "$T/o") <(normalize "$T/r") && SAME=yes
MR=$(median "${REF[@]}"); MRC=$(median "${REFCPU[@]}")
OURSCPU=$(( CC + DC + WC ))
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dotnet-dump runs: wall ${REF[*]} ms; CPU ${REFCPU[*]} ms"
echo "| first gcroot session on a catalog dump | clrdiag wall ms | dotnet-dump wall ms (median of $RUNS) | ratio wall | clrdiag CPU ms (client + daemon + worker) | dotnet-dump CPU ms (median) | ratio CPU | took the build's worker | same output |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
echo "| \`gcroot $ADDR\` ($(wc -l <"$T/o") lines) | $OURS | $MR | $(calc '%.3f' "$OURS / $MR")× | $OURSCPU ($CC + $DC + $WC) | $MRC | $(calc '%.3f' "$OURSCPU / $MRC")× | $TOOK | $SAME |"
