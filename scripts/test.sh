#!/usr/bin/env bash
# The one test command (README, .ci/run): sets up, type-checks, lints, and runs
# every test. Tests start and stop their own daemons (dev Consul, Prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== tsc --noEmit"
npx --no-install tsc --noEmit
echo "== biome lint"
npx --no-install biome lint .
echo "== tap"
npx --no-install tap "$@"
