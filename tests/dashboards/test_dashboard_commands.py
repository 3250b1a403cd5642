"""Without the grafana extra, the dashboards commands say which pip line to run."""

from __future__ import annotations

import subprocess
import sys

import pytest

PIP_LINE = 'pip install "forktrace[grafana]"'


def forktrace_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    # sys.modules[name] = None makes every import of that module fail, as if not installed
    code = (
        f"import sys; sys.modules[{module!r}] = None; sys.argv = ['forktrace', *{list(args)!r}]; "
        "from forktrace.cli import main; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("grafana_foundation_sdk", ["dashboards", "build"]),
        ("grafana_client", ["dashboards", "provision", "--grafana-url", "http://127.0.0.1:9"]),
    ],
)
def test_missing_extra_names_the_install_line(module, args):
    done = forktrace_without(module, *args)
    assert done.returncode == 1
    assert PIP_LINE in done.stderr
    assert "Traceback" not in done.stderr


def test_help_works_without_the_grafana_extra():
    done = forktrace_without("grafana_client", "dashboards", "--help")
    assert done.returncode == 0 and "provision" in done.stdout
