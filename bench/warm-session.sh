#!/usr/bin/env bash
# Warm sessions (issue 4): in one `clrdiag analyze` session, the first `dumpheap -stat` walks the
# heap and leaves a per-type index; later ones (also with -type/-mt) answer from it. Side by
# side: the same commands in one `dotnet-dump analyze` session. Same fixture and dump type as
# bench/analyze-quick.sh: a Heap dump of `HeapApp 10000 20 --objects 5000000`.
# Per-command times come from the worker (CLRDIAG_TIMING=1); dotnet-dump has no such report, so
# its second command is timed as (session with two -stat) - (session with one), medians of RUNS.
# Needs build/bin and build/fixtures; not part of `make test`. Stops only what it started.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
FIX=${FIXTURES:-$ROOT/build/fixtures}
DD=${DOTNET_DUMP:-$HOME/.dotnet/tools/dotnet-dump}
RUNS=${RUNS:-3}
T=$(mktemp -d "${TMPDIR:-/tmp}/clrdiag-warm.XXXXXX")
D=""; A=""
cleanup() {
  set +e
  for p in "$A" "$D"; do [[ -n $p ]] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
die() { echo "warm-session: $*" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

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
kill "$A"; wait "$A" 2>/dev/null || true; A=""
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); dump $(( $(stat -c %s "$DUMP") >> 20 )) MiB"

F=(); S=(); TT=(); R1=(); R2=()
for ((i = 0; i < RUNS; i++)); do
  CLRDIAG_TIMING=1 "${C[@]}" analyze "$ID" -c "dumpheap -stat" -c "dumpheap -stat" \
    -c "dumpheap -stat -type Fixture." -c exit >"$T/ours" 2>"$T/ours.err" || die "analyze failed"
  mapfile -t ms < <(awk '/took/ {print $(NF-4)}' "$T/ours.err")
  F+=("${ms[0]}"); S+=("${ms[1]}"); TT+=("${ms[2]}")
  s=$(now_ms); "$DD" analyze "$DUMP" -c "dumpheap -stat" -c exit >/dev/null 2>&1; e=$(now_ms)
  R1+=($((e - s)))
  s=$(now_ms); "$DD" analyze "$DUMP" -c "dumpheap -stat" -c "dumpheap -stat" -c exit >/dev/null 2>&1
  e=$(now_ms); R2+=($((e - s)))
done
f=$(median "${F[@]}"); s=$(median "${S[@]}"); t=$(median "${TT[@]}")
r1=$(median "${R1[@]}"); r2=$(median "${R2[@]}")
rd=$((r2 - r1))
echo "clrdiag:     first dumpheap -stat ${f} ms, second ${s} ms, -stat -type Fixture. ${t} ms (worker)"
echo "dotnet-dump: session with one -stat ${r1} ms, with two ${r2} ms: second ≈ ${rd} ms"
awk -v f="$f" -v s="$s" 'BEGIN { printf "second/first (clrdiag): %s\n", (s > 0) ? sprintf("1/%.0f", f / s) : "< 1/" f " (0 ms)" }'
