"""Contract tests of ``forktrace dashboards provision`` against a local fake Grafana API.

No Grafana runs here: fake_grafana.py answers the endpoints forktrace uses the
way Grafana documents them, and these tests assert the requests forktrace sends
and what the user reads.
"""

from __future__ import annotations

import base64
import socket

import pytest
from fake_grafana import PASSWORD, TOKEN, USER, FakeGrafana, serve
from typer.testing import CliRunner

from forktrace.cli import app
from forktrace.dashboards import DASHBOARDS, DATASOURCE_TYPE, DATASOURCE_UID, FOLDER_UID

DATASOURCE_URL = "http://grafana:reader-pw@clickhouse:8123/forktrace"


def provision(url: str, *args: str):
    return CliRunner().invoke(app, ["dashboards", "provision", "--grafana-url", url, *args])


@pytest.fixture
def grafana():
    with serve() as fake:
        yield fake


def test_contract_first_run_creates_folder_datasource_and_every_dashboard(grafana: FakeGrafana):
    result = provision(grafana.url, "--token", TOKEN, "--datasource-url", DATASOURCE_URL)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["created", "folder", "forktrace"]
    assert lines[1].split() == ["created", "datasource", "forktrace", "ClickHouse"]
    assert sum(line.startswith("created   dashboard") for line in lines) == len(DASHBOARDS)
    assert lines[-1] == "6 changed, 0 unchanged"

    assert {r.authorization for r in grafana.requests} == {f"Bearer {TOKEN}"}
    assert grafana.requests[0].path == "/api/health"
    folder = next(r for r in grafana.writes if r.path == "/api/folders")
    assert folder.body == {"uid": FOLDER_UID, "title": "forktrace"}

    datasource = next(r for r in grafana.writes if r.path == "/api/datasources").body
    assert datasource["uid"] == DATASOURCE_UID and datasource["type"] == DATASOURCE_TYPE
    assert datasource["jsonData"] | {"traces": None} == {
        "host": "clickhouse",
        "port": 8123,
        "protocol": "http",
        "secure": False,
        "username": "grafana",
        "defaultDatabase": "forktrace",
        "traces": None,
    }
    assert datasource["jsonData"]["traces"]["defaultTable"] == "otel_traces"
    assert datasource["secureJsonData"] == {"password": "reader-pw"}

    saved = [r.body for r in grafana.writes if r.path == "/api/dashboards/db"]
    assert sorted(b["dashboard"]["uid"] for b in saved) == sorted(DASHBOARDS)
    for body in saved:
        assert body["folderUid"] == FOLDER_UID and body["overwrite"] is False
        assert "id" not in body["dashboard"]


def test_contract_second_run_changes_nothing_and_writes_nothing(grafana: FakeGrafana):
    assert (
        provision(grafana.url, "--token", TOKEN, "--datasource-url", DATASOURCE_URL).exit_code == 0
    )
    grafana.requests.clear()
    result = provision(grafana.url, "--token", TOKEN, "--datasource-url", DATASOURCE_URL)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "0 changed, 6 unchanged"
    assert all(line.startswith("unchanged") for line in result.output.splitlines()[:-1])
    assert grafana.writes == []


def test_contract_updates_a_dashboard_edited_in_grafana_at_the_version_read(grafana: FakeGrafana):
    assert provision(grafana.url, "--token", TOKEN).exit_code == 0
    stored = grafana.dashboards["forktrace-overview"]["dashboard"]
    stored["title"] = "someone renamed it"
    grafana.requests.clear()

    result = provision(grafana.url, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert "updated   dashboard forktrace · Overview" in result.output
    assert result.output.splitlines()[-1] == "1 changed, 4 unchanged"  # folder + 3 dashboards
    (write,) = grafana.writes
    assert write.body["dashboard"]["id"] == stored["id"]
    assert write.body["dashboard"]["version"] == stored["version"]
    assert grafana.dashboards["forktrace-overview"]["dashboard"]["title"] == "forktrace · Overview"


def test_contract_412_version_conflict_says_what_happened_and_what_to_do(grafana: FakeGrafana):
    assert provision(grafana.url, "--token", TOKEN).exit_code == 0
    grafana.dashboards["forktrace-session"]["dashboard"]["title"] = "edited"
    grafana.faults[("POST", "/api/dashboards/db")] = (
        412,
        {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"},
    )
    result = provision(grafana.url, "--token", TOKEN)
    assert result.exit_code == 1
    assert (
        "412 Precondition Failed (version-mismatch: The dashboard has been changed" in result.output
    )
    assert "dashboard 'forktrace · Session'" in result.output
    assert "--overwrite" in result.output

    overwritten = provision(grafana.url, "--token", TOKEN, "--overwrite")
    assert overwritten.exit_code == 0, overwritten.output
    assert grafana.writes[-1].body["overwrite"] is True


def test_contract_basic_auth_is_sent_with_user_and_password(grafana: FakeGrafana):
    result = provision(grafana.url, "--user", USER, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert {r.authorization for r in grafana.requests} == {expected}


def test_contract_401_names_the_credentials_problem(grafana: FakeGrafana):
    result = provision(grafana.url, "--token", "wrong")
    assert result.exit_code == 1
    assert "refused the credentials (401 Unauthorized)" in result.output
    assert "--token" in result.output and grafana.writes == []


def test_contract_404_points_at_the_grafana_url(grafana: FakeGrafana):
    grafana.prefix = "/grafana/api"  # Grafana served under a sub-path the URL lacks
    result = provision(grafana.url, "--token", TOKEN)
    assert result.exit_code == 1
    assert "404 Not Found for /api/health" in result.output
    assert "sub-path" in result.output


def test_unreachable_grafana_is_a_clear_error():
    with socket.socket() as sock:  # a free port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = provision(f"http://127.0.0.1:{port}", "--token", TOKEN)
    assert result.exit_code == 1
    assert f"cannot reach Grafana at http://127.0.0.1:{port}" in result.output


def test_a_non_clickhouse_datasource_url_is_refused_before_any_request(grafana: FakeGrafana):
    result = provision(grafana.url, "--token", TOKEN, "--datasource-url", "postgres://x@y/z")
    assert result.exit_code == 1
    assert "is not a ClickHouse URL" in result.output
    assert grafana.requests == []


def test_native_protocol_urls_map_to_the_plugin_settings():
    from forktrace.dashboards.provision import datasource_model

    native = datasource_model("clickhouses://reader@ch.example:9440/traces")["jsonData"]
    assert (native["protocol"], native["secure"], native["port"]) == ("native", True, 9440)
    assert native["defaultDatabase"] == "traces" and native["username"] == "reader"
