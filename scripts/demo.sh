#!/usr/bin/env bash
# The README's first command: builds cohortdb (installing libclang, which rust-htslib's build
# needs, when missing) and runs the demo: a generated cohort and phenotypes ingested into a new
# store, cohort queries, case-control and BCF export. Arguments go to `cohortdb demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq libclang-dev >/dev/null
fi
exec cargo run --release -p cohortdb-cli -- demo "$@"
