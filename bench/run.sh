#!/usr/bin/env bash
# bench/run.sh — clrdiag vs dotnet-dump, side by side, in one run (about 2 minutes, more under
# load). Standalone: not part of `make test`.
#
# Measures:
#   1. `ps` wall time with 5 SleepApp processes running: median of PS_RUNS (20) runs of
#      `clrdiag ps` and of `dotnet-dump ps` (one warm-up of each discarded).
#   2. Heap dump of a HeapApp holding ~500 MB of managed heap (~10 M objects):
#      `clrdiag collect -p PID --type Heap -o FILE` vs `dotnet-dump collect -p PID --type Heap
#      -o FILE`, COLLECT_RUNS (3) runs each, alternating, median. Also `clrdiag collect` without
#      -o (the dump only lands in the daemon's store) and a phase breakdown of our collect.
#      The daemon's peak RSS during our collects (VmHWM reset through /proc/PID/clear_refs
#      before each run, cross-checked by polling VmRSS every 20 ms).
#   3. Analysis of one such dump (the same file for both tools):
#      `clrdiag analyze ID -c "dumpheap -stat" -c exit` vs `dotnet-dump analyze DUMP -c
#      "dumpheap -stat" -c exit` (ANALYZE_RUNS (3) each, alternating, median); open to first
#      prompt (`-c exit`, OPEN_RUNS (5) each after one warm-up); peak RSS of the analysing
#      process (our clrdiag-worker, a child of clrdiagd, vs dotnet-dump), polled every 10 ms in
#      one extra run of each; and the physical limit: reading the dump's bytes once from the
#      (warm) page cache.
#   4. The daemon's idle RSS: after start, after ps calls, after the collections, after the
#      analyses.
#
# Prints a markdown report and appends it to bench/results-<YYYY-MM-DD>.md (one section per
# run, so several runs of a day can be compared; set OUT=path to write elsewhere).
#
# Needs: build/bin/{clrdiagd,clrdiag,clrdiag-worker} (built if missing), the .NET SDK
# (fixtures), ~/.dotnet/tools/dotnet-dump (WITH_REFERENCE=1 scripts/install-deps.sh), ~2 GB
# free in the temp directory. Optional: strace (times the download's fsync, if any), python3
# (reads exactly the PT_LOAD bytes of the dump for the physical limit; else only `cat`).
#
# Environment knobs: PS_RUNS, COLLECT_RUNS, ANALYZE_RUNS, OPEN_RUNS, HEAP_OBJECTS (5000000),
# HEAP_MB (20), DOTNET_DUMP (path), FIXTURES (fixture dir, default build/fixtures), BENCH_TMP
# (parent of the temp dir, default ${TMPDIR:-/tmp}), OUT, DAEMON_TUNABLES (a GLIBC_TUNABLES
# value for clrdiagd and its workers only, for what-if runs; the report names it).
#
# Only processes this script starts are stopped (by pid); everything it creates (processes,
# temp dir, daemon store, dumps) is removed on exit, including on Ctrl-C. Page cache is NOT
# dropped: figures are warm-cache figures.
set -euo pipefail
export LC_ALL=C  # EPOCHREALTIME with a '.' and C number formatting

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${CLRDIAG_BIN:-$REPO/build/bin}"
DOTNET_DUMP="${DOTNET_DUMP:-$HOME/.dotnet/tools/dotnet-dump}"
FIXTURES="${FIXTURES:-$REPO/build/fixtures}"
PS_RUNS="${PS_RUNS:-20}"
COLLECT_RUNS="${COLLECT_RUNS:-3}"
ANALYZE_RUNS="${ANALYZE_RUNS:-3}"
OPEN_RUNS="${OPEN_RUNS:-5}"
HEAP_OBJECTS="${HEAP_OBJECTS:-5000000}"
HEAP_MB="${HEAP_MB:-20}"
SLEEP_APPS=5
TODAY="$(date +%F)"
RUN_STARTED="$(date '+%F %T %Z')"
OUT="${OUT:-$REPO/bench/results-$TODAY.md}"

# Targets.
PS_RATIO_MAX=0.20         # clrdiag ps <= 1/5 of dotnet-dump ps
COLLECT_RATIO_MAX=1.20    # clrdiag collect -o <= 1.2x dotnet-dump collect -o
PEAK_RSS_MAX_KB=65536     # daemon peak RSS during collect <= 64 MiB
IDLE_RSS_MAX_KB=20480     # daemon idle RSS <= 20 MiB
DUMPHEAP_RATIO_MAX=0.33   # analyze -c "dumpheap -stat" <= 0.33x dotnet-dump's
WORKER_RSS_RATIO_MAX=0.5  # worker peak RSS <= 0.5x dotnet-dump analyze's peak RSS
OPEN_RATIO_MAX=0.20       # open to first prompt (-c exit) <= 0.2x dotnet-dump's

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
unset NOTIFY_SOCKET CLRDIAG_SERVER || true

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Cleanup: only what we started / created.
T=""
DPID=""
HPID=""
POLLER=""
BG_PID=""   # a timed command running in the background (peak RSS runs)
APP_PIDS=()

