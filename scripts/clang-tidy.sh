#!/usr/bin/env bash
# Runs clang-tidy (checks in the checked-in .clang-tidy) over clrdiag's own sources and fails on
# any warning.
#
# Usage: scripts/clang-tidy.sh [--build-dir DIR] [-j N] [--analyzer] [--changed [BASE]] [FILE...]
#   --build-dir DIR  a configured build tree with compile_commands.json (default: build);
#                    its generated protobuf headers are built first (target clrdiag_proto)
#   -j N             clang-tidy processes in parallel (default 2)
#   --analyzer       also the Clang static analyzer's core/C++/unix/security checks (slower;
#                    not in CI)
#   --changed [BASE] only the translation units whose file, or a header they include from
#                    this repository, differs from BASE (default: the merge base with main),
#                    committed or not
#   --with-tests     also the tests (tests/, *_test.cc, *_fuzz.cc); CI checks the product only
#   FILE...          only these .cc files (paths relative to the repository root)
# Environment: CLRDIAG_TIDY_CACHE=DIR|off  where clean results are cached (default
#   ~/.cache/clrdiag-tidy), keyed by each unit's inputs (scripts/tidy_cache_keys.py); off: none.
# Default set: every .cc under core/ daemon/ client/ (not tests) that compile_commands.json names
# (generated *.pb.cc files and third-party code are not ours and are left out; headers under
# those folders are checked through the .cc files that include them).
# Exit: 0 no warning; 1 warnings (listed once each, then a count); 2 usage or setup error.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$repo/build"
jobs=2
changed=""
with_tests=0
extra=()
files=()
while (($#)); do
  case "$1" in
    --build-dir) build_dir="$(cd "$2" && pwd)"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    -j*) jobs="${1#-j}"; shift ;;
    --changed)
      if [[ $# -ge 2 && "$2" != -* && ! -f "$repo/$2" ]]; then changed="$2"; shift 2
      else changed="auto"; shift; fi ;;
    --with-tests) with_tests=1; shift ;;
    --analyzer) extra=(--checks='clang-analyzer-core.*,clang-analyzer-cplusplus.*,clang-analyzer-deadcode.*,clang-analyzer-security.*,clang-analyzer-unix.*,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling'); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "clang-tidy.sh: unknown option $1" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done

tidy="${CLANG_TIDY:-clang-tidy}"
if ! command -v "$tidy" >/dev/null; then
  echo "clang-tidy.sh: $tidy not found: run scripts/install-deps.sh" >&2
  exit 2
fi
db="$build_dir/compile_commands.json"
if [[ ! -f "$db" ]]; then
  echo "clang-tidy.sh: $db not found: configure first (cmake -S . -B build)" >&2
  exit 2
fi
# The daemon's and client's sources include the generated gRPC headers.
cmake --build "$build_dir" --target clrdiag_proto -j "$jobs" >/dev/null

cd "$repo"
# Every translation unit of ours in the compilation database, relative to the repository.
# Without --with-tests: the product's code only (tests/, *_test.cc and *_fuzz.cc are left out;
# checking them too doubles the time).
if ((with_tests)); then
  ours='^(core|daemon|client|tests)/.*\.cc$'
  tests_re='^$'
else
  ours='^(core|daemon|client)/.*\.cc$'
  tests_re='(_test|_fuzz)\.cc$'
fi
mapfile -t all < <(grep -o '"file": *"[^"]*"' "$db" | sed 's/^"file": *"//; s/"$//' |
  sed "s|^$repo/||" | grep -E "$ours" | grep -vE "$tests_re" | sort -u)

