#!/usr/bin/env bash
# tools/test-summary.sh BUILD_DIR RUN... : adds up the ctest runs of `make test` (logs BUILD_DIR/ctest-RUN.log,
# exit statuses BUILD_DIR/ctest-RUN.rc), prints one line per run and ctest's closing line for the whole suite,
# and exits non-zero if any run failed or is missing. Also writes the lines to BUILD_DIR/test-summary.txt.
set -euo pipefail
build=$1
shift
total=0
failed=0
status=0
lines=()
for run in "$@"; do
  log=$build/ctest-$run.log
  rc_file=$build/ctest-$run.rc
  if [[ ! -f $log || ! -f $rc_file ]]; then
    lines+=("  $run: did not run")
    status=1
    continue
  fi
  rc=$(cat "$rc_file")
  closing=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)
  if [[ -z $closing ]]; then
    if grep -q 'No tests were found' "$log"; then
      lines+=("  $run: no tests")
    else
      lines+=("  $run: no ctest summary (exit $rc)")
      status=1
    fi
    continue
  fi
  n=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$closing")
  f=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$closing")
  total=$((total + n))
  failed=$((failed + f))
  lines+=("  $run: $((n - f))/$n passed")
  if [[ $rc -ne 0 ]]; then
    status=1
  fi
done
if [[ $total -gt 0 ]]; then
  percent=$(((total - failed) * 100 / total))
else
  percent=0
  status=1
fi
{
  echo "==== make test summary"
  printf '%s\n' "${lines[@]}"
  echo "$percent% tests passed, $failed tests failed out of $total"
} | tee "$build/test-summary.txt"
exit $status
