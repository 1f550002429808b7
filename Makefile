# The README's commands. Each target installs what is missing (Debian/Ubuntu),
# configures through CMakePresets.json and builds in build/<preset>.
#
#   make test      deps + release build + every test (unit, o0, stress)
#   make bench     deps + release build + bench/run
#   make bench-smoke  deps + release build + bench/run --tiny --no-peers (CI: weft only, a few s;
#                     server rows only where their clients are installed)
#   make asan      ASan+UBSan build and test suite   (build/asan)
#   make tsan      ThreadSanitizer build and suite   (build/tsan)
#   make consumer  install into build/prefix and build tests/consumer against it
#   make subdir    build tests/subdir, which add_subdirectory()s this tree (libraries only)
#   make format    clang-format -i on weft's sources
#   make clean     remove build/
#
# JOBS defaults to the number of cores; override with `make test JOBS=1`.

SHELL := /bin/bash
.DEFAULT_GOAL := build

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PACKAGES := liburing-dev libtbb-dev libabsl-dev catch2 libbenchmark-dev cmake ninja-build g++ pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0
PREFIX := $(CURDIR)/build/prefix
CONSUMER_BUILD := $(CURDIR)/build/consumer
SUBDIR_BUILD := $(CURDIR)/build/subdir

.PHONY: deps build test asan tsan bench bench-smoke consumer subdir format clean

# Only touches apt when a package is missing (apt-get update included), and
# never reads stdin, so it is safe in CI and under `make -j`.
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: not a Debian system; install the equivalents of: $(PACKAGES)"; exit 0; \
	fi; \
	missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	$(APT) update </dev/null && $(APT) install --no-install-recommends $$missing </dev/null

build: deps
	cmake --preset release
	cmake --build --preset release --parallel $(JOBS)

test: deps build
	ctest --preset release --parallel $(JOBS)

# $(call sanitizer,<preset>): configure, build and run the suite of one preset.
define sanitizer
	cmake --preset $(1)
	cmake --build --preset $(1) --parallel $(JOBS)
	ctest --preset $(1) --parallel $(JOBS)
endef

asan: deps
	$(call sanitizer,asan)

tsan: deps
	$(call sanitizer,tsan)

bench: deps build
	@if [ -x bench/run ]; then bench/run; \
	elif [ -f bench/run ]; then bash bench/run; \
	else echo "bench: no bench/run yet; benchmark binaries are in build/release/bench"; fi

# Every workload once at a tiny size, weft only: proves the benchmarks still
# build and run. No peers (CI must not spend minutes building Tokio) and no
# judgement of speed.
bench-smoke: deps build
	bench/run --tiny --no-peers

# Consumes weft exactly as a user would: from an install prefix, through
# find_package(weft). Prefix and consumer build start clean so a header that
# was removed from the tree cannot linger in the prefix and hide a problem.
consumer: deps build
	rm -rf $(PREFIX) $(CONSUMER_BUILD)
	cmake --install build/release --prefix $(PREFIX)
	cmake -S tests/consumer -B $(CONSUMER_BUILD) -G Ninja \
	  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$(PREFIX)
	cmake --build $(CONSUMER_BUILD) --parallel $(JOBS)
	$(CONSUMER_BUILD)/app
	@echo "consumer: OK"

# Consumes weft the README's other way: tests/subdir add_subdirectory()s this
# source tree with weft's tests, benchmarks and examples off, so only the
# libraries and one small app are built (no release build needed). Starts
# clean, as consumer does, so a stale cache cannot hide a configure problem.
subdir: deps
	rm -rf $(SUBDIR_BUILD)
	cmake -S tests/subdir -B $(SUBDIR_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(SUBDIR_BUILD) --parallel $(JOBS)
	$(SUBDIR_BUILD)/app
	@echo "subdir: OK"

format:
	@command -v clang-format >/dev/null || { echo "format: apt-get install clang-format"; exit 1; }
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git ls-files -z -- '*.cpp' '*.hpp' '*.h' | xargs -0 -r clang-format -i; \
	else \
	  find scheduler io sync tests bench examples cmake -type f \
	    \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0 | xargs -0 -r clang-format -i; \
	fi

clean:
	rm -rf build
