"""Instrumentation never breaks the program it observes.

forktrace's own failures are logged once per place and swallowed; a user's
exceptions always pass through untouched.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("forktrace")

_reported: set[str] = set()
_reported_lock = threading.Lock()


def report(where: str, exc: BaseException) -> None:
    """Log forktrace's own failure at ``where`` the first time it happens there."""
    with _reported_lock:
        if where in _reported:
            return
        _reported.add(where)
    logger.warning(
        "forktrace: internal error in %s (instrumentation continues; later errors here are not logged)",
        where,
        exc_info=exc,
    )
