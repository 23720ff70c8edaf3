#!/usr/bin/env bash
# Builds the container image otelcol-vaultlightstep:<version> and :latest
# (deploy/image/Dockerfile, FROM scratch) from the collector binary built by
# `make collector`. Usage: scripts/build-image.sh [binary]. IMAGE overrides
# the repository name. Starts dockerd if no daemon answers (scripts/docker-daemon.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022 # the files in the image must be readable by its non-root user

bin="${1:-bin/otelcol-vaultlightstep}"
image="${IMAGE:-otelcol-vaultlightstep}"
ca=/etc/ssl/certs/ca-certificates.crt

# FROM scratch has no libc: the binary must be static. ocb builds with
# CGO_ENABLED=0 unless the builder config sets dist.cgo_enabled.
if ! go version -m "$bin" | grep -q 'CGO_ENABLED=0'; then
  echo "image: $bin was not built with CGO_ENABLED=0 (dist.cgo_enabled in builder-config.yaml?)" >&2
  exit 1
fi
if [ ! -s "$ca" ]; then
  echo "image: no CA bundle at $ca (Debian: apt-get install ca-certificates)" >&2
  exit 1
fi
version="$("$bin" --version | awk '{print $NF}')"

# A minimal build context: only what the image holds.
ctx=build/image
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/etc/otelcol-vaultlightstep" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
install -m 0644 deploy/image/passwd deploy/image/group "$ctx/rootfs/etc/"
install -m 0644 "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
install -m 0644 examples/*.yaml "$ctx/rootfs/etc/otelcol-vaultlightstep/"
install -m 0755 "$bin" "$ctx/otelcol-vaultlightstep"

scripts/docker-daemon.sh
echo "image: building $image:$version from $ctx"
start=$EPOCHREALTIME
docker build --quiet -f deploy/image/Dockerfile --build-arg "VERSION=$version" \
  -t "$image:$version" -t "$image:latest" "$ctx"
# The image this replaced, if any, is left untagged: remove it.
docker image prune --force --filter "label=org.opencontainers.image.title=otelcol-vaultlightstep" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image:$version")
printf 'image: %s:%s (and :latest), %d MB, built in %.1fs\n' "$image" "$version" \
  $((size / 1000000)) "$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { print e - s }')"
