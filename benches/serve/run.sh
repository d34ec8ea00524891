#!/usr/bin/env bash
# The server's bounded load test (issue 4): `cohortdb serve` on loopback over the N=100,000
# simulated cohort of benches/peer/run.sh (its store, with phenotypes, under .cache/peer/), then
# serve_load with CLIENTS concurrent clients (default 32) for SECONDS (default 60), alternating
# carriers lookups (record tier) and 100 kb cohort allele frequencies (aggregate tier), first
# closed-loop (no think time: saturation), then open-loop at RATE requests/s (default 200) to
# show latency below saturation; both first with `--scan-threads 0` (no scan lane), then with
# the default scan lane. Then,
# on the same warm server, case-control over the 100 kb region of the peer harness through a
# grpcio client, against two `plink2 --keep --geno-counts` runs timed in the same run.
#
#   bash benches/serve/run.sh [CLIENTS] [SECONDS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/../.."
clients="${1:-32}"
seconds="${2:-60}"
rate="${3:-200}"
store=.cache/peer/N100000/store
[ -d "$store" ] || { echo "no $store: run bash benches/peer/run.sh 100000 first" >&2; exit 1; }
cargo build --release -q -p cohortdb-cli -p cohortdb-benches --bin cohortdb --bin serve_load
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/tokens.toml" <<'TOML'
[[token]]
token = "load-record-token"
name = "load-record"
project = "load"
tier = "record"

[[token]]
token = "load-admin-token"
name = "load-admin"
project = "load"
tier = "admin"

[[token]]
token = "load-aggregate-token"
name = "load-aggregate"
project = "load-open"
tier = "aggregate"

[projects.load]
secret = "load test secret"
TOML
# start_server [ARGS...]: a server on the store; sets $server and $address.
start_server() {
  target/release/cohortdb serve --store "$store" --listen 127.0.0.1:0 --tokens "$work/tokens.toml" "$@" 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
  address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$work/serve.log")
}
load() {
  target/release/serve_load "$address" load-record-token load-aggregate-token "$clients" "$seconds" "$@"
}

# First without the scan lane (scans on the server's threads, no priority), for comparison.
start_server --scan-threads 0
echo "server at $address; $(nproc) cores shared by server and clients" >&2
echo "### --scan-threads 0 (no scan lane)"
echo
load
echo
load "$rate"
kill -TERM "$server"
wait "$server" || true
echo
echo "### default (scan lane)"
echo
start_server
load
echo
load "$rate"

# Case-control on the warm server vs two plink2 runs, same region and groups as benches/peer.
peer=.cache/peer/N100000
region=chr20:20500001-20600000
served=$(python3 benches/serve/case_control.py "$address" load-admin-token "$region" 20)
hyperfine -N --warmup 1 --runs 10 --export-json "$work/plink2.json" \
  "bash -c 'plink2 --pfile $peer/pgen --keep $peer/cases.txt --chr 20 --from-bp 20500001 --to-bp 20600000 --threads 2 --geno-counts --out $work/g1 && plink2 --pfile $peer/pgen --keep $peer/controls.txt --chr 20 --from-bp 20500001 --to-bp 20600000 --threads 2 --geno-counts --out $work/g2'" >&2
plink=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][0]['median']*1000, 1))" "$work/plink2.json")
read -r served_ms rows <<<"$served"
echo
echo "| case-control, 100 kb, N=100,000 | ms |"
echo "|---|---|"
echo "| cohortdb server (grpcio client, warm, median of 20; $rows rows) | $served_ms |"
echo "| two plink2 --keep --geno-counts (median of 10) | $plink |"
echo "| ratio | $(python3 -c "print(round($plink / $served_ms, 2))")x |"
kill -TERM "$server"
wait "$server" || true
