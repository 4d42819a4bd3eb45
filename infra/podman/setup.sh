#!/usr/bin/env bash
# Makes this machine able to build and run the ringkv image with podman, as the container test
# (test/containers/podman.test.ts) and CI need: as root on Debian or Ubuntu,
#   1. podman, runc and debootstrap from apt (when podman is missing);
#   2. `default_ulimits = []` under [containers] in /etc/containers/containers.conf: podman's default
#      ulimits cannot be set inside this kind of sandbox, so every container would fail to start;
#   3. the local base image (infra/podman/base-image.sh), cached.
# Idempotent; prints one line per step it had to do. Exit status non-zero when a step failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { printf 'ringkv podman setup: %s\n' "$*" >&2; }

[[ "$(id -u)" == 0 ]] || { say "run as root"; exit 1; }

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  say "installing podman runc debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq podman runc debootstrap >/dev/null
fi

conf=/etc/containers/containers.conf
mkdir -p "$(dirname "$conf")"
touch "$conf"
if ! grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
  say "setting default_ulimits = [] in $conf"
  if grep -Eq '^\[containers\]' "$conf"; then
    sed -i '/^\[containers\]/a default_ulimits = []' "$conf"
  else
    printf '\n[containers]\ndefault_ulimits = []\n' >>"$conf"
  fi
fi

bash "$root/infra/podman/base-image.sh"
