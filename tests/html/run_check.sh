#!/bin/sh
# Runs tests/html/check_report.mjs with the arguments given, under Node. Without Node: fails when CI=true (the
# browser test must run in CI), else prints "SKIPPED: ..." (the tests' skip pattern). check_report.mjs does the same
# for a missing Chromium.
node=$(command -v node || command -v nodejs)
if [ -z "$node" ]; then
  if [ "${CI:-}" = true ]; then
    echo "run_check: FAILED: no Node.js to drive Chromium (tools/install-chromium.sh installs it); CI=true" >&2
    exit 1
  fi
  echo "SKIPPED: no Node.js to drive Chromium (tools/install-chromium.sh installs it)"
  exit 0
fi
exec "$node" "$(dirname "$0")/check_report.mjs" "$@"
