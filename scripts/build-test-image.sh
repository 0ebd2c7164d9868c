#!/usr/bin/env bash
# Builds weft's test/demo image with `docker import` (no registry is reachable):
# a root filesystem holding this host's node binary, its shared libraries,
# busybox (a shell for debugging) and scripts/demo-app.mjs. The tag is a hash
# of those inputs, so a second run with nothing changed does nothing.
#
#   scripts/build-test-image.sh        prints the image reference, e.g. weft-demo:3f2a9c1b0e4d
#
# The image also gets the moving tag weft-demo:latest. Needs a running dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=weft-demo
node_bin=$(readlink -f "$(command -v node)")
busybox_bin=$(command -v busybox || true)
libs=$(ldd "$node_bin" | grep -oE '/[^ ]+' | sort -u)

hash=$( { sha256sum "$node_bin" scripts/demo-app.mjs scripts/build-test-image.sh; [ -n "$busybox_bin" ] && sha256sum "$busybox_bin"; for l in $libs; do sha256sum "$(readlink -f "$l")"; done; } | sha256sum | cut -c1-12)
ref="$repo:$hash"
if docker image inspect "$ref" >/dev/null 2>&1; then
  docker tag "$ref" "$repo:latest"
  echo "$ref"
  exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/app" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
cp "$node_bin" "$root/bin/node"
for l in $libs; do
  mkdir -p "$root$(dirname "$l")"
  cp -L "$l" "$root$l"
done
if [ -n "$busybox_bin" ]; then
  cp "$busybox_bin" "$root/bin/busybox"
  for app in sh ls cat sleep wget; do ln -s busybox "$root/bin/$app"; done
fi
cp scripts/demo-app.mjs "$root/app/server.mjs"
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$root/etc/passwd"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin' \
  --change 'WORKDIR /app' \
  --change 'CMD ["/bin/node", "/app/server.mjs"]' \
  --change 'LABEL org.weft.test-image=1' \
  - "$ref" >/dev/null
docker tag "$ref" "$repo:latest"
echo "$ref"
