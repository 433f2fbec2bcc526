# The two commands of the README, plus the build they share.
#   make run   — install dependencies, build, run clrdiagd in the foreground (config/clrdiagd.yaml)
#   make test  — install dependencies, build, run every test through ctest
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run test fixtures clean format sanitize

all: build

deps:
	@scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: deps build
	$(BUILD_DIR)/bin/clrdiagd --config config/clrdiagd.yaml

test: deps
	@WITH_REFERENCE=1 scripts/install-deps.sh >/dev/null
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure -j 2 --timeout 600

fixtures: build
	scripts/build-fixtures.sh $(BUILD_DIR)/fixtures

format:
	find core daemon client tests -name '*.cc' -o -name '*.h' | xargs clang-format -i

sanitize:
	$(MAKE) test BUILD_DIR=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DCLRDIAG_SANITIZE=ON"

clean:
	rm -rf $(BUILD_DIR)
