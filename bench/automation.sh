#!/usr/bin/env bash
# The issue 8 figure: clrdiagd monitoring N .NET processes (default 20) with counter rules at
# 1 s. Goal: the daemon <= 2 % of one core and <= 50 MB RSS; each target's CPU added by the
# counter session <= 1 % of one core.
#   bench/automation.sh [N] [WINDOW]          (WINDOW seconds, default 60)
# One run, two phases over the same N idle `HeapApp --wait-forever` targets (net10.0 build):
#   baseline: a private clrdiagd with a rules config whose rule matches none of the targets
#             (no EventPipe session anywhere);
#   counters: a fresh private clrdiagd with counter rules (System.Runtime, interval 1 s;
#             gc-heap-size, cpu-usage, threadpool-queue-length; thresholds never reached, so no
#             dumps) on every target; the window starts once every target has its session.
# In each window: each target's utime+stime (/proc/PID/stat), the daemon's utime+stime (the
# whole thread group), its VmRSS sampled every second and its VmHWM at the end, its threads and
# fds. Prints a table (markdown) and the load average before and after.
# Knobs: APP (fixture executable), CLRDIAG_BIN (dir with clrdiagd), SETTLE (s, default 5),
# KEEP_LOGS=1 (print the daemon logs' tail). Needs no root. Stops only what it started, by pid,
# and removes its temp dir on exit (also on Ctrl-C).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-20}
WINDOW=${2:-60}
SETTLE=${SETTLE:-5}
BIN=${CLRDIAG_BIN:-$ROOT/build/bin}
APP=${APP:-$ROOT/build/fixtures/HeapApp/HeapApp}
HZ=$(getconf CLK_TCK)
PAGE_KB=$(($(getconf PAGESIZE) / 1024))
[[ $N =~ ^[1-9][0-9]*$ && $WINDOW =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: bench/automation.sh [N] [WINDOW_SECONDS]" >&2
  exit 2
}
[[ -x $BIN/clrdiagd && -x $APP ]] || {
  echo "automation.sh: build $BIN/clrdiagd and $APP first (cmake --build build --target clrdiagd build_fixtures)" >&2
  exit 1
}
T=$(mktemp -d "${TMPDIR:-/tmp}/clrdiag-autobench.XXXXXX")
PIDS=()
DPID=""
stop_pid() {  # SIGTERM, then SIGKILL after $2 s; only our own children
  local p=$1 t=${2:-10}
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 1 $((t * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  [[ -n $DPID ]] && stop_pid "$DPID" 10
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binaries are copied: others rebuild build/bin while this runs.
mkdir -p "$T/bin" "$T/store"
cp "$BIN/clrdiagd" "$T/bin/"
[[ -x $BIN/clrdiag-worker ]] && cp "$BIN/clrdiag-worker" "$T/bin/"

# utime+stime of pid $1 in clock ticks, NA if it is gone. No fork: the window's edges must be
# sharp even when the machine is loaded (a fork+exec per read took up to ~0.3 s at load 15).
# `ticks PID` prints; `ticks_to VAR PID` sets VAR (no subshell either).
ticks_to() {
  local line f
  if ! read -r line 2>/dev/null <"/proc/$2/stat"; then
    printf -v "$1" NA
    return
  fi
  read -r -a f <<<"${line##*) }"
  printf -v "$1" '%d' $((f[11] + f[12]))
}
ticks() {
  local v
  ticks_to v "$1"
  echo "$v"
}
status_kb() {  # field $2 (VmRSS, VmHWM, Threads) of /proc/$1/status, NA if gone
  local k v rest
  while read -r k v rest; do
    [[ $k == "$2:" ]] && {
      echo "$v"
      return
    }
  done <"/proc/$1/status" 2>/dev/null
  echo NA
}
now() { echo "${EPOCHREALTIME/,/.}"; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }
pct() { awk -v d="$1" -v s="$2" -v hz="$HZ" 'BEGIN { printf "%.3f", d * 100 / hz / s }'; }
median() { printf '%s\n' "$@" | grep -v NA | sort -g | awk '{a[NR]=$1} END { if (NR == 0) print "NA"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2 }'; }
maxof() { printf '%s\n' "$@" | grep -v NA | sort -g | tail -1; }
meanof() { printf '%s\n' "$@" | grep -v NA | awk '{s+=$1} END { printf "%.3f", NR ? s/NR : 0 }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

LOAD_START=$(loadavg)
# HeapApp's --chain takes a count (a short object chain): a number no other process uses.
TAG=$((20000 + RANDOM % 10000))
for i in $(seq 1 "$N"); do
  "$APP" --wait-forever --chain "$TAG" >"$T/app$i" 2>&1 </dev/null &
  PIDS+=($!)
done
for i in $(seq 1 "$N"); do
  for _ in $(seq 1 600); do grep -q READY "$T/app$i" 2>/dev/null && break; sleep 0.2; done
  grep -q READY "$T/app$i" || {
    echo "automation.sh: app $i did not start" >&2
    exit 1
  }
done

# Config: $1 = the rules' command-line filter.
write_config() {
  cat >"$2" <<EOF
automation: { poll_interval: 1s, counter_interval: 1s }
collection_rules:
  - name: heap-size
    filter: { command_line: "$1" }
    trigger: { type: counter, provider: System.Runtime, counter: gc-heap-size, greater_than: 100000, window: 10s }
    action: { collect: { type: Mini } }
  - name: cpu-usage
    filter: { command_line: "$1" }
    trigger: { type: cpu_usage, greater_than: 95, window: 10s }
    action: { collect: { type: Mini } }
  - name: threadpool-queue
    filter: { command_line: "$1" }
    trigger: { type: threadpool_queue_length, greater_than: 100000, window: 10s }
    action: { collect: { type: Mini } }
EOF
}

start_daemon() {  # $1 = config, $2 = log
  "$T/bin/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" --config "$1" 2>"$2" &
  DPID=$!
  for _ in $(seq 1 100); do
    [[ -S $T/d.sock ]] && return 0
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$2" >&2
  echo "automation.sh: clrdiagd did not start" >&2
  exit 1
}

# One measurement window. Sets TARGET_PCT (array), D_PCT, D_RSS_MAX, D_RSS_END, D_HWM,
# D_THREADS, D_FDS, ELAPSED.
measure() {
  local -a before after
  local d0 d1 t0 t1 rss i p v
  D_RSS_MAX=0
  t0=$(now)
  ticks_to d0 "$DPID"
  for p in "${PIDS[@]}"; do
    ticks_to v "$p"
    before+=("$v")
  done
  # VmRSS once a second until the window's end (microseconds, bash arithmetic: no forks but
  # sleep's).
  local end_us left_us
  end_us=$(($(now_us) + WINDOW * 1000000))
  while :; do
    rss=$(status_kb "$DPID" VmRSS)
    [[ $rss != NA ]] && ((rss > D_RSS_MAX)) && D_RSS_MAX=$rss
    left_us=$((end_us - $(now_us)))
    ((left_us <= 0)) && break
    ((left_us > 1000000)) && left_us=1000000
    sleep "$(printf '%d.%06d' $((left_us / 1000000)) $((left_us % 1000000)))"
  done
  for p in "${PIDS[@]}"; do
    ticks_to v "$p"
    after+=("$v")
  done
  ticks_to d1 "$DPID"
  t1=$(now)
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  [[ $d0 != NA && $d1 != NA ]] || {
    echo "automation.sh: clrdiagd ended during the window" >&2
    exit 1
  }
  D_PCT=$(pct $((d1 - d0)) "$ELAPSED")
  D_RSS_END=$(status_kb "$DPID" VmRSS)
  D_HWM=$(status_kb "$DPID" VmHWM)
  D_THREADS=$(status_kb "$DPID" Threads)
  D_FDS=$(find "/proc/$DPID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  TARGET_PCT=()
  for i in "${!PIDS[@]}"; do
    if [[ ${before[$i]} == NA || ${after[$i]} == NA ]]; then
      TARGET_PCT+=(NA)
    else
      TARGET_PCT+=("$(pct $((after[i] - before[i])) "$ELAPSED")")
    fi
  done
}

mb() { [[ $1 == NA ]] && echo NA || awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Phase 1: baseline. The same daemon and rules, filtered on a tag no target carries.
write_config "*--chain 1$TAG" "$T/base.yaml"
start_daemon "$T/base.yaml" "$T/base.log"
sleep "$SETTLE"  # start-up JIT and tiering of the targets settle; the daemon's first polls
measure
B_TARGET=("${TARGET_PCT[@]}")
B_D=("$D_PCT" "$D_RSS_MAX" "$D_RSS_END" "$D_HWM" "$D_THREADS" "$D_FDS" "$ELAPSED")
stop_pid "$DPID" 10
DPID=""
rm -f "$T/d.sock"

# Phase 2: counter rules on every target.
write_config "*--chain $TAG" "$T/rules.yaml"
t_start=$(now)
start_daemon "$T/rules.yaml" "$T/rules.log"
up=0
for _ in $(seq 1 $((N * 30))); do  # up to ~3 s per target on a loaded machine
  up=0
  for p in "${PIDS[@]}"; do
    grep -q "EventPipe session on pid $p, counters every 1 s" "$T/rules.log" && up=$((up + 1))
  done
  ((up == N)) && break
  kill -0 "$DPID" 2>/dev/null || break
  sleep 0.2
done
SESSIONS_S=$(awk -v a="$t_start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
((up == N)) || {
  tail -20 "$T/rules.log" >&2
  echo "automation.sh: only $up of $N sessions came up" >&2
  exit 1
}
sleep "$SETTLE"  # the targets' counter code (RuntimeEventSource) is JIT-compiled and tiered
measure
R_TARGET=("${TARGET_PCT[@]}")
R_D=("$D_PCT" "$D_RSS_MAX" "$D_RSS_END" "$D_HWM" "$D_THREADS" "$D_FDS" "$ELAPSED")
FIRED=$(grep -c "rule .*: collecting" "$T/rules.log" || true)
NO_SESSION=$(grep -c "no EventPipe session" "$T/rules.log" || true)
stop_pid "$DPID" 10
DPID=""
LOAD_END=$(loadavg)

added=()
lost=0
for i in "${!PIDS[@]}"; do
  if [[ ${B_TARGET[$i]} == NA || ${R_TARGET[$i]} == NA ]]; then
    added+=(NA)
    lost=$((lost + 1))
  else
    added+=("$(awk -v a="${R_TARGET[$i]}" -v b="${B_TARGET[$i]}" 'BEGIN { printf "%.3f", a - b }')")
  fi
done

verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v <= lim) ? "PASS" : "MISS" }'; }
d_rss_peak_mb=$(mb "${R_D[3]}")
echo "# bench/automation.sh — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo
echo "$N x $(basename "$APP") --wait-forever; window ${WINDOW} s per phase (measured ${B_D[6]} s / ${R_D[6]} s);" \
  "load average $LOAD_START (start) → $LOAD_END (end); all $N sessions up ${SESSIONS_S} s after the daemon started;" \
  "targets that vanished: $lost; rules fired: $FIRED; session failures logged: $NO_SESSION"
echo
echo "| figure | baseline (no session) | counter rules, 1 s | goal | result |"
echo "|---|---:|---:|---|---|"
echo "| daemon CPU, % of one core | ${B_D[0]} | ${R_D[0]} | ≤ 2 | $(verdict "${R_D[0]}" 2) |"
echo "| daemon VmRSS max / end, MiB | $(mb "${B_D[1]}") / $(mb "${B_D[2]}") | $(mb "${R_D[1]}") / $(mb "${R_D[2]}") | ≤ 50 MB | $(verdict "$(mb "${R_D[1]}")" 47.68) |"
echo "| daemon VmHWM (peak since start), MiB | $(mb "${B_D[3]}") | $d_rss_peak_mb | ≤ 50 MB | $(verdict "$d_rss_peak_mb" 47.68) |"
echo "| daemon threads / fds | ${B_D[4]} / ${B_D[5]} | ${R_D[4]} / ${R_D[5]} | | |"
echo "| target CPU median / mean / max, % | $(median "${B_TARGET[@]}") / $(meanof "${B_TARGET[@]}") / $(maxof "${B_TARGET[@]}") | $(median "${R_TARGET[@]}") / $(meanof "${R_TARGET[@]}") / $(maxof "${R_TARGET[@]}") | | |"
echo "| added per target median / mean / max, % | | $(median "${added[@]}") / $(meanof "${added[@]}") / $(maxof "${added[@]}") | ≤ 1 | $(verdict "$(maxof "${added[@]}")" 1) (max) |"
echo
echo "Per target (pid: baseline → with counters, % of one core):"
line=""
for i in "${!PIDS[@]}"; do line+="${PIDS[$i]}: ${B_TARGET[$i]} → ${R_TARGET[$i]}; "; done
echo "${line%; }"
if [[ ${KEEP_LOGS:-0} == 1 ]]; then
  echo
  echo "daemon log (counter phase), last lines:"
  tail -15 "$T/rules.log"
fi