stop_pid() {  # stop_pid PID [grace-seconds]: SIGTERM, then SIGKILL if it lingers
    local pid=$1 grace=${2:-5} i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [[ -n $POLLER ]] && stop_pid "$POLLER" 1
    [[ -n $BG_PID ]] && stop_pid "$BG_PID" 5
    local p
    for p in "${APP_PIDS[@]}"; do stop_pid "$p" 5; done
    [[ -n $DPID ]] && stop_pid "$DPID" 10
    if [[ -n $HPID && -n ${TARGET_TMP_HOST:-} ]]; then
        # Temp dirs the daemon makes in the target's temp dir (only if a collect was cut short).
        rm -rf "${TARGET_TMP_HOST%/}"/clrdiag-*-"$HPID"-heap-* 2>/dev/null
    fi
    [[ -n $T && -d $T ]] && rm -rf "$T"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Helpers.

# A sleep that forks nothing (read on a FIFO nobody writes): the samplers run it every 20 ms.
nap() { read -r -t "$1" -u "$TICK" _ || true; }

now_us() { NOW_US=${EPOCHREALTIME/./}; }   # sets NOW_US (integer microseconds), no fork

rss_kb() {  # rss_kb PID [field]: prints VmRSS (or the given field) in kB
    local k v _ field=${2:-VmRSS}
    while read -r k v _; do
        if [[ $k == "$field:" ]]; then echo "$v"; return; fi
    done <"/proc/$1/status"
    echo 0
}

children_of() {  # children_of PID: sets KIDS to the pids of PID's children (of all its threads)
    local f c
    KIDS=()
    for f in /proc/"$1"/task/*/children; do
        c=""
        read -r -d '' c 2>/dev/null <"$f" || true
        KIDS+=($c)
    done
}
proc_comm() { COMM=""; read -r COMM 2>/dev/null <"/proc/$1/comm" || true; }  # sets COMM
proc_state() {  # proc_state PID: sets STATE to R/S/D/Z/... ("" once the pid is gone)
    local k v _
    STATE=""
    while read -r k v _; do
        if [[ $k == State: ]]; then STATE=$v; return; fi
    done 2>/dev/null <"/proc/$1/status" || true
}

median() {  # median NUM...
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
minof() { printf '%s\n' "$@" | sort -g | head -1; }
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }           # calc FORMAT EXPR
verdict() { awk "BEGIN { exit !($1) }" && echo "**PASS**" || echo "**MISS**"; }
mib() { calc '%.1f' "$1 / 1024"; }

# Epoch microseconds of a daemon log line's timestamp ("2026-11-27T02:51:57.315 ...").
log_ts_us() {
    local ts=$1
    echo $(( $(date -d "${ts/T/ }" +%s%3N) * 1000 ))
}

wait_ready() {  # wait_ready PID LOGFILE TIMEOUT_S: waits for "READY <pid>" from a fixture
    local pid=$1 file=$2 timeout=$3 i
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "process $pid exited before READY"; }
        if grep -q "^READY $pid\$" "$file" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "process $pid not READY after ${timeout}s (log: $(head -c 500 "$file"))"
}

# ---------------------------------------------------------------------------------------------
# Preconditions.
BENCH_START=$SECONDS
for b in clrdiagd clrdiag clrdiag-worker; do
    if [[ ! -x $BIN/$b ]]; then
        log "building $b"
        cmake --build "$REPO/build" -j2 --target clrdiagd clrdiag clrdiag-worker >&2
    fi
done
[[ -x $DOTNET_DUMP ]] || die "dotnet-dump not found at $DOTNET_DUMP (WITH_REFERENCE=1 scripts/install-deps.sh)"
command -v dotnet >/dev/null || die "dotnet (SDK) not on PATH: needed to build the fixtures"

log "fixtures -> $FIXTURES"
"$REPO/scripts/build-fixtures.sh" "$FIXTURES" >&2
SLEEPAPP="$FIXTURES/SleepApp/SleepApp"
HEAPAPP="$FIXTURES/HeapApp/HeapApp"

T="$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/clrdiag-bench.XXXXXX")"
free_kb=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
(( free_kb > 2 * 1024 * 1024 )) || die "need ~2 GB free in $T (have $((free_kb / 1024)) MiB)"
mkfifo "$T/.tick"
exec {TICK}<>"$T/.tick"

# Run private copies of the binaries: a rebuild of build/bin during the run (someone working
# in the same tree) must not swap binaries under the benchmark.
mkdir -p "$T/bin"
# (clrdiagd starts the clrdiag-worker next to its own executable.)
cp "$BIN/clrdiagd" "$BIN/clrdiag" "$BIN/clrdiag-worker" "$T/bin/"
bin_info() {  # bin_info NAME: build time, sha256 prefix, number of shared libraries it needs
    local needed="?"
    command -v readelf >/dev/null && needed=$(readelf -d "$T/bin/$1" | grep -c '(NEEDED)' || true)
    echo "$1 built $(date -r "$BIN/$1" '+%F %T') (sha256 $(sha256sum "$T/bin/$1" | cut -c1-12), $needed shared libs)"
}
BIN_INFO="$(bin_info clrdiagd), $(bin_info clrdiag), $(bin_info clrdiag-worker)"
BIN="$T/bin"

CLRDIAG=("$BIN/clrdiag" --server "unix:$T/d.sock")
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# The daemon.
log "starting clrdiagd${DAEMON_TUNABLES:+ with GLIBC_TUNABLES=$DAEMON_TUNABLES}"
if [[ -n ${DAEMON_TUNABLES:-} ]]; then
    GLIBC_TUNABLES=$DAEMON_TUNABLES "$BIN/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/clrdiagd.log" &
else
    "$BIN/clrdiagd" --listen "unix:$T/d.sock" --dump-dir "$T/store" 2>"$T/clrdiagd.log" &
fi
DPID=$!
for ((i = 0; i < 100; i++)); do
    [[ -S $T/d.sock ]] && break
    kill -0 "$DPID" 2>/dev/null || { cat "$T/clrdiagd.log" >&2; die "clrdiagd exited"; }
    sleep 0.1
done
[[ -S $T/d.sock ]] || die "clrdiagd did not create its socket in 10 s"
sleep 1
RSS_IDLE_START=$(rss_kb "$DPID")

# ---------------------------------------------------------------------------------------------
# 1. ps with 5 .NET processes.
log "starting $SLEEP_APPS SleepApps"
SLEEP_PIDS=()
for ((i = 0; i < SLEEP_APPS; i++)); do
    "$SLEEPAPP" >"$T/sleep$i.out" 2>&1 </dev/null &
    APP_PIDS+=($!)
    SLEEP_PIDS+=($!)
done
for ((i = 0; i < SLEEP_APPS; i++)); do wait_ready "${SLEEP_PIDS[$i]}" "$T/sleep$i.out" 60; done

# A few ps calls, then the idle RSS "after ps".
for i in 1 2 3; do "${CLRDIAG[@]}" ps >"$T/ps-ours.txt"; done
sleep 0.5
RSS_IDLE_AFTER_PS=$(rss_kb "$DPID")
# dotnet-dump ps throws (InvalidOperationException: "Process has exited") when a process ends
# while it lists them, which happens on a busy shared machine: retry such a run (up to 5 times).
ref_ps() {
    local tries
    for tries in 1 2 3 4 5; do
        if "$DOTNET_DUMP" ps >"$1" 2>"$T/ps-ref.err"; then return 0; fi
        log "dotnet-dump ps failed (try $tries): $(grep -m1 Exception "$T/ps-ref.err" || true)"
    done
    die "dotnet-dump ps failed 5 times"
}
ref_ps "$T/ps-ref.txt"
PS_SEEN_OURS=$(grep -c . "$T/ps-ours.txt" || true)
PS_SEEN_REF=$(grep -c . "$T/ps-ref.txt" || true)
for p in "${SLEEP_PIDS[@]}"; do
    grep -qw "$p" "$T/ps-ours.txt" || die "clrdiag ps does not list SleepApp $p"
    grep -qw "$p" "$T/ps-ref.txt" || die "dotnet-dump ps does not list SleepApp $p"
done

log "ps: 1 warm-up + $PS_RUNS timed runs of each"
PS_OURS=()
PS_REF=()
for ((i = 0; i <= PS_RUNS; i++)); do
    now_us; s=$NOW_US
    "${CLRDIAG[@]}" ps >/dev/null
    now_us; e=$NOW_US
    if (( i > 0 )); then PS_OURS+=("$(calc '%.1f' "($e - $s) / 1000")"); fi
    for ((k = 0; k < 5; k++)); do  # a run that threw (see ref_ps) is timed again
        now_us; s=$NOW_US
        if "$DOTNET_DUMP" ps >/dev/null 2>"$T/ps-ref.err"; then break; fi
        log "dotnet-dump ps failed, timing it again: $(grep -m1 Exception "$T/ps-ref.err" || true)"
    done
    (( k < 5 )) || die "dotnet-dump ps failed 5 times"
    now_us; e=$NOW_US
    if (( i > 0 )); then PS_REF+=("$(calc '%.1f' "($e - $s) / 1000")"); fi
done
sleep 0.5
RSS_IDLE_AFTER_PS_BENCH=$(rss_kb "$DPID")
PS_OURS_MED=$(median "${PS_OURS[@]}")
PS_REF_MED=$(median "${PS_REF[@]}")
log "ps median: clrdiag ${PS_OURS_MED} ms, dotnet-dump ${PS_REF_MED} ms"

for p in "${SLEEP_PIDS[@]}"; do stop_pid "$p" 5; done

# ---------------------------------------------------------------------------------------------
# 2. Heap dumps.
log "starting HeapApp $HEAP_MB MiB blobs + $HEAP_OBJECTS objects"
now_us; s=$NOW_US
"$HEAPAPP" 10000 "$HEAP_MB" --objects "$HEAP_OBJECTS" >"$T/heap.out" 2>&1 </dev/null &
HPID=$!
APP_PIDS+=("$HPID")
wait_ready "$HPID" "$T/heap.out" 120
now_us; HEAP_READY_S=$(calc '%.1f' "($NOW_US - $s) / 1000000")
HEAP_RSS_KB=$(rss_kb "$HPID")
sock=$(compgen -G "${TMPDIR:-/tmp}/dotnet-diagnostic-$HPID-*-socket" | head -1 || true)
[[ -n $sock ]] || sock=$(awk -v p="dotnet-diagnostic-$HPID-" 'index($NF, p) { print $NF; exit }' /proc/net/unix)
[[ -n $sock ]] || die "no diagnostic socket for HeapApp $HPID"
TARGET_TMP="/proc/$HPID/root$(dirname "$sock")"
TARGET_TMP_HOST="$(dirname "$sock")"   # same mount namespace as this script
SAME_FS=no
[[ $(stat -c %d "$TARGET_TMP") == $(stat -c %d "$T") ]] && SAME_FS=yes

# Background sampler for one of our collects: max VmRSS of the daemon every 20 ms, plus when
# the target's createdump child process (the runtime writing the dump; the daemon copies,
# hashes and streams it while it grows) is first and last seen. Stops when $T/stop exists;
# writes "maxrss first_us last_us".
sampler() {
    local out=$1 max=0 first="" last="" k v _ p
    while [[ ! -e $T/stop ]]; do
        while read -r k v _; do
            if [[ $k == VmRSS: ]]; then (( v > max )) && max=$v; break; fi
        done <"/proc/$DPID/status"
        children_of "$HPID"
        for p in "${KIDS[@]}"; do
            proc_comm "$p"
            if [[ $COMM == createdump ]]; then
                now_us
                [[ -z $first ]] && first=$NOW_US
                last=$NOW_US
            fi
        done
        nap 0.02
    done
    echo "$max ${first:-0} ${last:-0}" >"$out"
}

HWM_RESET=no
if echo 5 >"/proc/$DPID/clear_refs" 2>/dev/null; then HWM_RESET=yes; fi

# our_collect RUN WITH_OUTPUT(0/1): one timed `clrdiag collect`; appends to the ROW_* arrays.
our_collect() {
    local run=$1 with_o=$2 s e id out="$T/ours.dmp" hwm0 hwm max first last
    local args=(collect -p "$HPID" --type Heap)
    (( with_o )) && args+=(-o "$out")
    hwm0=$(rss_kb "$DPID" VmHWM)
    [[ $HWM_RESET == yes ]] && echo 5 >"/proc/$DPID/clear_refs"
    rm -f "$T/stop"
    local mark
    mark=$(wc -l <"$T/clrdiagd.log")
    sampler "$T/sampler.out" &
    POLLER=$!
    now_us; s=$NOW_US
    if ! "${CLRDIAG[@]}" "${args[@]}" >"$T/collect.out" 2>"$T/collect.err"; then
        cat "$T/collect.out" "$T/collect.err" >&2
        die "clrdiag collect failed"
    fi
    now_us; e=$NOW_US
    touch "$T/stop"
    wait "$POLLER" || true
    POLLER=""
    read -r max first last <"$T/sampler.out"
    hwm=$(rss_kb "$DPID" VmHWM)
    [[ $HWM_RESET == yes ]] || { (( hwm > hwm0 )) || hwm=0; }  # 0 = "not above the earlier peak"
    id=$(sed -n 's/^Dump id: *//p' "$T/collect.out")
    [[ -n $id ]] || { cat "$T/collect.out" >&2; die "no 'Dump id:' in the collect output"; }
    local size
    size=$(sed -n 's/^Stored: .*daemon.s host, \([0-9,]*\) bytes.*/\1/p' "$T/collect.out" | tr -d ,)
    # Daemon log: "collect: Heap dump of pid" (request received) and "collect: stored" lines.
    local lstart lstored
    lstart=$(tail -n +"$((mark + 1))" "$T/clrdiagd.log" | awk '/collect: .* dump of pid/ { print $1; exit }')
    lstored=$(tail -n +"$((mark + 1))" "$T/clrdiagd.log" | awk -v id="$id" '$0 ~ "collect: stored " id { print $1; exit }')
    local t_req t_stored
    [[ -n $lstart && -n $lstored ]] || die "collect of $id: request/stored lines not found in the daemon log"
    t_req=$(log_ts_us "$lstart")
    t_stored=$(log_ts_us "$lstored")
    if (( with_o )); then
        [[ -s $out ]] || die "clrdiag collect -o wrote no $out"
        local osize
        osize=$(stat -c %s "$out")
        [[ $osize == "$size" ]] || die "-o file is $osize bytes, the store says $size"
        rm -f "$out"
    fi
    "${CLRDIAG[@]}" rm "$id" >/dev/null || die "clrdiag rm $id failed"
    # Phases (seconds). createdump = request logged -> createdump last seen (it exited); the
    # daemon copies, hashes and (with -o) streams the dump while it grows;
    # tail = that -> "stored" logged (the rest of the copy/hash/stream, runtime files, commit);
    # finish = "stored" logged -> client exit (last message; with -o: close and rename FILE).
    local total cd st dl pre
    total=$(calc '%.2f' "($e - $s) / 1e6")
    pre=$(calc '%.2f' "($t_req - $s) / 1e6")
    if (( last > 0 )); then
        cd=$(calc '%.2f' "($last - $t_req) / 1e6")
        st=$(calc '%.2f' "($t_stored - $last) / 1e6")
    else
        cd="?"; st="?"
    fi
    dl=$(calc '%.2f' "($e - $t_stored) / 1e6")
    ROW_KIND+=("$( (( with_o )) && echo "clrdiag collect -o" || echo "clrdiag collect (store only)")")
    ROW_RUN+=("$run"); ROW_TOTAL+=("$total"); ROW_PRE+=("$pre"); ROW_CD+=("$cd"); ROW_ST+=("$st")
    ROW_DL+=("$dl"); ROW_MAX+=("$max"); ROW_HWM+=("$hwm")
    DUMP_SIZE=$size
    LAST_LOG_LINES+=("$lstart collect start / $lstored stored $id")
    log "run $run clrdiag collect$( (( with_o )) && echo ' -o'): ${total}s (createdump ${cd}s, tail ${st}s, finish ${dl}s), daemon peak RSS $(mib "$hwm") MiB (polled $(mib "$max"))"
}

ref_collect() {
    local run=$1 s e out="$T/ref.dmp"
    now_us; s=$NOW_US
    if ! "$DOTNET_DUMP" collect -p "$HPID" --type Heap -o "$out" >"$T/ref.out" 2>&1; then
        cat "$T/ref.out" >&2
        die "dotnet-dump collect failed"
    fi
    now_us; e=$NOW_US
    [[ -s $out ]] || die "dotnet-dump collect wrote no $out"
    REF_SIZE=$(stat -c %s "$out")
    rm -f "$out"
    REF_TIMES+=("$(calc '%.2f' "($e - $s) / 1e6")")
    log "run $run dotnet-dump collect -o: ${REF_TIMES[-1]}s"
}

ROW_KIND=(); ROW_RUN=(); ROW_TOTAL=(); ROW_PRE=(); ROW_CD=(); ROW_ST=(); ROW_DL=()
ROW_MAX=(); ROW_HWM=(); REF_TIMES=(); LAST_LOG_LINES=()
OURS_O=(); OURS_STORE=(); PEAKS=()
for ((r = 1; r <= COLLECT_RUNS; r++)); do
    our_collect "$r" 1
    OURS_O+=("${ROW_TOTAL[-1]}"); PEAKS+=("${ROW_HWM[-1]}" "${ROW_MAX[-1]}")
    ref_collect "$r"
    our_collect "$r" 0
    OURS_STORE+=("${ROW_TOTAL[-1]}"); PEAKS+=("${ROW_HWM[-1]}" "${ROW_MAX[-1]}")
done
OURS_O_MED=$(median "${OURS_O[@]}")
OURS_STORE_MED=$(median "${OURS_STORE[@]}")
REF_MED=$(median "${REF_TIMES[@]}")
PEAK_KB=$(maxof "${PEAKS[@]}")

# Download probe: one more collect into the store, then `clrdiag download` alone, timed, with
# its fsync timed by strace (only fsync is traced, through seccomp-bpf: little overhead), and
# one sha256 pass over the stored file (what the daemon and the client each pay once).
log "download/sha256 probe"
"${CLRDIAG[@]}" collect -p "$HPID" --type Heap >"$T/collect.out" 2>"$T/collect.err"
PROBE_ID=$(sed -n 's/^Dump id: *//p' "$T/collect.out")
PROBE_FILE="$T/store/dumps/$PROBE_ID/dump"
SHA_TOOL="openssl dgst -sha256"   # the library the daemon and the client hash with
command -v openssl >/dev/null || SHA_TOOL="sha256sum"
now_us; s=$NOW_US
$SHA_TOOL "$PROBE_FILE" >/dev/null
now_us; SHA_S=$(calc '%.2f' "($NOW_US - $s) / 1e6")
FSYNC_S="n/a"
now_us; s=$NOW_US
if command -v strace >/dev/null && strace --seccomp-bpf -f -e trace=fsync -T -o "$T/strace.txt" \
        "${CLRDIAG[@]}" download "$PROBE_ID" -o "$T/probe.dmp" >/dev/null 2>&1; then
    now_us; e=$NOW_US
    FSYNC_S=$(awk -F'<' '/fsync\(/ { gsub(/>.*/, "", $NF); s += $NF } END { printf "%.2f", s }' "$T/strace.txt")
else
    rm -f "$T/probe.dmp" "$T/probe.dmp.partial"
    now_us; s=$NOW_US
    "${CLRDIAG[@]}" download "$PROBE_ID" -o "$T/probe.dmp" >/dev/null
    now_us; e=$NOW_US
fi
DOWNLOAD_S=$(calc '%.2f' "($e - $s) / 1e6")
DL_RATE=$(calc '%.0f' "$DUMP_SIZE / 1048576 / (($e - $s) / 1e6)")
rm -f "$T/probe.dmp"

sleep 1
RSS_IDLE_AFTER_COLLECT=$(rss_kb "$DPID")
stop_pid "$HPID" 5   # the analyses below work on the stored probe dump

# ---------------------------------------------------------------------------------------------
# 3. Analysis of the probe dump: the same file for both tools (dotnet-dump opens the file in our
# store; ours opens it by id), warm page cache.
PROBE_SIZE=$(stat -c %s "$PROBE_FILE")

# run_timed OUTFILE CMD...: runs CMD (stdout to OUTFILE, stderr to OUTFILE.err); sets TIMED_S.
run_timed() {
    local out=$1 s
    shift
    now_us; s=$NOW_US
    if ! "$@" >"$out" 2>"$out.err"; then
        cat "$out" "$out.err" >&2
        die "failed: $*"
    fi
    now_us; TIMED_S=$(calc '%.3f' "($NOW_US - $s) / 1e6")
}

# peak_run MODE OUTFILE CMD...: runs CMD in the background and polls every 10 ms, until it exits,
# the status of the process doing the analysis: MODE=self: CMD itself (dotnet-dump);
# MODE=worker: the clrdiag-worker children of clrdiagd. Sets PEAK_HWM, PEAK_ANON, PEAK_FILE
# (kB; the maximum of each field over the samples) and PEAK_PID. A poll is a lower bound: the
# last sample is at most ~10 ms before the process exits.
peak_run() {
    local mode=$1 out=$2 p k v _ pids
    shift 2
    PEAK_HWM=0; PEAK_ANON=0; PEAK_FILE=0; PEAK_PID=""
    "$@" >"$out" 2>"$out.err" &
    BG_PID=$!
    for (( ; ; )); do
        proc_state "$BG_PID"
        [[ -z $STATE || $STATE == Z* ]] && break
        pids=()
        if [[ $mode == self ]]; then
            pids=("$BG_PID")
        else
            children_of "$DPID"
            for p in "${KIDS[@]}"; do
                proc_comm "$p"
                if [[ $COMM == clrdiag-worker ]]; then pids+=("$p"); fi
            done
        fi
        for p in "${pids[@]}"; do
            PEAK_PID=$p
            while read -r k v _; do
                case $k in
                    VmHWM:) if (( v > PEAK_HWM )); then PEAK_HWM=$v; fi ;;
                    RssAnon:) if (( v > PEAK_ANON )); then PEAK_ANON=$v; fi ;;
                    RssFile:) if (( v > PEAK_FILE )); then PEAK_FILE=$v; fi ;;
                esac
            done 2>/dev/null <"/proc/$p/status" || true
        done
        nap 0.01
    done
    if ! wait "$BG_PID"; then
        BG_PID=""
        cat "$out" "$out.err" >&2
        die "failed: $*"
    fi
    BG_PID=""
}

