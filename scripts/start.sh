#!/usr/bin/env bash
# The main job: a complete local deployment on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh >&2
exec node dist/src/cli/main.js demo "$@"
