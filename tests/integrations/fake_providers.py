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
