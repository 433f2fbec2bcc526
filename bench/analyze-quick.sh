#!/usr/bin/env bash
# Quick side-by-side of the analysis figures of bench/run.sh only (no ps, no collect timing), on
# the same fixture and with the same method: one Heap dump of `HeapApp 10000 20 --objects
# 5000000` collected into a private daemon's store, then, on that one file (warm cache):
#   - open to first prompt: `analyze -c exit`, 1 warm-up + OPEN_RUNS (5) of each, interleaved;
#   - `analyze -c "dumpheap -stat" -c exit`: ANALYZE_RUNS (3) of each, interleaved, outputs
#     compared after the first line;
#   - peak RSS of the analysing process (our clrdiag-worker, dotnet-dump itself), /proc/PID/status
#     polled every 10 ms in one extra run of each (VmHWM, RssAnon, RssFile maxima).
# Needs a built tree (build/bin) and the fixtures (build/fixtures); not part of `make test`.
# Stops only what it started (by pid) and removes its temp dir on exit.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
FIX=${FIXTURES:-$ROOT/build/fixtures}
DD=${DOTNET_DUMP:-$HOME/.dotnet/tools/dotnet-dump}
OPEN_RUNS=${OPEN_RUNS:-5}
ANALYZE_RUNS=${ANALYZE_RUNS:-3}
T=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/clrdiag-aq.XXXXXX")
D=""; A=""; BG=""
cleanup() {
  set +e
  for p in "$BG" "$A" "$D"; do
    [[ -n $p ]] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
die() { echo "analyze-quick: $*" >&2; exit 1; }
now_us() { NOW_US=${EPOCHREALTIME/./}; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# Private copies: a rebuild of build/bin during the run must not swap binaries.
mkdir -p "$T/bin"
cp "$BIN/clrdiagd" "$BIN/clrdiag" "$BIN/clrdiag-worker" "$T/bin/"
"$T/bin/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/daemon.log" & D=$!
"$FIX/HeapApp/HeapApp" 10000 20 --objects 5000000 >"$T/app" 2>&1 </dev/null & A=$!
for _ in $(seq 1 600); do grep -q READY "$T/app" 2>/dev/null && break; sleep 0.2; done
grep -q READY "$T/app" || die "HeapApp not ready"
C=("$T/bin/clrdiag" --server "unix:$T/d.sock")
"${C[@]}" collect -p "$A" --type Heap >"$T/c.txt" 2>&1 || { cat "$T/c.txt"; die "collect failed"; }
ID=$(awk '/Dump id/{print $3}' "$T/c.txt")
DUMP="$T/store/dumps/$ID/dump"
[[ -f $DUMP ]] || die "cannot find the stored dump of $ID"
kill "$A"; wait "$A" 2>/dev/null || true; A=""
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at start; dump $(( $(stat -c %s "$DUMP") >> 20 )) MiB"

timed() {  # timed OUT CMD...: sets MS
  local s; now_us; s=$NOW_US
  "${@:2}" >"$1" 2>"$1.err" || { cat "$1" "$1.err" >&2; die "failed: ${*:2}"; }
  now_us; MS=$(calc '%.1f' "($NOW_US - $s) / 1000")
}
OO=(); OR=()
for ((i = 0; i <= OPEN_RUNS; i++)); do
  timed "$T/o1" "${C[@]}" analyze "$ID" -c exit; (( i )) && OO+=("$MS")
  timed "$T/o2" "$DD" analyze "$DUMP" -c exit; (( i )) && OR+=("$MS")
done
HO=(); HR=()
for ((i = 1; i <= ANALYZE_RUNS; i++)); do
  timed "$T/h1" "${C[@]}" analyze "$ID" -c "dumpheap -stat" -c exit; HO+=("$MS")
  timed "$T/h2" "$DD" analyze "$DUMP" -c "dumpheap -stat" -c exit; HR+=("$MS")
done
# Line 1 names the dump; dotnet-dump adds "Scanning heap: ..." progress lines under load.
SAME=no; cmp -s <(tail -n +2 "$T/h1") <(tail -n +2 "$T/h2" | grep -v '^Scanning heap: ') && SAME=yes

peak() {  # peak worker|self CMD...: sets PK (VmHWM kB), PA (RssAnon kB), PF (RssFile kB)
  local mode=$1 p k v _ f c pids; shift
  PK=0; PA=0; PF=0
  "$@" >"$T/pk" 2>&1 & BG=$!
  while kill -0 "$BG" 2>/dev/null; do
    pids=()
    if [[ $mode == self ]]; then pids=("$BG"); else
      for f in /proc/"$D"/task/*/children; do
        c=""; read -r -d '' c 2>/dev/null <"$f" || true
        for p in $c; do [[ $(cat "/proc/$p/comm" 2>/dev/null) == clrdiag-worker ]] && pids+=("$p"); done
      done
    fi
    for p in "${pids[@]}"; do
      while read -r k v _; do
        case $k in
          VmHWM:) (( v > PK )) && PK=$v ;;
          RssAnon:) (( v > PA )) && PA=$v ;;
          RssFile:) (( v > PF )) && PF=$v ;;
        esac
      done 2>/dev/null <"/proc/$p/status" || true
    done
    sleep 0.01
  done
  wait "$BG" || die "failed: $*"; BG=""
}
peak worker "${C[@]}" analyze "$ID" -c "dumpheap -stat" -c exit
WK=$PK; WA=$PA; WF=$PF
peak self "$DD" analyze "$DUMP" -c "dumpheap -stat" -c exit
RK=$PK; RA=$PA; RF=$PF

MO=$(median "${OO[@]}"); MR=$(median "${OR[@]}")
DO=$(median "${HO[@]}"); DR=$(median "${HR[@]}")
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| figure | clrdiag | dotnet-dump | ratio | target |"
echo "|---|---:|---:|---:|---|"
echo "| open to first prompt, median of $OPEN_RUNS (ms) | $MO | $MR | $(calc '%.3f' "$MO / $MR")× | ≤ 0.2× |"
echo "| dumpheap -stat, median of $ANALYZE_RUNS (ms) | $DO | $DR | $(calc '%.3f' "$DO / $DR")× | ≤ 0.33× |"
echo "| peak RSS VmHWM (MiB) | $(calc '%.1f' "$WK / 1024") | $(calc '%.1f' "$RK / 1024") | $(calc '%.2f' "$WK / $RK")× | ≤ 0.5× |"
echo "| … RssAnon / RssFile peaks (MiB) | $(calc '%.1f' "$WA / 1024") / $(calc '%.1f' "$WF / 1024") | $(calc '%.1f' "$RA / 1024") / $(calc '%.1f' "$RF / 1024") | | |"
echo
echo "open runs (ms): clrdiag ${OO[*]}; dotnet-dump ${OR[*]}"
echo "dumpheap runs (ms): clrdiag ${HO[*]}; dotnet-dump ${HR[*]}; same output: $SAME ($(wc -l <"$T/h1") lines)"
if [[ -n ${KEEP_DUMP:-} ]]; then cp "$DUMP" "$KEEP_DUMP" && echo "dump copied to $KEEP_DUMP"; fi
