"""Times case-control over a 100 kb region through a running server (issue 3's target, measured
on a warm server) with a real grpcio client, building the messages from server reflection.

Usage: case_control.py HOST:PORT TOKEN REGION [RUNS]   -> prints the median in ms
"""

import statistics
import sys
import time

import grpc
import pyarrow as pa
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

address, token, region = sys.argv[1], sys.argv[2], sys.argv[3]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 20
channel = grpc.insecure_channel(address)
pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
message = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
Request, Cohort, Chunk = (
    message("cohortdb.v1.CaseControlRequest"),
    message("cohortdb.v1.Cohort"),
    message("cohortdb.v1.ArrowChunk"),
)
call = channel.unary_stream(
    "/cohortdb.v1.QueryService/CaseControl",
    request_serializer=Request.SerializeToString,
    response_deserializer=Chunk.FromString,
)
request = Request(
    regions=[region],
    cases=Cohort(predicate="case_control = 1"),
    controls=Cohort(predicate="case_control = 0"),
)
metadata = [("authorization", f"Bearer {token}")]


def once():
    start = time.perf_counter()
    table = pa.ipc.open_stream(b"".join(c.ipc for c in call(request, metadata=metadata))).read_all()
    return time.perf_counter() - start, table.num_rows


for _ in range(3):
    once()
times = []
for _ in range(runs):
    took, rows = once()
    times.append(took * 1000)
print(f"{statistics.median(times):.1f} {rows}")
