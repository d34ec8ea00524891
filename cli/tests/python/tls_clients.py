"""Real Python clients against `cohortdb serve` over TLS (see cli/tests/serving_tls.rs).

Usage: tls_clients.py HOST:PORT CA.pem ADMIN_TOKEN SAMPLES [CLIENT.pem CLIENT.key]

With a client certificate the server demands one (mutual TLS): every client connects with it,
and a client without one is refused. Without, plain TLS. Either way a plaintext client gets no
answer. grpcio (health and reflection), adbc_driver_flightsql (a query) and pyarrow.flight (the
handshake and a Flight SQL statement) connect with the test's CA. Exits non-zero on the first
failed check.
"""

import sys

import grpc
import pyarrow.flight as flight
from flight_sql_messages import statement_query
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

address, ca_path, admin, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client_cert, client_key = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, None)
read = lambda path: open(path, "rb").read()
ca = read(ca_path)
mutual = client_cert is not None
cert_chain, private_key = (read(client_cert), read(client_key)) if mutual else (None, None)


def health(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service="cohortdb.v1.QueryService"), timeout=5).status


# grpcio: health and reflection over TLS.
credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=private_key, certificate_chain=cert_chain)
channel = grpc.secure_channel(address, credentials)
assert health(channel) == health_pb2.HealthCheckResponse.SERVING
stub = reflection_pb2_grpc.ServerReflectionStub(channel)
answer = next(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
assert "cohortdb.v1.QueryService" in {s.name for s in answer.list_services_response.service}


def refused(channel, why):
    try:
        health(channel)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, (why, e)
        return
    raise AssertionError(f"{why}: answered")


refused(grpc.insecure_channel(address), "a plaintext client")
if mutual:
    refused(grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca)), "a client without a certificate")
print("grpcio over TLS: ok")

# ADBC Flight SQL over TLS.
import adbc_driver_flightsql.dbapi as flightsql

db_kwargs = {
    "adbc.flight.sql.authorization_header": f"Bearer {admin}",
    "adbc.flight.sql.client_option.tls_root_certs": ca.decode(),
}
if mutual:
    db_kwargs["adbc.flight.sql.client_option.mtls_cert_chain"] = cert_chain.decode()
    db_kwargs["adbc.flight.sql.client_option.mtls_private_key"] = private_key.decode()
with flightsql.connect(f"grpc+tls://{address}", db_kwargs=db_kwargs) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM samples WHERE sample_id <> ?", parameters=("nobody",))
        assert cur.fetchone()[0] == samples
print("adbc_driver_flightsql over TLS: ok")

# pyarrow.flight over TLS: handshake, then a Flight SQL statement built by hand.
client = flight.FlightClient(f"grpc+tls://{address}", tls_root_certs=ca, cert_chain=cert_chain, private_key=private_key)
options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("root", admin)])
command = statement_query(b"SELECT count(*) AS n FROM samples")
info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
table = client.do_get(info.endpoints[0].ticket, options).read_all()
assert table.column("n").to_pylist() == [samples], table
print("pyarrow.flight over TLS: ok")
