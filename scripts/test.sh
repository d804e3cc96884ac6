#!/usr/bin/env bash
# The whole check, as CI runs it: formatting, lints, shipped configs, a smoke
# run of the benchmarks, and the full test suite (unit + integration).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "== fiscald check-config (every shipped config)"
cargo build --locked --quiet
for f in config/*.toml; do
  target/debug/fiscald check-config "$f"
done

echo "== Debian package: build, file list, install/upgrade/remove/purge in a scratch root"
scripts/package-check.sh

echo "== benchmark smoke run (numbers in docs/PERFORMANCE.md come from full runs)"
FISCALD_BENCH_QUICK=1 cargo bench --locked --bench accept
FISCALD_BENCH_QUICK=1 cargo bench --locked --bench sync
FISCALD_BENCH_QUICK=1 cargo bench --locked --bench print
FISCALD_BENCH_QUICK=1 cargo bench --locked --bench scale

echo "== cargo test"
cargo test --locked
