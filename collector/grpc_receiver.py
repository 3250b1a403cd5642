"""OTLP/gRPC: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The method is registered with a generic handler that receives the raw request
bytes, so each request is parsed once (for validation) and spooled exactly as
the client sent it, instead of being parsed by grpcio and serialised again.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from forktrace.collector.auth import Access, Verdict
from forktrace.collector.otlp import InvalidRequestError
from forktrace.collector.receivers import Intake
from forktrace.collector.spool import SpoolFullError

SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name

_REFUSED = {
    Verdict.UNAUTHENTICATED: (grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token"),
    Verdict.PERMISSION_DENIED: (
        grpc.StatusCode.PERMISSION_DENIED,
        "this token may not write traces (it is the read token)",
    ),
}


def _rich_status_metadata(code: int, message: str, details: list[Any]) -> tuple:
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class GrpcReceiver:
    def __init__(self, intake: Intake, *, retry_after_seconds: int) -> None:
        self._intake = intake
        self._retry_after = retry_after_seconds

    def handler(self) -> grpc.GenericRpcHandler:
        export = grpc.unary_unary_rpc_method_handler(self.export)  # raw bytes in and out
        return grpc.method_handlers_generic_handler(SERVICE, {"Export": export})

    async def export(self, body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata() or ())
        verdict = self._intake.authorize(metadata.get("authorization"), Access.WRITE)
        if verdict is not Verdict.ALLOWED:
            await context.abort(*_REFUSED[verdict])
        try:
            accepted = await self._intake.accept(body, transport="grpc")
        except InvalidRequestError as exc:
            # too many spans is INVALID_ARGUMENT too: RESOURCE_EXHAUSTED would make
            # exporters retry a request that can never fit
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SpoolFullError as exc:
            message = f"{exc}; retry later"
            retry = error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=self._retry_after)
            )
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                message,
                trailing_metadata=_rich_status_metadata(
                    code_pb2.RESOURCE_EXHAUSTED, message, [retry]
                ),
            )
        return accepted.response().SerializeToString()
