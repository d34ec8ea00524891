#!/usr/bin/env bash
# Peer harness: cohortdb against plink2 and bcftools, side by side in one run, on the simulated
# cohorts of ../shared/sim (N=10,000 seed 2, N=100,000 seed 3; 1 Mb of chr20).
#
#   bash benches/peer/run.sh [N...]        # default: 10000 100000
#
# Reports, per N: ingest wall time and peak RSS (cohortdb ingest vcf, plink2 --make-pgen,
# bcftools view -Ob), on-disk size (store, BCF, pgen+pvar+psam), and `af` over the 100 kb region
# chr20:20500001-20600000 for a 10% subset (cohortdb af; bcftools view -S | +fill-tags | query;
# plink2 --keep --freq counts), each including process start. The three af answers are checked
# equal before timing. Then, with the simulated phenotypes: case-control (vs two plink2 --keep
# --geno-counts runs and bcftools +fill-tags -S groups), assoc --model linear with age, sex, bmi
# (vs plink2 --glm), af --cohort with a phenotype predicate (vs plink2 --keep --freq), and the
# genotypes view's GROUP BY against the bitmap path; answers checked first, then timed
# together. Last, case-control on a warm `cohortdb serve` over the same store (a grpcio client,
# median of 20, client decoding included), right after the plink2 runs it is compared with. Results go to stdout and .cache/peer/results.md; inputs are generated
# under .cache/sim (never committed). Needs: bcftools, tabix, plink2, hyperfine, GNU time,
# python3 with msprime/stdpopsim (scripts/test.sh installs those).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
SIM="$ROOT/.cache/sim"
WORK="$ROOT/.cache/peer"
THREADS="${THREADS:-$(nproc)}"
REGION=chr20:20500001-20600000
mkdir -p "$SIM" "$WORK"

for tool in bcftools plink2 hyperfine /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y bcftools plink2 hyperfine time)" >&2; exit 1; }
done

cargo build --release -p cohortdb-cli >&2
COHORTDB="$ROOT/target/release/cohortdb"

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000)

# wall seconds and peak RSS (MiB) of one run: `measure OUT_PREFIX cmd...`
measure() {
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out.time" "$@" >"$out.log" 2>&1
  awk '{printf "%.2f %.0f\n", $1, $2/1024}' "$out.time"
}

