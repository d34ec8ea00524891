#!/usr/bin/env bash
# Logistic regression against plink2 --glm, side by side in one run, on the simulated N=10,000
# cohort of ../shared/sim (seed 2, 1 Mb of chr20, 14,676 records): case_control on ALT dosage
# with age, sex and bmi over the whole megabase.
#
#   bash benches/assoc/run.sh
#
# Two pairs, each timed with hyperfine (process start included, plink2 from its .pgen, cohortdb
# from its store): plink2's default (firth-fallback) against `cohortdb assoc` (the same
# default), and plink2 `no-firth` against `cohortdb assoc --no-firth`. Inputs are generated
# under .cache/sim and .cache/assoc (never committed). Needs plink2, hyperfine, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
SIM="$ROOT/.cache/sim"
WORK="$ROOT/.cache/assoc"
THREADS="${THREADS:-$(nproc)}"
mkdir -p "$SIM" "$WORK"
for tool in plink2 hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
cargo build --release -p cohortdb-cli >&2
COHORTDB="$ROOT/target/release/cohortdb"
PREFIX="$SIM/sim_N10000_L1Mb"
[ -f "$PREFIX.vcf.gz" ] || python3 "$SHARED/sim/simulate.py" -n 10000 -L 1000000 -s 2 --no-trees -o "$PREFIX"

STORE="$WORK/store"
if [ ! -d "$STORE" ]; then
  "$COHORTDB" ingest vcf --store "$STORE" "$PREFIX.vcf.gz" >&2
  "$COHORTDB" ingest phenotypes --store "$STORE" "$PREFIX.pheno.tsv" >&2
fi
# plink2 inputs: case_control as 1/2, sex as an M indicator (as cohortdb encodes it).
python3 - "$PREFIX.pheno.tsv" "$WORK" <<'PY'
import sys
rows = open(sys.argv[1]).read().splitlines()
ix = {n: i for i, n in enumerate(rows[0].split("\t"))}
pheno, covar = ["#IID\tcase_control"], ["#IID\tage\tsex_m\tbmi"]
for r in rows[1:]:
    f = r.split("\t")
    cc = {"0": "1", "1": "2"}.get(f[ix["case_control"]], "NA")
    sex = {"M": "1", "F": "0"}.get(f[ix["sex"]], "NA")
    pheno.append(f"{f[ix['sample_id']]}\t{cc}")
    covar.append(f"{f[ix['sample_id']]}\t{f[ix['age']]}\t{sex}\t{f[ix['bmi']]}")
open(f"{sys.argv[2]}/pheno.txt", "w").write("\n".join(pheno) + "\n")
open(f"{sys.argv[2]}/covar.txt", "w").write("\n".join(covar) + "\n")
PY
[ -f "$WORK/pgen.pgen" ] || plink2 --vcf "$PREFIX.vcf.gz" --make-pgen --threads "$THREADS" --out "$WORK/pgen" >/dev/null

PLINK="plink2 --pfile $WORK/pgen --pheno $WORK/pheno.txt --covar $WORK/covar.txt --threads $THREADS"
OURS="$COHORTDB assoc --store $STORE -r chr20 --trait case_control --covar age,sex,bmi"
hyperfine --warmup 1 --runs 3 --export-markdown "$WORK/firth.md" \
  -n "plink2 --glm (firth-fallback)" "$PLINK --glm hide-covar --out $WORK/firth" \
  -n "cohortdb assoc" "$OURS > $WORK/ours.tsv"
hyperfine --warmup 1 --runs 5 --export-markdown "$WORK/no-firth.md" \
  -n "plink2 --glm no-firth" "$PLINK --glm hide-covar no-firth --out $WORK/nofirth" \
  -n "cohortdb assoc --no-firth" "$OURS --no-firth > $WORK/ours-nofirth.tsv"
cat "$WORK/firth.md" "$WORK/no-firth.md"
