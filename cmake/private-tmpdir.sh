#!/bin/sh
# Test launcher: runs "$@" with TMPDIR pointing at a fresh empty directory, removed afterwards. Tests that write
# scratch files under std::filesystem::temp_directory_path() then cannot collide with each other under `ctest -j`,
# nor with another build's tests on the same machine. Set as the test targets' CROSSCOMPILING_EMULATOR, which
# catch_discover_tests (and add_test) put in front of the test executable.
dir=$(mktemp -d "${TMPDIR:-/tmp}/headlens-test.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
TMPDIR=$dir
export TMPDIR
"$@"
