#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with only the Rust toolchain:
# installs the peer tools the oracle tests use, then formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in bcftools tabix; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq bcftools tabix >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

export COHORTDB_SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$COHORTDB_SHARED/testdata" ] || { echo "shared test data not found at $COHORTDB_SHARED" >&2; exit 1; }

cargo fmt --all -- --check
bash scripts/check-layers.sh
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
cargo test --workspace --doc
