"""What the SDK's redaction costs per span.

The redacting exporter runs on the batch processor's export thread, not on the
agent's threads; this measures its CPU time per span all the same, on a
realistic model-call span (lineage, model, token counts, ~2.5 KB of input
messages and ~1 KB of output as GenAI JSON, a tool-call event), clean and with
one API key in its input. For scale: the CPU time the agent's thread spends
recording that same span with the plain OpenTelemetry API.

Clock: ``time.thread_time`` (CPU time of the measuring thread), the fastest of
many interleaved rounds, as in ``sdk_overhead.py``.

Run:  python benchmarks/redaction.py [--spans 1000] [--rounds 41]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from forktrace.redact_export import redact_span
from forktrace.redaction import DEFAULT_RULES, Redactor

_TURN = (
    "Look at the failing test in tests/test_payments.py::test_refund_is_idempotent. "
    "The refund handler retries on a timeout but the gateway already applied the first "
    "request, so the second one refunds twice. Propose a fix that keeps the retry. "
)
INPUT = json.dumps(
    [
        {"role": "system", "parts": [{"type": "text", "content": "You are a careful engineer."}]},
        {"role": "user", "parts": [{"type": "text", "content": _TURN * 6}]},
        {"role": "assistant", "parts": [{"type": "text", "content": _TURN * 4}]},
    ]
)
OUTPUT = json.dumps(
    [{"role": "assistant", "parts": [{"type": "text", "content": _TURN * 4}]}],
)
SECRET = "sk-proj-" + "T3BlbkFJ4xY_7Qe-9WzLmNc2RvKp8HsDf0GaJtUy" * 3


def attributes(secret: bool) -> dict[str, object]:
    text = INPUT.replace("Propose a fix", f"Use the key {SECRET} and propose a fix", 1)
    return {
        "forktrace.session.id": "9f1c2a9e7b6d5c4f3a2b1c0d9e8f7a6b",
        "forktrace.run.id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "forktrace.agent.name": "fixer",
        "forktrace.fork.id": "1c2d3e4f5a6b7c8d",
        "forktrace.branch.id": "2d3e4f5a6b7c8d9e",
        "forktrace.branch.path": "1.0",
        "forktrace.kind": "llm",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1-2025-04-14",
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 231,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.input.messages": text if secret else INPUT,
        "gen_ai.output.messages": OUTPUT,
    }


def record(tracer_attributes: dict[str, object], provider: TracerProvider) -> None:
    with provider.get_tracer("bench").start_as_current_span(
        "chat gpt-4.1", attributes=tracer_attributes
    ) as span:
        span.add_event(
            "gen_ai.tool.call", {"gen_ai.tool.name": "run_tests", "arguments": '{"k": "refund"}'}
        )


def finished_span(secret: bool) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    record(attributes(secret), provider)
    return exporter.get_finished_spans()[0]


def fastest_us(
    bodies: dict[str, Callable[[int], None]], spans: int, rounds: int
) -> dict[str, float]:
    for body in bodies.values():
        body(spans)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(rounds):
        for name, body in bodies.items():
            start = time.thread_time()
            body(spans)
            samples[name].append((time.thread_time() - start) / spans * 1e6)
    return {name: min(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args(argv)

    redactor = Redactor(DEFAULT_RULES)
    clean, dirty = finished_span(False), finished_span(True)
    assert redact_span(redactor, clean) is clean
    assert SECRET not in redact_span(redactor, dirty).attributes["gen_ai.input.messages"]
    recording = TracerProvider(shutdown_on_exit=False)  # no processor: only the recording cost
    plain = attributes(False)

    def record_span(n: int) -> None:
        for _ in range(n):
            record(plain, recording)

    def redact_clean(n: int) -> None:
        for _ in range(n):
            redact_span(redactor, clean)

    def redact_dirty(n: int) -> None:
        for _ in range(n):
            redact_span(redactor, dirty)

    results = fastest_us(
        {"record": record_span, "redact_clean": redact_clean, "redact_secret": redact_dirty},
        args.spans,
        args.rounds,
    )
    size = sum(len(v) for v in plain.values() if isinstance(v, str))
    print(f"span text: {size} characters in {len(plain)} attributes")
    for name, us in results.items():
        print(f"{name:<16}{us:>8.2f} us/span  ({us / results['record']:.2f}x recording)")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
