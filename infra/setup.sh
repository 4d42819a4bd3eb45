#!/usr/bin/env bash
# First-run set-up behind `npm start` and `npm test`: makes sure, in this order, that
#   1. node_modules matches package-lock.json (runs `npm ci` when it is missing or stale),
#   2. nats-server is installed (apt-get when that is possible, otherwise says how to install it),
#   3. dist/ is built from the current sources (`tsc` when any .ts is newer than the last build).
# It is idempotent and prints nothing when there is nothing to do. Exit status: 0 when everything is
# ready, non-zero (with a message on stderr) when a step failed or needs a human.
#
# Environment:
#   RINGKV_SETUP_SKIP_NATS=1   skip step 2 (for example when NATS_URL points at a server elsewhere)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'ringkv setup: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

# Several `npm test` runs may start together in one checkout; only one of them sets up at a time.
lock_file="${TMPDIR:-/tmp}/ringkv-setup-$(printf '%s' "$root" | sha256sum | cut -c1-16).lock"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$lock_file"
  flock 9
fi

# 1. Dependencies. The stamp holds the hash of the package-lock.json that node_modules was installed
# from. A node_modules without a stamp (installed by hand or by .ci/run) is trusted when npm's own
# record of the install, node_modules/.package-lock.json, is newer than the lock file.
deps_stamp=node_modules/.ringkv-stamp
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
deps_ready=false
if [[ -d node_modules ]]; then
  if [[ -f "$deps_stamp" ]]; then
    [[ "$(cat "$deps_stamp")" == "$lock_hash" ]] && deps_ready=true
  elif [[ -f node_modules/.package-lock.json && node_modules/.package-lock.json -nt package-lock.json ]]; then
    deps_ready=true
    printf '%s\n' "$lock_hash" >"$deps_stamp"
  fi
fi
if [[ "$deps_ready" != true ]]; then
  command -v npm >/dev/null 2>&1 || fail "npm is not installed; install Node.js 20.15 or later from https://nodejs.org"
  say "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2 || fail "npm ci failed (see above)"
  printf '%s\n' "$lock_hash" >"$deps_stamp"
fi

# 2. nats-server. Non-login shells of non-root users often lack /usr/sbin, where Debian puts it.
find_nats_server() {
  command -v nats-server 2>/dev/null && return 0
  local candidate
  for candidate in /usr/sbin/nats-server /usr/local/bin/nats-server /usr/bin/nats-server; do
    [[ -x "$candidate" ]] && { printf '%s\n' "$candidate"; return 0; }
  done
  return 1
}
if [[ "${RINGKV_SETUP_SKIP_NATS:-}" != 1 ]] && ! find_nats_server >/dev/null; then
  sudo_cmd=()
  can_install=false
  if command -v apt-get >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]]; then
      can_install=true
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      can_install=true
      sudo_cmd=(sudo -n)
    fi
  fi
  if [[ "$can_install" == true ]]; then
    say "installing nats-server (apt-get install -y nats-server)"
    # The package index on a fresh machine is often empty or old, so update it first.
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
      && "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2 \
      || fail "apt-get could not install nats-server (see above)"
    find_nats_server >/dev/null || fail "apt-get finished but nats-server is still not on the PATH"
  else
    cat >&2 <<'MSG'
ringkv setup: nats-server is not installed, and it cannot be installed from here.
Install it, then run the command again:
  on Debian or Ubuntu:  sudo apt-get install nats-server
  on macOS:             brew install nats-server
  anywhere else:        a release binary from https://github.com/nats-io/nats-server/releases
                        (put nats-server on your PATH)
To use a NATS server that already runs elsewhere, set NATS_URL and RINGKV_SETUP_SKIP_NATS=1.
MSG
    exit 1
  fi
fi

# 3. Build. The stamp is written before tsc starts and moved into place only after it succeeds, so
# a file saved during the build is seen as newer next time, and a failed build is retried.
dist_stamp=dist/.ringkv-stamp
needs_build=false
if [[ ! -f "$dist_stamp" ]]; then
  needs_build=true
elif [[ tsconfig.json -nt "$dist_stamp" || package-lock.json -nt "$dist_stamp" ]]; then
  needs_build=true
elif [[ -n "$(find src actors -name '*.ts' -newer "$dist_stamp" -print -quit 2>/dev/null)" ]]; then
  needs_build=true
fi
if [[ "$needs_build" == true ]]; then
  say "building dist/ (tsc)"
  mkdir -p dist
  pending_stamp="$(mktemp dist/.ringkv-stamp.XXXXXX)"
  if ! npx --no-install tsc -p tsconfig.json >&2; then
    rm -f "$pending_stamp"
    fail "the TypeScript build failed (see above)"
  fi
  chmod 644 "$pending_stamp"
  mv -f "$pending_stamp" "$dist_stamp"
fi
