#!/usr/bin/env bash
# The hot operations before and after a change of the engine, side by side with plink2 in one
# run: `af` for a 10% subset and case-control over chr20:20500001-20600000 at N=100,000
# (simulated, seed 3), from the CLI (hyperfine, process start included) and on a warm server
# (grpcio client, median of 20).
#
#   BASELINE=/path/to/old/cohortdb bash benches/engine/run.sh
#
# BASELINE is a cohortdb binary built from the commit compared with, e.g.
#   git worktree add /tmp/base 3a31481 && (cd /tmp/base && cargo build --release -p cohortdb-cli)
# Both binaries answer from the same store; their answers are checked equal first. The store,
# the pgen and the phenotypes come from benches/peer/run.sh 100000 (run first when missing).
# Results go to stdout and .cache/engine/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
PEER="$ROOT/.cache/peer/N100000"
WORK="$ROOT/.cache/engine"
REGION=chr20:20500001-20600000
FROM=20500001
TO=20600000
SUBSET="$SHARED/testdata/reference_queries/subset10pct_N100000.txt"
THREADS="${THREADS:-$(nproc)}"
: "${BASELINE:?set BASELINE to the cohortdb binary to compare with}"
mkdir -p "$WORK"

for tool in plink2 hyperfine; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y plink2 hyperfine)" >&2; exit 1; }
done
[ -f "$PEER/cases.txt" ] || bash benches/peer/run.sh 100000 >&2
cargo build --release -p cohortdb-cli >&2
CURRENT="$ROOT/target/release/cohortdb"
STORE="$PEER/store"

# Same answers from both binaries first.
for name in current baseline; do
  bin=$CURRENT; [ "$name" = baseline ] && bin=$BASELINE
  "$bin" af --store "$STORE" -r "$REGION" -S "$SUBSET" >"$WORK/af.$name"
  "$bin" case-control --store "$STORE" -r "$REGION" --cases 'case_control = 1' \
    --controls 'case_control = 0' >"$WORK/cc.$name"
done
cmp "$WORK/af.current" "$WORK/af.baseline" && cmp "$WORK/cc.current" "$WORK/cc.baseline" \
  || { echo "the two binaries answer differently" >&2; exit 1; }

plink_range="--chr 20 --from-bp $FROM --to-bp $TO --threads $THREADS"
hyperfine -N --warmup 3 --runs "${RUNS:-30}" --export-json "$WORK/cli.json" \
  -n af-current "$CURRENT af --store $STORE -r $REGION -S $SUBSET" \
  -n af-baseline "$BASELINE af --store $STORE -r $REGION -S $SUBSET" \
  -n af-plink2 "plink2 --pfile $PEER/pgen --keep $SUBSET $plink_range --freq counts --out $WORK/p1" \
  -n cc-current "$CURRENT case-control --store $STORE -r $REGION --cases 'case_control = 1' --controls 'case_control = 0'" \
  -n cc-baseline "$BASELINE case-control --store $STORE -r $REGION --cases 'case_control = 1' --controls 'case_control = 0'" \
  -n cc-plink2x2 "bash -c 'plink2 --pfile $PEER/pgen --keep $PEER/cases.txt $plink_range --geno-counts --out $WORK/g1 && plink2 --pfile $PEER/pgen --keep $PEER/controls.txt $plink_range --geno-counts --out $WORK/g2'" \
  >&2
read -r af_c af_b af_p cc_c cc_b cc_p < <(python3 -c '
import json,sys
r={x["command"]:x for x in json.load(open(sys.argv[1]))["results"]}
print(*("%.1f" % (1000 * r[k]["median"]) for k in ("af-current", "af-baseline", "af-plink2", "cc-current", "cc-baseline", "cc-plink2x2")))' "$WORK/cli.json")

# Medians "af_ms cc_ms" on a warm server of binary $1.
warm() {
  local tokens="$WORK/tokens.toml" log="$WORK/serve.log" pid address
  printf '[[token]]\ntoken = "bench-admin"\nname = "bench"\nproject = "bench"\ntier = "admin"\n' >"$tokens"
  "$1" serve --store "$STORE" --listen 127.0.0.1:0 --tokens "$tokens" 2>"$log" &
  pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
  address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$log")
  [ -n "$address" ] || { echo "$1 serve did not start:" >&2; cat "$log" >&2; kill "$pid"; exit 1; }
  python3 benches/engine/warm.py "$address" bench-admin "$REGION" "$SUBSET" 20
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
read -r waf_c wcc_c < <(warm "$CURRENT")
read -r waf_b wcc_b < <(warm "$BASELINE")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
  echo "# Hot operations before and after: N=100,000, $REGION ($(date -u +%F), $(nproc) cores)"
  echo
  echo "current $(git rev-parse --short HEAD), baseline $("$BASELINE" --version 2>/dev/null | head -1) ($BASELINE), $(plink2 --version | head -1)"
  echo
  echo "| operation, median ms | current | baseline | plink2 | current/baseline | plink2/current |"
  echo "|---|---|---|---|---|---|"
  echo "| af, 10% subset, CLI | $af_c | $af_b | $af_p (--keep --freq counts) | $(ratio "$af_c" "$af_b") | $(ratio "$af_p" "$af_c") |"
  echo "| case-control, CLI | $cc_c | $cc_b | $cc_p (2 x --keep --geno-counts) | $(ratio "$cc_c" "$cc_b") | $(ratio "$cc_p" "$cc_c") |"
  echo "| af, 10% subset, warm server | $waf_c | $waf_b | $af_p | $(ratio "$waf_c" "$waf_b") | $(ratio "$af_p" "$waf_c") |"
  echo "| case-control, warm server | $wcc_c | $wcc_b | $cc_p | $(ratio "$wcc_c" "$wcc_b") | $(ratio "$cc_p" "$wcc_c") |"
  echo
  echo "Reproduce: \`BASELINE=$BASELINE bash benches/engine/run.sh\`"
} | tee "$WORK/results.md"
