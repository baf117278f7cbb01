#!/usr/bin/env bash
# Installs the Debian packages mlgate's embedded default needs, when run as root (as on CI).
# Otherwise names what is missing and carries on: tests that need a tool skip with its name.
set -euo pipefail
declare -A PKG_FOR=(
  [buildah]=buildah
  [skopeo]=skopeo
  [docker-registry]=docker-registry
  [debootstrap]=debootstrap
  [promtool]=prometheus
  [chromium]=chromium  # the demo page's render test (headless)
  [tidy]=tidy  # the demo page's HTML validator
)
missing=()
for tool in "${!PKG_FOR[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG_FOR[$tool]}")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "mlgate: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's prometheus and docker-registry packages start services on install; mlgate runs its own.
  for svc in prometheus docker-registry; do
    (command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null) || true
    pkill -f "/usr/bin/$svc" 2>/dev/null || true
  done
else
  echo "mlgate: missing Debian packages (install as root): apt-get install ${missing[*]}" >&2
fi
