#!/usr/bin/env bash
# One million participants recruited in 20 batches of 50,000: each batch's ingest cost, `af` on
# the batched store, compaction across batches, and `af` after it, against the store of the
# whole file (built by run.sh, or here when missing).
#
#   bash benches/million/batches.sh
#
# The cohort of run.sh (.cache/sim1m, seed 5, 200 kb, 7,020 sites) is split in one pass by
# `bcftools +split -G` into 20 batches of consecutive samples, each without the sites none of
# its samples carries (as separately called batches would be), ingested one by one with
# --missing-as-ref. `af` over 100 kb for the same random 10% subset as run.sh must equal the
# whole-file store's on every store (batched, tiered, one batch); its time is the median of 10
# runs (hyperfine). Results go to stdout and .cache/million/batches.md (inputs never committed).
TOOLS="bcftools hyperfine" source "$(dirname "$0")/common.sh"
SPLIT="$WORK/batches20"
BATCHES=20
mkdir -p "$SPLIT"

# The split: sample i goes to batch floor(i / 50,000), named so that names sort in order.
if [ ! -f "$SPLIT/.done" ]; then
  bcftools query -l "$VCF" | awk -v size=$((1000000 / BATCHES)) \
    '{printf "%s\t-\tbatch_%02d\n", $1, int((NR - 1) / size) + 1}' >"$SPLIT/groups.tsv"
  read -r split_s _ < <(measure "$WORK/split" bcftools +split -G "$SPLIT/groups.tsv" -i 'GT="alt"' -Ob -o "$SPLIT" "$VCF")
  echo "$split_s" >"$SPLIT/.done"
fi
mapfile -t files < <(ls "$SPLIT"/batch_*.bcf | sort)
[ "${#files[@]}" -eq "$BATCHES" ] || { echo "expected $BATCHES batch files in $SPLIT" >&2; exit 1; }

WHOLE="$WORK/store"
[ -d "$WHOLE" ] || "$COHORTDB" ingest vcf --store "$WHOLE" "$VCF" >&2
"$COHORTDB" af --store "$WHOLE" -r "$REGION" -S "$SUB" >"$WORK/af.whole"

# Ingest the batches one by one: wall time and peak RSS of each.
BATCHED="$WORK/batched20"
rm -rf "$BATCHED" "$WORK/ingest_batches.tsv"
i=0
for file in "${files[@]}"; do
  i=$((i + 1))
  read -r s m < <(measure "$WORK/ingest_batch" "$COHORTDB" ingest vcf --store "$BATCHED" --missing-as-ref "$file")
  printf '%s\t%s\t%s\n' "$i" "$s" "$m" >>"$WORK/ingest_batches.tsv"
done

# The same batch (batch 1, IDs renamed) into an empty store and into the 20-batch store: what
# the store's size adds to a batch's cost, apart from what is in the batch (the batches differ:
# later ones hold more sites).
bcftools query -l "${files[0]}" | sed 's/^/again_/' >"$WORK/renamed.txt"
bcftools reheader -s "$WORK/renamed.txt" -o "$WORK/again.bcf" "${files[0]}"
rm -rf "$WORK/again_empty" "$WORK/again_full" && cp -a "$BATCHED" "$WORK/again_full"
read -r again_empty_s again_empty_m < <(measure "$WORK/again_empty" "$COHORTDB" ingest vcf --store "$WORK/again_empty" --missing-as-ref "$WORK/again.bcf")
read -r again_full_s again_full_m < <(measure "$WORK/again_full" "$COHORTDB" ingest vcf --store "$WORK/again_full" --missing-as-ref "$WORK/again.bcf")
rm -rf "$WORK/again_empty" "$WORK/again_full"

