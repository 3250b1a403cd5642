"""Provision forktrace's folder, datasource and dashboards into a running Grafana.

Idempotent: each object is read first and written only when it differs, so a
second run reports everything ``unchanged``. Talks to Grafana's HTTP API
through grafana-client (``pip install "forktrace[grafana]"``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from forktrace.dashboards import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    rendered,
)

#: Keys Grafana sets on a stored dashboard by itself; they do not make it differ.
_SERVER_KEYS = ("id", "version")

_CLICKHOUSE_PORTS = {
    # scheme -> (plugin protocol, secure, default port)
    "http": ("http", False, 8123),
    "https": ("http", True, 8443),
    "clickhouse": ("native", False, 9000),
    "tcp": ("native", False, 9000),
    "clickhouses": ("native", True, 9440),
}


class ProvisionError(Exception):
    """Grafana refused or could not be reached; the message says what to do."""


@dataclass(frozen=True)
class Change:
    kind: str  # folder, datasource, dashboard
    name: str
    action: str  # created, updated, unchanged

    def __str__(self) -> str:
        return f"{self.action:<9} {self.kind} {self.name}"


def datasource_model(url: str, name: str = "forktrace ClickHouse") -> dict[str, Any]:
    """The Grafana datasource for a ClickHouse URL.

    ``http(s)://user:password@host:8123/database`` uses the plugin's HTTP
    protocol; ``clickhouse://`` (or ``tcp://``, ``clickhouses://``) the native one.
    """
    parts = urlsplit(url)
    if parts.scheme not in _CLICKHOUSE_PORTS or not parts.hostname:
        raise ProvisionError(
            f"--datasource-url {url!r} is not a ClickHouse URL; expected e.g. "
            "http://grafana_ro:secret@clickhouse:8123/forktrace or clickhouse://grafana_ro@clickhouse:9000/forktrace"
        )
    protocol, secure, default_port = _CLICKHOUSE_PORTS[parts.scheme]
    json_data: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or default_port,
        "protocol": protocol,
        "secure": secure,
        "username": unquote(parts.username or "default"),
        "defaultDatabase": parts.path.strip("/") or "default",
        # The plugin's OTel trace mode reads otel_traces with the upstream exporter's columns.
        "traces": {
            "defaultTable": "otel_traces",
            "otelEnabled": True,
            "durationUnit": "nanoseconds",
        },
    }
    json_data["traces"]["defaultDatabase"] = json_data["defaultDatabase"]
    model: dict[str, Any] = {
        "name": name,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "jsonData": json_data,
    }
    if parts.password:
        model["secureJsonData"] = {"password": unquote(parts.password)}
    return model


class Provisioner:
    """Creates or updates forktrace's objects in one Grafana, reporting each change."""

    def __init__(self, api: Any, grafana_url: str, *, overwrite: bool = False) -> None:
        self._api = api
        self._url = grafana_url
        self._overwrite = overwrite

    def run(self, datasource: dict[str, Any] | None = None) -> list[Change]:
        self._check_grafana()
        changes = [self.folder()]
        if datasource is not None:
            changes.append(self.datasource(datasource))
        changes.extend(self.dashboard(model) for model in rendered().values())
        return changes

    def _check_grafana(self) -> None:
        health = self._call("GET", "/health", what="the Grafana API")
        if not isinstance(health, dict) or "database" not in health:
            raise ProvisionError(
                f"{self._url} answered /api/health but is not Grafana; check --grafana-url"
            )

    def folder(self) -> Change:
        existing = self._call("GET", f"/folders/{FOLDER_UID}", what="folder", missing_ok=True)
        if existing is None:
            self._call(
                "POST", "/folders", {"uid": FOLDER_UID, "title": FOLDER_TITLE}, what="folder"
            )
            return Change("folder", FOLDER_TITLE, "created")
        if existing.get("title") == FOLDER_TITLE:
            return Change("folder", FOLDER_TITLE, "unchanged")
        body = {
            "title": FOLDER_TITLE,
            "version": existing.get("version"),
            "overwrite": self._overwrite,
        }
        self._call("PUT", f"/folders/{FOLDER_UID}", body, what="folder")
        return Change("folder", FOLDER_TITLE, "updated")

    def datasource(self, wanted: dict[str, Any]) -> Change:
        uid, name = wanted["uid"], wanted["name"]
        existing = self._call(
            "GET", f"/datasources/uid/{uid}", what=f"datasource {name!r}", missing_ok=True
        )
        if existing is None:
            self._call("POST", "/datasources", wanted, what=f"datasource {name!r}")
            return Change("datasource", name, "created")
        public = {k: v for k, v in wanted.items() if k != "secureJsonData"}
        if all(existing.get(key) == value for key, value in public.items()):
            # The password cannot be read back; an unchanged datasource keeps the one it has.
            return Change("datasource", name, "unchanged")
        self._call("PUT", f"/datasources/uid/{uid}", wanted, what=f"datasource {name!r}")
        return Change("datasource", name, "updated")

    def dashboard(self, model: dict[str, Any]) -> Change:
        uid, title = model["uid"], model["title"]
        existing = self._call(
            "GET", f"/dashboards/uid/{uid}", what=f"dashboard {title!r}", missing_ok=True
        )
        body: dict[str, Any] = {
            "dashboard": copy.deepcopy(model),
            "folderUid": FOLDER_UID,
            "overwrite": self._overwrite,
            "message": "provisioned by forktrace",
        }
        if existing is None:
            body["dashboard"].pop("id", None)
            self._call("POST", "/dashboards/db", body, what=f"dashboard {title!r}")
            return Change("dashboard", title, "created")
        stored = existing.get("dashboard", {})
        same_folder = existing.get("meta", {}).get("folderUid") == FOLDER_UID
        if same_folder and _strip(stored) == _strip(model):
            return Change("dashboard", title, "unchanged")
        # Update the version we read: if someone saves it in between, Grafana answers 412.
        body["dashboard"]["id"] = stored.get("id")
        body["dashboard"]["version"] = stored.get("version")
        self._call("POST", "/dashboards/db", body, what=f"dashboard {title!r}")
        return Change("dashboard", title, "updated")

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        what: str,
        missing_ok: bool = False,
    ) -> Any:
        from grafana_client.client import (
            GrafanaClientError,
            GrafanaException,
            GrafanaTimeoutError,
            GrafanaUnauthorizedError,
        )
        from niquests.exceptions import RequestException

        where = f"Grafana at {self._url}"
        try:
            request = getattr(self._api.client, method)
            return request(path, json=body) if body is not None else request(path)
        except GrafanaUnauthorizedError as exc:
            raise ProvisionError(
                f"{where} refused the credentials (401 Unauthorized) while reading or writing "
                f"{what}: pass --token with a service-account token (Editor or Admin role), "
                "or --user and --password."
            ) from exc
        except GrafanaClientError as exc:
            status, detail = exc.status_code, _detail(exc)
            if status == 404 and missing_ok:
                return None
            if status == 404:
                raise ProvisionError(
                    f"{where} answered 404 Not Found for /api{path} ({what}): is --grafana-url "
                    "the Grafana root, including any sub-path it is served under?"
                ) from exc
            if status == 403:
                raise ProvisionError(
                    f"{where} answered 403 Forbidden for {what}: the account needs the Editor "
                    f"role (Admin to create datasources). {detail}"
                ) from exc
            if status == 412:
                raise ProvisionError(
                    f"{where} refused {what} with 412 Precondition Failed ({detail}): it was "
                    "changed in Grafana while forktrace was provisioning, or another dashboard "
                    "in the folder has the same title. Re-run, or pass --overwrite to replace it."
                ) from exc
            raise ProvisionError(f"{where} refused {what} ({status}): {detail}") from exc
        except GrafanaTimeoutError as exc:
            raise ProvisionError(f"{where} did not answer in time ({what}): {exc}") from exc
        except GrafanaException as exc:
            raise ProvisionError(f"{where} failed on {what}: {exc.message}") from exc
        except RequestException as exc:
            raise ProvisionError(f"cannot reach {where}: {exc}") from exc


def connect(
    grafana_url: str,
    *,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """A grafana-client API object; credentials from a token, a user and password, or the URL."""
    from grafana_client import GrafanaApi

    credential: str | tuple[str, str] | None = None
    if token:
        credential = token
    elif user is not None:
        credential = (user, password or "")
    return GrafanaApi.from_url(grafana_url, credential=credential, timeout=timeout)


def _strip(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in _SERVER_KEYS}


def _detail(exc: Any) -> str:
    response = exc.response
    if isinstance(response, dict):
        status = response.get("status")
        message = response.get("message", "")
        return f"{status}: {message}" if status else str(message)
    return str(response or exc.message)