# Median seconds of case-control over $REGION on a warm server over store $1.
served_case_control() {
  local tokens="$WORK/tokens.toml" log="$WORK/serve.log" pid address
  printf '[[token]]\ntoken = "peer-admin"\nname = "peer"\nproject = "peer"\ntier = "admin"\n' >"$tokens"
  "$COHORTDB" serve --store "$1" --listen 127.0.0.1:0 --tokens "$tokens" 2>"$log" &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$log")
  python3 benches/serve/case_control.py "$address" peer-admin "$REGION" 20 | awk '{printf "%.4f\n", $1 / 1000}'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

report="$WORK/results.md"
{
  echo "# cohortdb vs plink2 vs bcftools ($(date -u +%Y-%m-%d), $(nproc) cores, threads=$THREADS)"
  echo
  echo "cohortdb $(git rev-parse --short HEAD), $(bcftools --version | head -1), $(plink2 --version | head -1)"
  echo
} >"$report"

for n in "${sizes[@]}"; do
  case $n in
    10000) seed=2; subset="$SHARED/testdata/reference_queries/subset10pct.txt" ;;
    100000) seed=3; subset="$SHARED/testdata/reference_queries/subset10pct_N100000.txt" ;;
    *) echo "N must be 10000 or 100000 (the reference subsets)" >&2; exit 1 ;;
  esac
  prefix="$SIM/sim_N${n}_L1Mb"
  if [ ! -f "$prefix.vcf.gz" ]; then
    (cd "$SHARED/testdata" && python3 ../sim/simulate.py -n "$n" -L 1000000 -s "$seed" --no-trees -o "$prefix") >&2
  fi
  vcf="$prefix.vcf.gz"
  w="$WORK/N$n"
  rm -rf "$w" && mkdir -p "$w"

  echo "== N=$n: ingest" >&2
  read -r c_s c_m < <(measure "$w/cohortdb" "$COHORTDB" ingest vcf --store "$w/store" "$vcf")
  read -r p_s p_m < <(measure "$w/plink2" plink2 --vcf "$vcf" --make-pgen --out "$w/pgen" --threads "$THREADS")
  read -r b_s b_m < <(measure "$w/bcftools" bcftools view --no-version -Ob -o "$w/cohort.bcf" --threads "$THREADS" "$vcf")
  bcftools index "$w/cohort.bcf"
  vcf_mb=$(du -bm "$vcf" | cut -f1)
  store_b=$(du -sb "$w/store" | cut -f1)
  bcf_b=$(stat -c %s "$w/cohort.bcf")
  pgen_b=$(cat "$w/pgen.pgen" "$w/pgen.pvar" "$w/pgen.psam" | wc -c)

  echo "== N=$n: af answers agree" >&2
  "$COHORTDB" af --store "$w/store" -r "$REGION" -S "$subset" | tail -n +2 | cut -f1,2,4-7 >"$w/af.cohortdb"
  bcftools view --no-version -S "$subset" -r "$REGION" "$w/cohort.bcf" -Ou \
    | bcftools +fill-tags -Ou -- -t AC,AN \
    | bcftools norm --no-version -m- -Ou | bcftools query -f '%CHROM\t%POS\t%REF\t%ALT\t%INFO/AC\t%INFO/AN\n' >"$w/af.bcftools"
  diff -q <(sort "$w/af.cohortdb") <(sort "$w/af.bcftools") >&2 || { echo "cohortdb and bcftools disagree" >&2; exit 1; }
  from=${REGION#*:}; from=${from%-*}; to=${REGION#*-}
  plink2 --pfile "$w/pgen" --keep "$subset" --chr 20 --from-bp "$from" --to-bp "$to" --freq counts --out "$w/p1" >/dev/null
  plink_sites=$(($(wc -l <"$w/p1.acount") - 1))
  cohort_sites=$(cut -f1-3 "$w/af.cohortdb" | sort -u | wc -l)
  [ "$plink_sites" -eq "$cohort_sites" ] || { echo "plink2 reports $plink_sites sites, cohortdb $cohort_sites" >&2; exit 1; }

  echo "== N=$n: af timings" >&2
  hyperfine -N --warmup 1 --runs 10 --export-json "$w/af.json" \
    -n cohortdb "$COHORTDB af --store $w/store -r $REGION -S $subset" \
    -n plink2 "plink2 --pfile $w/pgen --keep $subset --chr 20 --from-bp $from --to-bp $to --freq counts --threads $THREADS --out $w/p1" \
    -n bcftools "bash -c 'bcftools view -S $subset -r $REGION $w/cohort.bcf -Ou | bcftools +fill-tags -Ou -- -t AC,AN | bcftools query -f \"%CHROM\t%POS\t%REF\t%ALT\t%INFO/AC\t%INFO/AN\n\"'" \
    >&2
  read -r af_c af_p af_b < <(python3 -c '
import json,sys
r={x["command"]:x for x in json.load(open(sys.argv[1]))["results"]}
print(*("%.3f" % r[k]["median"] for k in ("cohortdb", "plink2", "bcftools")))' "$w/af.json")

  echo "== N=$n: cohort operations" >&2
  pheno="$prefix.pheno.tsv"
  "$COHORTDB" ingest phenotypes --store "$w/store" "$pheno" 2>/dev/null
  # plink2 inputs from the phenotype table: case/control as 1/2, sex as an M indicator.
  awk -F'\t' 'BEGIN{OFS="\t"} NR==1{print "#IID","quant_trait","case_control";next}
    {print $1,$7,($6=="NA"?"NA":$6+1)}' "$pheno" >"$w/pheno.txt"
  awk -F'\t' 'BEGIN{OFS="\t"} NR==1{print "#IID","age","sex_m","bmi";next}
    {print $1,$3,($2=="M"?1:($2=="F"?0:"NA")),$4}' "$pheno" >"$w/covar.txt"
  awk -F'\t' 'NR>1 && $6=="1"{print $1}' "$pheno" >"$w/cases.txt"
  awk -F'\t' 'NR>1 && $6=="0"{print $1}' "$pheno" >"$w/controls.txt"
  awk -F'\t' 'NR>1 && $6!="NA"{print $1"\t"($6=="1"?"case":"control")}' "$pheno" >"$w/groups.txt"
  predicate="sex = 'F' AND age BETWEEN 50 AND 60"
  awk -F'\t' 'NR>1 && $2=="F" && $3>=50 && $3<=60{print $1}' "$pheno" >"$w/keep.txt"
  plink_range="--chr 20 --from-bp $from --to-bp $to --threads $THREADS"

  # Answers agree before timing: case/control counts (cohortdb vs bcftools +fill-tags -S),
  # af --cohort (cohortdb vs plink2 --keep --freq), assoc (cohortdb vs plink2 --glm).
  "$COHORTDB" case-control --store "$w/store" -r "$REGION" --cases "case_control = 1" \
    --controls "case_control = 0" | tail -n +2 | cut -f2,5,6,7,10,11 | sort >"$w/cc.cohortdb"
  bcftools view -r "$REGION" "$w/cohort.bcf" -Ou | bcftools +fill-tags -Ou -- -S "$w/groups.txt" -t AC,AN \
    | bcftools norm --no-version -m- -Ou \
    | bcftools query -f '%POS\t%ALT\t%INFO/AC_case\t%INFO/AN_case\t%INFO/AC_control\t%INFO/AN_control\n' \
    | sort >"$w/cc.bcftools"
  diff -q "$w/cc.cohortdb" "$w/cc.bcftools" >&2 || { echo "case-control: cohortdb and bcftools disagree" >&2; exit 1; }
  "$COHORTDB" af --store "$w/store" -r "$REGION" --cohort "$predicate" | tail -n +2 \
    | cut -f4-7 | sort >"$w/afc.cohortdb"
  plink2 --pfile "$w/pgen" --keep "$w/keep.txt" $plink_range --freq counts --out "$w/afc" >/dev/null
  awk -F'\t' 'NR>1 && $4 !~ /,/{print $3"\t"$4"\t"$5"\t"$6}' "$w/afc.acount" | sort >"$w/afc.plink2"
  comm -13 "$w/afc.cohortdb" "$w/afc.plink2" | head -3 | grep -q . \
    && { echo "af --cohort: plink2 rows cohortdb lacks" >&2; exit 1; }
  "$COHORTDB" assoc --store "$w/store" -r "$REGION" --trait quant_trait --covar age,sex,bmi \
    --model linear >"$w/assoc.cohortdb"
  plink2 --pfile "$w/pgen" --pheno "$w/pheno.txt" --pheno-name quant_trait --covar "$w/covar.txt" \
    --glm hide-covar $plink_range --out "$w/glm" >/dev/null
  python3 - "$w/assoc.cohortdb" "$w/glm.quant_trait.glm.linear" >&2 <<'PY'
import csv, sys
ours = {(r["pos"], r["alt"]): r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t")}
worst = 0.0
for r in csv.DictReader(open(sys.argv[2]), delimiter="\t"):
    if "," in r["ALT"] or r["BETA"] == "NA":
        continue
    beta = float(r["BETA"]) * (1 if r["A1"] == r["ALT"] else -1)
    o = ours[(r["POS"], r["ALT"])]
    p_plink, p_ours = float(r["P"]), float(o["p"])
    worst = max(worst, abs(float(o["beta"]) - beta) / (abs(beta) + 1e-5), abs(p_ours - p_plink) / (p_plink + 1e-300))
assert worst < 1e-4, f"assoc differs from plink2 --glm by {worst}"
print(f"assoc agrees with plink2 --glm (worst relative difference {worst:.1e})")
PY

  echo "== N=$n: cohort timings" >&2
  hyperfine -N --warmup 1 --runs 10 --export-json "$w/cohort.json" \
    -n cc-cohortdb "$COHORTDB case-control --store $w/store -r $REGION --cases 'case_control = 1' --controls 'case_control = 0'" \
    -n cc-plink2x2 "bash -c 'plink2 --pfile $w/pgen --keep $w/cases.txt $plink_range --geno-counts --out $w/g1 && plink2 --pfile $w/pgen --keep $w/controls.txt $plink_range --geno-counts --out $w/g2'" \
    -n cc-bcftools "bash -c 'bcftools view -r $REGION $w/cohort.bcf -Ou | bcftools +fill-tags -Ou -- -S $w/groups.txt -t AC,AN,AC_Het,AC_Hom | bcftools query -f \"%POS\t%INFO/AC_case\n\"'" \
    -n sql-genotypes "$COHORTDB query --store $w/store \"SELECT g.pos, g.alt, p.case_control, count(*) FROM genotypes g JOIN phenotypes p USING (sample_id) WHERE g.contig = 'chr20' AND g.pos BETWEEN $from AND $to GROUP BY 1, 2, 3\"" \
    -n assoc-cohortdb "$COHORTDB assoc --store $w/store -r $REGION --trait quant_trait --covar age,sex,bmi --model linear" \
    -n assoc-plink2 "plink2 --pfile $w/pgen --pheno $w/pheno.txt --pheno-name quant_trait --covar $w/covar.txt --glm hide-covar $plink_range --out $w/glm" \
    -n afc-cohortdb "$COHORTDB af --store $w/store -r $REGION --cohort \"$predicate\"" \
    -n afc-plink2 "plink2 --pfile $w/pgen --keep $w/keep.txt $plink_range --freq counts --out $w/afc" \
    >&2
  read -r cc_c cc_p cc_b sql_g as_c as_p afc_c afc_p < <(python3 -c '
import json,sys
r={x["command"]:x for x in json.load(open(sys.argv[1]))["results"]}
print(*("%.3f" % r[k]["median"] for k in ("cc-cohortdb", "cc-plink2x2", "cc-bcftools", "sql-genotypes", "assoc-cohortdb", "assoc-plink2", "afc-cohortdb", "afc-plink2")))' "$w/cohort.json")

  cc_served=$(served_case_control "$w/store")

  ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
  {
    echo "## N=$n ($(basename "$vcf"), ${vcf_mb} MB)"
    echo
    echo "| step | cohortdb | plink2 | bcftools | plink2/cohortdb | bcftools/cohortdb |"
    echo "|---|---|---|---|---|---|"
    echo "| ingest wall (s) | $c_s | $p_s (--make-pgen) | $b_s (view -Ob) | $(ratio "$p_s" "$c_s") | $(ratio "$b_s" "$c_s") |"
    echo "| ingest peak RSS (MiB) | $c_m | $p_m | $b_m | | |"
    echo "| size on disk (MB) | $(ratio "$store_b" 1e6) (store) | $(ratio "$pgen_b" 1e6) (pgen+pvar+psam) | $(ratio "$bcf_b" 1e6) (BCF) | $(ratio "$pgen_b" "$store_b") | $(ratio "$bcf_b" "$store_b") |"
    echo "| af, 100 kb, 10% subset, median of 10 (s) | $af_c | $af_p | $af_b | $(ratio "$af_p" "$af_c") | $(ratio "$af_b" "$af_c") |"
    echo "| case-control, 100 kb (s) | $cc_c | $cc_p (2 x --keep --geno-counts) | $cc_b (+fill-tags -S groups) | $(ratio "$cc_p" "$cc_c") | $(ratio "$cc_b" "$cc_c") |"
    echo "| case-control, 100 kb, warm server (s) | $cc_served (grpcio client) | $cc_p (2 x --keep --geno-counts) | $cc_b (+fill-tags -S groups) | $(ratio "$cc_p" "$cc_served") | $(ratio "$cc_b" "$cc_served") |"
    echo "| assoc linear + 3 covariates, 100 kb (s) | $as_c | $as_p (--glm) | | $(ratio "$as_p" "$as_c") | |"
    echo "| af --cohort \"$predicate\", 100 kb (s) | $afc_c | $afc_p (--keep --freq) | | $(ratio "$afc_p" "$afc_c") | |"
    echo
    echo "The genotypes view, per-group carrier counts over the same 100 kb in plain SQL (join with"
    echo "phenotypes, GROUP BY): $sql_g s, $(ratio "$sql_g" "$cc_c")x the bitmap path (case-control)."
    echo
  } >>"$report"
done
cat "$report"
