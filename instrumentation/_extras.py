"""Clear failures for a missing optional part of forktrace."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """A feature needs a ``forktrace[...]`` extra that is not installed."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or fail with the exact ``pip install`` line that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"this needs the {extra!r} extra, which is not installed "
            f"(missing module {exc.name or module!r}). Install it with:\n"
            f'    pip install "forktrace[{extra}]"'
        ) from exc
