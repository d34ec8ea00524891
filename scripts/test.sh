#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with only the Rust toolchain:
# installs the peer tools the oracle tests use, then formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in bcftools tabix plink2 python3 pip3 openssl; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
# rust-htslib (ingest bam) runs bindgen at build time, which loads libclang.
compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || need+=(libclang)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq bcftools tabix plink2 python3 python3-pip openssl libclang-dev >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

export COHORTDB_SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$COHORTDB_SHARED/testdata" ] || { echo "shared test data not found at $COHORTDB_SHARED" >&2; exit 1; }

# The simulated N=10,000 cohort of REFERENCE_QUERIES.md (seed 2), generated once into .cache/.
export COHORTDB_SIM_DIR="${COHORTDB_SIM_DIR:-$PWD/.cache/sim}"
# scipy is the oracle of the case/control statistics; grpcio, pyarrow and ADBC are the real
# clients of the server tests (cli/tests/python/clients.py); moto's server is the S3 of
# cli/tests/object_storage.rs; snakemake runs examples/cluster/Snakefile (cli/tests/cluster_workflow.rs).
pip_packages=(msprime==1.4.4 stdpopsim==0.3.0 tskit==1.0.3 numpy==2.4.6 scipy
  grpcio==1.85.1 grpcio-reflection==1.85.1 grpcio-health-checking==1.85.1 protobuf==7.36.2
  pyarrow==26.0.1 adbc_driver_flightsql==1.13.0 adbc_driver_manager==1.13.0 "moto[server]==5.2.5"
  snakemake==9.27.1)
python3 -c 'import msprime, stdpopsim, tskit, numpy, scipy, grpc, grpc_reflection, grpc_health, pyarrow.flight, adbc_driver_flightsql, moto.server, boto3, flask_cors, snakemake' 2>/dev/null && command -v snakemake >/dev/null \
  || pip3 install -q --break-system-packages "${pip_packages[@]}" \
  || pip3 install -q "${pip_packages[@]}"
if [ ! -f "$COHORTDB_SIM_DIR/sim_N10000_L1Mb.vcf.gz" ]; then
  mkdir -p "$COHORTDB_SIM_DIR"
  (cd "$COHORTDB_SHARED/testdata" && python3 ../sim/simulate.py -n 10000 -L 1000000 -s 2 --no-trees \
    -o "$COHORTDB_SIM_DIR/sim_N10000_L1Mb")
fi

# CI builds from a clean clone: incremental compilation gains nothing there, and its caches cost
# gigabytes of the disk the build shares.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
bash scripts/check-layers.sh
python3 scripts/check-module-cycles.py
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast
cargo test --workspace --doc
