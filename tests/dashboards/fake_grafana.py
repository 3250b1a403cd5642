"""A stand-in for the slice of Grafana's HTTP API that provisioning uses.

It keeps folders, datasources and dashboards in memory, answers with the
status codes and bodies Grafana documents (401 with bad credentials, 404 for a
missing object, 412 "version-mismatch" for a stale dashboard version) and
records every request, so tests assert what forktrace sends.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "glsa_test_token"
USER, PASSWORD = "admin", "s3cret"


@dataclass
class Request:
    method: str
    path: str
    body: Any
    authorization: str


@dataclass
class FakeGrafana:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (method, path regex) -> (status, body) answered instead, once.
    faults: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    prefix: str = "/api"

    @property
    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def handle(self, method: str, path: str, body: Any, auth: str) -> tuple[int, Any]:
        self.requests.append(Request(method, path, body, auth))
        if auth not in (f"Bearer {TOKEN}", "Basic " + _basic(USER, PASSWORD)):
            return 401, {"message": "Unauthorized"}
        for (fault_method, pattern), answer in list(self.faults.items()):
            if fault_method == method and re.fullmatch(pattern, path):
                del self.faults[(fault_method, pattern)]
                return answer
        if not path.startswith(self.prefix + "/"):
            return 404, "404 page not found"
        route = path[len(self.prefix) :]
        for pattern, handler in self._routes():
            match = re.fullmatch(pattern, f"{method} {route}")
            if match:
                return handler(body, *match.groups())
        return 404, {"message": "Not found"}

    def _routes(self) -> list[tuple[str, Any]]:
        return [
            (r"GET /health", lambda body: (200, {"database": "ok", "version": "12.1.1"})),
            (r"GET /folders/([\w-]+)", self._get_folder),
            (r"POST /folders", self._create_folder),
            (r"PUT /folders/([\w-]+)", self._update_folder),
            (r"GET /datasources/uid/([\w-]+)", self._get_datasource),
            (r"POST /datasources", self._create_datasource),
            (r"PUT /datasources/uid/([\w-]+)", self._update_datasource),
            (r"GET /dashboards/uid/([\w-]+)", self._get_dashboard),
            (r"POST /dashboards/db", self._save_dashboard),
        ]

    def _get_folder(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found", "status": "not-found"}
        return 200, self.folders[uid]

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if body["uid"] in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
        return 200, self.folders[body["uid"]]

    def _update_folder(self, body: Any, uid: str) -> tuple[int, Any]:
        folder = self.folders[uid]
        if body.get("version") != folder["version"] and not body.get("overwrite"):
            return 412, {"message": "the folder has been changed by someone else"}
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, folder

    def _get_datasource(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        stored = copy.deepcopy(self.datasources[uid])
        secure = stored.pop("secureJsonData", {})
        stored["secureJsonFields"] = {key: True for key in secure}
        return 200, stored

    def _create_datasource(self, body: Any) -> tuple[int, Any]:
        self.datasources[body["uid"]] = {"id": len(self.datasources) + 1, "version": 1, **body}
        return 200, {"message": "Datasource added", "datasource": body}

    def _update_datasource(self, body: Any, uid: str) -> tuple[int, Any]:
        stored = self.datasources[uid]
        stored.update(body, version=stored["version"] + 1)
        return 200, {"message": "Datasource updated"}

    def _get_dashboard(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        return 200, copy.deepcopy(self.dashboards[uid])

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        board = body["dashboard"]
        stored = self.dashboards.get(board["uid"])
        stale = stored and board.get("version") != stored["dashboard"]["version"]
        if stale and not body.get("overwrite"):
            return 412, {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        version = stored["dashboard"]["version"] + 1 if stored else 1
        saved = {**board, "id": stored["dashboard"]["id"] if stored else len(self.dashboards) + 1}
        saved["version"] = version
        self.dashboards[board["uid"]] = {
            "dashboard": saved,
            "meta": {"folderUid": body.get("folderUid", "")},
        }
        return 200, {
            "id": saved["id"],
            "uid": board["uid"],
            "status": "success",
            "version": version,
        }


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@contextmanager
def serve(fake: FakeGrafana | None = None) -> Iterator[FakeGrafana]:
    """Run the fake on a free loopback port for the duration of the block."""
    fake = fake or FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer = fake.handle(
                self.command, self.path, body, self.headers.get("Authorization", "")
            )
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "text/plain" if isinstance(answer, str) else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
