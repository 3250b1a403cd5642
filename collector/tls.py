"""TLS for both receivers from a certificate and a key file (PEM)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any


def http_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def grpc_credentials(cert: Path, key: Path) -> Any:  # grpc.ServerCredentials
    import grpc  # the read path (client_context) runs without the collector extra

    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])


def client_context(ca_file: str | None) -> ssl.SSLContext | None:
    """What a reader trusts: the system's CAs, plus ``ca_file`` (a self-signed
    collector certificate, say) when given."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else None
