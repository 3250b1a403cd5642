"""Record a session with the real SDK into an embedded collector, then run every panel.

Run as a script (``python sdk_panels.py DATA_DIR``): the collector owns a chDB
path of its own, which the pytest process (that has one already) cannot open.
Records two sessions into one store: ``sdk``, the one below (known answers),
and ``demo``, the one ``forktrace demo`` records. Prints one JSON object: for
each, its session, the run shown in the run explorer, and per panel query the
rows it returns with that session and run selected.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from grafana_sql import QueryContext, expand

import forktrace
from forktrace.collector import embedded
from forktrace.dashboards import rendered

SESSION, RUN, FAILING_RUN = "sess-sdk", "run-sdk", "run-sdk-failing"


def record() -> None:
    with (
        forktrace.run("sdk session run", goal="fix the parser", session=SESSION, run_id=RUN),
        forktrace.agent("planner"),
    ):
        with forktrace.llm("gpt-4o") as call:
            call.record(input_tokens=1200, output_tokens=300, reasoning="Two ways to go.")
        with forktrace.decision("Which fix?", options=["patch", "rewrite"]) as choice:
            choice.choose("rewrite", reasoning="the patch hides the bug", confidence=0.4)
        with forktrace.fork("fixes", strategy="best_of") as fork:
            with fork.branch("rewrite"), forktrace.agent("writer"):
                with forktrace.llm("gpt-4o") as call:
                    call.record(input_tokens=2000, output_tokens=600)
                for _ in range(2):
                    with forktrace.tool("run_tests", arguments={"path": "tests"}) as tool:
                        tool.result("12 passed")
            with fork.branch("patch") as branch, forktrace.agent("patcher"):
                with forktrace.llm("claude-sonnet-4") as call:
                    call.record(input_tokens=900, output_tokens=100)
                forktrace.intervene("redirect", author="bob", message="drop the patch")
                branch.outcome("abandoned", reason="redirected by bob")
            try:
                with (
                    fork.branch("revert"),
                    forktrace.agent("reverter"),
                    forktrace.tool("git_revert", arguments={"commit": "abc123"}),
                ):
                    raise RuntimeError("revert conflicts with main")
            except RuntimeError:
                pass  # the branch failed; the fork goes on
            fork.choose("rewrite", criterion="tests pass")
    try:
        with (
            forktrace.run("sdk failing run", session=SESSION, run_id=FAILING_RUN),
            forktrace.agent("solo"),
            forktrace.tool("deploy", arguments={"env": "prod"}),
        ):
            raise RuntimeError("deploy refused")
    except RuntimeError:
        pass  # the run failed


def record_own(endpoint: str) -> tuple[str, str]:
    forktrace.init(service_name="sdk-panels", endpoint=endpoint)
    try:
        record()
    finally:
        forktrace.shutdown()
    return SESSION, RUN


def record_demo(endpoint: str) -> tuple[str, str]:
    from forktrace.collector import demo

    session, runs = demo.record_session(endpoint)
    return session, runs["fix"]


SOURCES = {"sdk": record_own, "demo": record_demo}


def run_panels(collector: embedded.EmbeddedCollector, session: str, run: str) -> dict[str, Any]:
    """Every query of every dashboard, expanded as Grafana would with this session and run."""
    now = dt.datetime.now(dt.timezone.utc)
    context = QueryContext(
        now - dt.timedelta(hours=1),
        now + dt.timedelta(hours=1),
        variables={"session": session, "run": run},
    )
    results = {}
    for uid, board in rendered().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                result = collector.query(expand(target["rawSql"], context))
                results[f"{uid}/{panel['title']}/{target['refId']}"] = [
                    dict(zip(result.column_names, row, strict=True)) for row in result.rows
                ]
    return results


def main(data_dir: str) -> None:
    collector = embedded.start(Path(data_dir))
    try:
        recorded = {name: source(collector.grpc_endpoint) for name, source in SOURCES.items()}
        assert collector.flush(), "the collector did not store every span"
        out = {
            name: {"session": session, "run": run, "panels": run_panels(collector, session, run)}
            for name, (session, run) in recorded.items()
        }
        print(json.dumps(out, default=str))
    finally:
        collector.stop()


if __name__ == "__main__":
    main(sys.argv[1])
