#!/usr/bin/env bash
# A cohort grown in many batches against the same cohort ingested at once.
#
#   bash benches/batches/run.sh            # N=50,000 in 50 batches of 1,000 (N=... BATCHES=...)
#
# The simulated cohort (../shared/sim, seed 4, 1 Mb of chr20) is split into batches of
# consecutive samples (split.sh: each batch without the sites none of its samples carries, as
# separately called batches would be) and ingested one by one with --missing-as-ref; the unsplit
# file is ingested once. `af` over the whole region on the batched store must equal
# `bcftools +fill-tags` on the unsplit file (checked first). Then wall time and peak RSS
# (GNU time) of `af`, `SELECT count(*) FROM variants` and `SELECT * FROM variants LIMIT 5`
# on both stores, and the ratio batched/single. Then a copy of the batched store is compacted
# across batches, first size-tiered (`admin compact --across-batches`, fan-in 4), then into one
# batch (`--across-batches=all`): the time and peak of each compaction, `af` checked against the
# oracle again and timed (median of 5) on every store. Results go to stdout and
# .cache/batches/results.md; inputs stay under .cache (never committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
N="${N:-50000}"
BATCHES="${BATCHES:-50}"
SIM="$ROOT/.cache/sim$((N / 1000))k"
WORK="$ROOT/.cache/batches"
VCF="$SIM/sim_N${N}_L1Mb.vcf.gz"
mkdir -p "$SIM" "$WORK"

for tool in bcftools /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y bcftools time)" >&2; exit 1; }
done
cargo build --release -p cohortdb-cli >&2
COHORTDB="$ROOT/target/release/cohortdb"

[ -f "$VCF" ] || (cd "$SHARED/testdata" && python3 ../sim/simulate.py -n "$N" -L 1000000 -s 4 --no-trees -o "${VCF%.vcf.gz}")
SPLIT="$WORK/split_N${N}_B${BATCHES}"
bash benches/batches/split.sh "$VCF" "$BATCHES" "$SPLIT"

# wall seconds and peak RSS (MiB) of one run: `measure OUT_PREFIX cmd...`
measure() {
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out.time" "$@" >"$out.log" 2>&1
  awk '{printf "%.2f %.0f\n", $1, $2/1024}' "$out.time"
}

SINGLE="$WORK/single_N${N}"
BATCHED="$WORK/batched_N${N}_B${BATCHES}"
if [ ! -f "$SINGLE/.done" ]; then
  rm -rf "$SINGLE"
  read -r single_ingest _ < <(measure "$WORK/ingest_single" "$COHORTDB" ingest vcf --store "$SINGLE" "$VCF")
  echo "$single_ingest" >"$SINGLE/.done"
fi
if [ ! -f "$BATCHED/.done" ]; then
  rm -rf "$BATCHED"
  start=$(date +%s.%N)
  for batch in "$SPLIT"/batch_*.vcf.gz; do
    "$COHORTDB" ingest vcf --store "$BATCHED" --missing-as-ref "$batch" 2>>"$WORK/ingest_batched.log"
  done
  echo "$(date +%s.%N) - $start" | bc >"$BATCHED/.done"
fi

# The oracle: bcftools on the unsplit file, one row per ALT.
bcftools norm --no-version -m- "$VCF" 2>/dev/null | bcftools +fill-tags -- -t AC,AN 2>/dev/null \
  | bcftools query -f '%POS\t%REF\t%ALT\t%AC\t%AN\n' | sort >"$WORK/oracle.tsv"
for store in "$SINGLE" "$BATCHED"; do
  "$COHORTDB" af --store "$store" -r chr20 | awk -F'\t' 'NR > 1 {print $2"\t"$4"\t"$5"\t"$6"\t"$7}' \
    | sort >"$store.af.tsv"
  if ! cmp -s "$WORK/oracle.tsv" "$store.af.tsv"; then
    echo "af on $store differs from bcftools +fill-tags on the unsplit file:" >&2
    diff "$WORK/oracle.tsv" "$store.af.tsv" | head >&2
    exit 1
  fi
