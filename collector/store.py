"""Opening the store: clickhouse-connect on embedded chDB or on a ClickHouse server.

Both modes go through one clickhouse-connect client, so the rest of forktrace
never knows which one it talks to.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Any

from forktrace._extras import require


class StoreLockedError(RuntimeError):
    """The chDB data path is already open in another process."""


def _check_not_locked(path: Path) -> None:
    """chDB allows one process per data path. A second opener fails with a bare
    "Error initializing EmbeddedServer" while the real reason ("Cannot lock file
    .../status") goes to stderr only, so probe the engine's own lock first
    (ClickHouse holds an flock on ``status`` while the path is open)."""
    status = path / "status"
    if not status.exists():
        return
    with open(status, "rb") as handle:
        if handle.read().startswith(f"PID: {os.getpid()}\n".encode()):
            return  # this process has the engine open already: another client may join it
        handle.seek(0)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            owner = handle.read().decode(errors="replace").splitlines()
            pid = owner[0].removeprefix("PID:").strip() if owner else "?"
            raise StoreLockedError(
                f"the data directory {path.parent} is in use by another process (pid {pid}); "
                "is a collector running there? Query it through its endpoint, "
                "or stop it first."
            ) from None
        else:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def connect(
    clickhouse: str | None = None,
    engine_path: Path | None = None,
    *,
    settings: dict[str, Any] | None = None,
) -> Any:
    """A clickhouse-connect client on ``clickhouse`` (a server URL or ``chdb://`` DSN)
    or, when that is None, on the embedded engine at ``engine_path``."""
    clickhouse_connect = require("clickhouse_connect", "collector")
    if clickhouse:
        if clickhouse.startswith("chdb://"):
            path = Path(clickhouse.removeprefix("chdb://"))
            return _connect_chdb(clickhouse_connect, path, settings)
        return clickhouse_connect.get_client(dsn=clickhouse, settings=settings or {})
    if engine_path is None:
        raise ValueError("either a ClickHouse URL or an engine path is needed")
    return _connect_chdb(clickhouse_connect, engine_path, settings)


def _connect_chdb(clickhouse_connect: Any, path: Path, settings: dict[str, Any] | None) -> Any:
    require("chdb", "collector")
    path.mkdir(parents=True, exist_ok=True)
    _check_not_locked(path)
    try:
        return clickhouse_connect.get_client(
            dsn=f"chdb://{os.fspath(path)}", settings=settings or {}
        )
    except Exception as exc:
        _check_not_locked(path)  # the lock may have been taken since the probe
        raise RuntimeError(f"could not open the chDB engine at {path}: {exc}") from exc


def describe(clickhouse: str | None, engine_path: Path | None) -> str:
    """Where data goes, for humans (the password of a URL left out)."""
    if not clickhouse:
        return f"chdb://{engine_path}"
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(clickhouse)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
