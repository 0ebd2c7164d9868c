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
# tap bakes its plugin list in at build time; a fresh install still has the
# TypeScript plugin that TypeScript 7 breaks, so rebuild with .taprc's list.
npx --no-install tap build >/dev/null
mkdir -p .tap
set +e
npx --no-install tap "$@" 2>&1 | tee .tap/last-run.txt
rc=${PIPESTATUS[0]}
set -e
# tap's own summary is `# { total: N, pass: N, fail: N, skip: N }`; print the
# plain closing line CI reads as well.
summary=$(grep -E '^# \{ total:' .tap/last-run.txt | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
skip=$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")
# CI keeps only the end of the output: name every failed test there, with the
# first lines of its diagnostic, so a failure can be read without the whole log.
if [ "${fail:-0}" != "0" ] || [ "$rc" != "0" ]; then
  echo "== failed tests"
  grep -n -A 12 -E '^\s*not ok ' .tap/last-run.txt | head -n 200 || true
fi
echo "${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
exit "$rc"