# The physical limit: the dump's bytes read once from the page cache. `cat` of the whole file,
# and (python3) exactly the bytes of its PT_LOAD segments — what an analysis can at most need —
# read with pread into a 1 MiB buffer (as the worker's heap walk reads it), and touched once per
# page through mmap (how the worker read it before it switched to pread). Medians of 3 passes, timed inside python (no interpreter start-up).
log "analysis: physical limit (reading the dump once, warm cache)"
CAT_TIMES=()
for i in 0 1 2 3; do   # pass 0 warms the cache
    now_us; s=$NOW_US
    cat "$PROBE_FILE" >/dev/null
    now_us
    if (( i > 0 )); then CAT_TIMES+=("$(calc '%.3f' "($NOW_US - $s) / 1e6")"); fi
done
CAT_S=$(median "${CAT_TIMES[@]}")
LOAD_SEGS="?"; LOAD_BYTES=""; LOAD_READ_S=""; LOAD_MMAP_S=""
if command -v python3 >/dev/null; then
    cat >"$T/readload.py" <<'PY'
import mmap, os, struct, sys, time
path, passes = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
eh = os.pread(fd, 64, 0)
if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
    sys.exit("not a little-endian ELF64 file")
phoff, shoff = struct.unpack_from("<QQ", eh, 0x20)
phentsize, phnum = struct.unpack_from("<HH", eh, 0x36)
if phnum == 0xFFFF:  # PN_XNUM: the count is in section header 0's sh_info
    phnum = struct.unpack_from("<I", os.pread(fd, 64, shoff), 0x2C)[0]
