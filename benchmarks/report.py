"""Load time of the HTML report of a 10,000-span run in headless Chromium.

Writes a synthetic run (a coordinator forking 40 workers that alternate model
and tool calls; tests/report/report_scenario.py) through ``otel_traces`` and every
materialised view into a throw-away chDB path, builds and renders its report
as ``forktrace report`` does, then opens the file ``--repeat`` times in a fresh
headless Chromium page and reads, from the page's own clock (ms since
navigation start):

- ready: the data parsed, every chart set up and the tool list drawn (the
  report's script has run to its end);
- lanes drawn: ECharts' ``finished`` event on the swimlane chart, i.e. every
  bar is on the canvas;
- click to details: a click on a span bar until its details panel shows.

Needs Debian's ``chromium`` (or FORKTRACE_CHROMIUM) and the dev extra. Run::

    python benchmarks/report.py --spans 10000 --out benchmarks/results/report.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "report"))


def build_report(spans: int, directory: Path) -> tuple[Path, int, dict[str, float]]:
    import clickhouse_connect
    import report_scenario as scenario

    from forktrace.collector import schema
    from forktrace.collector.reader import ClientReader
    from forktrace.collector.report import build, render_html

    client = clickhouse_connect.get_client(dsn=f"chdb://{directory / 'chdb'}")
    schema.apply(client)
    written = scenario.insert_big_run(client, spans)
    reader = ClientReader(client, "benchmark", owns_client=False)
    started = time.perf_counter()
    document = build(reader, scenario.BIG_RUN)
    built = time.perf_counter()
    html = render_html(document)
    rendered = time.perf_counter()
    path = directory / "report.html"
    path.write_text(html, encoding="utf-8")
    timings = {"build_s": built - started, "render_s": rendered - built}
    return path, written, timings


def measure(path: Path, repeat: int) -> list[dict[str, float]]:
    import pagejs
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("FORKTRACE_CHROMIUM") or shutil.which("chromium")
    if not executable:
        raise SystemExit("no chromium: apt-get install -y chromium (or set FORKTRACE_CHROMIUM)")
    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready]", state="attached", timeout=120_000)
            for _ in range(600):  # the lanes finish drawing a few frames after ready
                drawn = page.evaluate("() => window.forktraceReport.drawnAt || 0")
                if drawn:
                    break
                page.wait_for_timeout(50)
            ready = page.evaluate("() => window.forktraceReport.readyAt")
            span_id = page.evaluate(pagejs.BIG_RUN_TOOL)
            point = page.evaluate(pagejs.SPAN_PIXEL, span_id)
            before = page.evaluate("() => performance.now()")
            page.mouse.click(*point)
            page.locator("aside#details").wait_for(state="visible")
            after = page.evaluate("() => performance.now()")
            samples.append({"ready_ms": ready, "drawn_ms": drawn, "click_ms": after - before})
            page.close()
        browser.close()
    return samples


def chromium_version() -> str:
    import subprocess

    executable = os.environ.get("FORKTRACE_CHROMIUM") or shutil.which("chromium") or "chromium"
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the results as Markdown here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path, written, timings = build_report(args.spans, Path(tmp))
        size_mb = path.stat().st_size / 1e6
        samples = measure(path, args.repeat)

    def column(key: str) -> tuple[float, float]:
        values = [s[key] for s in samples]
        return statistics.median(values), max(values)

    rows: list[tuple[str, Any, Any]] = [
        ("ready (script done, charts set up)", *column("ready_ms")),
        ("lanes drawn (every bar on the canvas)", *column("drawn_ms")),
        ("click on a span to details panel", *column("click_ms")),
    ]
    lines = [
        "# HTML report load time",
        "",
        f"`python benchmarks/report.py --spans {args.spans} --repeat {args.repeat}` on "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{chromium_version()} headless; load average {os.getloadavg()[0]:.1f} "
        "(other work on the machine slows every number here).",
        "",
        f"Run: {written} spans, 42 lanes, 41 branches. Report file: {size_mb:.1f} MB. "
        f"Building the document from the views: {timings['build_s']:.2f} s; "
        f"rendering the HTML: {timings['render_s']:.2f} s.",
        "",
        "Times in the page, ms since navigation start (click: from the click):",
        "",
        "| what | median ms | slowest ms |",
        "|---|---:|---:|",
        *(f"| {name} | {median:.0f} | {slowest:.0f} |" for name, median, slowest in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
