#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test fiscald. Idempotent:
# on a machine that has everything it only checks, in a second or two.
set -euo pipefail

need_apt=()
command -v cc >/dev/null || need_apt+=(gcc)
command -v sha256sum >/dev/null || need_apt+=(coreutils)
command -v curl >/dev/null || need_apt+=(curl)
# tests/online_orders.rs makes a self-signed certificate for the remote listener.
command -v openssl >/dev/null || need_apt+=(openssl)
# The gateway test compares fiscald's control signature with sha1sum's.
command -v sha1sum >/dev/null || need_apt+=(coreutils)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
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

# Independent implementations the device emulators are tested against
# (tests/interop_*.rs): pyshtrih and python-escpos, pinned.
if ! python3 -c "import pyshtrih, escpos, serial" 2>/dev/null; then
  echo "setup: installing the interop test peers (tests/interop/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r tests/interop/requirements.txt
fi
