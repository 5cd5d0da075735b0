# Thin wrapper over CMake presets. The two set-up commands of the README:
#   make run    install what is missing, build, run SentinelD on ./data
#   make test   install what is missing, build, run every test
PRESET ?= ci
BUILD  := build/$(PRESET)

.PHONY: all deps configure build test run unit integration debug-test format clean

all: build

deps:
	scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET)

test: build
	ctest --preset $(PRESET)

unit: build
	ctest --preset $(PRESET) -L unit

integration: build
	ctest --preset $(PRESET) -L integration

# The sanitizer build (ASan + UBSan) runs the same suite.
debug-test:
	$(MAKE) test PRESET=debug

run: build
	scripts/run.sh $(BUILD)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
