"""The collector's own metrics, in Prometheus format at ``GET /metrics``.

Each collector has its own CollectorRegistry (not prometheus-client's global
one), so several collectors in one process (tests, notebooks) never share or
clash. The inserter is observed from outside (``observe_inserter``): its
insert call is timed and counted, its retry count read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

PREFIX = "forktrace_collector"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class _LiveCounters(Collector):
    """Counters another object keeps (read at scrape time, never copied)."""

    def __init__(self, counters: dict[str, tuple[str, Callable[[], float]]]) -> None:
        self._counters = counters

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, (documentation, read) in self._counters.items():
            yield CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=read())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.accepted_requests = Counter(
            f"{PREFIX}_accepted_requests",
            "OTLP requests acknowledged (on disk in the spool).",
            ["transport"],
            registry=registry,
        )
        self.accepted_spans = Counter(
            f"{PREFIX}_accepted_spans",
            "Spans acknowledged (on disk in the spool).",
            ["transport"],
            registry=registry,
        )
        self.rejected_requests = Counter(
            f"{PREFIX}_rejected_requests",
            "Requests refused, by reason (malformed, a limit, a token).",
            ["reason"],
            registry=registry,
        )
        self.rejected_spans = Counter(
            f"{PREFIX}_rejected_spans",
            "Spans dropped from accepted requests (partial success), by reason.",
            ["reason"],
            registry=registry,
        )
        self.truncated_values = Counter(
            f"{PREFIX}_truncated_values",
            "Attribute values truncated to the value length limit.",
            registry=registry,
        )
        self.throttled_requests = Counter(
            f"{PREFIX}_throttled_requests",
            "Requests answered 429 / RESOURCE_EXHAUSTED because the spool is full.",
            registry=registry,
        )
        self.spool_bytes = Gauge(
            f"{PREFIX}_spool_bytes",
            "Bytes acknowledged but not yet inserted into the store.",
            registry=registry,
        )
        self.inserted_segments = Counter(
            f"{PREFIX}_inserted_segments",
            "Spool segments inserted into the store.",
            registry=registry,
        )
        self.inserted_spans = Counter(
            f"{PREFIX}_inserted_spans",
            "Spans inserted into the store (segments replayed after a restart are not counted "
            "here: their span count is unknown).",
            registry=registry,
        )
        self.insert_seconds = Histogram(
            f"{PREFIX}_insert_duration_seconds",
            "Time of one successful segment insert.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.replayed_segments = Counter(
            f"{PREFIX}_replayed_segments",
            "Spool segments found on disk at start and replayed.",
            registry=registry,
        )

    def observe_spool(self, pending_bytes: Callable[[], int]) -> None:
        self.spool_bytes.set_function(lambda: float(pending_bytes()))

    def observe_inserter(self, inserter: Any) -> None:
        """Time and count ``inserter.insert(client, segment)``; export its failure
        count (every failed attempt is retried, or the segment quarantined)."""
        insert = inserter.insert

        def timed(client: Any, segment: Any) -> None:
            start = time.perf_counter()
            insert(client, segment)
            self.insert_seconds.observe(time.perf_counter() - start)
            self.inserted_segments.inc()
            if segment.spans > 0:
                self.inserted_spans.inc(segment.spans)

        inserter.insert = timed
        self.registry.register(
            _LiveCounters(
                {
                    "insert_retries": (
                        "Failed insert attempts (each is retried with backoff).",
                        lambda: float(inserter.failures),
                    )
                }
            )
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
