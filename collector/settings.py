"""The collector's configuration, validated once at start-up."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from forktrace.collector import config
from forktrace.collector.auth import Tokens
from forktrace.collector.limits import Limits


@dataclass(frozen=True)
class CollectorSettings:
    data_dir: Path
    clickhouse: str | None = None  # a server URL; None: embedded chDB in data_dir
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    token: str | None = None  # bearer token for writing and reading (both kinds)
    write_token: str | None = None  # OTLP ingest only (overrides token for writing)
    read_token: str | None = None  # the SQL endpoint only (overrides token for reading)
    tls_cert: Path | None = None  # PEM certificate (chain) for both receivers
    tls_key: Path | None = None  # its PEM private key
    batch_spans: int = 10_000  # a spool segment is sealed and inserted past this many spans
    batch_age: float = 1.0  # ... or once its first request is this old (seconds)
    spool_limit_bytes: int = 1024 * 1024 * 1024  # past this much un-inserted data: 429
    limits: Limits = field(default_factory=Limits)  # what one request may hold
    insert_workers: int = 2  # concurrent inserts (the engine decodes each on its own thread)
    query_clients: int = 2  # read-only clients: /api/sql requests answered at once
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
        if self.query_clients < 1:
            errors.append(f"query-clients must be at least 1, got {self.query_clients}")
        if self.batch_spans < 1:
            errors.append(f"batch-spans must be at least 1, got {self.batch_spans}")
        if self.batch_age <= 0:
            errors.append(f"batch-age must be positive, got {self.batch_age}")
        errors.extend(self.limits.validate())
        if self.spool_limit_bytes < self.limits.max_request_bytes:
            errors.append("the spool limit must be at least the request size limit")
        if (self.tls_cert is None) != (self.tls_key is None):
            errors.append("--tls-cert and --tls-key go together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not Path(path).is_file():
                errors.append(f"no such file: {path}")
        if self.clickhouse and not self.clickhouse.startswith(("http://", "https://", "chdb://")):
            errors.append(f"--clickhouse wants an http(s):// URL, got {self.clickhouse!r}")
        if errors:
            raise ValueError("invalid collector settings:\n  " + "\n  ".join(errors))

    @property
    def loopback_only(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False

    @property
    def effective_limits(self) -> Limits:
        """The limits as enforced: no request may inflate past the spool limit,
        since it could never be spooled."""
        limits = self.limits
        if limits.max_decompressed_bytes <= self.spool_limit_bytes:
            return limits
        return dataclasses.replace(limits, max_decompressed_bytes=self.spool_limit_bytes)

    @property
    def tokens(self) -> Tokens:
        return Tokens.resolve(self.token, self.write_token, self.read_token)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def exposure_warning(self) -> str | None:
        """One line for stderr when other machines may reach an endpoint no token guards."""
        unprotected = self.tokens.unprotected
        if self.loopback_only or not unprotected:
            return None
        missing = " or ".join(f"a {access.value} token" for access in unprotected)
        kinds = " and ".join(f"{access.value} traces" for access in unprotected)
        return (
            f"WARNING: listening on {self.host} without {missing}: anyone who can reach it can "
            f"{kinds}; set --token (or --write-token and --read-token)."
        )

    @property
    def engine_path(self) -> Path:
        return config.engine_path(self.data_dir)

    @property
    def spool_path(self) -> Path:
        return config.spool_path(self.data_dir)
