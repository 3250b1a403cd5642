"""A real headless Chromium (Debian's ``chromium`` package) driven by Playwright.

Playwright's own browser download is not used: the browser is the system's.
Without chromium the browser tests skip on a developer's machine, but fail in
CI (the ``CI`` environment variable set), where a missing browser is a broken
setup, not a reason to pass.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pagejs
import pytest
import report_scenario as scenario

CHROMIUM_ENV = "FORKTRACE_CHROMIUM"
_databases = itertools.count()


@pytest.fixture(scope="session")
def scripted(chdb_path: Path) -> Iterator[tuple[Any, scenario.Scenario]]:
    """The scripted session, written once into a database of its own on the
    shared engine (the tests that use it only read)."""
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    from forktrace.collector import schema
    from forktrace.collector.reader import ClientReader

    database = f"report_{next(_databases)}"
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    admin.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=database)
    schema.apply(client)
    written = scenario.insert_session(client)
    yield ClientReader(client, database, owns_client=False), written
    admin.command(f"DROP DATABASE {database} SYNC")


def chromium_path() -> str | None:
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it (apt-get install -y chromium)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        _unavailable("no chromium found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        instance = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield instance
        instance.close()


@dataclass
class OpenedReport:
    """A report loaded in the browser, with everything it tried that it must not."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)

    def lane_labels(self) -> list[str]:
        """The lanes as the swimlane chart draws them, top to bottom."""
        return self.page.evaluate(
            "() => window.forktraceReport.swimlanes.getOption().yAxis[0].data"
        )

    def tree_nodes(self, run: int = 0) -> list[str]:
        """The fork tree's node labels, depth first."""
        return self.page.evaluate(pagejs.TREE_NODE_NAMES, run)

    def click_span(self, span_id: str) -> None:
        """Click the middle of a span's bar on the swimlane canvas, as a user would."""
        point = self.page.evaluate(pagejs.SPAN_PIXEL, span_id)
        assert point, f"span {span_id} is not drawn"
        self.page.mouse.click(*point)

    def click_tree_node(self, span_id: str, run: int = 0) -> None:
        point = self.page.evaluate(pagejs.TREE_NODE_PIXEL, [run, span_id])
        assert point, f"no tree node for span {span_id}"
        self.page.mouse.click(*point)

    def details(self) -> tuple[str, str]:
        """The details panel's title and text, once it is open."""
        panel = self.page.locator("aside#details")
        panel.wait_for(state="visible", timeout=5_000)
        return panel.locator("h2").inner_text(), panel.locator(".details-body").inner_text()


@pytest.fixture
def open_report(browser: Any) -> Iterator[Callable[[Path], OpenedReport]]:
    """Open a report file; any request other than the file itself is blocked and recorded."""
    contexts = []

    def open_(path: Path, width: int = 1400, height: int = 900) -> OpenedReport:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        opened = OpenedReport(page)
        url = path.resolve().as_uri()

        def route(request_route: Any) -> None:
            if request_route.request.url == url:
                request_route.continue_()
            else:
                opened.network_requests.append(request_route.request.url)
                request_route.abort()

        context.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and opened.console_errors.append(m.text))
        page.on("pageerror", lambda e: opened.console_errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready]", state="attached", timeout=60_000)
        return opened

    yield open_
    for context in contexts:
        context.close()
