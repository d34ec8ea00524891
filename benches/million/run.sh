#!/usr/bin/env bash
# One million participants (simulated, seed 5, 200 kb of chr20: 7,020 sites) against plink2
# and bcftools, in one run on this machine.
#
#   bash benches/million/run.sh
#
# Simulates the cohort under .cache/sim1m when missing (common.sh), then: ingest of the whole file (cohortdb ingest vcf against plink2 --make-pgen
# --memory 16000; wall time and peak RSS), sizes on disk, `af` over 100 kb for a random 10%
# subset (checked equal to bcftools view -S | norm -m- | +fill-tags first; then hyperfine
# against plink2 --keep --freq counts). Results go to stdout and .cache/million/results.md.
TOOLS="bcftools plink2 hyperfine" source "$(dirname "$0")/common.sh"
THREADS="${THREADS:-$(nproc)}"
rm -rf "$WORK/store" "$WORK/pg" && mkdir -p "$WORK/pg"
read -r c_s c_m < <(measure "$WORK/ingest" "$COHORTDB" ingest vcf --store "$WORK/store" "$VCF")
read -r p_s p_m < <(measure "$WORK/pgen" plink2 --vcf "$VCF" --make-pgen --threads "$THREADS" --memory 16000 --out "$WORK/pg/p")
store_b=$(du -sb "$WORK/store" | cut -f1)
pgen_b=$(cat "$WORK/pg/p.pgen" "$WORK/pg/p.pvar" "$WORK/pg/p.psam" | wc -c)

"$COHORTDB" af --store "$WORK/store" -r "$REGION" -S "$SUB" | tail -n +2 | cut -f2,4-7 | sort >"$WORK/af.cohortdb"
read -r b_s b_m < <(measure "$WORK/bcftools" bash -c "bcftools view --no-version -S $SUB -r $REGION $VCF -Ou \
  | bcftools norm --no-version -m- -Ou | bcftools +fill-tags -Ou -- -t AC,AN \
  | bcftools query -f '%POS\t%REF\t%ALT\t%AC\t%AN\n' | sort >$WORK/af.bcftools")
cmp "$WORK/af.cohortdb" "$WORK/af.bcftools" || { echo "af differs from bcftools" >&2; exit 1; }
rows=$(wc -l <"$WORK/af.cohortdb")
from=${REGION#*:}; to=${from#*-}; from=${from%-*}
hyperfine -N --warmup 2 --runs 10 --export-json "$WORK/af.json" \
  -n cohortdb "$COHORTDB af --store $WORK/store -r $REGION -S $SUB" \
  -n plink2 "plink2 --pfile $WORK/pg/p --keep $SUB --chr 20 --from-bp $from --to-bp $to --freq counts --threads $THREADS --out $WORK/p1" >&2
read -r af_c af_p < <(python3 -c '
import json,sys
r={x["command"]:x for x in json.load(open(sys.argv[1]))["results"]}
print(*("%.0f" % (1000 * r[k]["median"]) for k in ("cohortdb", "plink2")))' "$WORK/af.json")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
  echo "# N=1,000,000, 200 kb of chr20, 7,020 sites ($(date -u +%F), $(nproc) cores, cohortdb $(git rev-parse --short HEAD))"
  echo
  echo "| step | cohortdb | plink2 | plink2/cohortdb |"
  echo "|---|---|---|---|"
  echo "| ingest wall (s) | $c_s | $p_s (--make-pgen --memory 16000) | $(ratio "$p_s" "$c_s") |"
  echo "| ingest peak RSS (MiB) | $c_m | $p_m | |"
  echo "| on disk (MB) | $(ratio "$store_b" 1e6) | $(ratio "$pgen_b" 1e6) (pgen+pvar+psam) | |"
  echo "| af $REGION, 10% subset, median of 10 (ms) | $af_c | $af_p (--keep --freq counts) | $(ratio "$af_p" "$af_c") |"
  echo
  echo "\`af\` equals bcftools view -S | norm -m- | +fill-tags ($rows ALT rows; bcftools took $b_s s)."
  echo
  echo "Reproduce: \`bash benches/million/run.sh\`"
} | tee "$WORK/results.md"
