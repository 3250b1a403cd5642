"""A load of real OTLP requests, recording which ones the collector acknowledged.

Run as ``python fault_sender.py DATA_DIR OUT_DIR RUN_ID``. It sends
``ExportTraceServiceRequest`` messages, alternately over OTLP/HTTP (protobuf)
and OTLP/gRPC, to the collector that ``DATA_DIR/collector.json`` names, until
``OUT_DIR/stop`` exists. Every span is a model call of run ``RUN_ID`` (one
input token each), so it reaches the decision layer tables too.

A request that fails for any reason is never sent again: its successor has
new span ids. A request the collector received but could not answer (killed
mid-request) may then be stored without being acknowledged, which the
guarantee allows; a retried one would be stored twice by design of the
client, which would hide the duplicates this load is meant to find.

Written to OUT_DIR: ``acknowledged`` (one line of span ids per acknowledged
request, written after the answer) and ``summary.json``, rewritten as the load
runs and at the end: counts, and the retry delays and reasons the 429 /
RESOURCE_EXHAUSTED answers carried.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVICE_NAME = "reliability"


def build_request(run_id: str, spans: int, pad: int) -> tuple[bytes, list[str]]:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = SERVICE_NAME
    scope_spans = resource_spans.scope_spans.add()
    trace_id = os.urandom(16)
    now = time.time_ns()
    ids = []
    for _ in range(spans):
        span_id = os.urandom(8)
        ids.append(span_id.hex())
        span = scope_spans.spans.add(
            trace_id=trace_id,
            span_id=span_id,
            name="chat model",
            kind=3,  # CLIENT
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1_000_000,
        )
        for key, value in (
            ("forktrace.run.id", run_id),
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", "fault-model"),
            ("gen_ai.output.text", "p" * pad),
        ):
            span.attributes.add(key=key).value.string_value = value
        span.attributes.add(key="gen_ai.usage.input_tokens").value.int_value = 1
    return request.SerializeToString(), ids


class Sender:
    def __init__(self, data_dir: Path, out_dir: Path) -> None:
        self.data_dir = data_dir
        self.out_dir = out_dir
        self.endpoints: dict[str, str] | None = None
        self.channel: grpc.Channel | None = None
        self.summary: dict[str, Any] = {
            "acknowledged_requests": 0,
            "acknowledged_spans": 0,
            "http_429": 0,
            "grpc_resource_exhausted": 0,
            "retry_after_seen": [],
            "grpc_retry_delay_seen": [],
            "throttle_messages": [],
            "failed": 0,
            "other_status": [],
        }

    def discover(self) -> bool:
        try:
            found = json.loads((self.data_dir / "collector.json").read_text())
        except (OSError, ValueError):
            return False
        endpoints = {"http": found["http_endpoint"], "grpc": found["grpc_endpoint"]}
        if endpoints != self.endpoints:
            self.endpoints = endpoints
            if self.channel is not None:
                self.channel.close()
            self.channel = grpc.insecure_channel(endpoints["grpc"].removeprefix("http://"))
        return True

    def send_http(self, body: bytes) -> bool:
        assert self.endpoints is not None
        request = urllib.request.Request(
            f"{self.endpoints['http']}/v1/traces",
            data=body,
            headers={"Content-Type": "application/x-protobuf"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                self.summary["http_429"] += 1
                self._note("retry_after_seen", exc.headers.get("Retry-After"))
                self._note_message(status_pb2.Status.FromString(exc.read()).message)
            else:
                self.summary["other_status"].append(exc.code)
            return False

    def send_grpc(self, body: bytes) -> bool:
        assert self.channel is not None
        export = self.channel.unary_unary(EXPORT_METHOD)
        try:
            export(body, timeout=10)
            return True
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                self.summary["grpc_resource_exhausted"] += 1
                self._note("grpc_retry_delay_seen", _retry_delay(exc))
                self._note_message(exc.details() or "")
            raise

    def _note(self, key: str, value: object) -> None:
        if value not in self.summary[key]:
            self.summary[key].append(value)

    def _note_message(self, message: str) -> None:
        # the reason without its byte counts, so each kind of refusal is noted once
        self._note("throttle_messages", re.sub(r"[0-9]+", "N", message))

    def write_summary(self) -> None:
        """Atomically, so the test can watch it while the load runs."""
        temporary = self.out_dir / "summary.json.tmp"
        temporary.write_text(json.dumps(self.summary))
        os.replace(temporary, self.out_dir / "summary.json")

    def run(self, run_id: str, spans: int, pad: int, rate: float) -> None:
        stop = self.out_dir / "stop"
        with open(self.out_dir / "acknowledged", "a", encoding="ascii") as log:
            sent = 0
            written = paced = time.monotonic()
            while not stop.exists():
                # at most ``rate`` requests a second, so the load leaves the
                # collector CPU to start, insert and replay on a small machine
                paced = max(paced + 1 / rate, time.monotonic())
                time.sleep(max(0.0, paced - time.monotonic()))
                if time.monotonic() - written > 0.2:
                    self.write_summary()
                    written = time.monotonic()
                if not self.discover():
                    time.sleep(0.05)
                    continue
                body, ids = build_request(run_id, spans, pad)
                transport = "http" if sent % 2 == 0 else "grpc"
                sent += 1
                try:
                    ok = self.send_http(body) if transport == "http" else self.send_grpc(body)
                except (OSError, grpc.RpcError):
                    ok = False  # refused, reset, timed out, unavailable: the collector is down
                if ok:
                    log.write(" ".join(ids) + "\n")
                    log.flush()
                    self.summary["acknowledged_requests"] += 1
                    self.summary["acknowledged_spans"] += len(ids)
                else:
                    self.summary["failed"] += 1
                    time.sleep(0.05)
        self.write_summary()


def _retry_delay(exc: grpc.RpcError) -> float | None:
    details = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")  # type: ignore[attr-defined]
    if not details:
        return None
    retry_info = error_details_pb2.RetryInfo()
    for detail in status_pb2.Status.FromString(details).details:
        if detail.Unpack(retry_info):
            return retry_info.retry_delay.seconds + retry_info.retry_delay.nanos / 1e9
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("run_id")
    parser.add_argument("--spans", type=int, default=20, help="spans per request")
    parser.add_argument("--pad", type=int, default=200, help="bytes of text per span")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second, at most")
    options = parser.parse_args()
    options.out_dir.mkdir(parents=True, exist_ok=True)
    Sender(options.data_dir, options.out_dir).run(
        options.run_id, options.spans, options.pad, options.rate
    )


if __name__ == "__main__":
    main()
