#!/usr/bin/env bash
# A streamed answer's memory (issue 18): `SELECT * FROM genotypes` over the whole region of the
# N=100,000 simulated cohort (1 Mb of chr20, seed 3: benches/peer's input and store, made here
# when missing) through ADBC
# (adbc_driver_flightsql), read batch by batch. Reports the server's resident memory when idle
# (after a warm-up query), its peak (VmHWM) during the answer, the rows and Arrow bytes the
# client received, and the client's time to the first batch against the time to the last.
#
#   bash benches/serve/streaming.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED="${COHORTDB_SHARED:-$(cd .. && pwd)/shared}"
prefix="$ROOT/.cache/sim/sim_N100000_L1Mb"
store="$ROOT/.cache/peer/N100000/store"
cargo build --release -q -p cohortdb-cli
COHORTDB="$ROOT/target/release/cohortdb"
[ -f "$prefix.vcf.gz" ] || (cd "$SHARED/testdata" && python3 ../sim/simulate.py -n 100000 -L 1000000 -s 3 --no-trees -o "$prefix")
if [ ! -d "$store" ]; then
  mkdir -p "$(dirname "$store")"
  "$COHORTDB" ingest vcf --store "$store" "$prefix.vcf.gz" >&2
  "$COHORTDB" ingest phenotypes --store "$store" "$prefix.pheno.tsv" >&2
fi
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
printf '[[token]]\ntoken = "stream-admin"\nname = "stream"\nproject = "stream"\ntier = "admin"\n' >"$work/tokens.toml"
"$COHORTDB" serve --store "$store" --listen 127.0.0.1:0 --tokens "$work/tokens.toml" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
address=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$work/serve.log")
python3 - "$address" "$server" <<'PY'
import sys, time, threading
import adbc_driver_flightsql.dbapi as flightsql

address, pid = sys.argv[1], sys.argv[2]

def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MiB
    raise KeyError(key)

with flightsql.connect(
    f"grpc://{address}",
    db_kwargs={"adbc.flight.sql.authorization_header": "Bearer stream-admin"},
) as conn:
    cur = conn.cursor()
    # Warm-up: the engine, a small query, the row-group cache left as a query leaves it.
    cur.execute("SELECT count(*) FROM genotypes")
    total = cur.fetchone()[0]
    idle = status("VmRSS")
    samples = []
    stop = threading.Event()
    def sample():
        while not stop.is_set():
            samples.append(status("VmRSS"))
            time.sleep(0.02)
    thread = threading.Thread(target=sample)
    thread.start()
    started = time.perf_counter()
    cur.execute("SELECT * FROM genotypes")
    reader = cur.fetch_record_batch()
    first = None
    rows = nbytes = batches = 0
    for batch in reader:
        if first is None:
            first = time.perf_counter() - started
        rows += batch.num_rows
        nbytes += batch.nbytes
        batches += 1
    last = time.perf_counter() - started
    stop.set()
    thread.join()
    peak = status("VmHWM")
    assert rows == total, (rows, total)
    print(f"| rows | {rows:,} in {batches:,} batches |")
    print(f"| Arrow bytes received | {nbytes / 2**20:,.0f} MiB |")
    print(f"| time to the first batch / to the last | {first * 1000:,.0f} ms / {last:,.1f} s |")
    print(f"| server RSS idle (after a warm-up query) | {idle:,.0f} MiB |")
    print(f"| server RSS sampled every 20 ms during the answer: max | {max(samples):,.0f} MiB |")
    print(f"| server peak RSS (VmHWM, whole life) | {peak:,.0f} MiB |")
    print(f"| peak above idle | {peak - idle:,.0f} MiB |")
PY
