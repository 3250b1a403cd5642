"""Read-only SQL over forktrace's data, wherever it lives.

``open_reader()`` resolves, in order: an explicit collector ``endpoint``, an
explicit ``clickhouse`` URL, a collector running for the data directory (found
through its discovery file), else the data directory opened directly with
chDB. Every reader answers ``query(sql, parameters)`` with the same Python
values, so callers never care which one they got. Parameters use ClickHouse's
``{name:Type}`` binding and are bound by the engine, never pasted into SQL.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import functools
import ipaddress
import json
import os
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from forktrace.collector import config, discovery, store
from forktrace.collector.auth import read_token_from_env
from forktrace.collector.tls import client_context


@dataclass
class QueryResult:
    column_names: list[str]
    rows: list[tuple[Any, ...]]
    types: list[str] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.column_names, row, strict=False)) for row in self.rows]


class QueryError(RuntimeError):
    """The engine rejected a query (bad SQL, a write on a read-only endpoint, ...)."""


class Reader(Protocol):
    source: str

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult: ...

    def close(self) -> None: ...


class ClientPool:
    """Up to ``size`` clickhouse-connect clients on one store, each lent to one
    query at a time. A client serialises its queries (its chDB backend holds a
    lock per client; a server session refuses a second query at once), so
    queries run at once only on different clients. Clients are opened by
    ``connect`` when every open one is busy, and reused after; ``close()``
    closes those it opened (and ``first``, if ``owns_first``).

    chDB lets many clients of one process share a data path (not two
    processes), so ``connect`` may open another client on a path already open."""

    def __init__(
        self,
        connect: Callable[[], Any] | None,
        size: int = 1,
        *,
        first: Any = None,
        owns_first: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError(f"a client pool needs at least one client, got {size}")
        if connect is None and first is None:
            raise ValueError("a client pool needs a first client or a way to open one")
        # without ``connect`` there is no other client to open
        self.size = size if connect is not None else 1
        self._connect = connect
        self._slots = threading.BoundedSemaphore(self.size)  # clients lent at once
        self._lock = threading.Lock()
        self._idle: list[Any] = [] if first is None else [first]
        self._owned: list[Any] = [first] if first is not None and owns_first else []
        self._closed = False

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A client for one query; waits while ``size`` are lent."""
        with self._slots:
            with self._lock:
                if self._closed:
                    raise QueryError("the reader is closed")
                client = self._idle.pop() if self._idle else None
            if client is None:
                client = self._open()
            try:
                yield client
            finally:
                with self._lock:
                    self._idle.append(client)

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> QueryResult:
        with self.client() as client:
            return run_query(client, sql, parameters, settings)

    def _open(self) -> Any:
        assert self._connect is not None  # the semaphore lends no more than are open
        client = self._connect()
        with self._lock:
            self._owned.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            self._closed = True
            owned, self._owned, self._idle = self._owned, [], []
        for client in owned:
            client.close()


class ClientReader:
    """Queries through clickhouse-connect clients (chDB or a server).

    With ``connect`` (a function opening another client on the same store),
    up to ``clients`` queries run at once, each on its own client, as
    ``views.run_tree`` does; without it, queries from several threads take
    turns on ``client``."""

    def __init__(
        self,
        client: Any,
        source: str,
        *,
        owns_client: bool = True,
        connect: Callable[[], Any] | None = None,
        clients: int = 2,
    ) -> None:
        self.source = source
        self._pool = ClientPool(connect, clients, first=client, owns_first=owns_client)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return self._pool.query(sql, parameters)

    def close(self) -> None:
        self._pool.close()


