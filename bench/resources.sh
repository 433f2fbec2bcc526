#!/usr/bin/env bash
# Resource use of the real daemon, for the requests/limits in deploy/k8s (docs/deploy.md):
# RSS and CPU of clrdiagd idle, under `ps` polling, during a Full collection of a ~0.5 GiB
# .NET process, and during an analysis session of that dump (the clrdiag-worker separately).
#
#   bench/resources.sh                  # build/bin binaries, build/fixtures, prints markdown
#   CGROUP=1 bench/resources.sh         # also the memory cgroup's view (RSS + page cache the
#                                       # daemon and its workers are charged for), as root
#   CGROUP=1 LIMIT_MIB=96 bench/resources.sh   # ... with memory.limit_in_bytes set: does a
#                                       # Full collection and an analysis still succeed?
#
# Knobs: HEAP_OBJECTS (5000000), HEAP_MB (20), PS_CALLS (50), IDLE_SECONDS (10),
# APP_TMP (the fixture's TMPDIR; default a directory on /dev/shm, so the dump is on another
# filesystem than the store and the daemon copies it, as between a container's overlay and
# a hostPath store), BENCH_TMP (store, default /tmp).
# Not part of `make test`. It stops only what it started, by pid, and removes what it made.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
FIX=${FIXTURES:-$ROOT/build/fixtures}
HEAP_OBJECTS=${HEAP_OBJECTS:-5000000}
HEAP_MB=${HEAP_MB:-20}
PS_CALLS=${PS_CALLS:-50}
IDLE_SECONDS=${IDLE_SECONDS:-10}
CGROUP=${CGROUP:-0}
LIMIT_MIB=${LIMIT_MIB:-0}
T=$(mktemp -d "${BENCH_TMP:-/tmp}/clrdiag-res-XXXXXX")
APP_TMP=${APP_TMP:-$(mktemp -d /dev/shm/clrdiag-res-app-XXXXXX)}
D=""
APPS=()
CG=""
HZ=$(getconf CLK_TCK)

