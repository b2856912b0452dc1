#!/usr/bin/env bash
# The whole test suite: typecheck (tsc, which also builds dist/ for the integration tests),
# then unit and scenario tests, then integration tests with real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
npx vitest run --project unit
# Integration tests run the CLI as processes: from the dist/ just built (no private builds).
IOLUS_USE_DIST=1 npx vitest run --project integration
