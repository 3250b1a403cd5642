"""The collector's configuration, validated once at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from forktrace.collector import config


@dataclass(frozen=True)
class CollectorSettings:
    data_dir: Path
    clickhouse: str | None = None  # a server URL; None: embedded chDB in data_dir
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    token: str | None = None  # bearer token required on every request when set
    batch_spans: int = 20_000  # a spool segment is sealed and inserted past this many spans
    batch_age: float = 1.0  # ... or once its first request is this old (seconds)
    spool_limit_bytes: int = 1024 * 1024 * 1024  # past this much un-inserted data: 429
    max_request_bytes: int = 16 * 1024 * 1024  # request body limit, after decompression
    insert_workers: int = 2  # concurrent inserts (the engine decodes each on its own thread)
    retry_after_seconds: int = 5  # what a 429 / RESOURCE_EXHAUSTED tells the exporter
    redact: str | None = None  # redaction rules (forktrace.redaction format); None: the defaults

    @classmethod
    def build(
        cls, data_dir: str | os.PathLike[str] | None = None, **values: object
    ) -> CollectorSettings:
        settings = cls(data_dir=config.data_dir(data_dir), **values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        errors = []
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                errors.append(f"{name.replace('_', '-')} must be 0-65535, got {port}")
        if self.grpc_port and self.grpc_port == self.http_port:
            errors.append("grpc-port and http-port must differ")
        if self.insert_workers < 1:
            errors.append(f"insert-workers must be at least 1, got {self.insert_workers}")
        if self.batch_spans < 1:
            errors.append(f"batch-spans must be at least 1, got {self.batch_spans}")
        if self.batch_age <= 0:
            errors.append(f"batch-age must be positive, got {self.batch_age}")
        if self.spool_limit_bytes < self.max_request_bytes:
            errors.append("the spool limit must be at least the request size limit")
        if self.clickhouse and not self.clickhouse.startswith(("http://", "https://", "chdb://")):
            errors.append(f"--clickhouse wants an http(s):// URL, got {self.clickhouse!r}")
        if errors:
            raise ValueError("invalid collector settings:\n  " + "\n  ".join(errors))

    @property
    def loopback_only(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")

    @property
    def engine_path(self) -> Path:
        return config.engine_path(self.data_dir)

    @property
    def spool_path(self) -> Path:
        return config.spool_path(self.data_dir)