done
rows=$(wc -l <"$WORK/oracle.tsv")

report="$WORK/results.md"
{
  echo "# $BATCHES batches against one: N=$N, 1 Mb (cohortdb $(git rev-parse --short HEAD), $(date -u +%F))"
  echo
  echo "\`af -r chr20\` equals bcftools +fill-tags on the unsplit file on both stores ($rows ALT rows)."
  echo "Ingest: one file $(cat "$SINGLE/.done") s; $BATCHES batches one by one $(cat "$BATCHED/.done") s."
  echo
  echo "| query | single store: s, peak MiB | $BATCHES batches: s, peak MiB | peak ratio |"
  echo "|---|---|---|---|"
  for query in "af -r chr20" "SELECT count(*) FROM variants" "SELECT * FROM variants LIMIT 5"; do
    case "$query" in
      af*) args=(af -r chr20) ;;
      *) args=(query "$query") ;;
    esac
    read -r s1 m1 < <(measure "$WORK/q1" "$COHORTDB" "${args[0]}" --store "$SINGLE" "${args[@]:1}")
    read -r sb mb < <(measure "$WORK/qb" "$COHORTDB" "${args[0]}" --store "$BATCHED" "${args[@]:1}")
    # Equal answers are expected of the count; LIMIT 5 may take other rows (partitions race).
    if [[ "$query" == *count* ]] && ! cmp -s "$WORK/q1.log" "$WORK/qb.log"; then
      echo "\`$query\` answers differ between the stores" >&2
      diff "$WORK/q1.log" "$WORK/qb.log" | head -5 >&2 || true
      exit 1
    fi
    echo "| \`$query\` | $s1, $m1 | $sb, $mb | $(echo "scale=2; $mb / $m1" | bc) |"
  done
  echo
  # Compaction across batches, on a copy of the batched store.
  COMPACTED="$WORK/compacted_N${N}_B${BATCHES}"
  rm -rf "$COMPACTED" && cp -a "$BATCHED" "$COMPACTED"
  af_median() {
    local times=()
    for _ in 1 2 3 4 5; do
      read -r t _ < <(measure "$WORK/af_run" "$COHORTDB" af --store "$1" -r chr20)
      times+=("$t")
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
  }
  fragments() { "$COHORTDB" info --store "$1" | awk -F'\t' '$1 == "fragments" {print $2}'; }
  echo "| store | batches (fragments) | compaction: s, peak MiB | \`af -r chr20\`: median of 5, s |"
  echo "|---|---|---|---|"
  echo "| single file | 1 ($(fragments "$SINGLE")) | | $(af_median "$SINGLE") |"
  echo "| $BATCHES batches | $BATCHES ($(fragments "$BATCHED")) | | $(af_median "$BATCHED") |"
  for policy in tiered all; do
    read -r cs cm < <(measure "$WORK/compact_$policy" "$COHORTDB" admin compact --store "$COMPACTED" "--across-batches=$policy")
    "$COHORTDB" af --store "$COMPACTED" -r chr20 | awk -F'\t' 'NR > 1 {print $2"\t"$4"\t"$5"\t"$6"\t"$7}' \
      | sort >"$COMPACTED.af.tsv"
    if ! cmp -s "$WORK/oracle.tsv" "$COMPACTED.af.tsv"; then
      echo "af after --across-batches=$policy differs from bcftools +fill-tags on the unsplit file" >&2
      exit 1
    fi
    merged=$(sed -n 's/^merged \([0-9]*\) batch(es) into \([0-9]*\).*/\1 \2/p' "$WORK/compact_$policy.log")
    left=$((BATCHES - ${merged% *} + ${merged#* }))
    [ "$policy" = all ] && left=1
    echo "| after \`--across-batches=$policy\` | $left ($(fragments "$COMPACTED")) | $cs, $cm | $(af_median "$COMPACTED") |"
  done
  echo
  echo "\`af\` equals the oracle after each compaction too."
  echo
  echo "Reproduce: \`N=$N BATCHES=$BATCHES bash benches/batches/run.sh\`"
} | tee "$report"
