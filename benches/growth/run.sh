#!/usr/bin/env bash
# The N+1 benchmark (issue 5): adding a batch of 1,000 new participants to the N=100,000 store
# of benches/peer/run.sh against ingesting the same batch into an empty store, side by side
# (hyperfine, median of 10; each run starts from a fresh copy of its store, without the audit
# trail the server benchmark leaves there, which ingest never reads). The batch is the
# first 1,000 samples of the simulated N=10,000 cohort (1 Mb of chr20), renamed NEW00000...
#
#   bash benches/growth/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
big=.cache/peer/N100000/store
sim=.cache/sim/sim_N10000_L1Mb.vcf.gz
[ -d "$big" ] || { echo "no $big: run bash benches/peer/run.sh 100000 first" >&2; exit 1; }
[ -f "$sim" ] || { echo "no $sim: run scripts/test.sh (or benches/peer/run.sh) first" >&2; exit 1; }
cargo build --release -q -p cohortdb-cli
cohortdb=$PWD/target/release/cohortdb
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bcftools query -l "$sim" | awk 'NR <= 1000' >"$work/keep.txt"
awk '{printf "NEW%05d\n", NR - 1}' "$work/keep.txt" >"$work/names.txt"
bcftools view --no-version -S "$work/keep.txt" -Oz -o "$work/part.vcf.gz" "$sim"
bcftools reheader -s "$work/names.txt" -o "$work/batch.vcf.gz" "$work/part.vcf.gz"
echo "batch: $(bcftools query -l "$work/batch.vcf.gz" | wc -l) samples, $(bcftools view -H "$work/batch.vcf.gz" | wc -l) records; store: $(du -sm "$big" | cut -f1) MB, $("$cohortdb" info --store "$big" | awk '$1 == "samples" {print $2}') samples" >&2
hyperfine -N --warmup 1 --runs 10 --export-json "$work/growth.json" \
  --prepare "bash -c 'rm -rf $work/empty && sync'" \
  -n into-empty "$cohortdb ingest vcf --store $work/empty $work/batch.vcf.gz" \
  --prepare "bash -c 'rm -rf $work/big && mkdir $work/big && cp -r $big/_log $big/samples $big/variants $big/phenotypes $work/big/ && sync'" \
  -n into-100000 "$cohortdb ingest vcf --store $work/big $work/batch.vcf.gz" >&2
python3 - "$work/growth.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print("| 1,000 new samples (1 Mb, simulated) | median of 10 (s) |")
print("|---|---|")
print(f"| into an empty store | {r['into-empty']:.3f} |")
print(f"| into the N=100,000 store | {r['into-100000']:.3f} |")
print(f"| ratio | {r['into-100000'] / r['into-empty']:.2f}x (target at most 1.5x) |")
PY