# `af` on a store: checked equal to the whole-file store's, then the median of 10 runs (ms).
af_ms() {
  "$COHORTDB" af --store "$1" -r "$REGION" -S "$SUB" >"$WORK/af.check"
  cmp -s "$WORK/af.whole" "$WORK/af.check" || { echo "af on $1 differs from the whole-file store" >&2; exit 1; }
  hyperfine -N --warmup 2 --runs 10 --export-json "$WORK/af_store.json" \
    "$COHORTDB af --store $1 -r $REGION -S $SUB" >&2
  python3 -c 'import json,sys; print("%.0f" % (1000 * json.load(open(sys.argv[1]))["results"][0]["median"]))' "$WORK/af_store.json"
}
fragments() { "$COHORTDB" info --store "$1" | awk -F'\t' '$1 == "fragments" {print $2}'; }

whole_ms=$(af_ms "$WHOLE")
batched_ms=$(af_ms "$BATCHED")
COMPACTED="$WORK/compacted20"
rm -rf "$COMPACTED" && cp -a "$BATCHED" "$COMPACTED"
read -r t_s t_m < <(measure "$WORK/compact_tiered" "$COHORTDB" admin compact --store "$COMPACTED" --across-batches)
tiered_frags=$(fragments "$COMPACTED")
tiered_ms=$(af_ms "$COMPACTED")
read -r a_s a_m < <(measure "$WORK/compact_all" "$COHORTDB" admin compact --store "$COMPACTED" --across-batches=all)
all_ms=$(af_ms "$COMPACTED")
"$COHORTDB" admin vacuum --store "$COMPACTED" --older-than 0s >&2
size() { python3 -c "print(f'{$(du -sb "$1" | cut -f1) / 1e6:.1f}')"; }

{
  echo "# N=1,000,000 in $BATCHES batches of 50,000 (200 kb, 7,020 sites; $(date -u +%F), $(nproc) cores, cohortdb $(git rev-parse --short HEAD))"
  echo
  echo "Split in one pass by \`bcftools +split -G\`: $(cat "$SPLIT/.done") s."
  echo
  echo "| batch | ingest wall (s) | peak RSS (MiB) |"
  echo "|---|---|---|"
  awk -F'\t' '{print "| " $1 " | " $2 " | " $3 " |"}' "$WORK/ingest_batches.tsv"
  echo
  first=$(awk -F'\t' 'NR == 1 {print $2}' "$WORK/ingest_batches.tsv")
  last=$(awk -F'\t' 'END {print $2}' "$WORK/ingest_batches.tsv")
  echo "Batch $BATCHES against batch 1: $(python3 -c "print(f'{$last/$first:.2f}')")x (the batches differ in sites: $(bcftools index -n "${files[0]}" 2>/dev/null || bcftools view -H "${files[0]}" | wc -l) against $(bcftools view -H "${files[-1]}" | wc -l) records)."
  echo "Batch 1 again (IDs renamed) into an empty store: $again_empty_s s, $again_empty_m MiB; into the $BATCHES-batch store: $again_full_s s, $again_full_m MiB ($(python3 -c "print(f'{$again_full_s/$again_empty_s:.2f}')")x)."
  echo
  echo "| store | fragments | on disk (MB) | compaction: s, peak MiB | af $REGION, 10% subset, median of 10 (ms) |"
  echo "|---|---|---|---|---|"
  echo "| whole file | $(fragments "$WHOLE") | $(size "$WHOLE") | | $whole_ms |"
  echo "| $BATCHES batches | $(fragments "$BATCHED") | $(size "$BATCHED") | | $batched_ms |"
  echo "| after \`--across-batches\` (tiered) | $tiered_frags | | $t_s, $t_m | $tiered_ms |"
  echo "| after \`--across-batches=all\` | $(fragments "$COMPACTED") | $(size "$COMPACTED") | $a_s, $a_m | $all_ms |"
  echo
  echo "\`af\` equals the whole-file store's on every store (which run.sh checks against bcftools)."
  echo "$(cat "$WORK/compact_tiered.log")"
  echo
  echo "Reproduce: \`bash benches/million/batches.sh\`"
} | tee "$WORK/batches.md"
