"""A notebook-style tour of a cohortdb server from Python.

    cargo run --release -p cohortdb-cli -- demo --store /tmp/cohortdb-demo
    cargo run --release -p cohortdb-cli -- serve --store /tmp/cohortdb-demo \
        --tokens examples/python/tokens.toml --listen 127.0.0.1:50051 &
    pip install adbc_driver_flightsql pyarrow grpcio
    python3 examples/python/notebook.py
"""

import os

import adbc_driver_flightsql.dbapi as flightsql

address = os.environ.get("COHORTDB_ADDRESS", "127.0.0.1:50051")


def connect(token):
    return flightsql.connect(
        f"grpc://{address}",
        db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"},
    )


# An aggregate-tier researcher: cohort frequencies, small counts suppressed.
with connect("demo-aggregate-token") as conn, conn.cursor() as cur:
    cur.execute(
        "SELECT chrom, pos, ref, alt, ac, an, af, suppressed "
        "FROM allele_frequencies('chr20:20000000-20010000', 'sex = ''F'' AND age >= 50') "
        "ORDER BY pos LIMIT 10"
    )
    print(cur.fetch_arrow_table())
    cur.execute(
        "SELECT pos, alt, ac_cases, ac_controls, odds_ratio, p_fisher FROM case_control("
        "'chr20:20000000-20050000', 'case_control = 1', 'case_control = 0') "
        "WHERE NOT suppressed ORDER BY p_fisher LIMIT 5"
    )
    print(cur.fetch_arrow_table())
    try:
        cur.execute("SELECT * FROM phenotypes")
        cur.fetchall()
    except flightsql.Error as e:
        print("aggregate tier, individual rows:", str(e).splitlines()[0])

# A record-tier analyst: individual rows under the project's pseudonyms, prepared statements.
with connect("demo-record-token") as conn, conn.cursor() as cur:
    cur.execute(
        "SELECT p.sample_id, p.age, g.pos, g.alt, g.dosage "
        "FROM genotypes g JOIN phenotypes p USING (sample_id) "
        "WHERE g.contig = 'chr20' AND g.pos BETWEEN 20000000 AND 20002000 AND p.age > $1 LIMIT 5",
        parameters=(60,),
    )
    print(cur.fetch_arrow_table())
    # The carriers of the most common ALT in the first 100 kb, page by page (1,000 rows each;
    # a page shorter than that is the last).
    cur.execute(
        "SELECT chrom || ':' || CAST(pos AS VARCHAR) AS variant "
        "FROM allele_frequencies('chr20:20000000-20100000') ORDER BY ac DESC LIMIT 1"
    )
    variant, page, carriers = cur.fetchone()[0], 0, 0
    while True:
        cur.execute(f"SELECT sample_id, gt FROM carriers('{variant}', '', 1000, {page})")
        rows = cur.fetch_arrow_table()
        carriers, page = carriers + rows.num_rows, page + 1
        if rows.num_rows < 1000:
            break
    print(f"{variant}: {carriers} carriers in {page} pages")
    print([t["table_name"] for c in conn.adbc_get_objects(depth="tables").read_all().to_pylist()
           for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]])
