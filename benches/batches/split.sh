#!/usr/bin/env bash
# Splits a VCF into batches of consecutive samples: `split.sh IN.vcf.gz N_BATCHES OUT_DIR`
# writes OUT_DIR/batch_001.vcf.gz ... in sample order, each without the sites none of its samples
# carries (as separately called batches would be; ingest them with --missing-as-ref).
set -euo pipefail
in=$1 n=$2 out=$3
mkdir -p "$out"
bcftools query -l "$in" >"$out/samples.txt"
total=$(wc -l <"$out/samples.txt")
size=$(((total + n - 1) / n))
split -l "$size" -d -a 3 "$out/samples.txt" "$out/part_"
i=0
for part in "$out"/part_*; do
  i=$((i + 1))
  name=$(printf '%s/batch_%03d.vcf.gz' "$out" "$i")
  [ -f "$name" ] || bcftools view --threads 2 -S "$part" -c 1 -Oz -o "$name" "$in"
done
rm -f "$out"/part_*
