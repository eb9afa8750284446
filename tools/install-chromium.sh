#!/usr/bin/env bash
# Installs what the HTML report's browser test needs when it is missing: Debian's `chromium` (headless, driven over
# its DevTools pipe) and Node.js (which runs tests/html/check_report.mjs). Run by the CTest setup fixture
# `html:setup-browser` (tests/html/), so `make test` and CI install it; also fine to run by hand.
# Exit status: 0 when both are there afterwards, or when they cannot be installed here and CI is not "true" (the
# browser tests then say SKIPPED); 1 when they cannot be had and CI=true (CI must not skip the browser test).
set -uo pipefail

need=()
[[ -x /usr/bin/chromium || -n "${HEADLENS_CHROMIUM:-}" ]] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
if [[ ${#need[@]} -eq 0 ]]; then
  echo "install-chromium: chromium and node present, nothing to install"
  exit 0
fi

cannot() {
  if [[ "${CI:-}" == true ]]; then
    echo "install-chromium: FAILED: $1; CI=true, so the browser test cannot be skipped" >&2
    exit 1
  fi
  echo "install-chromium: $1; the browser tests will be SKIPPED (install by hand: apt-get install ${need[*]})"
  exit 0
}

command -v apt-get >/dev/null 2>&1 || cannot "no apt-get (not a Debian-based system) to install ${need[*]}"
sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo_cmd=(sudo -n)
  else
    cannot "not root and no password-less sudo to install ${need[*]}"
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing ${need[*]}"
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q ||
  cannot "apt-get update failed"
"${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need[@]}" ||
  cannot "apt-get install ${need[*]} failed"
echo "install-chromium: installed ${need[*]}"
