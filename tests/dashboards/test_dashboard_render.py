"""The committed dashboard JSON is exactly what the builders render."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from forktrace.cli import app
from forktrace.dashboards import DASHBOARDS, FOLDER_UID, rendered
from forktrace.dashboards.render import PACKAGE_JSON_DIR, render_all

REBUILD = "forktrace dashboards build"


def test_committed_json_matches_the_builders():
    drifted = [
        name
        for name, text in render_all().items()
        if (PACKAGE_JSON_DIR / name).read_text(encoding="utf-8") != text
    ]
    assert not drifted, f"{drifted} differ from the builders: run `{REBUILD}` and commit"


def test_json_is_sorted_and_indented_so_diffs_stay_small():
    for name in DASHBOARDS.values():
        text = (PACKAGE_JSON_DIR / name).read_text(encoding="utf-8")
        assert (
            text
            == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        )


def test_build_command_writes_every_dashboard(tmp_path: Path):
    result = CliRunner().invoke(app, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(DASHBOARDS.values())
    for name in written:
        assert (tmp_path / name).read_text() == (PACKAGE_JSON_DIR / name).read_text()
    assert f"wrote {tmp_path / 'overview.json'}" in result.output


def test_rendered_dashboards_carry_their_uids_and_link_to_each_other():
    for uid, board in rendered().items():
        assert board["uid"] == uid
        assert board["title"].startswith("forktrace · ")
        assert "forktrace" in board["tags"]
        assert board["links"][0]["type"] == "dashboards" and board["links"][0]["tags"] == [
            "forktrace"
        ]
        assert board["templating"]["list"][0]["name"] == "datasource"
    assert FOLDER_UID == "forktrace"


def test_run_links_open_the_run_explorer_with_the_row_run():
    links = [
        prop["value"][0]["url"]
        for board in rendered().values()
        for panel in board["panels"]
        for override in panel.get("fieldConfig", {}).get("overrides", [])
        for prop in override["properties"]
        if prop["id"] == "links"
    ]
    assert len(links) >= 8
    for url in links:
        assert url.startswith("/d/forktrace-run-explorer/")
        assert "var-run=${__data.fields.run_id}" in url
        assert "var-session=${__data.fields.session_id}" in url
        assert "${__url_time_range}" in url
