#!/usr/bin/env bash
# Fails when a workspace crate depends upward (DESIGN.md: store < engine/ingest < server < cli).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import json, subprocess, sys
meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--no-deps"]))
allowed = {
    "cohortdb-store": set(),
    "cohortdb-proto": set(),
    "cohortdb-engine": {"cohortdb-store"},
    "cohortdb-ingest": {"cohortdb-store"},
    "cohortdb-server": {"cohortdb-proto", "cohortdb-engine", "cohortdb-store"},
    "cohortdb-cli": {"cohortdb-server", "cohortdb-ingest", "cohortdb-engine", "cohortdb-store", "cohortdb-proto"},
    "cohortdb-benches": {"cohortdb-store", "cohortdb-ingest", "cohortdb-engine", "cohortdb-proto"},
}
bad = []
for pkg in meta["packages"]:
    deps = {d["name"] for d in pkg["dependencies"] if d["name"].startswith("cohortdb-") and d["kind"] is None}
    extra = deps - allowed.get(pkg["name"], set())
    if extra:
        bad.append(f'{pkg["name"]} depends upward on {sorted(extra)}')
if bad:
    sys.exit("layer check failed:\n" + "\n".join(bad))
print("layers ok")
PY
