"""What both receivers share: checking the token, turning a request body into a
spool append and an OTLP outcome, and counting every outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from forktrace.collector.auth import Access, Tokens, Verdict
from forktrace.collector.limits import Limits
from forktrace.collector.metrics import Metrics
from forktrace.collector.otlp import Accepted, InvalidRequestError, accept_json, accept_protobuf
from forktrace.collector.spool import Spool, SpoolFullError


@dataclass
class Counters:
    requests: int = 0
    spans: int = 0
    rejected_requests: int = 0
    rejected_spans: int = 0
    throttled: int = 0


class Intake:
    """Validate, then append durably; raises InvalidRequestError or SpoolFullError."""

    def __init__(
        self,
        spool: Spool,
        tokens: Tokens | None = None,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._spool = spool
        self.tokens = tokens or Tokens()
        self.limits = limits or Limits()
        self.metrics = metrics or Metrics()
        self.counters = Counters()

    def authorize(self, header: str | None, access: Access) -> Verdict:
        verdict = self.tokens.check(header, access)
        if verdict is not Verdict.ALLOWED:
            self.reject(verdict.value)
        return verdict

    def reject(self, reason: str) -> None:
        """Count a request refused before or while it was checked."""
        self.counters.rejected_requests += 1
        self.metrics.rejected_requests.labels(reason).inc()

    async def accept(
        self, body: bytes, *, json_body: bool = False, transport: str = "http"
    ) -> Accepted:
        try:
            accepted = (
                accept_json(body, self.limits) if json_body else accept_protobuf(body, self.limits)
            )
        except InvalidRequestError as exc:
            self.reject(exc.reason)
            raise
        if accepted.payload:
            try:
                await asyncio.wrap_future(self._spool.append(accepted.payload, accepted.spans))
            except SpoolFullError:
                self.counters.throttled += 1
                self.metrics.throttled_requests.inc()
                raise
        self.counters.requests += 1
        self.counters.spans += accepted.spans
        self.counters.rejected_spans += accepted.rejected_spans
        metrics = self.metrics
        metrics.accepted_requests.labels(transport).inc()
        metrics.accepted_spans.labels(transport).inc(accepted.spans)
        for reason, count in accepted.rejected.items():
            metrics.rejected_spans.labels(reason).inc(count)
        if accepted.truncated_values:
            metrics.truncated_values.inc(accepted.truncated_values)
        return accepted
