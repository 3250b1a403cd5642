"""Bearer tokens: one for writing (OTLP ingest), one for reading (the SQL endpoint).

A request presents ``Authorization: Bearer <token>`` (gRPC: the ``authorization``
metadata key, which is what OTLP exporters send for ``headers``). Each kind of
access is open while its token is unset. A token of the other kind is
recognised, so the answer can say "wrong kind" (403 / PERMISSION_DENIED)
instead of "who are you" (401 / UNAUTHENTICATED). Every comparison runs in
constant time and both tokens are always compared, so timing says nothing
about which one was close.
"""

from __future__ import annotations

import enum
import hmac
import os
from dataclasses import dataclass

TOKEN_ENV = "FORKTRACE_TOKEN"  # both kinds (the original single token)
WRITE_TOKEN_ENV = "FORKTRACE_WRITE_TOKEN"
READ_TOKEN_ENV = "FORKTRACE_READ_TOKEN"


class Access(enum.Enum):
    WRITE = "write"
    READ = "read"


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"  # no token, or one this collector does not know
    PERMISSION_DENIED = "permission_denied"  # a valid token of the other kind


@dataclass(frozen=True)
class Tokens:
    write: str | None = None
    read: str | None = None

    @classmethod
    def resolve(
        cls, token: str | None = None, write: str | None = None, read: str | None = None
    ) -> Tokens:
        """``token`` is both kinds; an explicit write or read token overrides it."""
        return cls(write=write or token or None, read=read or token or None)

    def required(self, access: Access) -> str | None:
        return self.write if access is Access.WRITE else self.read

    def check(self, header: str | None, access: Access) -> Verdict:
        required = self.required(access)
        if not required:
            return Verdict.ALLOWED
        presented = _bearer(header)
        if presented is None:
            return Verdict.UNAUTHENTICATED
        other = self.read if access is Access.WRITE else self.write
        matches = _same(presented, required)
        matches_other = _same(presented, other or "")  # always compared: constant work
        if matches:
            return Verdict.ALLOWED
        return Verdict.PERMISSION_DENIED if other and matches_other else Verdict.UNAUTHENTICATED

    @property
    def unprotected(self) -> list[Access]:
        return [access for access in Access if not self.required(access)]


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


def read_token_from_env() -> str | None:
    """The token a reader sends: FORKTRACE_READ_TOKEN, else FORKTRACE_TOKEN."""
    return os.environ.get(READ_TOKEN_ENV) or os.environ.get(TOKEN_ENV) or None
