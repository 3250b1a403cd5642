"""Framework integrations: ``forktrace.instrument()`` and ``forktrace.uninstrument()``.

Each integration lives in its own module and imports its framework only when
it is instrumented, so ``import forktrace`` stays light. ``instrument()`` with
no names instruments every supported framework that is installed and skips the
others quietly; naming a framework that is not installed is an error that says
which ``pip install "forktrace[...]"`` line provides it.

Instrumenting is idempotent and ``uninstrument()`` restores every framework as
it was (hooks removed, wrapped methods unwrapped).
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from forktrace import _guard
from forktrace._extras import MissingExtraError

__all__ = ["SUPPORTED", "instrument", "instrumented", "uninstrument"]


class Instrumentor(Protocol):
    """What every integration module exposes as ``Instrumentor``."""

    def instrument(self, **options: Any) -> None: ...

    def uninstrument(self) -> None: ...


@dataclass(frozen=True)
class Integration:
    name: str
    module: str  # our module, under forktrace.integrations
    requires: str  # the framework's top-level module; present means installed
    extra: str  # the forktrace extra that installs it

    def installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.requires) is not None
        except (ImportError, ValueError):
            return False


# In instrument() order: frameworks before the provider SDKs they call, which
# changes nothing today but keeps the order stable for readers of the spans.
SUPPORTED: dict[str, Integration] = {
    integration.name: integration
    for integration in (
        Integration("langgraph", "langchain", "langchain_core", "langgraph"),
        Integration("openai-agents", "openai_agents", "agents", "openai-agents"),
        Integration("pydantic-ai", "pydantic_ai", "pydantic_ai", "pydantic-ai"),
        Integration("crewai", "crewai", "crewai", "crewai"),
        Integration("dspy", "dspy", "dspy", "dspy"),
        Integration("smolagents", "smolagents", "smolagents", "smolagents"),
        Integration("llama-index", "llama_index", "llama_index.core", "llama-index"),
        Integration("autogen", "autogen", "autogen_agentchat", "autogen"),
        Integration("google-adk", "google_adk", "google.adk", "google-adk"),
        Integration("strands", "strands", "strands", "strands"),
        Integration("openai", "openai", "openai", "openai"),
        Integration("anthropic", "anthropic", "anthropic", "anthropic"),
    )
}

# Other spellings users reach for.
_ALIASES = {
    "langchain": "langgraph",
    "langchain-core": "langgraph",
    "openai_agents": "openai-agents",
    "agents": "openai-agents",
    "pydantic_ai": "pydantic-ai",
    "pydanticai": "pydantic-ai",
    "llamaindex": "llama-index",
    "strands-agents": "strands",
    "autogen-agentchat": "autogen",
    "google_adk": "google-adk",
    "adk": "google-adk",
}

_lock = threading.RLock()
_active: dict[str, Instrumentor] = {}


def _resolve(name: str) -> Integration:
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, _ALIASES.get(name, key))
    try:
        return SUPPORTED[key]
    except KeyError:
        raise ValueError(
            f"forktrace has no integration named {name!r}; supported: {', '.join(SUPPORTED)}"
        ) from None


def instrument(*names: str, **options: Any) -> list[str]:
    """Instrument the named frameworks, or every supported one that is installed.

    Returns the names instrumented by this call (already instrumented ones are
    left as they are). ``options`` go to each integration's ``instrument()``;
    spans go wherever ``forktrace.init()`` sends them.
    """
    explicit = bool(names)
    chosen = [_resolve(name) for name in names] if explicit else list(SUPPORTED.values())
    if explicit:
        missing = [integration for integration in chosen if not integration.installed()]
        if missing:
            lines = "\n".join(
                f'    pip install "forktrace[{integration.extra}]"' for integration in missing
            )
            raise MissingExtraError(
                "cannot instrument "
                + ", ".join(repr(integration.name) for integration in missing)
                + ": not installed. Install with:\n"
                + lines
            )
    done: list[str] = []
    with _lock:
        for integration in chosen:
            if integration.name in _active or not integration.installed():
                continue
            try:
                module = importlib.import_module(f"forktrace.integrations.{integration.module}")
                instrumentor: Instrumentor = module.Instrumentor()
                instrumentor.instrument(**options)
            except Exception as exc:
                if explicit:
                    raise
                # instrument() with no names must never stop the program over
                # one framework (an unsupported version, say): log and go on.
                _guard.report(f"instrumenting {integration.name}", exc)
                continue
            _active[integration.name] = instrumentor
            done.append(integration.name)
    return done


def uninstrument(*names: str) -> list[str]:
    """Undo instrument() for the named frameworks, or for all; returns the names restored."""
    with _lock:
        chosen = [_resolve(name).name for name in names] if names else list(_active)
        done: list[str] = []
        for name in chosen:
            instrumentor = _active.pop(name, None)
            if instrumentor is not None:
                instrumentor.uninstrument()
                done.append(name)
        return done


def instrumented() -> list[str]:
    """The frameworks instrumented right now."""
    with _lock:
        return list(_active)
