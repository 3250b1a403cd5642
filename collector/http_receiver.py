"""OTLP/HTTP (``POST /v1/traces``), the read-only SQL endpoint, metrics and a
health check, on aiohttp.

aiohttp's own decompression is off: the body is read as sent (bounded by
``max_request_bytes``) and inflated here in bounded steps (``limits.decompress``),
so the two sizes have their own limits and answers.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from aiohttp import web
from google.rpc import code_pb2, status_pb2

from forktrace.collector import limits
from forktrace.collector.auth import Access, Verdict
from forktrace.collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from forktrace.collector.otlp import InvalidRequestError, response_json
from forktrace.collector.reader import ClientPool, QueryError, to_json
from forktrace.collector.receivers import Intake
from forktrace.collector.spool import SpoolFullError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_REFUSED = {
    Verdict.UNAUTHENTICATED: (401, code_pb2.UNAUTHENTICATED, "missing or wrong bearer token"),
    Verdict.PERMISSION_DENIED: (403, code_pb2.PERMISSION_DENIED, "the token is of the wrong kind"),
}
_OPEN_PATHS = ("/health", "/metrics")  # counts only: no trace content


def _reply(
    message: Any, *, json_body: bool, status: int = 200, headers: dict | None = None
) -> web.Response:
    if json_body:
        return web.Response(
            body=response_json(message), status=status, content_type=JSON, headers=headers
        )
    return web.Response(
        body=message.SerializeToString(), status=status, content_type=PROTOBUF, headers=headers
    )


def _status(code: int, message: str) -> status_pb2.Status:
    """The body of an OTLP/HTTP error: a google.rpc.Status."""
    return status_pb2.Status(code=code, message=message)


class HttpReceiver:
    def __init__(
        self,
        intake: Intake,
        *,
        retry_after_seconds: int,
        queries: ClientPool,
    ) -> None:
        self._intake = intake
        self._limits = intake.limits
        self._retry_after = retry_after_seconds
        self._queries = queries  # each request on a client of its own, up to the pool's size
        # client_max_size bounds the body as sent; decompression has its own limit
        self.app = web.Application(
            client_max_size=self._limits.max_request_bytes, middlewares=[self._auth]
        )
        self.app.router.add_post("/v1/traces", self.traces)
        self.app.router.add_post("/api/sql", self.sql)
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/metrics", self.metrics)

    # the AppRunner must pass these to aiohttp's request handler
    runner_options: ClassVar[dict[str, Any]] = {"auto_decompress": False}

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in _OPEN_PATHS:
            return await handler(request)
        access = Access.WRITE if request.path == "/v1/traces" else Access.READ
        verdict = self._intake.authorize(request.headers.get("Authorization"), access)
        if verdict is Verdict.ALLOWED:
            return await handler(request)
        status, code, message = _REFUSED[verdict]
        if verdict is Verdict.PERMISSION_DENIED:
            message += f": it may not {access.value} here"
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if access is Access.WRITE:
            return _reply(
                _status(code, message),
                json_body=request.content_type == JSON,
                status=status,
                headers=headers,
            )
        return web.json_response({"error": message}, status=status, headers=headers)

    async def _body(self, request: web.Request, json_body: bool) -> bytes | web.Response:
        """The decompressed body, or the error response."""
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._intake.reject("request_bytes")
            message = (
                f"the body is larger than {self._limits.max_request_bytes} bytes (--max-request-mb)"
            )
            return _reply(
                _status(code_pb2.RESOURCE_EXHAUSTED, message), json_body=json_body, status=413
            )
        except Exception as exc:  # a dropped connection
            self._intake.reject("malformed")
            return _reply(
                _status(code_pb2.INVALID_ARGUMENT, f"cannot read the body: {exc}"),
                json_body=json_body,
                status=400,
            )
        encoding = request.headers.get("Content-Encoding", "")
        try:
            return limits.decompress(raw, encoding, self._limits.max_decompressed_bytes)
        except limits.LimitExceededError as exc:
            self._intake.reject(exc.reason)
            return _reply(
                _status(code_pb2.RESOURCE_EXHAUSTED, str(exc)), json_body=json_body, status=413
            )
        except ValueError as exc:  # a corrupt stream, an unknown encoding
            unknown = "unsupported" in str(exc)
            self._intake.reject("unsupported_encoding" if unknown else "malformed")
            return _reply(
                _status(code_pb2.INVALID_ARGUMENT, str(exc)),
                json_body=json_body,
                status=415 if unknown else 400,
            )

    async def traces(self, request: web.Request) -> web.Response:
        content_type = request.content_type
        json_body = content_type == JSON
        if content_type != PROTOBUF and not json_body:
            self._intake.reject("unsupported_media_type")
            return _reply(
                _status(
                    code_pb2.INVALID_ARGUMENT,
                    f"unsupported content type {content_type!r}; use {PROTOBUF} or {JSON}",
                ),
                json_body=True,
                status=415,
            )
        body = await self._body(request, json_body)
        if isinstance(body, web.Response):
            return body
        try:
            accepted = await self._intake.accept(body, json_body=json_body, transport="http")
        except InvalidRequestError as exc:
            code = code_pb2.RESOURCE_EXHAUSTED if exc.too_large else code_pb2.INVALID_ARGUMENT
            return _reply(
                _status(code, str(exc)), json_body=json_body, status=413 if exc.too_large else 400
            )
        except SpoolFullError as exc:
            return _reply(
                _status(code_pb2.RESOURCE_EXHAUSTED, f"{exc}; retry later"),
                json_body=json_body,
                status=429,
                headers={"Retry-After": str(self._retry_after)},
            )
        return _reply(accepted.response(), json_body=json_body)

    async def sql(self, request: web.Request) -> web.Response:
        try:
            document = await request.json()
            query = document["query"]
            parameters = document.get("parameters") or {}
            if not isinstance(query, str) or not isinstance(parameters, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"error": 'the body must be JSON {"query": "...", "parameters": {...}}'}, status=400
            )
        try:
            text = await asyncio.to_thread(self._answer, query, parameters)
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.Response(text=text, content_type=JSON)

    def _answer(self, query: str, parameters: dict[str, Any]) -> str:
        """A query's result as the JSON /api/sql answers, made off the event loop:
        encoding a large result there would hold up the OTLP requests it serves."""
        result = self._queries.query(query, parameters)
        payload = {"columns": result.column_names, "types": result.types, "rows": result.rows}
        return json.dumps(payload, default=to_json, ensure_ascii=False)

    async def health(self, request: web.Request) -> web.Response:
        counters = self._intake.counters
        return web.json_response({"status": "ok", **counters.__dict__})

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._intake.metrics.exposition())
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response
