"""deploy/ read as Docker Compose, Grafana, ClickHouse and the OTel Collector read it.

No Docker here: the compose files are checked against the Compose Specification's
JSON schema (as shipped by check-jsonschema), the Grafana provisioning files
against the keys Grafana and the ClickHouse plugin read, and every reference
between the files (paths, users, passwords, ports, uids) is followed.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from forktrace.cli import app
from forktrace.collector.schema import SchemaOptions, render_all
from forktrace.dashboards import DASHBOARDS, DATASOURCE_TYPE, DATASOURCE_UID, FOLDER_UID

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
CLUSTER = DEPLOY / "cluster"
CLUSTER_COMPOSE = CLUSTER / "docker-compose.yml"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
READONLY_USERS = DEPLOY / "clickhouse" / "users.d" / "grafana-readonly.xml"

# Keys Grafana's provisioning reads (pkg/services/provisioning/{datasources,dashboards}).
DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {
    "orgId", "name", "type", "access", "uid", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
    "editable",
}  # fmt: skip
DASHBOARD_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "editable",
    "updateIntervalSeconds", "allowUiUpdates", "options",
}  # fmt: skip
PROVIDER_OPTION_KEYS = {"path", "foldersFromFilesStructure"}
# The ClickHouse plugin's settings (src/types/config.ts: CHConfig, CHTracesConfig).
PLUGIN_JSON_KEYS = {
    "version", "host", "port", "protocol", "secure", "path", "tlsSkipVerify", "tlsAuth",
    "tlsAuthWithCACert", "username", "defaultDatabase", "defaultTable", "dialTimeout",
    "queryTimeout", "validateSql", "logs", "traces", "customSettings", "enableSecureSocksProxy",
}  # fmt: skip
PLUGIN_TRACES_KEYS = {
    "defaultDatabase", "defaultTable", "otelEnabled", "otelVersion", "traceIdColumn",
    "spanIdColumn", "operationNameColumn", "parentSpanIdColumn", "serviceNameColumn",
    "durationColumn", "durationUnit", "startTimeColumn", "tagsColumn", "serviceTagsColumn",
}  # fmt: skip


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.mark.parametrize("path", [COMPOSE, CLUSTER_COMPOSE], ids=["single", "cluster"])
def test_compose_file_passes_the_compose_spec_schema(path: Path):
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("path", [COMPOSE, CLUSTER_COMPOSE], ids=["single", "cluster"])
def test_every_port_is_bound_to_loopback_and_every_volume_is_declared(path: Path):
    spec = load(path)
    declared = set(spec.get("volumes", {}))
    for name, service in spec["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (path.parent / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_stack_has_clickhouse_grafana_and_the_collector_built_from_this_repo(compose):
    services = compose["services"]
    assert set(services) == {"clickhouse", "collector", "grafana", "prometheus"}
    build = services["collector"]["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == REPO
    dockerfile = REPO / build["dockerfile"]
    assert dockerfile.exists()
    assert services["collector"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    grafana_env = services["grafana"]["environment"]
    assert grafana_env["GF_PLUGINS_PREINSTALL_SYNC"] == DATASOURCE_TYPE


def test_collector_command_is_one_forktrace_up_accepts(compose):
    command = compose["services"]["collector"]["command"]
    assert command[0] == "up"
    help_text = CliRunner().invoke(app, ["up", "--help"], terminal_width=200).output
    for option in (arg for arg in command if arg.startswith("--")):
        assert option in help_text, f"forktrace up has no {option}"
    url = command[command.index("--clickhouse") + 1]
    assert url.startswith("http://forktrace:") and url.endswith("@clickhouse:8123/forktrace")
    assert command[command.index("--host") + 1] == "0.0.0.0"  # inside the container


def test_collector_dockerfile_installs_the_collector_extra_and_runs_forktrace():
    text = (DEPLOY / "collector.Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"COPY of missing {source}"
    assert 'pip install ".[collector]"' in text
    assert 'ENTRYPOINT ["forktrace"]' in text
    assert "USER forktrace" in text


def test_datasource_provisioning_has_only_keys_grafana_and_the_plugin_read():
    spec = load(PROVISIONING / "datasources" / "forktrace.yaml")
    assert set(spec) <= DATASOURCE_FILE_KEYS and spec["apiVersion"] == 1
    (datasource,) = spec["datasources"]
    assert set(datasource) <= DATASOURCE_KEYS
    assert datasource["type"] == DATASOURCE_TYPE and datasource["uid"] == DATASOURCE_UID
    assert set(datasource["jsonData"]) <= PLUGIN_JSON_KEYS
    assert set(datasource["jsonData"]["traces"]) <= PLUGIN_TRACES_KEYS
    assert datasource["jsonData"]["traces"]["defaultTable"] == "otel_traces"
    assert datasource["jsonData"]["protocol"] in ("native", "http")


def test_grafana_reads_through_the_read_only_user_with_the_password_it_is_given(compose):
    datasource = load(PROVISIONING / "datasources" / "forktrace.yaml")["datasources"][0]
    users = ET.parse(READONLY_USERS).getroot()
    user = users.find(f"users/{datasource['jsonData']['username']}")
    assert user is not None, "the datasource's user is not in users.d"
    profile = users.find(f"profiles/{user.findtext('profile')}")
    assert profile.findtext("readonly") == "1"
    grants = [q.text for q in user.findall("grants/query")]
    database = datasource["jsonData"]["defaultDatabase"]
    assert grants == [f"GRANT SELECT ON {database}.*"]
    # the password Grafana sends is the one ClickHouse checks, from the same variable
    variable = user.find("password").get("from_env")
    assert datasource["secureJsonData"]["password"] == f"${variable}"
    services = compose["services"]
    assert variable in services["grafana"]["environment"]
    assert variable in services["clickhouse"]["environment"]
    mounted = [v for v in services["clickhouse"]["volumes"] if "grafana-readonly.xml" in v]
    assert mounted and mounted[0].endswith("/etc/clickhouse-server/users.d/grafana-readonly.xml:ro")
    port = datasource["jsonData"]["port"]
    assert datasource["jsonData"]["host"] == "clickhouse" and port in (9000, 8123)
    assert compose["services"]["clickhouse"]["environment"]["CLICKHOUSE_DB"] == database


def test_dashboard_provider_reads_the_rendered_json(compose):
    spec = load(PROVISIONING / "dashboards" / "forktrace.yaml")
    assert set(spec) <= DASHBOARD_FILE_KEYS and spec["apiVersion"] == 1
    (provider,) = spec["providers"]
    assert set(provider) <= PROVIDER_KEYS and set(provider["options"]) <= PROVIDER_OPTION_KEYS
    assert provider["type"] == "file" and provider["folderUid"] == FOLDER_UID
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    source = COMPOSE.parent / mounts[provider["options"]["path"]]
    assert sorted(p.name for p in source.glob("*.json")) == sorted(DASHBOARDS.values())
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert home == f"{provider['options']['path']}/overview.json"
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"


# --- the cluster example --------------------------------------------------------


def test_cluster_has_two_shards_of_two_replicas_on_the_compose_nodes():
    config = ET.parse(CLUSTER / "clickhouse" / "config.d" / "cluster.xml").getroot()
    shards = config.findall("remote_servers/forktrace/shard")
    hosts = [[r.findtext("host") for r in shard.findall("replica")] for shard in shards]
    assert hosts == [["ch-s1r1", "ch-s1r2"], ["ch-s2r1", "ch-s2r2"]]
    services = load(CLUSTER_COMPOSE)["services"]
    for shard_number, shard in enumerate(hosts, start=1):
        for host in shard:
            env = services[host]["environment"]
            assert (env["SHARD"], env["REPLICA"]) == (f"{shard_number:02d}", host)
    keeper = config.find("zookeeper/node")
    assert keeper.findtext("host") in services
    keeper_config = ET.parse(CLUSTER / "keeper" / "keeper.xml").getroot()
    assert keeper.findtext("port") == keeper_config.findtext("keeper_server/tcp_port")


def test_cluster_schema_is_the_rendered_cluster_variant():
    expected = "".join(
        f"{statement};\n\n" for statement in render_all(SchemaOptions(cluster="forktrace"))
    )
    assert (CLUSTER / "schema.sql").read_text(encoding="utf-8") == expected, (
        "re-render it: forktrace schema print --cluster forktrace > deploy/cluster/schema.sql"
    )
    assert "ENGINE = Distributed(forktrace, currentDatabase(), otel_traces_local" in expected


def test_otel_collector_writes_the_same_otel_traces():
    config = load(CLUSTER / "otel-collector.yaml")
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind
    exporter = config["exporters"]["clickhouse"]
    assert exporter["traces_table_name"] == "otel_traces"
    assert exporter["database"] == "forktrace"
    assert exporter["create_schema"] is False  # the schema job made it, column for column
    host = exporter["endpoint"].split("//")[1].split(":")[0]
    services = load(CLUSTER_COMPOSE)["services"]
    assert host in services
    schema_job = " ".join(services["schema"]["command"])
    assert "--database forktrace" in schema_job and "ON CLUSTER forktrace" in schema_job


def test_cluster_users_run_distributed_subqueries_globally():
    users = ET.parse(CLUSTER / "clickhouse" / "users.d" / "forktrace.xml").getroot()
    readonly = ET.parse(READONLY_USERS).getroot()
    for profile in ("default", readonly.find("users/grafana").findtext("profile")):
        assert users.findtext(f"profiles/{profile}/distributed_product_mode") == "global"
