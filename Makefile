# The two commands of the README, plus the build they share.
#   make run   — install dependencies, build, run clrdiagd in the foreground (config/clrdiagd.yaml)
#   make test  — install dependencies, build, run every test through ctest (with a 25 s smoke
#                run of each libFuzzer target), clang-tidy, then the unit and integration tests
#                again in an ASan+UBSan build (scripts/ci-test.sh: the ASan build and clang-tidy
#                run in the background beside the tests); each step prints how long it took
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

# After the Release build: scripts/ci-test.sh runs the Release ctest (every test but clang_tidy)
# and then the ASan ctest, while the ASan tree's build (nice 19) and clang-tidy (SCHED_IDLE) run
# in the background on the CPU time the tests leave idle; make test fails if any of them fails.
test: deps
	@WITH_REFERENCE=1 scripts/install-deps.sh >/dev/null
	$(call timed,build,$(MAKE) build)
	@BUILD_DIR=$(BUILD_DIR) ASAN_BUILD_DIR=$(ASAN_BUILD_DIR) MAKE=$(MAKE) scripts/ci-test.sh

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
# Its tests are listed when its ctest starts (PRE_TEST discovery), not during the build, which
# make test runs at nice 19 beside other tests: a starved listing could exceed its timeout.
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
