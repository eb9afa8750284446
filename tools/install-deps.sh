#!/usr/bin/env bash
# Installs the Debian packages headlens needs to build, test and benchmark, and only those that are missing.
# Called by `make demo`, `make test` and .ci/run, so a fresh Debian 12 machine needs nothing done by hand.
#   tools/install-deps.sh            check, then install what is missing
#   tools/install-deps.sh --check    only report; exit 1 when something is missing
#   HEADLENS_EXTRA_PACKAGES="clang"  also require these packages (e.g. clang for the libFuzzer build)
#   HEADLENS_SKIP_DEPS=1             do nothing (for machines managed some other way)
set -euo pipefail

packages=(g++ cmake make libeigen3-dev libxsimd-dev catch2 libbenchmark-dev nlohmann-json3-dev libcli11-dev
          libopenmpi-dev openmpi-bin libpcre2-dev libicu-dev pkg-config)
# shellcheck disable=SC2206
packages+=(${HEADLENS_EXTRA_PACKAGES:-})

if [[ "${HEADLENS_SKIP_DEPS:-0}" == 1 ]]; then
  echo "install-deps: HEADLENS_SKIP_DEPS=1, not checking packages"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: not a Debian-based system; install by hand: ${packages[*]}" >&2
  exit 0
fi

# `dpkg -s` succeeds for a removed package whose config files remain, so ask for the exact status instead.
missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present, nothing to install"
  exit 0
fi
echo "install-deps: missing: ${missing[*]}"
if [[ "${1:-}" == "--check" ]]; then
  exit 1
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: not root and no sudo; install by hand: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
