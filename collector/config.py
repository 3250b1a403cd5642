"""Where the collector keeps its data, and how the other parts find it.

A data directory holds everything one embedded collector owns::

    <data dir>/chdb/            the chDB engine's data path
    <data dir>/spool/           acknowledged OTLP requests not yet known to be stored
    <data dir>/collector.json   discovery file of the running collector (pid, URLs)

The directory is, in order: an explicit argument, ``FORKTRACE_DATA_DIR``, or the
platform's user data directory (``~/.local/share/forktrace`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "FORKTRACE_DATA_DIR"
TOKEN_ENV = "FORKTRACE_TOKEN"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("forktrace", appauthor=False)).resolve()


def engine_path(directory: Path) -> Path:
    return directory / "chdb"


def spool_path(directory: Path) -> Path:
    return directory / "spool"


def discovery_path(directory: Path) -> Path:
    return directory / "collector.json"
