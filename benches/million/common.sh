# What the N=1,000,000 benchmarks share (sourced by run.sh, batches.sh, warm.sh): paths, the
# release build, the simulated cohort (simulated when missing: about 14 minutes on 2 cores;
# never committed), `measure`, and the random 10% subset (the same every run).
#
#   TOOLS="bcftools hyperfine" source benches/million/common.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
SIM="$ROOT/.cache/sim1m/sim_N1000000_L200kb"
VCF="$SIM.vcf.gz"
WORK="$ROOT/.cache/million"
REGION=chr20:20050001-20150000
SUB="$WORK/subset10pct.txt"
mkdir -p "$WORK" "$(dirname "$SIM")"
for tool in ${TOOLS:-} /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y ${TOOLS:-} time)" >&2; exit 1; }
done
cargo build --release -p cohortdb-cli >&2
COHORTDB="$ROOT/target/release/cohortdb"
[ -f "$VCF" ] || (cd "$SHARED/testdata" && python3 ../sim/simulate.py -n 1000000 -L 200000 -s 5 --no-trees -o "$SIM")
[ -f "$SUB" ] || python3 - "$SIM.pheno.tsv" "$SUB" <<'PY'
import random, sys
ids = [l.split("\t")[0] for l in open(sys.argv[1]).read().splitlines()[1:]]
random.Random(11).shuffle(ids)
open(sys.argv[2], "w").write("\n".join(sorted(ids[: len(ids) // 10])) + "\n")
PY

# wall seconds and peak RSS (MiB) of one run: `measure OUT_PREFIX cmd...`
measure() {
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out.time" "$@" >"$out.log" 2>&1
  awk '{printf "%.1f %.0f\n", $1, $2/1024}' "$out.time"
}
