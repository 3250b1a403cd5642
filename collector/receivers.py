"""What both receivers share: turning a request body into a spool append and
an OTLP outcome, with the answers the OTLP specification prescribes."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

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

    def __init__(self, spool: Spool, token: str | None) -> None:
        self._spool = spool
        self._token = token
        self.counters = Counters()

    def authorized(self, header: str | None) -> bool:
        if not self._token:
            return True
        presented = (header or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(presented.encode(), self._token.encode())

    async def accept(self, body: bytes, *, json_body: bool = False) -> Accepted:
        try:
            accepted = accept_json(body) if json_body else accept_protobuf(body)
        except InvalidRequestError:
            self.counters.rejected_requests += 1
            raise
        if accepted.payload:
            try:
                await asyncio.wrap_future(self._spool.append(accepted.payload, accepted.spans))
            except SpoolFullError:
                self.counters.throttled += 1
                raise
        self.counters.requests += 1
        self.counters.spans += accepted.spans
        self.counters.rejected_spans += accepted.rejected_spans
        return accepted
