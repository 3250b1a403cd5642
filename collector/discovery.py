"""The discovery file a running collector leaves in its data directory.

chDB lets one process open a data directory, so while a collector runs, the
CLI reaches the data through the collector's read-only SQL endpoint. The file
says where that endpoint is; it is private to the user (mode 0600) because it
may carry the read token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from forktrace.collector import config


@dataclass(frozen=True)
class Discovery:
    pid: int
    http_endpoint: str
    grpc_endpoint: str
    storage: str
    token: str | None = None  # the read token: what the CLI presents to /api/sql
    ca_file: str | None = None  # the collector's TLS certificate, for a self-signed one

    @property
    def sql_url(self) -> str:
        return f"{self.http_endpoint}/api/sql"


def write(directory: Path, found: Discovery) -> Path:
    path = config.discovery_path(directory)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(found), handle, indent=2)
    os.replace(temporary, path)
    return path


def remove(directory: Path, pid: int) -> None:
    """Remove the file if it still names this process (a newer collector may own it)."""
    found = read(directory, check_alive=False)
    if found is not None and found.pid == pid:
        config.discovery_path(directory).unlink(missing_ok=True)


def read(directory: Path, *, check_alive: bool = True) -> Discovery | None:
    """The running collector of ``directory``, or None (a stale file is ignored)."""
    try:
        data = json.loads(config.discovery_path(directory).read_text())
        found = Discovery(**data)
    except (OSError, ValueError, TypeError):
        return None
    if check_alive and not _alive(found.pid):
        return None
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
