#!/usr/bin/env bash
# Phase times of gcroot sessions (bench/README.md, "gcroot round 3"): a private daemon with
# CLRDIAG_PHASES=1 (client, daemon and worker print `phase WHO NAME UNIX-µs` marks on stderr),
# one gcroot that builds the graph, then RUNS (5) timed sessions; bench/gcroot_phases.py
# merges the marks by time and prints the median of each phase over the timed runs.
# Usage: DUMP=/abs/dump.dmp WARM=2 bench/gcroot_phases.sh ADDRESS   (WARM: analysis.warm_workers)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
RUNS=${RUNS:-5}
ADDR=${1:?usage: DUMP=/abs/dump WARM=N bench/gcroot_phases.sh ADDRESS}
[[ ${DUMP:-} == /* && -f $DUMP ]] || { echo "DUMP must be an absolute path" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/clrdiag-phases.XXXXXX")
D=""
cleanup() { [[ -n $D ]] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
printf 'analysis:\n  warm_workers: %s\n' "${WARM:-2}" >"$T/cfg.yaml"
CLRDIAG_PHASES=1 "$BIN/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" \
  --config "$T/cfg.yaml" 2>"$T/daemon.log" & D=$!
for _ in $(seq 1 100); do [[ -S $T/d.sock ]] && break; sleep 0.1; done
C=("$BIN/clrdiag" --server "unix:$T/d.sock")
"${C[@]}" analyze "$DUMP" -c "gcroot $ADDR" -c exit >/dev/null  # builds the graph: not timed
for ((i = 1; i <= RUNS; i++)); do
  echo "phase shell start ${EPOCHREALTIME/./}" >"$T/c$i.err"
  CLRDIAG_PHASES=1 "${C[@]}" analyze "$DUMP" -c "gcroot $ADDR" -c exit >"$T/o$i" 2>>"$T/c$i.err"
  echo "phase shell end ${EPOCHREALTIME/./}" >>"$T/c$i.err"
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); analysis.warm_workers: ${WARM:-2}"
python3 "$ROOT/bench/gcroot_phases.py" "$T"