cleanup() {
  for p in "${APPS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$D" ] && kill "$D" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$T"
  case "$APP_TMP" in /dev/shm/clrdiag-res-app-*) rm -rf "$APP_TMP" ;; esac
  if [ -n "$CG" ] && [ -d "$CG" ]; then rmdir "$CG" 2>/dev/null || true; fi
}
trap cleanup EXIT

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# utime+stime, and with cutime+cstime (the reaped workers' CPU), in clock ticks.
cpu_ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13})); }
cpu_ticks_all() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; set -- $s; echo $((${12} + ${13} + ${14} + ${15})); }
ms_of_ticks() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.0f", t * 1000 / hz }'; }
now() { date +%s.%N; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

# The memory cgroup (v1 or v2) of this shell, with a child for the daemon and its workers.
cg_setup() {
  local v1 v2
  v1=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
  v2=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
  if [ -n "$v1" ] && [ -w "/sys/fs/cgroup/memory$v1" ]; then
    CG="/sys/fs/cgroup/memory$v1/clrdiag-res-$$"
    mkdir "$CG"
    CG_USAGE=memory.usage_in_bytes
    CG_PEAK=memory.max_usage_in_bytes
    if [ "$LIMIT_MIB" -gt 0 ]; then echo $((LIMIT_MIB << 20)) >"$CG/memory.limit_in_bytes"; fi
  elif [ -n "$v2" ] && [ -f "/sys/fs/cgroup$v2/memory.current" ]; then
    CG="/sys/fs/cgroup$v2/clrdiag-res-$$"
    mkdir "$CG"
    CG_USAGE=memory.current
    CG_PEAK=memory.peak
    if [ "$LIMIT_MIB" -gt 0 ]; then echo $((LIMIT_MIB << 20)) >"$CG/memory.max"; fi
  else
    echo "resources: no writable memory cgroup; run without CGROUP=1" >&2
    exit 1
  fi
}
cg_reset() { [ -z "$CG" ] || echo 0 >"$CG/$CG_PEAK" 2>/dev/null || true; }
cg_peak() { [ -z "$CG" ] && echo "" || awk '{ printf "%.1f", $1 / 1048576 }' "$CG/$CG_PEAK" 2>/dev/null || echo "n/a"; }
cg_usage() { [ -z "$CG" ] && echo "" || awk '{ printf "%.1f", $1 / 1048576 }' "$CG/$CG_USAGE"; }

[ -x "$BIN/clrdiagd" ] || { echo "resources: $BIN/clrdiagd missing (make build)" >&2; exit 1; }
[ -x "$FIX/HeapApp/HeapApp" ] || { echo "resources: fixtures missing (make fixtures)" >&2; exit 1; }
if [ "$CGROUP" = 1 ]; then cg_setup; fi

# The daemon, in the cgroup from its first instruction (pages charged before a move would
# stay with the old cgroup).
if [ -n "$CG" ]; then
  bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$CG" \
    "$BIN/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/daemon.log" &
else
  "$BIN/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/daemon.log" &
fi
D=$!
C=("$BIN/clrdiag" --server "unix:$T/d.sock")
for _ in $(seq 1 100); do [ -S "$T/d.sock" ] && break; sleep 0.1; done
[ -S "$T/d.sock" ] || { cat "$T/daemon.log" >&2; exit 1; }

echo "## bench/resources.sh $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores; clrdiagd $(stat -c %y "$BIN/clrdiagd" | cut -d. -f1)"
if [ -n "$CG" ]; then echo "memory cgroup: $CG (limit ${LIMIT_MIB} MiB, 0 = none)"; fi
echo
echo "| phase | daemon VmRSS after | daemon VmHWM in phase | daemon CPU | worker VmHWM (anon) | cgroup peak | result |"
echo "|---|---:|---:|---:|---:|---:|---|"
row() { echo "| $1 | $2 MiB | $3 MiB | $4 | $5 | ${6:+$6 MiB} | $7 |"; }

# 1. Idle.
sleep 2
reset_hwm "$D"; cg_reset
c0=$(cpu_ticks "$D")
sleep "$IDLE_SECONDS"
c1=$(cpu_ticks "$D")
row "idle, ${IDLE_SECONDS} s" "$(mib "$(status_kb "$D" VmRSS)")" "$(mib "$(status_kb "$D" VmHWM)")" \
  "$(ms_of_ticks $((c1 - c0))) ms CPU in ${IDLE_SECONDS} s" "" "$(cg_peak)" "ok"

# 2. ps polling: 5 SleepApps, PS_CALLS calls back to back.
for _ in 1 2 3 4 5; do
  TMPDIR="$APP_TMP" "$FIX/SleepApp/SleepApp" >/dev/null & APPS+=($!)
done
sleep 3
reset_hwm "$D"; cg_reset
c0=$(cpu_ticks "$D"); s=$(now); fails=0
for _ in $(seq 1 "$PS_CALLS"); do "${C[@]}" ps >/dev/null 2>&1 || fails=$((fails + 1)); done
e=$(now); c1=$(cpu_ticks "$D")
per=$(awk -v t=$((c1 - c0)) -v n="$PS_CALLS" -v hz="$HZ" 'BEGIN { printf "%.1f", t * 1000 / hz / n }')
wall=$(awk -v s="$s" -v e="$e" -v n="$PS_CALLS" 'BEGIN { printf "%.0f", (e - s) * 1000 / n }')
row "$PS_CALLS × ps (5 .NET processes)" "$(mib "$(status_kb "$D" VmRSS)")" \
  "$(mib "$(status_kb "$D" VmHWM)")" "$per ms CPU per ps (wall $wall ms)" "" "$(cg_peak)" \
  "$((PS_CALLS - fails))/$PS_CALLS ok"
for p in "${APPS[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${APPS[@]}" 2>/dev/null || true
APPS=()

# 3. A Full collection of HeapApp (~0.5 GiB).
TMPDIR="$APP_TMP" "$FIX/HeapApp/HeapApp" 10000 "$HEAP_MB" --objects "$HEAP_OBJECTS" >"$T/app" &
A=$!; APPS+=("$A")
for _ in $(seq 1 300); do grep -q READY "$T/app" 2>/dev/null && break; sleep 0.2; done
app_rss=$(mib "$(status_kb "$A" VmRSS)")
reset_hwm "$D"; cg_reset
c0=$(cpu_ticks "$D"); s=$(now)
if "${C[@]}" collect -p "$A" --type Full >"$T/c.txt" 2>"$T/c.err"; then res=ok; else res="FAILED: $(tail -1 "$T/c.err")"; fi
e=$(now); c1=$(cpu_ticks "$D")
ID=$(awk '/Dump id/ { print $3 }' "$T/c.txt")
size=""
[ -n "$ID" ] && size=$(du -m --apparent-size "$T/store/dumps/$ID/dump" 2>/dev/null | cut -f1 || true)
row "Full collect of HeapApp (RSS $app_rss MiB; dump ${size:-?} MiB; $(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", e - s }') s)" \
  "$(mib "$(status_kb "$D" VmRSS)")" "$(mib "$(status_kb "$D" VmHWM)")" \
  "$(ms_of_ticks $((c1 - c0))) ms CPU" "" "$(cg_peak)" "$res"
