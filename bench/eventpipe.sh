#!/usr/bin/env bash
# What a 1 s EventCounters session costs: N idle HeapApp processes (default 20, net10.0 build),
# each target's CPU (utime+stime from /proc/PID/stat) over WINDOW seconds (default 20) without a
# session, then again while one process (build/tools/eventpipe_probe --hub, the Hub of
# core/eventpipe: one System.Runtime session per target, EventCounterIntervalSec=1) holds a
# session on every target; also that process's own CPU and peak RSS (what the daemon would
# add for these sessions).
#   bench/eventpipe.sh [N] [WINDOW]
# Prints per-target baseline and with-session CPU (% of one core; median and max over the N
# targets) and the added CPU. Needs build/tools/eventpipe_probe and build/fixtures. Stops only
# what it started (by pid) and removes its temp dir on exit.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-20}
WINDOW=${2:-20}
PROBE=${PROBE:-$ROOT/build/tools/eventpipe_probe}
APP=${APP:-$ROOT/build/fixtures/HeapApp/HeapApp}
HZ=$(getconf CLK_TCK)
T=$(mktemp -d "${TMPDIR:-/tmp}/clrdiag-epbench.XXXXXX")
PIDS=()
HUB=""
cleanup() {
  set +e
  [[ -n $HUB ]] && kill "$HUB" 2>/dev/null && wait "$HUB" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
[[ -x $PROBE && -x $APP ]] || { echo "eventpipe.sh: build $PROBE and $APP first" >&2; exit 1; }

# utime+stime of pid $1, NA if it is gone. Bash builtins only: a fork+exec per read (as this
# script did first) took up to ~0.3 s each at load 15, which stretched the window's edges by
# many seconds and let the hub's --seconds run out before the window ended.
ticks() {
  local line f
  if ! read -r line 2>/dev/null <"/proc/$1/stat"; then
    echo NA
    return
  fi
  read -r -a f <<<"${line##*) }"
  echo $((f[11] + f[12]))
}
# Median and max of the values that are not NA (a target that vanished during a window).
median() { printf '%s\n' "$@" | grep -v NA | sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
maxof() { printf '%s\n' "$@" | grep -v NA | sort -g | tail -1; }

for i in $(seq 1 "$N"); do
  "$APP" --wait-forever >"$T/app$i" 2>&1 </dev/null &
  PIDS+=($!)
done
for i in $(seq 1 "$N"); do
  for _ in $(seq 1 300); do grep -q READY "$T/app$i" 2>/dev/null && break; sleep 0.2; done
  grep -q READY "$T/app$i" || { echo "eventpipe.sh: app $i did not start" >&2; exit 1; }
done
sleep 3  # start-up JIT and tiering settle

# CPU % of one core of every target over $WINDOW seconds; prints one value per target.
measure() {
  local -a before after
  local t0 t1
  t0=${EPOCHREALTIME/,/.}
  for p in "${PIDS[@]}"; do before+=("$(ticks "$p")"); done
  sleep "$WINDOW"
  for p in "${PIDS[@]}"; do after+=("$(ticks "$p")"); done
  t1=${EPOCHREALTIME/,/.}
  for i in "${!PIDS[@]}"; do
    if [[ ${after[$i]} == NA || ${before[$i]} == NA ]]; then echo NA; continue; fi
    awk -v a="${after[$i]}" -v b="${before[$i]}" -v hz="$HZ" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
      'BEGIN { printf "%.3f\n", (a - b) * 100 / hz / w }'
  done
}

mapfile -t base < <(measure)
pids_csv=$(IFS=,; echo "${PIDS[*]}")
# --seconds is only a safety net: the script ends the hub with SIGTERM after the window (it then
# prints its samples).
"$PROBE" --hub "$pids_csv" --counters 1 --seconds $((WINDOW + 600)) >"$T/hub" 2>&1 &
HUB=$!
# Subscribing is serial (each CollectTracing reply comes after the target enabled the
# providers); measure only once every session is up and the targets' start-up of the counter
# code (JIT) is over.
for _ in $(seq 1 600); do grep -q "sessions started" "$T/hub" 2>/dev/null && break; sleep 0.2; done
grep -q "sessions started" "$T/hub" || { echo "eventpipe.sh: the hub did not start" >&2; exit 1; }
sleep 3
hub_before=$(ticks "$HUB")
[[ $hub_before != NA ]] || { cat "$T/hub" >&2; echo "eventpipe.sh: the hub process ended early" >&2; exit 1; }
mapfile -t with < <(measure)
hub_after=$(ticks "$HUB")
hub_rss=$(awk '/VmHWM/ { print $2 / 1024 }' "/proc/$HUB/status" 2>/dev/null || echo NA)
if [[ $hub_after == NA || $hub_rss == NA ]]; then
  # The hub ended early (it crashed, or a target's session failed): the window's figures are
  # then not all with a session.
  cat "$T/hub" >&2
  echo "eventpipe.sh: the hub process ended before the window did; figures not valid" >&2
  exit 1
fi
kill -TERM "$HUB" 2>/dev/null || true
wait "$HUB" || true
HUB=""
added=()
lost=0
for i in "${!base[@]}"; do
  if [[ ${with[$i]} == NA || ${base[$i]} == NA ]]; then added+=(NA); lost=$((lost + 1)); continue; fi
  added+=("$(awk -v a="${with[$i]}" -v b="${base[$i]}" 'BEGIN { printf "%.3f\n", a - b }')")
done
samples=$(awk '/samples/ { s += $3; n++ } END { print s / (n ? n : 1) }' "$T/hub")

echo "targets: $N x HeapApp (--wait-forever), window ${WINDOW}s, $(nproc) CPUs, $lost vanished during the run (left out)"
echo "target CPU without session: median $(median "${base[@]}")%  max $(maxof "${base[@]}")%"
echo "target CPU with 1 s counters: median $(median "${with[@]}")%  max $(maxof "${with[@]}")%"
echo "added by the session:         median $(median "${added[@]}")%  max $(maxof "${added[@]}")%"
awk -v a="$hub_after" -v b="$hub_before" -v hz="$HZ" -v w="$WINDOW" -v n="$N" -v rss="$hub_rss" \
  -v s="$samples" 'BEGIN { printf "hub process (%d sessions): %.2f%% of one core, peak RSS %.1f MiB, %.0f samples per target\n", n, (a - b) * 100 / hz / w, rss, s }'
