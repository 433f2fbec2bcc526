# The two commands of the README, plus the build they share.
#   make run   — install dependencies, build, run clrdiagd in the foreground (config/clrdiagd.yaml)
#   make test  — install dependencies, build, run every test through ctest (with clang-tidy and
#                a 25 s smoke run of each libFuzzer target), then the unit and integration tests
#                again in an ASan+UBSan build (make sanitize); each step prints how long it took
BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run test fixtures clean format sanitize sanitize-build tidy

all: build

deps:
	@scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: deps build
	$(BUILD_DIR)/bin/clrdiagd --config config/clrdiagd.yaml

# Prints "make: <step> took N s" after a step (the CI timings in bench/README.md).
timed = @s=$$(date +%s); $(2) && echo "make: $(1) took $$(( $$(date +%s) - s )) s"

# The ASan tree is built in the background while the Release ctest runs, at idle CPU and I/O
# priority (SCHED_IDLE, ionice idle): it gets only the CPU time the tests leave unused (they
# spend much of it waiting on daemons, .NET start-up and collections) and yields at once when a
# test wants a core, so the tests run as they would without it. Whatever is left of it runs
# after the ctest at normal priority. Its output: $(ASAN_BUILD_DIR)/sanitize-build.log (the
# tail printed if it fails). If the ctest fails, the background build (its own session and
# process group) is stopped. Its tests are listed when its ctest starts (PRE_TEST discovery),
# not at idle priority during the build, where a starved listing could exceed its timeout.
IDLE_PRIORITY := $(if $(shell command -v chrt),chrt -i 0) $(if $(shell command -v ionice),ionice -c 3)
test: deps
	@WITH_REFERENCE=1 scripts/install-deps.sh >/dev/null
	$(call timed,build,$(MAKE) build)
	@s=$$(date +%s); mkdir -p $(ASAN_BUILD_DIR); \
	  setsid $(IDLE_PRIORITY) $(MAKE) --no-print-directory sanitize-build \
	    >$(ASAN_BUILD_DIR)/sanitize-build.log 2>&1 & asan=$$!; \
	  (cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 600); rc=$$?; \
	  t=$$(date +%s); echo "make: ctest took $$(( t - s )) s"; \
	  if [ $$rc -ne 0 ]; then kill -- -$$asan 2>/dev/null; wait $$asan; exit $$rc; fi; \
	  for p in $$(ps -o pid= --sid $$asan 2>/dev/null); do chrt -a -o -p 0 $$p >/dev/null 2>&1; done; \
	  wait $$asan; brc=$$?; \
	  echo "make: sanitize-build took $$(( $$(date +%s) - t )) s after the ctest" \
	    "($$(( $$(date +%s) - s )) s since it started beside the ctest; log: $(ASAN_BUILD_DIR)/sanitize-build.log)"; \
	  if [ $$brc -ne 0 ]; then tail -n 100 $(ASAN_BUILD_DIR)/sanitize-build.log; exit $$brc; fi
	$(call timed,sanitize-ctest,cd $(ASAN_BUILD_DIR) && \
	  ctest --output-on-failure -j 2 --timeout 900 -L 'unit|integration')

fixtures: build
	scripts/build-fixtures.sh $(BUILD_DIR)/fixtures

format:
	find core daemon client tests -name '*.cc' -o -name '*.h' | xargs clang-format -i

# ASan+UBSan tree: the unit and integration tests (labels); the conformance, terminal and stress
# suites, clang-tidy and the fuzzers run in the main tree only. Reuses the main tree's .NET
# fixtures. Runtime options: tests/sanitizers/.
# Debug (asserts on, -O0) with -g1: line tables and function names, which is all the sanitizer
# reports print; full -g debug info cost ~15 % more compile CPU and ~30 % larger objects. gold
# links the ~50 big ASan binaries with ~35 % less CPU than ld.bfd (measured: bench/README.md).
ASAN_LINKER_FLAGS := $(if $(shell command -v ld.gold),-fuse-ld=gold)
sanitize-build:
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DCLRDIAG_SANITIZE=ON \
	  -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST \
	  -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1 \
	  -DCMAKE_EXE_LINKER_FLAGS=$(ASAN_LINKER_FLAGS) \
	  -DCLRDIAG_FIXTURES_DIR=$(abspath $(BUILD_DIR))/fixtures $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS) --target clrdiag_sanitize_tests

sanitize:
	$(call timed,sanitize-build,$(MAKE) sanitize-build)
	$(call timed,sanitize-ctest,cd $(ASAN_BUILD_DIR) && \
	  ctest --output-on-failure -j 2 --timeout 900 -L 'unit|integration')

# clang-tidy over the sources (all of them; scripts/clang-tidy.sh --changed for a quick look).
tidy: $(BUILD_DIR)/CMakeCache.txt
	scripts/clang-tidy.sh --build-dir $(BUILD_DIR) -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR)
