"""Real Python clients against a running `cohortdb serve` (see cli/tests/serving.rs).

Usage: clients.py HOST:PORT ADMIN_TOKEN AGGREGATE_TOKEN EXPECTED_OVER_60

grpcio with server reflection (v1alpha and v1), grpc.health.v1, adbc_driver_flightsql (DB-API,
prepared statement, adbc_get_objects) and pyarrow.flight (basic-token handshake, a Flight SQL
command built by hand). Exits non-zero on the first failed check.
"""

import sys

import grpc
import pyarrow as pa
import pyarrow.flight as flight
from flight_sql_messages import field, fields, flight_sql, statement_query
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

address, admin, aggregate, over_60 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
channel = grpc.insecure_channel(address)

# Reflection: the services on the port.
stub = reflection_pb2_grpc.ServerReflectionStub(channel)
answer = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
services = {s.name for s in answer.list_services_response.service}
for wanted in ("cohortdb.v1.QueryService", "cohortdb.v1.AdminService", "grpc.health.v1.Health"):
    assert wanted in services, services
# The v1 reflection service answers too (same messages under another package).
v1 = channel.stream_stream(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
)
answer = next(v1(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
assert "cohortdb.v1.QueryService" in {s.name for s in answer.list_services_response.service}
print("reflection: ok")

# Call RPCs with message classes built from reflection alone (as grpcurl does).
pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
classes = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
StoreInfoRequest = classes("cohortdb.v1.StoreInfoRequest")
StoreInfoResponse = classes("cohortdb.v1.StoreInfoResponse")
SqlRequest = classes("cohortdb.v1.SqlRequest")
ArrowChunk = classes("cohortdb.v1.ArrowChunk")
auth = lambda token: [("authorization", f"Bearer {token}")]
store_info = channel.unary_unary(
    "/cohortdb.v1.AdminService/StoreInfo",
    request_serializer=StoreInfoRequest.SerializeToString,
    response_deserializer=StoreInfoResponse.FromString,
)
info = store_info(StoreInfoRequest(), metadata=auth(admin))
assert info.samples == 10000 and info.tier == "admin", info
try:
    store_info(StoreInfoRequest())
    raise AssertionError("no token was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
sql = channel.unary_stream(
    "/cohortdb.v1.QueryService/Sql",
    request_serializer=SqlRequest.SerializeToString,
    response_deserializer=ArrowChunk.FromString,
)
chunks = b"".join(c.ipc for c in sql(SqlRequest(query="SELECT count(*) AS n FROM phenotypes WHERE age > 60"), metadata=auth(admin)))
table = pa.ipc.open_stream(chunks).read_all()
assert table.column("n").to_pylist() == [over_60], table
try:
    list(sql(SqlRequest(query="SELECT * FROM samples"), metadata=auth(aggregate)))
    raise AssertionError("the aggregate tier read samples")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
print("grpcio: ok")

health = health_pb2_grpc.HealthStub(channel)
for service in ("", "cohortdb.v1.QueryService"):
    status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
    assert status == health_pb2.HealthCheckResponse.SERVING, (service, status)
print("health: ok")

# ADBC Flight SQL, DB-API.
import adbc_driver_flightsql.dbapi as flightsql

with flightsql.connect(
    f"grpc://{address}",
    db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {admin}"},
) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM phenotypes WHERE age > 60")
        assert cur.fetch_arrow_table().column("n").to_pylist() == [over_60]
        cur.execute("SELECT count(*) AS n FROM phenotypes WHERE age > $1", parameters=(60,))
        assert cur.fetchone()[0] == over_60
        # DB-API's own placeholder style: `?`, numbered in order (a `?` in a string stays).
        cur.execute(
            "SELECT '?' AS q, count(*) AS n FROM phenotypes WHERE age > ? AND age < ?",
            parameters=(60, 1000),
        )
        assert cur.fetchone() == ("?", over_60)
        cur.execute("SELECT chrom, pos, ac, an FROM allele_frequencies('chr20:20100001-20101000')")
        assert cur.fetch_arrow_table().num_rows > 5
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    tables = {t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]}
    assert {"variants", "samples", "genotypes", "phenotypes"} <= tables, tables
with flightsql.connect(
    f"grpc://{address}",
    db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {aggregate}"},
) as conn:
    with conn.cursor() as cur:
        try:
            cur.execute("SELECT sample_id FROM phenotypes")
            cur.fetchall()
            raise AssertionError("the aggregate tier read phenotypes")
        except flightsql.Error as e:
            assert "permission denied" in str(e).lower(), e
print("adbc_driver_flightsql: ok")

# pyarrow.flight: basic-token handshake, then a Flight SQL statement built by hand.
client = flight.FlightClient(f"grpc://{address}")
header = client.authenticate_basic_token("root", admin)
options = flight.FlightCallOptions(headers=[header])
command = statement_query(b"SELECT count(*) AS n FROM samples")
info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
table = client.do_get(info.endpoints[0].ticket, options).read_all()
assert table.column("n").to_pylist() == [10000], table
try:
    client.authenticate_basic_token("nobody", "not-a-token")
    raise AssertionError("an unknown token passed the handshake")
except flight.FlightUnauthenticatedError:
    pass

# A prepared statement with `?` placeholders, by hand: created (DoAction), its parameters
# bound (DoPut: the handle comes back with them), run (GetFlightInfo, DoGet).
text = b"SELECT '?' AS q, count(*) AS n FROM phenotypes WHERE age > ? AND age < ?"
action = flight.Action("CreatePreparedStatement", flight_sql(b"ActionCreatePreparedStatementRequest", field(1, text)))
created = fields(fields(next(client.do_action(action, options)).body.to_pybytes())[2])
parameters = pa.ipc.read_schema(pa.py_buffer(created[3]))
assert len(parameters) == 2, parameters
statement = flight_sql(b"CommandPreparedStatementQuery", field(1, created[1]))
writer, metadata = client.do_put(flight.FlightDescriptor.for_command(statement), parameters, options)
writer.write_batch(
    pa.record_batch([pa.array([v], type=f.type) for v, f in zip((60, 1000), parameters)], schema=parameters)
)
writer.done_writing()
bound = fields(metadata.read().to_pybytes())[1]
writer.close()
statement = flight_sql(b"CommandPreparedStatementQuery", field(1, bound))
info = client.get_flight_info(flight.FlightDescriptor.for_command(statement), options)
table = client.do_get(info.endpoints[0].ticket, options).read_all()
assert table.to_pylist() == [{"q": "?", "n": over_60}], table
print("pyarrow.flight: ok")