if [[ -n "$changed" ]]; then
  base="$changed"
  [[ "$base" == auto ]] && base="$(git merge-base HEAD main 2>/dev/null || echo HEAD)"
  mapfile -t diff < <({ git diff --name-only "$base" --; git ls-files --others --exclude-standard; } |
    grep -E '\.(cc|h)$' | sort -u)
  for f in "${diff[@]}"; do
    case "$f" in
      *.cc) files+=("$f") ;;
      *.h) # every unit of ours that includes it (directly)
        mapfile -t users < <(grep -lF "#include \"$f\"" "${all[@]}" 2>/dev/null || true)
        files+=("${users[@]}") ;;
    esac
  done
  if ((${#files[@]} == 0)); then
    echo "clang-tidy.sh: no changed source since $base"
    exit 0
  fi
fi

if ((${#files[@]})); then
  # Keep only units the database knows (a new file needs a re-configure).
  mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u | grep -Fx -f <(printf '%s\n' "${all[@]}") || true)
else
  files=("${all[@]}")
fi
if ((${#files[@]} == 0)); then
  echo "clang-tidy.sh: nothing to check (is the file in $db?)" >&2
  exit 2
fi

out="$(mktemp -d)"
export OUT="$out"
trap 'rm -rf "$out"' EXIT
start=$SECONDS

# Result cache (like ccache, for clang-tidy): a unit whose clang-tidy version and options,
# .clang-tidy, compile command and every included file's content (the build's depfile) are those
# of an earlier clean run is not checked again. Only clean results (exit 0, no finding) are
# kept. CLRDIAG_TIDY_CACHE=DIR (default ~/.cache/clrdiag-tidy), or off.
cache="${CLRDIAG_TIDY_CACHE:-${XDG_CACHE_HOME:-${HOME:-}/.cache}/clrdiag-tidy}"
[[ "$cache" == /.cache/* ]] && cache=off  # no HOME: no cache
[[ "$cache" == off ]] || mkdir -p "$cache" 2>/dev/null || cache=off
declare -A key=()
todo=("${files[@]}")
hits=0
if [[ "$cache" != off ]]; then
  salt="$("$tidy" --version | tr '\n' ' ') ${extra[*]}"
  todo=()
  while read -r f k; do
    key[$f]="$k"
    if [[ "$k" != - && -f "$cache/$k" ]]; then
      cp "$cache/$k" "$out/$(echo "$f" | tr / _).log"
      hits=$((hits + 1))
    else
      todo+=("$f")
    fi
  done < <(printf '%s\n' "${files[@]}" |
    python3 "$repo/scripts/tidy_cache_keys.py" "$repo" "$build_dir" "$db" "$salt")
fi

# One log per unit, and its exit status; --quiet drops the "N warnings generated" lines about
# system headers.
if ((${#todo[@]})); then
  printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -I{} sh -c \
    'f="$1"; shift; log="$OUT/$(echo "$f" | tr / _)"; "$@" "$f" >"$log.log" 2>&1; echo $? >"$log.rc"' \
    _ {} "$tidy" -p "$build_dir" --quiet "${extra[@]}"
fi

if [[ "$cache" != off ]]; then
  for f in "${todo[@]}"; do
    k="${key[$f]:--}"
    log="$out/$(echo "$f" | tr / _)"
    if [[ "$k" != - && "$(cat "$log.rc" 2>/dev/null)" == 0 ]] &&
       ! grep -qE '^[^ ].*:[0-9]+:[0-9]+: (warning|error):' "$log.log"; then
      cp "$log.log" "$cache/$k.tmp.$$" && mv "$cache/$k.tmp.$$" "$cache/$k"
    fi
  done
fi

# A header's warning comes once per unit that includes it: report each one once.
cat "$out"/*.log | grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error):' | sed "s|^$repo/||" |
  sort -u >"$out/findings" || true
n="$(wc -l <"$out/findings")"
if ((n > 0)); then
  # The full text (with the code excerpt) of each distinct finding, first occurrence only.
  awk -v repo="$repo/" '
    /^[^ ].*:[0-9]+:[0-9]+: (warning|error):/ {
      line = $0; sub(repo, "", line); show = !(line in seen); seen[line] = 1
      if (show) print line; next }
    /^[^ ].*:[0-9]+:[0-9]+: note:/ { if (show) { l = $0; sub(repo, "", l); print l }; next }
    { if (show) print }' "$out"/*.log
  echo "clang-tidy.sh: $n warning(s) in ${#files[@]} file(s) ($((SECONDS - start)) s)" >&2
  exit 1
fi
echo "clang-tidy.sh: no warning in ${#files[@]} file(s) ($((SECONDS - start)) s, -j $jobs;" \
  "$hits unchanged since a clean run, from the cache)"
