#!/usr/bin/env bash
# Installs what weft and its tests need on a fresh Debian machine: npm
# dependencies from the lockfile, and the Debian packages the suite drives for
# real (prometheus + promtool, docker.io, busybox-static, chromium). Safe to run again: it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: real peers the tests talk to (skipped with --runtime,
# which is all `scripts/weft` needs).
missing=()
if [ "${1:-}" != "--runtime" ]; then
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  # The agent's tests run containers on a real dockerd (test/helpers/docker.ts starts it);
  # busybox goes into the demo image (scripts/build-test-image.sh) as its shell.
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v busybox >/dev/null 2>&1 || missing+=(busybox-static)
  # The console's tests drive Debian's Chromium through playwright-core (no browser download).
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to apt-get install ${missing[*]} (the test suite drives them for real)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies, exactly as locked. Reinstall when the lockfile changed.
# Running weft (--runtime) needs only the runtime ones: a first `weft up` on a
# fresh clone installs those alone (about half the time of the whole set); the
# test command needs the dev ones too and installs everything over them.
want=full
[ "${1:-}" = "--runtime" ] && want=runtime
have=none
if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
  have=full
  [ -f node_modules/.weft-runtime-only ] && have=runtime
fi
if [ "$have" = none ] || { [ "$want" = full ] && [ "$have" = runtime ]; }; then
  if [ "$want" = runtime ]; then
    echo "setup: npm ci --omit=dev (what weft needs to run)"
    npm ci --omit=dev --no-audit --no-fund --loglevel=error
    touch node_modules/.weft-runtime-only
  else
    echo "setup: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    rm -f node_modules/.weft-runtime-only
  fi
fi

# The CLI bundle bin/weft.js runs (dist/, git-ignored): rebuilt when any source
# changed since the last build. Without it bin/weft.js runs the sources through tsx.
node scripts/build.mjs --if-stale
