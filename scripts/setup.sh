#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test fiscald. Idempotent:
# on a machine that has everything it only checks, in a second or two.
set -euo pipefail

need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v sha256sum >/dev/null || need_apt+=(coreutils)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
# scripts/package-check.sh: systemd-analyze (verify, security), dpkg-deb,
# adduser (the package's postinst), unshare/chroot, strip.
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v adduser >/dev/null || need_apt+=(adduser)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v strip >/dev/null || need_apt+=(binutils)
# Headless Chromium (with a font to render in): tests/front_door.rs, and
# tests/ops.rs, which loads the status page and saves docs/status-page.png.
command -v chromium >/dev/null || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing: install Rust stable (https://rustup.rs) and re-run" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi

# cargo-deb builds the .deb (scripts/package-check.sh), pinned.
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q " $CARGO_DEB_VERSION\b"; then
  echo "setup: installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

# Independent implementations the device emulators are tested against
# (tests/interop_*.rs): pyshtrih and python-escpos, pinned.
if ! python3 -c "import pyshtrih, escpos, serial" 2>/dev/null; then
  echo "setup: installing the interop test peers (tests/interop/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/interop/requirements.txt
fi

# The OpenAPI check (tests/openapi/check.py): PyYAML and jsonschema, pinned.
if ! python3 -c "import yaml, jsonschema" 2>/dev/null; then
  echo "setup: installing the OpenAPI check's packages (tests/openapi/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/openapi/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/openapi/requirements.txt
fi
