"""forktrace's Grafana dashboards: built in Python, shipped as rendered JSON.

The builders (one module per dashboard) need grafana-foundation-sdk and run
only when the JSON is re-rendered (``forktrace dashboards build``). Everything
a user needs at run time, provisioning included, reads the rendered JSON
shipped in ``forktrace/dashboards/json/``, so this module stays light.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: The datasource uid the dashboards default to; deploy/ provisions it under this uid.
DATASOURCE_UID = "forktrace-clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
#: The Grafana folder the dashboards are provisioned into.
FOLDER_TITLE = "forktrace"
FOLDER_UID = "forktrace"

#: Dashboard uid -> rendered file name, in the order a user meets them.
DASHBOARDS = {
    "forktrace-overview": "overview.json",
    "forktrace-run-explorer": "run-explorer.json",
    "forktrace-session": "session.json",
    "forktrace-post-mortem": "post-mortem.json",
}


def rendered() -> dict[str, dict[str, Any]]:
    """The shipped dashboards' JSON models, keyed by uid."""
    folder = resources.files(__name__).joinpath("json")
    return {
        uid: json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        for uid, name in DASHBOARDS.items()
    }
