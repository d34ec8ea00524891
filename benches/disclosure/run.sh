#!/usr/bin/env bash
# What the aggregate tier's disclosure control costs and buys (issue 13), in one run:
# 1. the attack suite's report (cli/tests/disclosure_attacks.rs): per attack what was answered,
#    the reconstruction accuracy against chance and the budget spent, and the error the noise
#    adds to allele frequencies of cohorts of 99, 958 and 10,000;
# 2. warm-engine latency of case-control and a cohort's frequencies over 100 kb, plain and under
#    the aggregate tier's control (criterion, benches/benches/warm_queries.rs), on the N=100,000
#    store of benches/peer/run.sh when it exists, else on the simulated N=10,000 cohort of
#    scripts/test.sh.
#
#   bash benches/disclosure/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
sim=${COHORTDB_SIM_DIR:-$PWD/.cache/sim}/sim_N10000_L1Mb
[ -f "$sim.vcf.gz" ] || { echo "no $sim.vcf.gz: run scripts/test.sh first" >&2; exit 1; }
cargo nextest run -p cohortdb-cli --test cli disclosure_attacks:: --no-capture 2>&1 | grep '^|'
store=.cache/peer/N100000/store
if [ ! -d "$store" ]; then
  store=.cache/bench10k/store
  if [ ! -d "$store" ]; then
    cargo build --release -q -p cohortdb-cli
    ./target/release/cohortdb ingest vcf --store "$store" "$sim.vcf.gz" >&2
    ./target/release/cohortdb ingest phenotypes --store "$store" "$sim.pheno.tsv" >&2
  fi
fi
echo "store: $store" >&2
COHORTDB_BENCH_STORE=$PWD/$store cargo bench -p cohortdb-benches --bench warm_queries -- \
  'case_control$|af_cohort' 2>&1 | grep -E '^warm|time:'
