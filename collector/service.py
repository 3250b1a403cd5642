"""The collector: store, spool, inserter and both receivers, started and stopped together.

One process owns the store. With embedded chDB that is a rule of the engine
(one process per data path), so the read path goes through this process too:
``POST /api/sql`` on the HTTP port answers read-only SQL (``readonly=1`` on the
engine session, not SQL parsing), ``query_clients`` requests at once, and a
discovery file tells the CLI where.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import grpc
from aiohttp import web

from forktrace.collector import discovery, redaction, schema, store, tls
from forktrace.collector.grpc_receiver import GrpcReceiver
from forktrace.collector.http_receiver import HttpReceiver
from forktrace.collector.inserter import Inserter, write_schema_file
from forktrace.collector.metrics import Metrics
from forktrace.collector.reader import ClientPool
from forktrace.collector.receivers import Intake
from forktrace.collector.settings import CollectorSettings
from forktrace.collector.spool import Spool

log = logging.getLogger("forktrace.collector")


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Collector:
    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.grpc_port = 0
        self.http_port = 0
        self.recovered_segments = 0
        self.queries: ClientPool | None = None  # the read-only clients of /api/sql
        self._admin: Any = None
        self._runner: web.AppRunner | None = None
        self._grpc: grpc.aio.Server | None = None
        self.spool = Spool(
            settings.spool_path,
            batch_spans=settings.batch_spans,
            batch_age=settings.batch_age,
            limit_bytes=settings.spool_limit_bytes,
        )
        embedded = settings.clickhouse is None or settings.clickhouse.startswith("chdb://")
        self.inserter = Inserter(
            self.spool,
            self._connect,
            workers=settings.insert_workers,
            schema_file=write_schema_file(settings.data_dir / "format_schemas")
            if embedded
            else None,
        )
        self.metrics = Metrics()
        self.metrics.observe_spool(lambda: self.spool.pending_bytes)
        self.metrics.observe_inserter(self.inserter)
        self.intake = Intake(self.spool, settings.tokens, settings.effective_limits, self.metrics)

    def _connect(self, **client_settings: Any) -> Any:
        return store.connect(
            self.settings.clickhouse, self.settings.engine_path, settings=client_settings or None
        )

    @property
    def storage(self) -> str:
        return store.describe(self.settings.clickhouse, self.settings.engine_path)

    @property
    def _scheme(self) -> str:
        return "https" if self.settings.tls else "http"

    @property
    def grpc_endpoint(self) -> str:
        return f"{self._scheme}://{_host_port(self.settings.host, self.grpc_port)}"

    @property
    def http_endpoint(self) -> str:
        return f"{self._scheme}://{_host_port(self.settings.host, self.http_port)}"

    async def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # the store first: a locked data directory or a bad URL fails before any port opens
        self._admin = self._connect()
        schema.apply(self._admin)
        redaction.apply(self._admin, settings.redact)
        # one read-only client opened now (a bad store fails at start), more as
        # concurrent /api/sql requests need them: a client runs one query at a time
        self.queries = ClientPool(
            lambda: self._connect(readonly=1),
            settings.query_clients,
            first=self._connect(readonly=1),
        )
        self.recovered_segments = len(self.spool.start())
        self.metrics.replayed_segments.inc(self.recovered_segments)
        self.inserter.start()

        http = HttpReceiver(
            self.intake,
            retry_after_seconds=settings.retry_after_seconds,
            queries=self.queries,
        )
        self._runner = web.AppRunner(
            http.app, handle_signals=False, access_log=None, **HttpReceiver.runner_options
        )
        await self._runner.setup()
        ssl_context = (
            tls.http_context(settings.tls_cert, settings.tls_key)
            if settings.tls_cert and settings.tls_key
            else None
        )
        site = web.TCPSite(self._runner, settings.host, settings.http_port, ssl_context=ssl_context)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self._grpc = grpc.aio.server(
            options=[
                # grpc applies it to the message as received and after decompression
                ("grpc.max_receive_message_length", self.intake.limits.max_decompressed_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        self._grpc.add_generic_rpc_handlers(
            (GrpcReceiver(self.intake, retry_after_seconds=settings.retry_after_seconds).handler(),)
        )
        address = _host_port(settings.host, settings.grpc_port)
        if settings.tls_cert and settings.tls_key:
            credentials = tls.grpc_credentials(settings.tls_cert, settings.tls_key)
            self.grpc_port = self._grpc.add_secure_port(address, credentials)
        else:
            self.grpc_port = self._grpc.add_insecure_port(address)
        if not self.grpc_port:
            raise OSError(
                f"cannot listen for gRPC on {_host_port(settings.host, settings.grpc_port)}"
            )
        await self._grpc.start()
        discovery.write(
            settings.data_dir,
            discovery.Discovery(
                pid=os.getpid(),
                http_endpoint=self.http_endpoint,
                grpc_endpoint=self.grpc_endpoint,
                storage=self.storage,
                token=settings.tokens.read,
                ca_file=str(settings.tls_cert) if settings.tls_cert else None,
            ),
        )

    async def stop(self, flush_timeout: float = 30.0) -> bool:
        """Stop receiving, insert what is spooled (up to ``flush_timeout``), stop.
        Returns whether everything was inserted; what was not stays spooled."""
        discovery.remove(self.settings.data_dir, os.getpid())
        if self._grpc is not None:
            await self._grpc.stop(grace=2)
        if self._runner is not None:
            await self._runner.cleanup()
        drained = await asyncio.to_thread(self.spool.wait_drained, flush_timeout)
        self.spool.close()
        await asyncio.to_thread(self.inserter.stop)
        if self.queries is not None:
            self.queries.close()
        if self._admin is not None:
            self._admin.close()
        return drained


def run_forever(settings: CollectorSettings, announce: Callable[[str], None] = print) -> None:
    """``forktrace up``: run until SIGINT or SIGTERM, then flush and exit."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        collector = Collector(settings)
        await collector.start()
        announce(f"forktrace collector {os.getpid()} listening:")
        announce(f"  OTLP/gRPC  {collector.grpc_endpoint}")
        announce(f"  OTLP/HTTP  {collector.http_endpoint}/v1/traces")
        announce(f"  SQL        {collector.http_endpoint}/api/sql (read-only)")
        announce(f"  metrics    {collector.http_endpoint}/metrics")
        announce(f"  storage    {collector.storage}")
        announce(f"  spool      {settings.spool_path}")
        if collector.recovered_segments:
            announce(
                f"  replaying {collector.recovered_segments} spooled segment(s) from the last run"
            )
        warning = settings.exposure_warning()
        if warning:
            print(warning, file=sys.stderr, flush=True)
        announce("Ctrl-C to stop.")
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
        announce("stopping: inserting what is spooled ...")
        drained = await collector.stop()
        announce("stopped." if drained else "stopped; the rest stays spooled for the next start.")

    asyncio.run(main())
