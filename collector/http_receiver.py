"""OTLP/HTTP (``POST /v1/traces``), the read-only SQL endpoint and a health check, on aiohttp."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from google.rpc import code_pb2, status_pb2

from forktrace.collector.otlp import InvalidRequestError, response_json
from forktrace.collector.reader import QueryError, run_query, to_json
from forktrace.collector.receivers import Intake
from forktrace.collector.spool import SpoolFullError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


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
        max_request_bytes: int,
        retry_after_seconds: int,
        query_client: Any,
    ) -> None:
        self._intake = intake
        self._retry_after = retry_after_seconds
        self._query_client = query_client
        # client_max_size bounds the body as the handler reads it, after aiohttp
        # has decompressed a gzip or deflate body, so it also stops gzip bombs.
        self.app = web.Application(client_max_size=max_request_bytes, middlewares=[self._auth])
        self.app.router.add_post("/v1/traces", self.traces)
        self.app.router.add_post("/api/sql", self.sql)
        self.app.router.add_get("/health", self.health)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/health" and not self._intake.authorized(
            request.headers.get("Authorization")
        ):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        return await handler(request)

    async def traces(self, request: web.Request) -> web.Response:
        content_type = request.content_type
        json_body = content_type == JSON
        if content_type != PROTOBUF and not json_body:
            return _reply(
                _status(
                    code_pb2.INVALID_ARGUMENT,
                    f"unsupported content type {content_type!r}; use {PROTOBUF} or {JSON}",
                ),
                json_body=True,
                status=415,
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            return _reply(
                _status(code_pb2.RESOURCE_EXHAUSTED, exc.text or "request body too large"),
                json_body=json_body,
                status=413,
            )
        except Exception as exc:  # a corrupt gzip stream, a dropped connection
            return _reply(
                _status(code_pb2.INVALID_ARGUMENT, f"cannot read the body: {exc}"),
                json_body=json_body,
                status=400,
            )
        try:
            accepted = await self._intake.accept(body, json_body=json_body)
        except InvalidRequestError as exc:
            return _reply(
                _status(code_pb2.INVALID_ARGUMENT, str(exc)), json_body=json_body, status=400
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
            result = await asyncio.to_thread(run_query, self._query_client, query, parameters)
        except QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        payload = {"columns": result.column_names, "types": result.types, "rows": result.rows}
        return web.Response(
            text=json.dumps(payload, default=to_json, ensure_ascii=False), content_type=JSON
        )

    async def health(self, request: web.Request) -> web.Response:
        counters = self._intake.counters
        return web.json_response({"status": "ok", **counters.__dict__})
