#!/usr/bin/env bash
# Prepares a fresh Debian machine for fitsfleet: the PostgreSQL and Redis server
# programs, the pgbouncer connection pooler, the bzip2 decompressors and Chromium
# (the dashboard's browser tests drive it headless; Debian packages, installed
# only when missing), the npm dependencies, and the build.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v lbzip2 >/dev/null 2>&1 || missing+=(lbzip2)
command -v bzip2 >/dev/null 2>&1 || missing+=(bzip2)
# Debian installs it in /usr/sbin, off a normal user's PATH.
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  missing+=(pgbouncer)
fi
# test/dashboard drives Debian's Chromium with puppeteer-core (which never downloads a browser).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if ((${#missing[@]} > 0)); then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "fitsfleet needs these Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 6
  fi
  echo "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run build
