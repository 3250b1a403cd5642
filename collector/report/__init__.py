"""The single-file HTML run report (``forktrace report``).

``data.build()`` reads a run (or a session's runs) from the decision layer's
views into one JSON-able document; ``render.render_html()`` turns that into one
self-contained HTML page (Jinja2 template, Apache ECharts and the data inline).
"""

from __future__ import annotations

from pathlib import Path

from forktrace.collector.reader import Reader
from forktrace.collector.report.data import ReportError, build
from forktrace.collector.report.render import render_html

__all__ = ["ReportError", "build", "render_html", "write_report"]


def write_report(
    reader: Reader,
    output: str | Path,
    run_id: str | None = None,
    *,
    session_id: str | None = None,
) -> Path:
    """Write the report of ``run_id`` (or of ``session_id``'s runs) to ``output``."""
    document = build(reader, run_id, session_id=session_id)
    path = Path(output)
    path.write_text(render_html(document), encoding="utf-8")
    return path
