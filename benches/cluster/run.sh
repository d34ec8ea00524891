#!/usr/bin/env bash
# cohortdb on 1, 2 and 4 workers (`cohortdb worker` processes on 127.0.0.1) against one node,
# in one run, at N=100,000 (simulated, 1 Mb of chr20): a whole-region SQL aggregate over
# `variants`, `af` over the whole 1 Mb for a 10% subset, and a small query (one 1 kb window)
# for the coordinator's fixed cost. Every command is a one-shot `cohortdb` process (hyperfine,
# process start, pool connection and planning included); answers are checked equal first.
#
#   bash benches/cluster/run.sh
#
# On one machine the workers share its cores with each other and the coordinator: this measures
# the overhead of the distributed plan, not a speed-up (docs/cluster.md says what N nodes do).
# The workers stay up across runs, so their row caches are warm; one node starts cold each run.
# The store comes from benches/peer/run.sh 100000 (run first when missing). Results go to
# stdout and .cache/cluster/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
PEER="$ROOT/.cache/peer/N100000"
WORK="$ROOT/.cache/cluster"
REGION=chr20:20000001-21000000
SUBSET="$SHARED/testdata/reference_queries/subset10pct_N100000.txt"
RUNS="${RUNS:-10}"
mkdir -p "$WORK"
command -v hyperfine >/dev/null || { echo "missing hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }
[ -d "$PEER/store" ] || bash benches/peer/run.sh 100000 >&2
cargo build --release -p cohortdb-cli >&2
BIN="$ROOT/target/release/cohortdb"
STORE="$PEER/store"
SECRET="$WORK/cluster.secret"
openssl rand -hex 32 >"$SECRET"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
addresses=()
for i in 1 2 3 4; do
  "$BIN" worker --store "$STORE" --listen 127.0.0.1:0 --secret-file "$SECRET" 2>"$WORK/worker$i.log" &
  pids+=($!)
done
for i in 1 2 3 4; do
  for _ in $(seq 100); do grep -q "listening on" "$WORK/worker$i.log" && break; sleep 0.1; done
  addresses+=("$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$WORK/worker$i.log")")
done
w1=${addresses[0]}
w2=$w1,${addresses[1]}
w4=$w2,${addresses[2]},${addresses[3]}

SQL="SELECT count(*), sum(ac), sum(an), sum(n_het), sum(n_hom_alt) FROM variants"
SMALL="SELECT count(*) FROM variants WHERE pos BETWEEN 20500001 AND 20501000"
on() { # on WORKERS ARGS...: cohortdb ARGS on those workers (none: one node)
  local workers=$1; shift
  if [ -n "$workers" ]; then "$BIN" "$@" --workers "$workers" --secret-file "$SECRET"; else "$BIN" "$@"; fi
}
for set in "" "$w1" "$w2" "$w4"; do
  on "$set" query --store "$STORE" "$SQL" >"$WORK/sql.${#set}"
  on "$set" af --store "$STORE" -r "$REGION" -S "$SUBSET" >"$WORK/af.${#set}"
  cmp -s "$WORK/sql.0" "$WORK/sql.${#set}" || { echo "SQL answers differ on workers $set" >&2; exit 1; }
  cmp -s "$WORK/af.0" "$WORK/af.${#set}" || { echo "af answers differ on workers $set" >&2; exit 1; }
done
echo "answers equal on 0, 1, 2 and 4 workers ($(wc -l <"$WORK/af.0") af rows)" >&2

bench() { # bench NAME COMMAND: COMMAND (a cohortdb command line) on 0, 1, 2 and 4 workers
  local name=$1 cmd=$2 cluster="--secret-file $SECRET --workers"
  hyperfine --warmup 2 --runs "$RUNS" --export-markdown "$WORK/$name.md" \
    -n "one node" "$BIN $cmd" \
    -n "1 worker" "$BIN $cmd $cluster $w1" \
    -n "2 workers" "$BIN $cmd $cluster $w2" \
    -n "4 workers" "$BIN $cmd $cluster $w4"
}
bench sql "query --store $STORE '$SQL'"
bench af "af --store $STORE -r $REGION -S $SUBSET"
bench small "query --store $STORE '$SMALL'"
{
  echo "# cohortdb on workers, N=100,000, $(date -u +%F), $(nproc) cores"
  for name in sql af small; do echo; echo "## $name"; cat "$WORK/$name.md"; done
} | tee "$WORK/results.md"
