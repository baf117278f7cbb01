#!/usr/bin/env bash
# Regenerates the hashed locks from their inputs:
#   pyproject.toml (+ the dev extra)  -> requirements.lock           (what `make venv` installs)
#   scripts/lock-bootstrap.in         -> requirements-bootstrap.txt  (pip + setuptools, first)
#   scripts/lock-tools.in             -> scripts/lock-tools.txt      (the locking tool itself)
# Every pinned distribution gets the sha256 of every file PyPI has for that version (all wheels
# and the sdist), so one lock serves linux x86_64 and aarch64; installs use --require-hashes.
#
# Versions already in a lock are kept (uv prefers the pins of the file it rewrites); to move one,
# pass uv's flag through: `scripts/lock.sh --upgrade-package numpy`. The resolution is made for
# linux x86_64 and checked to pin the same versions for aarch64.
#
# The locking tool runs from its own throwaway venv (.venv-tools/lock, git-ignored), installed
# hash-checked from scripts/lock-tools.txt, never into the project's venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
TOOLS=.venv-tools/lock
UV=$TOOLS/bin/uv
if [ ! -x "$UV" ]; then
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --require-hashes --no-deps -r scripts/lock-tools.txt
fi

compile() {  # compile OUT PLATFORM ARGS...
  local out=$1 platform=$2
  shift 2
  "$UV" pip compile --quiet --generate-hashes --python-version 3.11 \
    --python-platform "$platform" --custom-compile-command "scripts/lock.sh" -o "$out" "$@"
}

compile requirements-bootstrap.txt x86_64-manylinux_2_28 scripts/lock-bootstrap.in
compile scripts/lock-tools.txt x86_64-manylinux_2_28 scripts/lock-tools.in
compile requirements.lock x86_64-manylinux_2_28 pyproject.toml --extra dev \
  -c requirements-bootstrap.txt "$@"

# The same inputs resolved for aarch64 must pin the same versions (the hashes cover both).
pins() { grep -E '^[A-Za-z0-9][^ ]*==' "$1" | sed 's/ .*//' | sort; }
arm=$(mktemp)
trap 'rm -f "$arm"' EXIT
cp requirements.lock "$arm"
compile "$arm" aarch64-manylinux_2_28 pyproject.toml --extra dev -c requirements-bootstrap.txt
if ! diff <(pins requirements.lock) <(pins "$arm"); then
  echo "lock.sh: aarch64 resolves to other pins than x86_64 (diff above)" >&2
  exit 1
fi
echo "requirements.lock: $(pins requirements.lock | wc -l) pins, hashed for x86_64 and aarch64"
