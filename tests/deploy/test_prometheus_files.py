"""deploy/'s Prometheus: it scrapes the collector where the collector listens, and
Grafana finds it under the uid the Overview dashboard's collector row expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from forktrace.dashboards import rendered

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_prometheus_scrapes_the_collectors_http_port():
    compose = load(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    command = services["collector"]["command"]
    http_port = command[command.index("--http-port") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    config = load(DEPLOY / mounts["/etc/prometheus/prometheus.yml"])
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"collector:{http_port}"]
    assert "prometheus-data" in compose["volumes"]


def test_grafana_provisions_the_prometheus_the_dashboard_variable_defaults_to():
    (datasource,) = load(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")["datasources"]
    board = rendered()["forktrace-overview"]
    variable = next(v for v in board["templating"]["list"] if v["name"] == "prometheus")
    assert datasource["type"] == variable["query"] == "prometheus"
    assert datasource["uid"] == variable["current"]["value"]
    compose = load(DEPLOY / "docker-compose.yml")
    port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert datasource["url"] == f"http://prometheus:{port}"