kill "$A" 2>/dev/null || true; wait "$A" 2>/dev/null || true; APPS=()

# 4. An analysis session of that dump: `dumpheap -stat`, the worker polled every 10 ms.
if [ -n "$ID" ]; then
  reset_hwm "$D"; cg_reset
  c0=$(cpu_ticks_all "$D")
  "${C[@]}" analyze "$ID" -c "dumpheap -stat" -c exit >"$T/a.txt" 2>"$T/a.err" & CL=$!
  whwm=0; wanon=0
  while kill -0 "$CL" 2>/dev/null; do
    for w in $(cat /proc/"$D"/task/*/children 2>/dev/null); do
      h=$(status_kb "$w" VmHWM); a=$(status_kb "$w" RssAnon)
      [ "${h:-0}" -gt "$whwm" ] && whwm=$h
      [ "${a:-0}" -gt "$wanon" ] && wanon=$a
    done
    sleep 0.01
  done
  if wait "$CL" && grep -q "^Total" "$T/a.txt"; then res="ok ($(grep '^Total' "$T/a.txt"))"; else res="FAILED: $(tail -1 "$T/a.err")"; fi
  c1=$(cpu_ticks_all "$D")
  row "analyze: dumpheap -stat of that dump" "$(mib "$(status_kb "$D" VmRSS)")" \
    "$(mib "$(status_kb "$D" VmHWM)")" "$(ms_of_ticks $((c1 - c0))) ms CPU (daemon + worker)" \
    "$(mib "$whwm") MiB ($(mib "$wanon") MiB)" "$(cg_peak)" "$res"
  "${C[@]}" rm "$ID" >/dev/null
fi

# 5. Idle again.
sleep 2
reset_hwm "$D"; cg_reset
c0=$(cpu_ticks "$D"); sleep "$IDLE_SECONDS"; c1=$(cpu_ticks "$D")
row "idle after all, ${IDLE_SECONDS} s" "$(mib "$(status_kb "$D" VmRSS)")" \
  "$(mib "$(status_kb "$D" VmHWM)")" "$(ms_of_ticks $((c1 - c0))) ms CPU in ${IDLE_SECONDS} s" "" \
  "$(cg_peak)" "ok"
echo
echo "daemon lifetime VmHWM is not reset between phases in /proc (clear_refs resets it per phase);"
echo "cgroup peak = RSS + page cache + kernel memory charged to the daemon and its workers."
