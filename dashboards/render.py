"""Render the dashboard builders to the JSON files shipped in ``forktrace/dashboards/json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from forktrace.dashboards import DASHBOARDS, overview, post_mortem, run_explorer, session

#: Dashboard uid -> the function that builds it.
BUILDERS: dict[str, Callable[[], dashboard.Dashboard]] = {
    module.UID: module.build for module in (overview, run_explorer, session, post_mortem)
}

#: The directory the rendered JSON ships from (``dashboards/json`` in a checkout).
PACKAGE_JSON_DIR = Path(__file__).parent / "json"


def to_json(model: Any) -> str:
    """Sorted, indented, newline-terminated: stable text so that diffs show real changes."""
    return json.dumps(model, cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> rendered JSON text, for every dashboard."""
    if set(BUILDERS) != set(DASHBOARDS):
        raise RuntimeError("BUILDERS and forktrace.dashboards.DASHBOARDS list different dashboards")
    return {DASHBOARDS[uid]: to_json(build().build()) for uid, build in BUILDERS.items()}


def write(out_dir: Path = PACKAGE_JSON_DIR) -> list[Path]:
    """Write every rendered dashboard into ``out_dir``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
