#!/usr/bin/env bash
# Verifies the upstream CRD schemas vendored in src/mlgate/gitops/crds/ (online; the GitHub
# workflow runs it). For every line of crds/SOURCES.txt it checks the vendored copy against the
# recorded sha256, re-downloads the file from its recorded upstream URL into DIR and checks the
# download against the same sha256. Nothing is replaced: any difference (an upstream tag that
# moved, a vendored copy edited by hand, a file not listed) fails loudly with exit 1, and the
# download stays in DIR to be compared. To move to a new upstream release, vendor the new files
# and their line in SOURCES.txt in one reviewed commit.
#
# usage: scripts/fetch-crds.sh [DIR]     (DIR: where the downloads go; default a temp folder)
# CRD_UPSTREAM overrides https://raw.githubusercontent.com (the tests point it at a file:// copy).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crds=${CRD_VENDORED:-$here/../src/mlgate/gitops/crds}
sources=$crds/SOURCES.txt
upstream=${CRD_UPSTREAM:-https://raw.githubusercontent.com}
if [ $# -gt 0 ]; then
  dest=$1
  mkdir -p "$dest"
  kept=" (download kept: $dest)"
else
  dest=$(mktemp -d)
  trap 'rm -rf "$dest"' EXIT
  kept=""
fi
[ -f "$sources" ] || { echo "fetch-crds: $sources not found" >&2; exit 2; }

download() { # URL OUT: python3's urllib, so file:// works too and curl is not needed
  python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
    "$1" "$2"
}

failed=0
listed=()
while read -r file repo tag path sha extra; do
  case "$file" in '' | '#'*) continue ;; esac
  if [ -z "$sha" ] || [ -n "${extra:-}" ] || ! [[ $sha =~ ^[0-9a-f]{64}$ ]] ||
    [[ $file == */* || $file == .* ]]; then
    echo "fetch-crds: $sources: malformed line for ${file}" >&2
    failed=1
    continue
  fi
  listed+=("$file")
  have=$(sha256sum "$crds/$file" 2>/dev/null | cut -d' ' -f1 || true)
  if [ "$have" != "$sha" ]; then
    echo "fetch-crds: MISMATCH vendored $file: sha256 ${have:-missing}, SOURCES.txt says $sha" >&2
    failed=1
  fi
  url=$upstream/$repo/$tag/$path
  if ! download "$url" "$dest/$file" 2>"$dest/$file.err"; then
    echo "fetch-crds: cannot download $url: $(tail -n1 "$dest/$file.err")" >&2
    failed=1
    continue
  fi
  rm -f "$dest/$file.err"
  got=$(sha256sum "$dest/$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "fetch-crds: MISMATCH upstream $url: sha256 $got, SOURCES.txt says $sha$kept" >&2
    failed=1
  else
    echo "ok $file ($repo $tag)"
  fi
done <"$sources"

for f in "$crds"/*.yaml; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  if [[ " ${listed[*]} " != *" $name "* ]]; then
    echo "fetch-crds: $name is vendored but has no line in SOURCES.txt" >&2
    failed=1
  fi
done

if [ "$failed" != 0 ]; then
  echo "fetch-crds: FAILED: the vendored CRD schemas do not match their recorded upstream" >&2
  exit 1
fi
echo "fetch-crds: all ${#listed[@]} CRD schemas match SOURCES.txt"
