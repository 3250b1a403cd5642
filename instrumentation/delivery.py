"""How many of the spans forktrace recorded the collector did not take.

The batch processor drops spans silently when its bounded queue is full (a
dead or slow collector) and an export that fails is not retried; neither
raises into the agent, by design. This module counts what was lost, so a user
can tell: :func:`dropped_spans`, and a warning at shutdown when it is not
zero. It counts by difference (spans ended minus spans the exporter reported
delivered), which needs no private state of the SDK's batch processor and also
covers spans still queued when shutdown gave up waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

logger = logging.getLogger("forktrace")


class _Counts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ended = 0
        self.delivered = 0

    def add(self, *, ended: int = 0, delivered: int = 0) -> None:
        with self._lock:
            self.ended += ended
            self.delivered += delivered

    @property
    def undelivered(self) -> int:
        with self._lock:
            return self.ended - self.delivered


class _CountingExporter(SpanExporter):
    def __init__(self, exporter: SpanExporter, counts: _Counts) -> None:
        self._exporter = exporter
        self._counts = counts

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            self._counts.add(delivered=len(spans))
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans it is given and delivers."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.counts = _Counts()
        super().__init__(_CountingExporter(exporter, self.counts))
        global _latest
        _latest = self

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.counts.add(ended=1)
        super().on_end(span)

    def report(self) -> None:
        """After shutdown: warn when spans were lost."""
        if lost := self.counts.undelivered:
            logger.warning(
                "forktrace: %d of %d spans did not reach the collector (it was down, slow or "
                "refused them; forktrace.dropped_spans() tells the count)",
                lost,
                self.counts.ended,
            )


_latest: CountingBatchSpanProcessor | None = None


def dropped_spans() -> int:
    """Spans forktrace recorded that the collector has not acknowledged.

    After :func:`forktrace.shutdown` (or at exit) these are the spans lost:
    dropped from the full queue, refused, or not sent in time. While tracing
    runs the count also includes spans still queued for export. Zero before
    :func:`forktrace.init` and with ``export=False``.
    """
    processor = _latest
    return processor.counts.undelivered if processor is not None else 0
