"""CPU cost of the receivers' request check (``accept_protobuf``), per span.

Measures the current ``forktrace.collector.otlp.accept_protobuf`` (id checks
plus the limits: spans per request, attributes per span, value length, nesting
depth) on the realistic agent requests of ``benchmarks/ingest.py`` (100 spans,
15 to 25 attributes each, ~190 KB a request), and, for comparison, the
``otlp.py`` of a git revision (``--baseline``, default the commit before the
limits), loaded from git into this process. Both run interleaved, so machine
load affects them alike; the figure is process CPU time (user + sys), the best
of ``--rounds``.

Run:  python benchmarks/accept.py [--baseline 3761ff7] [--rounds 15] [--output benchmarks/results/accept.md]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import SPANS_PER_REQUEST, make_requests  # noqa: E402


def load_baseline(revision: str) -> Callable[[bytes], object]:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:collector/otlp.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    try:
        spec = importlib.util.spec_from_file_location("baseline_otlp", handle.name)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        os.unlink(handle.name)
    return module.accept_protobuf


def cpu_per_span(accept: Callable[[bytes], object], requests: list[bytes]) -> float:
    start = time.process_time()
    for body in requests:
        accept(body)
    return (time.process_time() - start) / (len(requests) * SPANS_PER_REQUEST) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="3761ff7")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    from forktrace.collector.otlp import accept_protobuf

    requests = make_requests(args.requests)
    baseline = load_baseline(args.baseline)
    for body in requests:  # same answers, and the common request is kept byte for byte
        assert accept_protobuf(body).payload is body
    timings: dict[str, list[float]] = {"baseline": [], "current": []}
    for _ in range(args.rounds):
        timings["baseline"].append(cpu_per_span(baseline, requests))
        timings["current"].append(cpu_per_span(accept_protobuf, requests))
    best = {name: min(values) for name, values in timings.items()}
    size = sum(map(len, requests)) // len(requests)
    lines = [
        "# accept_protobuf: CPU per span",
        "",
        f"{datetime.date.today()}, Python {sys.version.split()[0]}, load average "
        f"{os.getloadavg()[0]:.1f}; {len(requests)} requests of {SPANS_PER_REQUEST} spans "
        f"(~{size // 1000} KB each); best of {args.rounds} interleaved rounds, process CPU time.",
        "",
        "| version | µs CPU per span |",
        "|---|---|",
        f"| baseline ({args.baseline}: id checks only) | {best['baseline']:.2f} |",
        f"| current (ids + limits) | {best['current']:.2f} |",
        "",
        f"Difference: {best['current'] - best['baseline']:+.2f} µs per span.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
