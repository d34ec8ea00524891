"""Medians of af (a sample-list cohort) and case-control over one region through a running
server, with a real grpcio client building its messages from server reflection (client
decoding included).

Usage: warm.py HOST:PORT TOKEN REGION SAMPLES_FILE [RUNS [VARIANT [SAVED]]]
  -> prints "af_ms case_control_ms", and "carriers_ms" of VARIANT (CHR:POS:REF:ALT, everyone)
     after them when given, and the af of the saved cohort SAVED (the same list saved with
     `cohortdb cohort save SAVED -S SAMPLES_FILE`) after that
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

address, token, region, samples_file = sys.argv[1:5]
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 20
variant = sys.argv[6] if len(sys.argv) > 6 else None
saved = sys.argv[7] if len(sys.argv) > 7 else None
channel = grpc.insecure_channel(address)
pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
message = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
Cohort, SampleIds, Chunk = (
    message("cohortdb.v1.Cohort"),
    message("cohortdb.v1.SampleIds"),
    message("cohortdb.v1.ArrowChunk"),
)
metadata = [("authorization", f"Bearer {token}")]


def rpc(method, request_type):
    Request = message(f"cohortdb.v1.{request_type}")
    call = channel.unary_stream(
        f"/cohortdb.v1.QueryService/{method}",
        request_serializer=Request.SerializeToString,
        response_deserializer=Chunk.FromString,
    )
    return Request, call


def median_ms(call, request):
    def once():
        start = time.perf_counter()
        chunks = b"".join(c.ipc for c in call(request, metadata=metadata))
        table = pa.ipc.open_stream(chunks).read_all()
        assert table.num_rows > 0, "an empty answer is not a measurement"
        return (time.perf_counter() - start) * 1000

    for _ in range(3):
        once()
    return statistics.median(once() for _ in range(runs))


ids = [line.split()[0] for line in open(samples_file) if line.strip()]
AfRequest, af = rpc("AlleleFrequencies", "AlleleFrequenciesRequest")
CcRequest, cc = rpc("CaseControl", "CaseControlRequest")
af_ms = median_ms(af, AfRequest(regions=[region], cohort=Cohort(samples=SampleIds(ids=ids))))
cc_ms = median_ms(
    cc,
    CcRequest(
        regions=[region],
        cases=Cohort(predicate="case_control = 1"),
        controls=Cohort(predicate="case_control = 0"),
    ),
)
figures = [af_ms, cc_ms]
if variant is not None:
    CarriersRequest, carriers = rpc("Carriers", "CarriersRequest")
    figures.append(median_ms(carriers, CarriersRequest(variant=variant)))
if saved is not None:
    figures.append(median_ms(af, AfRequest(regions=[region], cohort=Cohort(named=saved))))
print(" ".join(f"{f:.1f}" for f in figures))
