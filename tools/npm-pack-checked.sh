# Sourced by the tools/fetch-*.sh scripts: the one way they download an npm package. Expects `say` and `die`.
#
#   npm_pack_checked PACKAGE VERSION INTEGRITY TARBALL WORK
#
# Leaves the published tarball of PACKAGE@VERSION at TARBALL, checked against INTEGRITY (npm's `dist.integrity`,
# "sha512-" + base64). A TARBALL already there with that checksum is used as it is; otherwise `npm pack` fetches
# it into the scratch folder WORK through npm's own configuration (registry, proxy, cache). Dies with one line on
# stderr when npm is missing, the download fails or the checksum differs.

# sha512 of a file in npm's integrity form ("sha512-" + base64 of the digest).
sri_of() {
  if command -v node >/dev/null 2>&1; then
    node -e 'const c=require("crypto"),f=require("fs");
             process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
  elif command -v openssl >/dev/null 2>&1; then
    printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
  else
    die "neither node nor openssl is installed; cannot check $1"
  fi
}

npm_pack_checked() {
  local package=$1 version=$2 integrity=$3 tarball=$4 work=$5 got actual
  if [[ -f "$tarball" && "$(sri_of "$tarball")" == "$integrity" ]]; then
    say "using the cached $tarball"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm is not installed (Debian: apt-get install npm); it fetches $package@$version"
  say "npm pack $package@$version (once)"
  rm -f "$work"/*.tgz
  (cd "$work" && npm pack --silent "$package@$version" >/dev/null 2>"$work/npm.log") ||
    die "npm pack $package@$version failed: $(tail -n 3 "$work/npm.log" | tr '\n' ' ')"
  got="$(ls "$work"/*.tgz 2>/dev/null | head -n 1)"
  [[ -n "$got" ]] || die "npm pack $package@$version wrote no tarball"
  actual="$(sri_of "$got")"
  [[ "$actual" == "$integrity" ]] || die "$package@$version: tarball sha512 is $actual, expected $integrity"
  mv -f "$got" "$tarball"
}
