#!/usr/bin/env bash
# The test steps of `make test` after the Release build (see the Makefile), arranged so that the
# two cores are not left idle while the end-to-end tests wait on daemons, .NET start-up and
# collections (bench/README.md, "CI time, session 8"):
#
#   critical path:  Release ctest (every test but clang_tidy)  ->  ASan ctest (unit|integration)
#   background:     ASan build (nice 19)  -- must be done before the ASan ctest starts
#                   clang-tidy (SCHED_IDLE) -- must be done, and clean, before the end
#
# The background jobs take only the CPU time the tests leave unused: a test process (nice 0)
# outweighs the nice-19 build about 70 to 1 on a core and the SCHED_IDLE clang-tidy runs only on
# an idle core (the tests have run at load 8-15 from other builds without harm; this is far
# less). Between them the build comes first. Once the tests are done, what is left runs at full
# speed. Each step prints "make: <step> took N s"; the background jobs' output goes to
# $ASAN_BUILD_DIR/sanitize-build.log and $BUILD_DIR/clang-tidy.log (their tail is printed if
# they fail). If a step fails, the background jobs are stopped (each is its own session and
# process group) and the script exits with the step's status.
#
# Usage: scripts/ci-test.sh   (environment: BUILD_DIR, ASAN_BUILD_DIR, MAKE)
set -uo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
asan=${ASAN_BUILD_DIR:-build-asan}
make_cmd=${MAKE:-make}

# Used only where the kernel lets them work (a seccomp profile or gVisor may refuse the calls:
# then the background jobs simply run at nice 19 / normal priority).
idle_io=()
ionice -c 3 true 2>/dev/null && idle_io=(ionice -c 3)
idle_cpu=()
chrt -i 0 true 2>/dev/null && idle_cpu=(chrt -i 0)

mkdir -p "$asan"
asan_log="$asan/sanitize-build.log"
tidy_log="$build/clang-tidy.log"
start=$(date +%s)

setsid nice -n 19 "${idle_io[@]}" "$make_cmd" --no-print-directory sanitize-build \
  ASAN_BUILD_DIR="$asan" BUILD_DIR="$build" >"$asan_log" 2>&1 &
asan_pid=$!
setsid "${idle_cpu[@]}" "${idle_io[@]}" scripts/clang-tidy.sh --build-dir "$build" -j 2 \
  >"$tidy_log" 2>&1 &
tidy_pid=$!

stop_background() {
  kill -- "-$asan_pid" "-$tidy_pid" 2>/dev/null
  wait "$asan_pid" "$tidy_pid" 2>/dev/null
}
since() { echo $(($(date +%s) - $1)); }
# Whatever way this script ends (a failed step, the CI's cancel or timeout, Ctrl-C), nothing it
# started in the background keeps running.
trap stop_background EXIT
trap 'stop_background; exit 130' INT TERM HUP

# A background job's end: its status, how long the script waited for it, its log's tail if it
# failed.
finish_background() {  # NAME PID LOG WAITED-AFTER
  local t rc
  t=$(date +%s)
  wait "$2"
  rc=$?
  echo "make: $1 took $(since "$t") s after the $4 ($(since "$start") s since it started beside" \
    "the ctest; log: $3)"
  [ $rc -eq 0 ] || tail -n 100 "$3"
  return $rc
}

# The EXIT trap stops the background jobs when a step fails.
t=$(date +%s)
(cd "$build" && ctest --output-on-failure --no-tests=error -j 2 --timeout 600 -E '^clang_tidy$')
rc=$?
echo "make: ctest took $(since "$t") s (every test but clang_tidy, which runs in the background)"
[ $rc -eq 0 ] || exit $rc

finish_background sanitize-build "$asan_pid" "$asan_log" ctest || exit $?

t=$(date +%s)
(cd "$asan" && ctest --output-on-failure --no-tests=error -j 2 --timeout 900 -L 'unit|integration')
rc=$?
echo "make: sanitize-ctest took $(since "$t") s"
[ $rc -eq 0 ] || exit $rc

finish_background clang-tidy "$tidy_pid" "$tidy_log" sanitize-ctest || exit $?
