"""The storage schema: versioned ``NNNN_name.sql`` files, rendered and applied in order.

Each file is a list of statements separated by ``;`` at a line end. A file may
use these placeholders (``string.Template`` syntax, so ClickHouse's own
``{param:Type}`` braces in parameterised views are left alone):

- ``${on_cluster}``: empty, or `` ON CLUSTER name`` in the cluster variant;
- ``${cluster}``: the cluster name (only inside cluster-only statements);
- ``${replicated}``: empty, or ``Replicated`` so ``${replicated}MergeTree``
  becomes ``ReplicatedMergeTree`` on a cluster;
- ``${local}``: empty, or ``_local``: on a cluster the MergeTree tables are the
  ``*_local`` shards and the plain name is a Distributed table over them;
- ``${ttl_<Column>}``: empty, or ``TTL toDateTime(<Column>) + INTERVAL n DAY``;
- ``${otlp_key_values}``: the ClickHouse type that reads a repeated OTLP
  ``KeyValue`` with ``FORMAT Protobuf`` (see ``_otlp_key_values``).

A statement preceded by a ``-- cluster-only`` comment is rendered only in the
cluster variant. Applied versions are recorded in ``forktrace_schema_migrations``
so an upgrade applies only the files that are new.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Any

MIGRATIONS_TABLE = "forktrace_schema_migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_CLUSTER_ONLY = "-- cluster-only"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SchemaOptions:
    cluster: str | None = None
    ttl_days: int | None = None


_ANY_VALUE_CASE = (
    "value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, "
    "'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, "
    "'string_value_strindex' = 8)"
)
_ANY_VALUE_SCALARS = "string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String"


def _otlp_key_values(levels: int = 3) -> str:
    """The type of an OTLP ``repeated KeyValue`` read ``levels`` deep.

    AnyValue is recursive and a column type cannot be, so arrays and key-value
    lists are unrolled to a fixed depth; the ``value`` enum says which member of
    the oneof is set, so a nested value past the last level is still known to be
    there.
    """
    any_value = f"Tuple({_ANY_VALUE_CASE}, {_ANY_VALUE_SCALARS})"
    for _ in range(levels - 1):
        any_value = (
            f"Tuple({_ANY_VALUE_CASE}, {_ANY_VALUE_SCALARS}, "
            f"array_value Tuple(values Array({any_value})), "
            f"kvlist_value Tuple(values Array(Tuple(key String, value {any_value}))))"
        )
    return f"Array(Tuple(key String, value {any_value}))"


class _Placeholders(Mapping[str, str]):
    def __init__(self, options: SchemaOptions) -> None:
        self._options = options

    def __getitem__(self, key: str) -> str:
        cluster = self._options.cluster
        if key == "on_cluster":
            return f" ON CLUSTER {cluster}" if cluster else ""
        if key == "cluster":
            return cluster or ""
        if key == "replicated":
            return "Replicated" if cluster else ""
        if key == "local":
            return "_local" if cluster else ""
        if key == "otlp_key_values":
            return _otlp_key_values()
        if key.startswith("ttl_"):
            days = self._options.ttl_days
            return f"TTL toDateTime({key[4:]}) + INTERVAL {days} DAY" if days else ""
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def migrations() -> list[Migration]:
    """The schema files shipped with forktrace, in version order."""
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two schema files share a version number: {versions}")
    return found


def _split(text: str) -> Iterator[str]:
    for chunk in re.split(r";\s*$", text, flags=re.MULTILINE):
        if any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines()):
            yield chunk.strip()


def render(migration: Migration, options: SchemaOptions = SchemaOptions()) -> list[str]:
    """The statements of one schema file, ready to execute."""
    placeholders = _Placeholders(options)
    statements = []
    for chunk in _split(migration.text):
        if _CLUSTER_ONLY in chunk and not options.cluster:
            continue
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--"))
        rendered = Template(body).substitute(placeholders)
        statements.append(re.sub(r"\n\s*\n", "\n", rendered).strip())
    return statements


def render_all(options: SchemaOptions = SchemaOptions()) -> list[str]:
    """Every statement of every schema file, in order (for ``forktrace schema print``)."""
    return [stmt for m in migrations() for stmt in render(m, options)]


def applied_versions(client: Any) -> set[int]:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    return {row[0] for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE}").result_rows}


def apply(client: Any, options: SchemaOptions = SchemaOptions()) -> list[Migration]:
    """Apply the schema files not yet recorded; returns the ones applied now.

    ``client`` is a clickhouse-connect client (chDB or a server).
    """
    done = applied_versions(client)
    applied = []
    for migration in migrations():
        if migration.version in done:
            continue
        for statement in render(migration, options):
            client.command(statement)
        client.insert(
            MIGRATIONS_TABLE,
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration)
    return applied
