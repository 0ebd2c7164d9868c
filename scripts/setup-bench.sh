#!/usr/bin/env bash
# Installs what the benchmarks drive for real and the tests do not need:
# HAProxy (the peer of bench/proxy/two-hops.ts) and wrk (its load generator).
# Called by the benches that need them; safe to run again.
set -euo pipefail
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-bench: need root to apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "setup-bench: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
