"""Fuzz the OTLP decoders and a running collector's HTTP endpoint for a while.

The same strategies and properties as ``tests/fuzz`` (see
``tests/fuzz/otlp_fuzz.py``), run for ``--seconds`` instead of a bounded number
of examples, with fresh random seeds each round and no shrinking: a broken
property is recorded (target, error, input) and the run goes on. The targets
take turns: the protobuf decoder, the JSON decoder, then the HTTP endpoint of a
``forktrace up`` subprocess seeded with known spans. At the end the collector
must still answer, the seeded spans must be unchanged and every acknowledged
span stored. The result goes to ``benchmarks/results/fuzz.md``.

Run:  python benchmarks/fuzz.py [--seconds 300] [--out benchmarks/results/fuzz.md]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

import hypothesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from otlp_fuzz import (  # noqa: E402
    SEED_QUERY,
    Collector,
    HttpCase,
    assert_served,
    byte_mutations,
    check_decoder,
    http_cases,
    json_bodies,
    post_protobuf,
    protobuf_bodies,
    seed_request,
)

EXAMPLES_PER_ROUND = 100
# Random byte-level variants tried after each generated input, per target
MUTATIONS = {"protobuf decoder": 30, "JSON decoder": 30, "HTTP endpoint": 2}


class TimeUp(Exception):
    """Ends a hypothesis round when the run's time is up."""


@dataclass
class Target:
    name: str
    strategy: Any
    check: Callable[[Any], str]
    inputs: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def round(self, seed: int, until: float) -> None:
        started = time.monotonic()

        @settings(
            max_examples=EXAMPLES_PER_ROUND,
            phases=[Phase.generate],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.seed(seed)
        @given(self.strategy)
        def run(example: Any) -> None:
            if time.monotonic() > until:
                raise TimeUp
            rng = random.Random(seed ^ self.inputs)
            for variant in [example, *self.variants(example, rng)]:
                self.try_one(variant)

        with contextlib.suppress(TimeUp):
            run()
        self.seconds += time.monotonic() - started

    def variants(self, example: Any, rng: random.Random) -> list[Any]:
        count = MUTATIONS[self.name]
        if isinstance(example, bytes):
            return byte_mutations(example, rng, count)
        return [replace(example, body=body) for body in byte_mutations(example.body, rng, count)]

    def try_one(self, example: Any) -> None:
        self.inputs += 1
        try:
            self.outcomes[self.check(example)] += 1
        except Exception as exc:  # the property broke: record it, go on
            where = traceback.extract_tb(exc.__traceback__)[-1]
            self.crashes.append(
                f"{type(exc).__name__}: {str(exc)[:300]} at {Path(where.filename).name}:"
                f"{where.lineno}; input {repr(example)[:300]}"
            )


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fuzz.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="forktrace-fuzz-") as scratch:
        collector = Collector(Path(scratch)).start()
        try:
            assert post_protobuf(collector.http_endpoint, seed_request()) == 200
            collector.wait_stored()
            seeded = collector.sql(SEED_QUERY)

            def http_check(case: HttpCase) -> str:
                return f"HTTP {assert_served(case, collector.http_endpoint)}"

            targets = [
                Target(
                    "protobuf decoder", protobuf_bodies, lambda b: check_decoder(b, json_body=False)
                ),
                Target("JSON decoder", json_bodies, lambda b: check_decoder(b, json_body=True)),
                Target("HTTP endpoint", http_cases, http_check),
            ]
            started = time.monotonic()
            until = started + args.seconds
            rng = random.Random()
            loads = []
            while time.monotonic() < until:
                for target in targets:
                    target.round(rng.getrandbits(64), until)
                loads.append(load_average())
                done = sum(t.inputs for t in targets)
                crashes = sum(len(t.crashes) for t in targets)
                print(f"{time.monotonic() - started:7.0f} s  {done} inputs  {crashes} crashes")
            elapsed = time.monotonic() - started

            checks = final_checks(collector, seeded)
        finally:
            collector.stop()

    report = render(args, targets, checks, elapsed, [x for x in loads if x is not None])
    args.out.write_text(report, encoding="utf-8")
    print(report)
    failed = any(t.crashes for t in targets) or not all(ok for _, ok in checks)
    return 1 if failed else 0


def final_checks(collector: Collector, seeded: list[list[Any]]) -> list[tuple[str, bool]]:
    acknowledged, stored = collector.wait_stored()
    return [
        ("the collector still answers /health", collector.health()["status"] == "ok"),
        ("the seeded spans are unchanged", collector.sql(SEED_QUERY) == seeded),
        (
            f"every acknowledged span is stored ({acknowledged} acknowledged, {stored} stored)",
            stored == acknowledged,
        ),
        ("no spool segment refused by the store", collector.quarantined() == []),
        (
            "it still takes good data",
            post_protobuf(collector.http_endpoint, seed_request("after", 2)) == 200,
        ),
    ]


def render(
    args: argparse.Namespace,
    targets: list[Target],
    checks: list[tuple[str, bool]],
    elapsed: float,
    loads: list[float],
) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    total_crashes = sum(len(t.crashes) for t in targets)
    lines = [
        "# Fuzzing the OTLP decoders and the HTTP endpoint",
        "",
        f"- Date: {now}",
        f"- Command: `python benchmarks/fuzz.py --seconds {args.seconds:g}`",
        f"- Ran {elapsed:.0f} s; Python {platform.python_version()}, hypothesis "
        f"{hypothesis.__version__}, {platform.machine()}, 2 cores shared with other work "
        f"(1-minute load average {min(loads, default=0):.1f}-{max(loads, default=0):.1f}).",
        "- Strategies and properties: `tests/fuzz/otlp_fuzz.py` (the tests run the same, bounded).",
        f"  Fresh random seeds, {EXAMPLES_PER_ROUND} generated inputs per target in turn, no "
        "shrinking; each generated input is followed by random byte-level variants of it "
        f"({', '.join(f'{n}: {k}' for n, k in MUTATIONS.items())}), counted as inputs.",
        "",
        "| target | inputs tried | seconds | outcomes | crashes |",
        "|---|---:|---:|---|---:|",
    ]
    for target in targets:
        outcomes = ", ".join(f"{name} {count}" for name, count in sorted(target.outcomes.items()))
        lines.append(
            f"| {target.name} | {target.inputs} | {target.seconds:.0f} | {outcomes} | "
            f"{len(target.crashes)} |"
        )
    lines += ["", f"**Crashes found: {total_crashes}.**", ""]
    for target in targets:
        for crash in target.crashes[:10]:
            lines.append(f"- {target.name}: {crash}")
    lines += ["", "After the run:", ""]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in checks]
    lines += [
        "",
        "A crash is a decoder raising anything but `InvalidRequestError`, a success that "
        "loses or changes spans it does not report as rejected, or an HTTP answer that is "
        "not 2xx/4xx (5xx, a dropped connection, a timeout).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