def run_query(
    client: Any,
    sql: str,
    parameters: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> QueryResult:
    try:
        result = client.query(sql, parameters=parameters or None, settings=settings)
    except Exception as exc:
        raise QueryError(_clean_error(str(exc))) from exc
    return QueryResult(
        column_names=list(result.column_names),
        rows=[tuple(row) for row in result.result_rows],
        types=[t.name for t in result.column_types],
    )


def _clean_error(message: str) -> str:
    # clickhouse-connect prefixes engine errors with its own context lines
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return next(
        (line for line in lines if "DB::Exception" in line), lines[-1] if lines else message
    )


CA_FILE_ENV = "FORKTRACE_CA_FILE"  # a CA (or self-signed) certificate a reader trusts


class EndpointReader:
    """Queries a running collector's ``POST /api/sql`` endpoint."""

    def __init__(
        self,
        endpoint: str,
        token: str | None = None,
        timeout: float = 60.0,
        ca_file: str | None = None,
    ) -> None:
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/api/sql") else f"{base}/api/sql"
        self.source = self.url
        # the read token: given, else FORKTRACE_READ_TOKEN, else FORKTRACE_TOKEN
        self._token = token if token is not None else read_token_from_env()
        self._timeout = timeout
        self._ssl = client_context(ca_file or os.environ.get(CA_FILE_ENV))

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        body = json.dumps({"query": sql, "parameters": parameters or {}}, default=to_json).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout, context=self._ssl
            ) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                detail = json.loads(detail).get("error", detail)
            raise QueryError(f"{self.url} answered {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise QueryError(f"cannot reach the collector at {self.url}: {exc.reason}") from None
        types = answer["types"]
        rows = revive_rows(answer["rows"], types)
        return QueryResult(column_names=answer["columns"], rows=rows, types=types)

    def close(self) -> None:
        pass


def open_reader(
    endpoint: str | None = None,
    clickhouse: str | None = None,
    data_dir: str | Path | None = None,
    token: str | None = None,
) -> Reader:
    """The reader for the first source that applies (see the module docstring)."""
    if endpoint:
        return EndpointReader(endpoint, token)
    if clickhouse:
        return _client_reader(lambda: store.connect(clickhouse), store.describe(clickhouse, None))
    directory = config.data_dir(data_dir)
    running = discovery.read(directory)
    if running is not None:
        return EndpointReader(
            running.http_endpoint, token or running.token, ca_file=running.ca_file
        )
    engine = config.engine_path(directory)
    if not engine.exists():
        raise FileNotFoundError(
            f"no forktrace data at {directory} and no collector running for it; "
            "start one with `forktrace up`, or pass --data-dir, --endpoint or --clickhouse"
        )
    return _client_reader(lambda: store.connect(engine_path=engine), f"chdb://{engine}")


def _client_reader(connect: Callable[[], Any], source: str) -> ClientReader:
    """A reader that opens its first client now (a locked or unreachable store
    fails here) and more on the same store when queries run at once."""
    return ClientReader(connect(), source, connect=connect)


# --- values on the JSON wire ---------------------------------------------------


def to_json(value: Any) -> Any:
    """``json.dumps`` default for the values clickhouse-connect returns."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(
        value, (decimal.Decimal, uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)
    ):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_WRAPPER = re.compile(r"^(Nullable|LowCardinality|Array|Map|Tuple)\((.*)\)$", re.DOTALL)


def _split_type_arguments(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def revive_rows(rows: list[list[Any]], types: list[str]) -> list[tuple[Any, ...]]:
    """Turn the rows of a JSON answer back into what clickhouse-connect returns
    for ``types``, so an endpoint reader gives the same Python values as a
    direct one. Each column's conversion is worked out once; columns whose JSON
    value is already the Python one are left as they are."""
    revivers = [(i, r) for i, r in enumerate(map(_reviver, types)) if r is not None]
    if not revivers:
        return [tuple(row) for row in rows]
    revived = []
    for row in rows:
        for i, reviver in revivers:
            if row[i] is not None:
                row[i] = reviver(row[i])
        revived.append(tuple(row))
    return revived


@functools.lru_cache(maxsize=512)
def _reviver(type_name: str) -> Callable[[Any], Any] | None:
    """The conversion of a non-null JSON value of ``type_name``; None when the
    JSON value is the one clickhouse-connect gives (strings, numbers, lists)."""
    match = _WRAPPER.match(type_name)
    if match:
        wrapper, inner = match[1], match[2]
        if wrapper in ("Nullable", "LowCardinality"):
            return _reviver(inner)
        if wrapper == "Array":
            element = _reviver(inner)
            if element is None:
                return None
            return lambda value: [None if v is None else element(v) for v in value]
        if wrapper == "Map":
            _, value_type = _split_type_arguments(inner)
            item = _reviver(value_type)
            if item is None:
                return None
            return lambda value: {k: None if v is None else item(v) for k, v in value.items()}
        elements = [
            _reviver(part.split(" ", 1)[1] if re.match(r"^\w+ ", part) else part)
            for part in _split_type_arguments(inner)
        ]
        return lambda value: tuple(
            v if r is None or v is None else r(v) for v, r in zip(value, elements, strict=False)
        )
    if type_name.startswith("DateTime"):
        return dt.datetime.fromisoformat
    if type_name.startswith("Date"):
        return dt.date.fromisoformat
    return None
