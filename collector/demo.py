"""``forktrace demo``: a simulated multi-agent session, recorded for real.

No API keys and no services: the model and tool calls are simulated (short
sleeps, fixed token counts), but every span goes through forktrace's SDK and
the OTLP exporter into a collector started in this process (or the one
already running for the data directory), so the data is the same as a real
session's and stays queryable afterwards with ``forktrace runs``, ``tree`` and
``sql``.

The session: a coordinator weighs a plan and forks three approaches that run
in parallel threads. One wins (after forking again inside), one fails with an
error, one is abandoned after a human redirects it. A second run of the same
session, writing docs, runs at the same time.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import forktrace
from forktrace.collector import config, discovery
from forktrace.collector.reader import EndpointReader

# Simulated time: every model or tool call sleeps a little, so the branches
# really overlap and the timeline has a shape. The whole demo takes seconds.
PACE = 0.12


class TestsFailedError(AssertionError):
    """What the simulated test runner raises."""


def _pause(units: float) -> None:
    time.sleep(units * PACE)


def _model(
    model: str,
    provider: str,
    tokens_in: int,
    tokens_out: int,
    reasoning: str,
    units: float = 3,
) -> None:
    with forktrace.llm(model, provider=provider) as call:
        _pause(units)
        call.record(
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            reasoning=reasoning,
            finish_reasons="stop",
        )


def _tool(name: str, arguments: dict[str, Any], result: str, units: float = 1) -> None:
    with forktrace.tool(name, arguments=arguments) as call:
        _pause(units)
        call.result(result)


# --- run 1: fix a flaky test, three approaches in parallel ---------------------------


def _fix_the_race(branch: forktrace.Branch) -> None:
    with branch, forktrace.agent("investigator"):
        _model(
            "gpt-4o", "openai", 3200, 540,
            "The failure needs two checkouts of one cart at once: a race on the cart "
            "total, not a slow gateway.",
        )  # fmt: skip
        _tool("read_file", {"path": "src/cart/service.py"}, "def checkout(cart): total = ...", 1)
        _tool("grep", {"pattern": "update_total", "path": "src/"}, "src/cart/service.py:88", 1)
        with forktrace.fork("how to serialise checkouts", strategy="best_of") as fork:

            def try_fix(lock: str) -> str:
                _model(
                    "gpt-4o-mini", "openai", 1800, 260,
                    f"Guard update_total with a {lock} and rerun the test 20 times.",
                )  # fmt: skip
                passed = "20/20" if lock == "row lock" else "17/20"
                _tool("run_tests", {"test": "test_checkout", "repeat": 20}, f"{passed} passed", 3)
                return passed

            fork.map(try_fix, ["row lock", "optimistic version check"])
            fork.choose("row lock", criterion="most of 20 repeated runs green")
        _tool("run_tests", {"suite": "all"}, "412 passed in 38.1s", 4)


def _retry_with_backoff(branch: forktrace.Branch) -> None:
    try:
        with branch, forktrace.agent("retrier"):
            _model(
                "gpt-4o-mini", "openai", 2100, 310,
                "Wrap the payment call in retries; the flake is probably a timeout.",
            )  # fmt: skip
            with forktrace.decision(
                "How many retries?", options=["2", "3", "5"]
            ) as decision:  # fmt: skip
                decision.choose(
                    "3",
                    reasoning="No data on the timeout distribution; 3 is the team default.",
                    confidence=0.35,
                )
            # the agent looks for the same thing twice: a small loop
            for _ in range(2):
                _tool("search_logs", {"query": "payment timeout"}, "0 matches in 7 days", 1)
            _tool("edit_file", {"path": "src/payments/client.py"}, "added retry(3, backoff=2)", 1)
            with forktrace.tool("run_tests", arguments={"test": "test_checkout", "repeat": 20}):
                _pause(3)
                raise TestsFailedError("order total mismatch after retry: 118.00 != 59.00")
    except TestsFailedError:
        pass  # recorded on the tool, agent and branch spans; the fork carries on


def _mock_the_gateway(branch: forktrace.Branch, redirected: threading.Event) -> None:
    with branch, forktrace.agent("mocker"):
        _model(
            "claude-haiku-4-5", "anthropic", 2600, 380,
            "Mock the payment gateway in the test so no network call can flake.",
        )  # fmt: skip
        _tool("write_file", {"path": "tests/fakes/gateway.py"}, "FakeGateway written", 2)
        redirected.wait(timeout=5)
        forktrace.intervene(
            "redirect",
            author="dana",
            message="Don't mock payments: the bug is in the cart, follow the race.",
        )
        branch.outcome("abandoned", reason="redirected by dana")


def fix_flaky_test(session: str, done: dict[str, str]) -> None:
    with forktrace.run(
        "fix the flaky checkout test",
        goal="test_checkout passes 20 times in a row",
        session=session,
    ) as run:
        done["fix"] = run.id or ""
        with forktrace.agent("coordinator"):
            _model(
                "claude-sonnet-4-5", "anthropic", 4200, 610,
                "Three plausible causes: a race on the cart total, payment timeouts, "
                "network flakiness in the gateway. Cheap enough to try all three at once.",
            )  # fmt: skip
            with forktrace.decision(
                "How do we attack the flaky test?",
                options=["fix the race", "retry with backoff", "mock the gateway", "all three"],
            ) as decision:
                decision.choose(
                    "all three",
                    reasoning="Each approach is under an hour of agent time; racing them "
                    "costs less than guessing wrong.",
                    confidence=0.6,
                )
            redirected = threading.Event()
            with forktrace.fork("approach", strategy="race") as fork:
                race = fork.branch("fix the race")
                retry = fork.branch("retry with backoff")
                mock = fork.branch("mock the gateway")
                with ThreadPoolExecutor(3, thread_name_prefix="branch") as pool:
                    jobs = [
                        pool.submit(_fix_the_race, race),
                        pool.submit(_retry_with_backoff, retry),
                        pool.submit(_mock_the_gateway, mock, redirected),
                    ]
                    _pause(6)
                    redirected.set()  # the human looks in and redirects the mocker
                    for job in jobs:
                        job.result()
                fork.choose(race, criterion="first to pass 20 repeated runs")
            _model(
                "claude-sonnet-4-5", "anthropic", 5100, 420,
                "The row lock fixes the race; retries hid it and the mock would have too.",
            )  # fmt: skip
            _tool("open_pull_request", {"title": "Serialise checkouts per cart"}, "PR #1287", 1)


# --- run 2, same session, at the same time: update the docs --------------------------


def update_docs(session: str, done: dict[str, str]) -> None:
    with forktrace.run(
        "update the API docs", goal="document the v2 endpoints", session=session
    ) as run:
        done["docs"] = run.id or ""
        with forktrace.agent("writer"):
            with forktrace.decision(
                "Which endpoints need docs?", options=["auth", "billing", "search"]
            ) as decision:  # fmt: skip
                decision.choose(
                    "auth and billing",
                    reasoning="search did not change in v2",
                    confidence=0.9,
                    maker="policy",
                )
            with forktrace.fork("sections", strategy="map") as fork:

                def write_section(section: str) -> None:
                    _tool("read_file", {"path": f"api/{section}.py"}, f"{section} handlers", 1)
                    _model("gemini-2.5-flash", "google", 2400, 900, f"Document {section}.", 4)

                fork.map(write_section, ["auth", "billing"])
            _tool("build_docs", {"target": "html"}, "built 14 pages", 2)


# --- running it -----------------------------------------------------------------------


def record_session(otlp_endpoint: str) -> tuple[str, dict[str, str]]:
    """Run the simulated session, exporting to ``otlp_endpoint`` (OTLP/gRPC);
    returns the session id and the run ids, once everything is exported."""
    session = f"demo-{uuid.uuid4().hex[:8]}"
    forktrace.init(service_name="forktrace-demo", endpoint=otlp_endpoint, protocol="grpc")
    done: dict[str, str] = {}
    try:
        runs = [
            threading.Thread(target=fix_flaky_test, args=(session, done)),
            threading.Thread(target=update_docs, args=(session, done)),
        ]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join()
    finally:
        forktrace.shutdown()  # flushes the exporter
    return session, done


def main(data_dir: str | Path | None = None, fmt: str = "table") -> None:
    from forktrace.collector import embedded, views
    from forktrace.collector.explore_commands import print_tree

    directory = config.data_dir(data_dir)
    running = discovery.read(directory)
    started = time.perf_counter()
    if running is not None:  # a collector owns the store: send to it, read through it
        session, run_ids = record_session(running.grpc_endpoint)
        reader: Any = EndpointReader(running.http_endpoint, running.token)
        _wait_for(reader, run_ids)
        tree = views.run_tree(reader, run_ids["fix"])
    else:
        with embedded.start(directory) as collector:
            session, run_ids = record_session(collector.grpc_endpoint)
            collector.flush()
            tree = views.run_tree(collector, run_ids["fix"])
    print_tree(tree, fmt)
    if fmt == "table":
        _print_next_steps(directory, session, run_ids, time.perf_counter() - started)


def _wait_for(reader: Any, run_ids: dict[str, str], timeout: float = 30.0) -> None:
    """A running collector inserts in batches: wait until both runs have ended in the store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = reader.query(
            "SELECT count() FROM forktrace_runs WHERE run_id IN {ids:Array(String)} "
            "AND status != 'running'",
            {"ids": list(run_ids.values())},
        ).rows[0][0]
        if found == len(run_ids):
            return
        time.sleep(0.2)
    raise TimeoutError("the collector did not store the demo's spans in time")


def _print_next_steps(
    directory: Path, session: str, run_ids: dict[str, str], seconds: float
) -> None:
    from forktrace.collector.explore_commands import console

    data = "" if directory == config.data_dir(None) else f" --data-dir {directory}"
    fix = run_ids["fix"]
    console().print(
        f"\n[bold]Recorded session {session}[/] (2 runs, {seconds:.1f}s) in {directory}.\n"
        "Try next:\n"
        f"  forktrace runs --session {session}{data}\n"
        f"  forktrace tree {fix[:8]}{data}\n"
        f'  forktrace sql "SELECT label, outcome, outcome_reason, cost FROM '
        f"forktrace_branches(run_id = '{fix}')\"{data}\n"
        f"  forktrace sql \"SELECT * FROM forktrace_session_runs(session_id = '{session}')\""
        f"{data}\n"
        f"  forktrace compare {fix} 'fix the race' 'retry with backoff'{data}\n"
        f"  forktrace report {fix} -o report.html{data}\n"
        "More questions as SQL: docs/sql.md",
        highlight=False,
    )
