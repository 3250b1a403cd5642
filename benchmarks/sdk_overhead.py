"""What a forktrace span costs against a bare OpenTelemetry SDK span.

One process, the same BatchSpanProcessor (default settings) feeding an
exporter that drops everything. Measured in microseconds per span of the
calling thread's CPU time (``time.thread_time``: the agent thread's cost,
without the time other processes on a busy machine take from it), each as
the fastest of many interleaved rounds:

- bare: ``tracer.start_as_current_span(name)`` with no attributes, in a
  provider without forktrace's processor (the baseline the issue's target
  refers to);
- branch: a forktrace branch span inside a run and a fork: lineage, index,
  label and id, plus the fork's outcome event for it;
- decision: a forktrace decision span inside a run: lineage, question,
  options, then a choice with reasoning, confidence and maker;
- bare_as_branch / bare_as_decision: the same information recorded with the
  plain OpenTelemetry API: a bare span carrying exactly the attributes the
  forktrace span ends up with (read from a recorded one), given at start
  except what is known only later (the span's own id; the choice), plus the
  fork's outcome event. The ratio to these is forktrace's own overhead; the
  ratio to ``bare`` also includes the attributes themselves, which the SDK
  validates one by one.

Run:  python benchmarks/sdk_overhead.py [--spans 1000] [--rounds 41] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import forktrace
from forktrace import semconv

TARGET_RATIO = 1.25
DECISION_CHOICE = (
    semconv.DECISION_CHOSEN,
    semconv.DECISION_REASONING,
    semconv.DECISION_CONFIDENCE,
    semconv.DECISION_MAKER,
)


class DropExporter(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def provider() -> TracerProvider:
    result = TracerProvider(shutdown_on_exit=False)
    result.add_span_processor(BatchSpanProcessor(DropExporter()))
    return result


def per_span_us(
    bodies: dict[str, Callable[[int], None]], spans: int, rounds: int
) -> dict[str, float]:
    """Microseconds per span of each body: the fastest of many short rounds.

    Rounds interleave the bodies so drift in machine load hits them all alike,
    and the minimum is the run least disturbed by other processes (on a shared
    machine the median mostly measures the neighbours). A round stays well
    under the batch queue's 2048 spans, so no span is dropped.
    """
    for body in bodies.values():
        body(min(spans, 2000))  # warm up
    samples: dict[str, list[float]] = {name: [] for name in bodies}
    for _ in range(rounds):
        for name, body in bodies.items():
            start = time.thread_time()
            body(spans)
            samples[name].append((time.thread_time() - start) / spans * 1e6)
    return {name: min(values) for name, values in samples.items()}


def load_average() -> float | None:
    try:
        import os

        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def recorded_attributes(
    *bodies: Callable[[int], None],
) -> list[dict[str, object]]:
    """The attributes of the last span each body records, captured in memory."""
    exporter = InMemorySpanExporter()
    recording = TracerProvider(shutdown_on_exit=False)
    recording.add_span_processor(SimpleSpanProcessor(exporter))
    forktrace.init(tracer_provider=recording, export=False)
    captured = []
    for body in bodies:
        exporter.clear()
        body(1)
        kinds = [dict(span.attributes or {}) for span in exporter.get_finished_spans()]
        captured.append(kinds[0])  # the innermost span ends first
    forktrace.shutdown()
    return captured


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1000, help="spans per round")
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)

    bare_tracer = provider().get_tracer("bench")

    def bare(n: int) -> None:
        for _ in range(n):
            with bare_tracer.start_as_current_span("bare"):
                pass

    def branch(n: int) -> None:
        with forktrace.run("bench"), forktrace.fork("bench") as fork:
            for _ in range(n):
                with fork.branch("approach"):
                    pass

    def decision(n: int) -> None:
        with forktrace.run("bench"):
            for _ in range(n):
                with forktrace.decision("which approach?", options=["a", "b", "c"]) as d:
                    d.choose("b", reasoning="b is simpler", confidence=0.8, maker="agent")

    branch_attributes, decision_attributes = recorded_attributes(branch, decision)
    # What the plain API can only record after the span started: the span's own
    # id, and the choice of a decision.
    branch_late = {semconv.BRANCH_ID: branch_attributes.pop(semconv.BRANCH_ID)}
    decision_late = {key: decision_attributes.pop(key) for key in DECISION_CHOICE}

    def bare_as_branch(n: int) -> None:
        with bare_tracer.start_as_current_span("fork") as fork:
            for _ in range(n):
                with bare_tracer.start_as_current_span(
                    "branch", attributes=branch_attributes
                ) as span:
                    span.set_attributes(branch_late)
                fork.add_event("forktrace.branch.outcome", branch_event)

    def bare_as_decision(n: int) -> None:
        for _ in range(n):
            with bare_tracer.start_as_current_span(
                "decision", attributes=decision_attributes
            ) as span:
                span.set_attributes(decision_late)

    branch_event = {
        "forktrace.branch.id": "0123456789abcdef",
        "forktrace.branch.index": 0,
        "forktrace.branch.label": "approach",
        "forktrace.branch.outcome": "completed",
    }
    forktrace.init(tracer_provider=provider(), export=False)
    results = per_span_us(
        {
            "bare": bare,
            "bare_as_branch": bare_as_branch,
            "branch": branch,
            "bare_as_decision": bare_as_decision,
            "decision": decision,
        },
        args.spans,
        args.rounds,
    )
    forktrace.shutdown()

    report: dict[str, object] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join(["benchmarks/sdk_overhead.py", *sys.argv[1:]]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "clock": "time.thread_time (CPU time of the calling thread), fastest round",
        "load_average_1m": load_average(),
        "spans_per_round": args.spans,
        "rounds": args.rounds,
        "microseconds_per_span": {name: round(us, 2) for name, us in results.items()},
        "ratio_to_bare": {
            name: round(results[name] / results["bare"], 3) for name in ("branch", "decision")
        },
        "ratio_to_bare_with_same_attributes": {
            "branch": round(results["branch"] / results["bare_as_branch"], 3),
            "decision": round(results["decision"] / results["bare_as_decision"], 3),
        },
        "target_ratio": TARGET_RATIO,
    }
    print(f"{'span':<20}{'us/span':>10}{'x bare':>10}")
    for name, us in results.items():
        print(f"{name:<20}{us:>10.2f}{us / results['bare']:>10.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
    return report


if __name__ == "__main__":
    main()
