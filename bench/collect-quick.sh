#!/usr/bin/env bash
# Quick side-by-side of Heap dump collection on the ~500 MB fixture: dotnet-dump collect -o,
# clrdiag collect -o (same host), clrdiag collect into the catalog only. N rounds (default 2).
# Needs a built tree (make build) and the fixtures (make fixtures); not part of `make test`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
FIX=$ROOT/build/fixtures
DD=${DOTNET_DUMP:-$HOME/.dotnet/tools/dotnet-dump}
ROUNDS=${1:-2}
T=$(mktemp -d /tmp/clrdiag-bench-XXXXXX)
D=""; A=""
cleanup() {
  [ -n "$A" ] && kill "$A" 2>/dev/null || true
  [ -n "$D" ] && kill "$D" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
"$BIN/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/daemon.log" & D=$!
"$FIX/HeapApp/HeapApp" 10000 20 --objects 5000000 >"$T/app" & A=$!
for _ in $(seq 1 150); do grep -q READY "$T/app" 2>/dev/null && break; sleep 0.2; done
C=("$BIN/clrdiag" --server "unix:$T/d.sock")
now() { date +%s.%N; }
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), 2-core VM, warm page cache"
for r in $(seq 1 "$ROUNDS"); do
  s=$(now); "$DD" collect -p "$A" --type Heap -o "$T/ref.core" >/dev/null; e=$(now)
  echo "round $r dotnet-dump collect -o : $(echo "$e - $s" | bc) s"; rm -f "$T/ref.core"
  s=$(now); "${C[@]}" collect -p "$A" --type Heap -o "$T/ours.core" >"$T/c.txt" 2>/dev/null; e=$(now)
  echo "round $r clrdiag collect -o     : $(echo "$e - $s" | bc) s"; rm -f "$T/ours.core"
  "${C[@]}" rm "$(awk '/Dump id/{print $3}' "$T/c.txt")" >/dev/null
  s=$(now); "${C[@]}" collect -p "$A" --type Heap >"$T/c.txt" 2>/dev/null; e=$(now)
  echo "round $r clrdiag collect (store): $(echo "$e - $s" | bc) s"
  "${C[@]}" rm "$(awk '/Dump id/{print $3}' "$T/c.txt")" >/dev/null
done
echo "daemon $(grep VmHWM /proc/$D/status)"
