#!/usr/bin/env bash
# Installs what the service needs on a fresh Debian 12 machine (run as root) and builds it.
#   deps.sh          npm packages (npm ci) and the build: enough to run the service
#   deps.sh --test   also the Debian packages the tests use (scripts/apt-packages.txt:
#                    GStreamer, ffmpeg, avahi, python3-zeroconf, iproute2, …)
# Idempotent: a second run does nothing it does not have to.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

wanted=()
if [ "$mode" = "--test" ]; then
  mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' scripts/apt-packages.txt | grep -v '^$')
fi
# better-sqlite3 builds from source when no prebuilt binary can be fetched.
for p in python3 make g++; do command -v "$p" >/dev/null || wanted+=("$p"); done
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=node_modules/.iolus-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --foreground-scripts=false
  cp package-lock.json "$stamp"
fi

echo "deps: building"
npx tsc -p tsconfig.json
