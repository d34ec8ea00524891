#!/usr/bin/env bash
# Coverage benchmark: `cohortdb ingest bam` of 8 simulated 30x BAMs (2 Mb, 400,000 reads each)
# against mosdepth 0.3.3 computing the same per-window means (`-n --by 1000`), one process per
# file, 2 at a time (the machine's cores); and the gVCF cohort answer (ingest + AC/AN) against
# `bcftools merge --gvcf | norm -m- | +fill-tags` of the 50 GATK gVCFs. Both sides in one run.
#   bash benches/coverage/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
command -v mosdepth >/dev/null || { apt-get install -y -qq mosdepth >/dev/null; }
cargo build --release -q -p cohortdb-cli
bin="$PWD/target/release/cohortdb"
work="$PWD/.cache/bam"; mkdir -p "$work"; cd "$work"
if [ ! -f s8.bam ]; then
  python3 ../../benches/coverage/simulate_bam.py | samtools sort -@2 -o bench.bam - 2>/dev/null
  for i in 1 2 3 4 5 6 7 8; do
    samtools view -H bench.bam | sed "s/SM:BENCH1/SM:BENCH$i/" > h.sam
    samtools reheader h.sam bench.bam > s$i.bam && samtools index s$i.bam
  done
  rm -f h.sam
fi
hyperfine -w 1 -r 5 -N --export-markdown coverage.md \
  --prepare 'rm -rf store' -n "cohortdb ingest bam (8 files)" "$bin ingest bam --store store s1.bam s2.bam s3.bam s4.bam s5.bam s6.bam s7.bam s8.bam" \
  -n "mosdepth -n --by 1000, 2 at a time" "bash -c 'ls s?.bam | xargs -P 2 -I{} mosdepth -n --by 1000 {}.md {}'"
list="$work/gvcfs.txt"; ls "$shared"/testdata/hail/gvcfs/1kg_chr22/*.g.vcf.gz > "$list"
hyperfine -w 1 -r 5 --export-markdown gvcf.md \
  --prepare 'rm -rf gstore' -n "cohortdb ingest vcf (50 gVCFs) + af" "$bin ingest vcf --store gstore \$(cat $list) 2>/dev/null && $bin af --store gstore -r chr22 > /dev/null" \
  -n "bcftools merge --gvcf + norm + fill-tags" "bcftools merge --gvcf - -l $list | bcftools norm -m- 2>/dev/null | bcftools +fill-tags -- -t AC,AN > /dev/null"
cat coverage.md gvcf.md
