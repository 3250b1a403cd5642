"""Local HTTP servers speaking a model provider's API, for offline integration tests.

An aiohttp application runs on 127.0.0.1 (a free port) in a thread of its own,
so both the synchronous and the asynchronous clients of an SDK can call it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalServer:
    """An aiohttp app served on a free loopback port from a background thread."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self._routes = routes
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._serve, name="fake-provider", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        for path, handler in self._routes.items():
            app.router.add_post(path, handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> LocalServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        async def stop() -> None:
            assert self._runner is not None
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def sse(
    request: web.Request, events: AsyncIterator[tuple[str | None, Any]]
) -> web.StreamResponse:
    """Send ``(event name, JSON data)`` pairs as server-sent events."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    async for name, data in events:
        chunk = "" if name is None else f"event: {name}\n"
        payload = data if isinstance(data, str) else json.dumps(data)
        await response.write(f"{chunk}data: {payload}\n\n".encode())
    await response.write_eof()
    return response


# --- OpenAI chat completions ---------------------------------------------------

OPENAI_MODEL = "gpt-test-2026"
OPENAI_USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def _last_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


async def openai_chat(request: web.Request) -> web.StreamResponse:
    """``/v1/chat/completions``: answers ``answer: {prompt}`` with reasoning and usage.

    ``reasoning_content`` (sent by OpenAI-compatible reasoning servers) is what
    only the provider's answer holds: frameworks' OpenAI models drop it.
    Streamed too, with usage in the last chunk when asked for.
    """
    body = await request.json()
    prompt = _last_user_text(body)
    answer, reasoning = f"answer: {prompt}", f"thinking about {prompt}"
    base = {"id": "chatcmpl-1", "created": 0, "model": OPENAI_MODEL}
    if not body.get("stream"):
        message = {"role": "assistant", "content": answer, "reasoning_content": reasoning}
        choice = {"index": 0, "finish_reason": "stop", "message": message}
        return web.json_response(
            {**base, "object": "chat.completion", "choices": [choice], "usage": OPENAI_USAGE}
        )

    async def chunks() -> AsyncIterator[tuple[str | None, Any]]:
        chunk = {**base, "object": "chat.completion.chunk"}
        for delta, finish in (({"role": "assistant", "content": answer}, None), ({}, "stop")):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            yield None, {**chunk, "choices": [choice]}
        if (body.get("stream_options") or {}).get("include_usage"):
            yield None, {**chunk, "choices": [], "usage": OPENAI_USAGE}
        yield None, "[DONE]"

    return await sse(request, chunks())
