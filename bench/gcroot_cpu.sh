#!/usr/bin/env bash
# CPU time beside wall time for gcroot, clrdiag vs dotnet-dump, on a busy machine: wall time
# there is mostly waiting for a core, CPU time is what each tool costs. One private daemon
# (default config: kept workers on), RUNS (5) interleaved runs of each tool on DUMP (absolute
# path), after one clrdiag gcroot that builds the graph (not counted). For clrdiag: client CPU
# (user+sys, from /usr/bin/time), daemon CPU and worker CPU (deltas of /proc/PID/stat utime +
# stime over the run; the worker is the session's, named in the daemon's log).
# Usage: DUMP=/abs/dump.dmp bench/gcroot_cpu.sh ADDRESS
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
DD=${DOTNET_DUMP:-$HOME/.dotnet/tools/dotnet-dump}
RUNS=${RUNS:-5}
ADDR=${1:?usage: DUMP=/abs/dump bench/gcroot_cpu.sh ADDRESS}
[[ ${DUMP:-} == /* && -f $DUMP ]] || { echo "DUMP must be an absolute path" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/clrdiag-cpu.XXXXXX")
D=""
cleanup() { [[ -n $D ]] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/bin"; cp "$BIN/clrdiagd" "$BIN/clrdiag" "$BIN/clrdiag-worker" "$T/bin/"
"$T/bin/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/daemon.log" & D=$!
for _ in $(seq 1 100); do [[ -S $T/d.sock ]] && break; sleep 0.1; done
C=("$T/bin/clrdiag" --server "unix:$T/d.sock")
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
"${C[@]}" analyze "$DUMP" -c "gcroot $ADDR" -c exit >/dev/null  # builds the graph
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "run | clrdiag wall ms | client cpu ms | daemon cpu ms | worker cpu ms | total cpu ms | dotnet-dump wall ms | dotnet-dump cpu ms"
for ((i = 1; i <= RUNS; i++)); do
  W=$(grep -o 'worker pid [0-9]*' "$T/daemon.log" | tail -1 | awk '{print $3}')
  d0=$(ticks "$D"); w0=$(ticks "$W"); s=${EPOCHREALTIME/./}
  /usr/bin/time -f '%U %S' -o "$T/ct" "${C[@]}" analyze "$DUMP" -c "gcroot $ADDR" -c exit >"$T/o"
  e=${EPOCHREALTIME/./}; d1=$(ticks "$D")
  W2=$(grep -o 'worker pid [0-9]*' "$T/daemon.log" | tail -1 | awk '{print $3}')
  [[ $W2 == "$W" ]] && w1=$(ticks "$W") || { w0=0; w1=$(ticks "$W2"); }
  cc=$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/ct")
  dc=$(( (d1 - d0) * 1000 / HZ )); wc=$(( (w1 - w0) * 1000 / HZ ))
  s2=${EPOCHREALTIME/./}
  /usr/bin/time -f '%U %S' -o "$T/rt" "$DD" analyze "$DUMP" -c "gcroot $ADDR" -c exit >"$T/r"
  e2=${EPOCHREALTIME/./}
  rc=$(awk '{ printf "%.0f", ($1 + $2) * 1000 }' "$T/rt")
  echo "$i | $(( (e - s) / 1000 )) | $cc | $dc | $wc | $(( cc + dc + wc )) | $(( (e2 - s2) / 1000 )) | $rc"
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
