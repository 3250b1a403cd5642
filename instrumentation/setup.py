"""``forktrace.init()`` and ``forktrace.shutdown()``: wiring forktrace into OpenTelemetry.

init() resolves the configuration, then joins a tracer provider: the one you
pass, else the global SDK provider if the program already set one (forktrace
adds its processors to it rather than replacing it), else a new provider it
sets globally. It adds the :class:`~forktrace.context.LineageSpanProcessor`
and a bounded batch processor with the OTLP exporter, whose module is imported
here and only here, so ``import forktrace`` loads no gRPC.

A dead or slow collector never blocks the agent: spans go to a bounded queue
(``OTEL_BSP_MAX_QUEUE_SIZE``, default 2048; overflow is dropped), exports give
up after a short timeout, and shutdown waits at most that timeout plus a
second. What was lost is counted: ``forktrace.dropped_spans()``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from forktrace import __version__, text
from forktrace.config import Config, resolve
from forktrace.context import INSTRUMENTATION_SCOPE, LineageSpanProcessor
from forktrace.delivery import CountingBatchSpanProcessor
from forktrace.redaction import Redactor, RedactSpec

logger = logging.getLogger("forktrace")


@dataclass
class _State:
    config: Config
    arguments: dict[str, Any]
    provider: TracerProvider
    owns_provider: bool
    exporting: CountingBatchSpanProcessor | None


_lock = threading.Lock()
_state: _State | None = None
_atexit_registered = False
# Providers that already carry a LineageSpanProcessor, so re-initialising
# (tests, notebooks) never stamps a span twice.
_stamped_providers: weakref.WeakSet[TracerProvider] = weakref.WeakSet()

# The tracer forktrace's own spans use. Until init() it is the global proxy
# tracer, so a program that configured OpenTelemetry itself still gets them.
tracer: trace.Tracer = trace.get_tracer(INSTRUMENTATION_SCOPE, __version__)


def current_config() -> Config | None:
    """The configuration init() resolved, or None before init()."""
    state = _state
    return state.config if state is not None else None


def init(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    session: str | None = None,
    capture_content: bool | None = None,
    max_text_length: int | None = None,
    export_timeout: float | None = None,
    redact: RedactSpec = None,
    tracer_provider: TracerProvider | None = None,
    export: bool = True,
) -> TracerProvider:
    """Set up tracing for forktrace; return the tracer provider in use.

    Each setting comes from its argument, else the environment
    (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``,
    ``..._PROTOCOL``, ``..._HEADERS``, ``FORKTRACE_SESSION``,
    ``FORKTRACE_CAPTURE_CONTENT``, ``FORKTRACE_MAX_TEXT_LENGTH``,
    ``FORKTRACE_EXPORT_TIMEOUT``, ``FORKTRACE_REDACT``), else its default; every
    invalid setting is reported at once in one :class:`~forktrace.config.ConfigError`.

    ``redact`` chooses the rules that replace secrets in every exported span
    (default: API keys, tokens, URL passwords, private keys; ``False``: none;
    ``"+email;-jwt"`` or a list of entries and :class:`~forktrace.redaction.Rule`
    objects: see docs/sdk.md).

    ``tracer_provider`` makes forktrace use that SDK provider (tests, programs
    with several providers); ``export=False`` adds no OTLP exporter, for a
    provider whose exporters you manage. Calling init() again is a no-op that
    returns the same provider; call shutdown() first to change settings.
    """
    global _state, _atexit_registered, tracer
    arguments = {
        "service_name": service_name,
        "endpoint": endpoint,
        "protocol": protocol,
        "headers": headers,
        "session": session,
        "capture_content": capture_content,
        "max_text_length": max_text_length,
        "export_timeout": export_timeout,
        "redact": redact,
        "tracer_provider": tracer_provider,
        "export": export,
    }
    with _lock:
        if _state is not None:
            if arguments != _state.arguments:
                logger.warning(
                    "forktrace.init() was called again with different settings; keeping the "
                    "first ones (call forktrace.shutdown() before initialising again)"
                )
            return _state.provider

        config = resolve(
            service_name=service_name,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            session=session,
            capture_content=capture_content,
            max_text_length=max_text_length,
            export_timeout=export_timeout,
            redact=redact,
        )
        provider, owns_provider = _join_provider(config, tracer_provider)
        if provider not in _stamped_providers:
            provider.add_span_processor(LineageSpanProcessor())
            _stamped_providers.add(provider)
        exporting = _export_processor(config) if export else None
        if exporting is not None:
            provider.add_span_processor(exporting)

        text.configure(
            capture_content=config.capture_content.value,
            max_length=config.max_text_length.value,
        )
        tracer = provider.get_tracer(INSTRUMENTATION_SCOPE, __version__)
        _state = _State(config, arguments, provider, owns_provider, exporting)
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
        return provider


def shutdown() -> None:
    """Flush what forktrace recorded and stop exporting; waits at most the export timeout + 1 s.

    Registered with atexit by init(). A provider forktrace joined (yours, or
    the global one) stays yours to shut down; forktrace only stops its own
    exporter.
    """
    global _state, tracer
    with _lock:
        state, _state = _state, None
        tracer = trace.get_tracer(INSTRUMENTATION_SCOPE, __version__)
    if state is None:
        return
    text.configure(capture_content=True, max_length=text.DEFAULT_MAX_TEXT_LENGTH)
    to_stop: SpanProcessor | TracerProvider | None = (
        state.provider if state.owns_provider else state.exporting
    )
    if to_stop is not None:
        _within(state.config.export_timeout.value + 1.0, to_stop.shutdown)
    if state.exporting is not None:
        state.exporting.report()


def _within(seconds: float, fn: Any) -> None:
    """Run ``fn`` but wait for it at most ``seconds``: exiting never hangs on a dead collector."""

    def run() -> None:
        try:
            fn()
        except Exception:
            logger.warning("forktrace: flushing spans at shutdown failed", exc_info=True)

    worker = threading.Thread(target=run, name="forktrace-shutdown", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        logger.warning(
            "forktrace: the collector did not take the last spans within %.1f s; not waiting longer",
            seconds,
        )


def _join_provider(config: Config, explicit: TracerProvider | None) -> tuple[TracerProvider, bool]:
    if explicit is not None:
        if not isinstance(explicit, TracerProvider):
            raise TypeError(
                "tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, "
                f"got {type(explicit).__name__}"
            )
        return explicit, False
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current, False
    resource = Resource.create({SERVICE_NAME: config.service_name.value})
    # forktrace's own atexit hook shuts this provider down with a time bound.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        logger.warning(
            "forktrace: a non-SDK tracer provider is already set globally; forktrace's spans are "
            "exported, but other instrumentations' spans get no lineage"
        )
    return provider, True


def _export_processor(config: Config) -> CountingBatchSpanProcessor | None:
    try:
        exporter = _otlp_exporter(config)
    except Exception:
        # The exporter is a base dependency; if it cannot load, trace without exporting.
        logger.exception("forktrace: cannot create the OTLP exporter; spans will not be exported")
        return None
    if config.redact.value:
        from forktrace.redact_export import RedactingSpanExporter

        exporter = RedactingSpanExporter(exporter, Redactor(config.redact.value))
    return CountingBatchSpanProcessor(exporter)


def _otlp_exporter(config: Config) -> SpanExporter:
    timeout = config.export_timeout.value
    headers = config.headers.value or None
    if config.protocol.value == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=config.endpoint.value,
            insecure=config.insecure,
            headers=headers,
            timeout=timeout,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as OTLPHttpSpanExporter,
    )

    return OTLPHttpSpanExporter(endpoint=config.endpoint.value, headers=headers, timeout=timeout)
