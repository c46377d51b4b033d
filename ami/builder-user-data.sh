#!/bin/bash
# The builder of a fitsfleet worker image: rendered by `fitsfleet ami bake`
# (ami/bake.ts fills in the placeholders between @@ marks) and run once
# as root by cloud-init. It holds no secret: the bundle comes from S3 through
# the instance role, and the image it prepares has no secret either.
#
# FITSFLEET_ROOT (default /) is the machine's root folder: the bundle and the
# unit go under it. The tests run this script on the loopback AWS endpoint
# with an instance's own folder as the root; there, the steps that change the
# host itself (apt, Node.js) find their result already in place and are
# skipped, as they are on a base image that has them.
set -euo pipefail

BUILD_ID=@@BUILD_ID@@
BUNDLE=@@BUNDLE@@
BUNDLE_SHA256=@@BUNDLE_SHA256@@
VERSION=@@VERSION@@
NODE_MAJOR=20
# The CA store of the workers' TLS, and what installing Node.js needs.
PACKAGES=(ca-certificates curl gnupg)

ROOT=${FITSFLEET_ROOT:-/}
ROOT=${ROOT%/}
APP=/opt/fitsfleet
UNIT=fitsfleet-boot.service
WORK=$(mktemp -d)
HELPER=$WORK/builder-aws.mjs

log() { printf 'fitsfleet-ami-build %s: %s\n' "$BUILD_ID" "$*"; }

finish() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "FAILED (exit $status); the lines above say why"
    # So that bake stops waiting now rather than at its timeout.
    if command -v node >/dev/null; then
      node "$HELPER" tag-self "fitsfleet:ami-build-state=failed" || true
    fi
  fi
  rm -rf "$WORK"
}
trap finish EXIT

cat >"$HELPER" <<'FITSFLEET_BUILDER_AWS'
@@BUILDER_AWS@@
FITSFLEET_BUILDER_AWS

log "building the fitsfleet $VERSION worker image under ${ROOT:-/}"

# 1. Debian packages (on the machine itself, whatever the root folder).
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "packages already installed: ${PACKAGES[*]}"
fi

# 2. Node.js from NodeSource's signed repository: Debian 12's own is 18.
node_ok() {
  command -v node >/dev/null &&
    node -e "process.exit(+process.versions.node.split('.')[0] >= $NODE_MAJOR ? 0 : 1)"
}
if node_ok; then
  log "node $(node --version) already installed"
else
  log "installing Node.js $NODE_MAJOR"
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key |
    gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_$NODE_MAJOR.x nodistro main" \
    >/etc/apt/sources.list.d/nodesource.list
  apt-get update -q
  apt-get install -y -q nodejs
  node_ok
fi
NODE=$(command -v node)

# 3. The bundle, through the instance role, checked against what bake uploaded.
log "fetching $BUNDLE"
node "$HELPER" get-object "$BUNDLE" "$WORK/bundle.tar.gz"
actual=$(sha256sum "$WORK/bundle.tar.gz" | cut -d' ' -f1)
if [ "$actual" != "$BUNDLE_SHA256" ]; then
  log "bundle sha256 mismatch: expected $BUNDLE_SHA256, got $actual; the bundle is not installed"
  exit 1
fi
log "bundle sha256 verified: $actual"

# 4. Unpacked in place of any earlier one, owned by root; it must run here.
rm -rf "$ROOT$APP.new"
mkdir -p "$ROOT$APP.new"
tar -xzf "$WORK/bundle.tar.gz" -C "$ROOT$APP.new" --strip-components=1 --no-same-owner
# The verified archive and its sha256 stay in the image: every boot checks
# the installed folder against them before it starts anything (ami/verify.ts).
echo "$BUNDLE_SHA256" >"$ROOT$APP.new/BUNDLE-SHA256"
cp "$WORK/bundle.tar.gz" "$ROOT$APP.new/BUNDLE.tar.gz"
rm -rf "$ROOT$APP"
mv "$ROOT$APP.new" "$ROOT$APP"
ran=$("$NODE" "$ROOT$APP/dist/cli/main.js" --version)
if [ "$ran" != "$VERSION" ]; then
  log "the bundle says it is fitsfleet $ran, not $VERSION"
  exit 1
fi
# sharp's native library is the one part that can fail to load on a machine.
(cd "$ROOT$APP" && "$NODE" -e "require('sharp')")
log "fitsfleet $ran installed in $APP"

# 5. The unit: `fitsfleet instance boot` once a boot, then the machine powers off.
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
cat >"$ROOT/etc/systemd/system/$UNIT" <<UNIT_FILE
[Unit]
Description=fitsfleet fleet instance: the workers of the fleet configuration
After=network-online.target
Wants=network-online.target
# The instance is this unit: when it ends, whatever its status, the machine
# powers off, and the launch template's shutdown behaviour (terminate) ends it.
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=exec
# A user made for the run: nothing to create in the image, no login, and
# read-only access to the system (ProtectSystem=strict, a private /tmp).
DynamicUser=yes
ExecStart=${NODE} ${APP}/dist/cli/main.js instance boot
# SIGTERM to the boot alone: it passes the stop on to the workers. With the
# default (control-group) each worker would get systemd's SIGTERM and the
# boot's, and a second SIGTERM means "hand your work back at once".
KillMode=mixed
# Longer than the boot's --stop-grace, which is longer than the workers' own.
TimeoutStopSec=150
Restart=no
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT_FILE
# What `systemctl enable` does for WantedBy=multi-user.target, with no
# running systemd needed (nor the host's touched, under a root folder).
ln -sfn "../$UNIT" "$ROOT/etc/systemd/system/multi-user.target.wants/$UNIT"
log "installed and enabled $UNIT"

# 6. Ready: on disk (the image is taken without a reboot), then told to bake.
sync
node "$HELPER" tag-self "fitsfleet:ami-build-state=ready"
log "ready"
