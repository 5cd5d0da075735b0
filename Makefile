# Thin wrapper over CMake presets. The two set-up commands of the README:
#   make run    install what is missing, build, run SentinelD on ./data
#   make test   install what is missing, build, run every test
PRESET ?= ci
BUILD  := build/$(PRESET)

LABELS := unit integration privileged rules bench

.PHONY: all deps configure build test run $(LABELS) architecture-doc debug-test minimal-test windows-test fuzz format clean

all: build

deps:
	scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET)

test: build
	ctest --preset $(PRESET)

# One target per ctest label: `make unit`, `make integration`, `make privileged`
# (needs root; skips with the reason otherwise), `make rules`, `make bench`.
$(LABELS): build
	ctest --preset $(PRESET) -L '^$@$$'

# Rewrites the module graph of docs/architecture.md from the CMake
# declarations (the module_graph_doc test fails while they differ).
architecture-doc: configure
	cmake --build --preset $(PRESET) --target architecture-doc

# The sanitizer build (ASan + UBSan) runs the same suite.
debug-test:
	$(MAKE) test PRESET=debug

# Every optional feature OFF (webhook, email, audit signing, HTTP, fleet, Sigma,
# eBPF): builds without their libraries and runs its suite (docs/building.md).
minimal-test:
	$(MAKE) test PRESET=minimal

# procmond.exe for Windows (mingw-w64, build/windows) and its tests under
# wine64, then the Linux-side tests that run it and read its store with the
# Linux sentinelcli (ctest label `windows` of PRESET): docs/platforms.md.
windows-test: build
	cmake --preset windows
	cmake --build --preset windows
	ctest --preset windows
	ctest --preset $(PRESET) -L '^windows$$'

# libFuzzer targets (clang, ASan + UBSan; build/fuzz), each run FUZZ_SECONDS (60) on a
# copy of its seed corpus in fuzz/corpus/; fails on any finding (scripts/fuzz.sh).
fuzz: deps
	scripts/fuzz.sh

# clang-tidy on the product code with .clang-tidy (function size and cognitive
# complexity are errors); needs the built tree of PRESET (scripts/tidy.sh).
.PHONY: tidy
tidy: build
	scripts/tidy.sh $(BUILD)

run: build
	scripts/run.sh $(BUILD)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