ph = os.pread(fd, phentsize * phnum, phoff)
segs = []
for i in range(phnum):
    p_type, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
    if p_type == 1 and filesz:
        segs.append((off, filesz))
buf = bytearray(1 << 20)
mv = memoryview(buf)

def read_pass():
    t = time.perf_counter()
    for off, n in segs:
        while n:
            k = os.preadv(fd, [mv[: min(n, len(buf))]], off)
            if k <= 0:
                sys.exit("short read")
            off += k
            n -= k
    return time.perf_counter() - t

def mmap_pass():
    mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    t = time.perf_counter()
    for off, n in segs:
        for p in range(off - off % 4096, off + n, 4096):
            mm[p]
    t = time.perf_counter() - t
    mm.close()
    return t

r = sorted(read_pass() for _ in range(passes))
m = sorted(mmap_pass() for _ in range(passes))
print(len(segs), sum(n for _, n in segs), "%.3f" % r[len(r) // 2], "%.3f" % m[len(m) // 2])
PY
    if read -r LOAD_SEGS LOAD_BYTES LOAD_READ_S LOAD_MMAP_S < <(python3 "$T/readload.py" "$PROBE_FILE" 3); then
        :
    else
        log "warning: the PT_LOAD reader failed; only the cat figure is reported"
    fi
fi
PHYS_S=${LOAD_READ_S:-$CAT_S}
log "physical limit: cat ${CAT_S}s; PT_LOAD bytes: pread ${LOAD_READ_S:-?}s, mmap touch ${LOAD_MMAP_S:-?}s"

# Open to first prompt: one warm-up of each, then OPEN_RUNS alternating.
log "analysis: open to first prompt (-c exit), 1 warm-up + $OPEN_RUNS runs of each"
OPEN_OURS=(); OPEN_REF=()
for ((i = 0; i <= OPEN_RUNS; i++)); do
    run_timed "$T/open-ours.txt" "${CLRDIAG[@]}" analyze "$PROBE_ID" -c exit
    if (( i > 0 )); then OPEN_OURS+=("$(calc '%.1f' "$TIMED_S * 1000")"); fi
    run_timed "$T/open-ref.txt" "$DOTNET_DUMP" analyze "$PROBE_FILE" -c exit
    if (( i > 0 )); then OPEN_REF+=("$(calc '%.1f' "$TIMED_S * 1000")"); fi
done
OPEN_OURS_MED=$(median "${OPEN_OURS[@]}")
OPEN_REF_MED=$(median "${OPEN_REF[@]}")
log "open to first prompt: clrdiag ${OPEN_OURS_MED} ms, dotnet-dump ${OPEN_REF_MED} ms"

# dumpheap -stat end to end, alternating (the open runs were the warm-up).
log "analysis: dumpheap -stat, $ANALYZE_RUNS runs of each"
DH_OURS=(); DH_REF=()
for ((i = 1; i <= ANALYZE_RUNS; i++)); do
    run_timed "$T/dh-ours.txt" "${CLRDIAG[@]}" analyze "$PROBE_ID" -c "dumpheap -stat" -c exit
    DH_OURS+=("$TIMED_S")
    run_timed "$T/dh-ref.txt" "$DOTNET_DUMP" analyze "$PROBE_FILE" -c "dumpheap -stat" -c exit
    DH_REF+=("$TIMED_S")
    log "run $i dumpheap -stat: clrdiag ${DH_OURS[-1]}s, dotnet-dump ${DH_REF[-1]}s"
done
DH_OURS_MED=$(median "${DH_OURS[@]}")
DH_REF_MED=$(median "${DH_REF[@]}")
grep -q '^Total ' "$T/dh-ours.txt" || { cat "$T/dh-ours.txt" >&2; die "no 'Total' line in our dumpheap -stat"; }
# The first line names the dump (an id for us, a path for dotnet-dump). dotnet-dump prints
# "Scanning heap: N MB / M MB (P%)..." progress lines when the walk takes long (under load).
DH_SAME=no
if cmp -s <(tail -n +2 "$T/dh-ours.txt") <(tail -n +2 "$T/dh-ref.txt" | grep -v '^Scanning heap: '); then
    DH_SAME=yes
fi
DH_LINES=$(wc -l <"$T/dh-ours.txt")
DH_TOTAL_LINE=$(grep '^Total ' "$T/dh-ours.txt" | head -1)

# Peak RSS: one more run of each, polled.
log "analysis: peak RSS (one polled run of each)"
peak_run worker "$T/peak-ours.txt" "${CLRDIAG[@]}" analyze "$PROBE_ID" -c "dumpheap -stat" -c exit
W_HWM=$PEAK_HWM; W_ANON=$PEAK_ANON; W_FILE=$PEAK_FILE; W_PID=$PEAK_PID
[[ -n $W_PID ]] || die "no clrdiag-worker child of clrdiagd was seen during the analysis"
peak_run self "$T/peak-ref.txt" "$DOTNET_DUMP" analyze "$PROBE_FILE" -c "dumpheap -stat" -c exit
R_HWM=$PEAK_HWM; R_ANON=$PEAK_ANON; R_FILE=$PEAK_FILE
log "peak RSS: clrdiag-worker $(mib "$W_HWM") MiB (anon $(mib "$W_ANON"), file $(mib "$W_FILE")), dotnet-dump $(mib "$R_HWM") MiB (anon $(mib "$R_ANON"), file $(mib "$R_FILE"))"

"${CLRDIAG[@]}" rm "$PROBE_ID" >/dev/null
sleep 1
RSS_IDLE_AFTER_ANALYZE=$(rss_kb "$DPID")
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$((SECONDS - BENCH_START))

# ---------------------------------------------------------------------------------------------
# Report.
PS_RATIO=$(calc '%.3f' "$PS_OURS_MED / $PS_REF_MED")
O_RATIO=$(calc '%.2f' "$OURS_O_MED / $REF_MED")
S_RATIO=$(calc '%.2f' "$OURS_STORE_MED / $REF_MED")
IDLE_MAX=$(maxof "$RSS_IDLE_START" "$RSS_IDLE_AFTER_PS" "$RSS_IDLE_AFTER_PS_BENCH" "$RSS_IDLE_AFTER_COLLECT" "$RSS_IDLE_AFTER_ANALYZE")
DH_RATIO=$(calc '%.3f' "$DH_OURS_MED / $DH_REF_MED")
OPEN_RATIO=$(calc '%.3f' "$OPEN_OURS_MED / $OPEN_REF_MED")
W_RATIO=$(calc '%.2f' "$W_HWM / $R_HWM")
W_ANON_RATIO=$(calc '%.3f' "$W_ANON / $R_ANON")
DH_PHYS=$(calc '%.1f' "$DH_OURS_MED / $PHYS_S")
DH_REF_PHYS=$(calc '%.1f' "$DH_REF_MED / $PHYS_S")
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$REPO" diff --quiet HEAD -- 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
REF_VERSION=$("$DOTNET_DUMP" --version 2>/dev/null | head -1)

{
echo "## Run started $RUN_STARTED"
echo
echo "Machine: $(nproc)-core VM ($CPU_MODEL), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)."
echo "**Numbers are from a $(nproc)-core VM, warm page cache (caches not dropped).**"
echo "Load average at start / end: $LOAD_START / $LOAD_END (other workloads on the machine add noise)."
echo "Source tree at $COMMIT; binaries measured (copied at start): $BIN_INFO; dotnet-dump $REF_VERSION. Run took ${ELAPSED}s."
if [[ -n ${DAEMON_TUNABLES:-} ]]; then echo "**What-if run: clrdiagd (and its workers) ran with GLIBC_TUNABLES=$DAEMON_TUNABLES.**"; fi
echo
echo "| Measure | clrdiag | dotnet-dump | ratio | target | result |"
echo "|---|---:|---:|---:|---|---|"
echo "| \`ps\` wall time, median of $PS_RUNS (ms) | $PS_OURS_MED | $PS_REF_MED | ${PS_RATIO}× | ≤ 0.20× | $(verdict "$PS_RATIO <= $PS_RATIO_MAX") |"
echo "| Heap dump \`collect -o FILE\`, median of $COLLECT_RUNS (s) | $OURS_O_MED | $REF_MED | ${O_RATIO}× | ≤ 1.2× | $(verdict "$O_RATIO <= $COLLECT_RATIO_MAX") |"
echo "| Heap dump \`collect\` into the daemon's store only (no -o), median of $COLLECT_RUNS (s) | $OURS_STORE_MED | $REF_MED | ${S_RATIO}× | (info) | |"
echo "| clrdiagd peak RSS during collect (MiB) | $(mib "$PEAK_KB") | – | | ≤ 64 MiB | $(verdict "$PEAK_KB <= $PEAK_RSS_MAX_KB") |"
echo "| clrdiagd idle RSS: after start / after 3 ps / after $((PS_RUNS + 1)) ps / after all collects and downloads / after the analyses (MiB) | $(mib "$RSS_IDLE_START") / $(mib "$RSS_IDLE_AFTER_PS") / $(mib "$RSS_IDLE_AFTER_PS_BENCH") / $(mib "$RSS_IDLE_AFTER_COLLECT") / $(mib "$RSS_IDLE_AFTER_ANALYZE") | – | | ≤ 20 MiB | $(verdict "$IDLE_MAX <= $IDLE_RSS_MAX_KB") |"
echo "| \`analyze -c \"dumpheap -stat\" -c exit\`, client start to exit, median of $ANALYZE_RUNS (s) | $DH_OURS_MED | $DH_REF_MED | ${DH_RATIO}× | ≤ 0.33× | $(verdict "$DH_RATIO <= $DUMPHEAP_RATIO_MAX") |"
echo "| Peak RSS of the analysing process during dumpheap -stat (MiB; ours: clrdiag-worker) | $(mib "$W_HWM") | $(mib "$R_HWM") | ${W_RATIO}× | ≤ 0.5× | $(verdict "$W_RATIO <= $WORKER_RSS_RATIO_MAX") |"
echo "| … of which anonymous (private) memory, peak (MiB) | $(mib "$W_ANON") | $(mib "$R_ANON") | ${W_ANON_RATIO}× | (info) | |"
echo "| Open to first prompt, \`analyze -c exit\`, median of $OPEN_RUNS (ms) | $OPEN_OURS_MED | $OPEN_REF_MED | ${OPEN_RATIO}× | ≤ 0.2× | $(verdict "$OPEN_RATIO <= $OPEN_RATIO_MAX") |"
echo "| Physical limit: the dump's PT_LOAD bytes read once, warm cache (s); dumpheap -stat as a multiple of it | $PHYS_S → ${DH_PHYS}× | ${DH_REF_PHYS}× | | (info) | |"
echo
echo "Setup: $SLEEP_APPS SleepApps for \`ps\` (each tool listed $PS_SEEN_OURS / $PS_SEEN_REF processes: clrdiag / dotnet-dump, incl. any .NET processes of other users of the machine); one warm-up of each tool discarded; runs interleaved."
echo "HeapApp \`10000 $HEAP_MB --objects $HEAP_OBJECTS\`: RSS $(mib "$HEAP_RSS_KB") MiB, READY after ${HEAP_READY_S}s; Heap dump size $(calc '%.0f' "$DUMP_SIZE / 1048576") MiB (clrdiag) / $(calc '%.0f' "$REF_SIZE / 1048576") MiB (dotnet-dump)."
echo "Collect runs interleaved: clrdiag -o, dotnet-dump, clrdiag store-only; every dump deleted (file and \`clrdiag rm\`) after its run."
echo "Daemon store and the target's temp dir on the same filesystem: $SAME_FS (the daemon copies the dump into the store while createdump writes it, either way)."
echo "Peak RSS: VmHWM$( [[ $HWM_RESET == yes ]] && echo " reset before each collect (echo 5 > /proc/PID/clear_refs)" || echo " (not resettable here: 0 = no new peak)"), cross-checked with VmRSS polled every 20 ms."
echo
echo "### Our collect, phase by phase (s)"
echo
echo "createdump = daemon logs the request → the target's createdump process is last seen (sampled every 20 ms); the daemon copies, hashes and (-o) streams the dump while createdump writes it;"
echo "tail = → daemon logs \"stored\" (the rest of the copy/hash/stream, runtime files, commit);"
echo "finish = → client exits (the last message; with -o: closing and renaming FILE)."
echo
echo "| run | command | total | client→request | createdump | tail | finish | peak RSS (MiB, VmHWM / polled) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for ((k = 0; k < ${#ROW_RUN[@]}; k++)); do
    echo "| ${ROW_RUN[$k]} | ${ROW_KIND[$k]} | ${ROW_TOTAL[$k]} | ${ROW_PRE[$k]} | ${ROW_CD[$k]} | ${ROW_ST[$k]} | ${ROW_DL[$k]} | $(mib "${ROW_HWM[$k]}") / $(mib "${ROW_MAX[$k]}") |"
done
echo
echo "dotnet-dump collect -o runs (s): ${REF_TIMES[*]}"
echo
echo "Probe: \`clrdiag download\` alone of one $(calc '%.0f' "$DUMP_SIZE / 1048576") MiB dump: ${DOWNLOAD_S}s (${DL_RATE} MiB/s), of which fsync (strace) ${FSYNC_S}s; one \`$SHA_TOOL\` pass over the stored dump (warm cache): ${SHA_S}s."
echo
echo "### Analysis of one $(calc '%.0f' "$PROBE_SIZE / 1048576") MiB Heap dump (the same file for both tools)"
echo
echo "- \`dumpheap -stat\` runs (s) — clrdiag: ${DH_OURS[*]}; dotnet-dump: ${DH_REF[*]}. Output identical to dotnet-dump's (after the first line, which names the dump): **$DH_SAME** ($DH_LINES lines; \"$DH_TOTAL_LINE\")."
echo "- Open to first prompt (\`-c exit\`) runs (ms) — clrdiag: ${OPEN_OURS[*]}; dotnet-dump: ${OPEN_REF[*]}."
echo "- Peak RSS, polled every 10 ms in one extra run of each (max over the samples): clrdiag-worker VmHWM $(mib "$W_HWM") MiB, of which at most $(mib "$W_FILE") MiB file-backed (the binaries and the local runtime files: page-cache pages, shared; the dump itself is read with pread, not mapped) and $(mib "$W_ANON") MiB anonymous; dotnet-dump VmHWM $(mib "$R_HWM") MiB (file $(mib "$R_FILE"), anonymous $(mib "$R_ANON"))."
echo "- Physical limit (warm cache, median of 3): \`cat\` of the whole file ${CAT_S}s; the ${LOAD_SEGS} PT_LOAD segments ($(calc '%.0f' "${LOAD_BYTES:-0} / 1048576") MiB) read with pread ${LOAD_READ_S:-n/a}s, touched once per page through mmap ${LOAD_MMAP_S:-n/a}s. dumpheap -stat end to end = ${DH_PHYS}× the pread figure (dotnet-dump: ${DH_REF_PHYS}×)."
echo
echo "Raw \`ps\` times (ms) — clrdiag: ${PS_OURS[*]}"
echo
echo "Raw \`ps\` times (ms) — dotnet-dump: ${PS_REF[*]}"
} >"$T/report.md"

mkdir -p "$(dirname "$OUT")"
if [[ ! -s $OUT ]]; then
    printf '# clrdiag benchmark results — %s\n\nProduced by bench/run.sh (see bench/README.md); one section per run, newest last.\n' \
        "$TODAY" >"$OUT"
fi
{ echo; cat "$T/report.md"; } >>"$OUT"
cat "$T/report.md"
log "results written to $OUT"
