"""Rendering a report document into one self-contained HTML file.

The page inlines everything it needs (styles, Apache ECharts, the report's own
script and the data), so it opens from a laptop, a bug report or a pull
request with no network. The data goes in as one JSON blob through Jinja's
``tojson`` filter, which escapes ``<``, ``>`` and ``&`` so no value can close
the script element it sits in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from forktrace._extras import require

_PACKAGE = "forktrace.collector.report"


@dataclass(frozen=True)
class Assets:
    """The files inlined into every report."""

    echarts: str
    js: str
    css: str


def _static(name: str) -> str:
    text = resources.files(_PACKAGE).joinpath("static", name).read_text(encoding="utf-8")
    # Inlined raw (not HTML-escaped) into <script> and <style>, where
    # "</script", "</style" end the element and "<!--" changes how the HTML
    # parser reads the rest: refuse such a file rather than ship a broken page.
    lowered = text.lower()
    if any(token in lowered for token in ("</script", "</style", "<!--")):
        raise ValueError(f"static/{name} cannot be inlined in the page as it is")
    return text


@functools.lru_cache(maxsize=1)
def assets() -> Assets:
    return Assets(
        echarts=_static("echarts.min.js"), js=_static("report.js"), css=_static("report.css")
    )


# --- number formatting filters ------------------------------------------------


def duration(value_ms: float | None) -> str:
    if value_ms is None:
        return ""
    if value_ms < 1000:
        return f"{value_ms:.0f} ms"
    if value_ms < 60_000:
        return f"{value_ms / 1000:.{2 if value_ms < 10_000 else 1}f} s"
    minutes, rest = divmod(value_ms, 60_000)
    return f"{minutes:.0f} min {rest / 1000:.0f} s"


def number(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def money(value: float | None) -> str:
    # Unknown models cost null, not zero: say so instead of printing $0.
    if value is None:
        return "n/a"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    jinja2 = require("jinja2", "collector")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(duration=duration, number=number, money=money, percent=percent)
    # Compact JSON: a 10,000-span report is megabytes; indentation would add more.
    environment.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "ensure_ascii": False}
    return environment


def render_html(document: dict[str, Any]) -> str:
    """The report page for ``document`` (built by :func:`forktrace.collector.report.data.build`)."""
    template = _environment().get_template("report.html.j2")
    return template.render(doc=document, assets=assets())
