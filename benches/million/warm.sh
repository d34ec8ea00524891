#!/usr/bin/env bash
# N=1,000,000 on a warm server: `af` over 100 kb for the random 10% subset of run.sh, a
# case-control of the phenotype cohorts (`case_control = 1` against `= 0`) over the same
# 100 kb, the carriers of a rare variant (the first site in the region with an allele
# frequency under 1%), and the af of the 10% subset saved as cohort @subset10, through a real
# grpcio client (benches/engine/warm.py: medians of 20,
# client decoding included).
#
#   bash benches/million/warm.sh        # after run.sh (it builds the store)
#
# Adds the simulator's phenotype table to the store of run.sh when it is not there yet.
TOOLS="" source "$(dirname "$0")/common.sh"
STORE="$WORK/store"
[ -d "$STORE" ] || { echo "run benches/million/run.sh first" >&2; exit 1; }
python3 -c 'import grpc, grpc_reflection, pyarrow' 2>/dev/null \
  || { echo "missing Python packages (pip install grpcio grpcio-reflection pyarrow)" >&2; exit 1; }
"$COHORTDB" info --store "$STORE" | grep -q '^table	phenotypes' \
  || "$COHORTDB" ingest phenotypes --store "$STORE" "$SIM.pheno.tsv" >&2
# A rare variant: the first ALT of the region with a frequency under 1% and some carriers.
variant=$("$COHORTDB" af --store "$STORE" -r "$REGION" \
  | awk -F'\t' 'NR > 1 && $7 > 0 && $7 < 0.01 {print $1":"$2":"$3":"$4; exit}')
carriers=$("$COHORTDB" carriers --store "$STORE" -r "$variant" | tail -n +2 | wc -l)
# The same 10% list saved once as a cohort, for the af that does not send it with each request.
"$COHORTDB" cohort list --store "$STORE" | grep -q '^subset10	' \
  || "$COHORTDB" cohort save --store "$STORE" subset10 -S "$SUB" >&2

tokens="$WORK/tokens.toml" log="$WORK/serve.log"
printf '[[token]]\ntoken = "bench-admin"\nname = "bench"\nproject = "bench"\ntier = "admin"\n' >"$tokens"
"$COHORTDB" serve --store "$STORE" --listen 127.0.0.1:0 --tokens "$tokens" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q "listening on" "$log" && break; sleep 0.1; done
address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$log")
[ -n "$address" ] || { echo "serve did not start:" >&2; cat "$log" >&2; exit 1; }
read -r af_ms cc_ms carriers_ms saved_ms < <(python3 benches/engine/warm.py "$address" bench-admin "$REGION" "$SUB" 20 "$variant" subset10)
{
  echo "# N=1,000,000 on a warm server ($(date -u +%F), $(nproc) cores, cohortdb $(git rev-parse --short HEAD))"
  echo
  echo "| request (grpcio client, median of 20) | ms |"
  echo "|---|---|"
  echo "| af $REGION, 10% subset (100,000 IDs in the request) | $af_ms |"
  echo "| af $REGION, the same subset saved as cohort @subset10 | $saved_ms |"
  echo "| case-control $REGION, case_control = 1 against = 0 | $cc_ms |"
  echo "| carriers of $variant ($carriers carriers) | $carriers_ms |"
  echo
  echo "Reproduce: \`bash benches/million/run.sh && bash benches/million/warm.sh\`"
} | tee "$WORK/warm.md"
