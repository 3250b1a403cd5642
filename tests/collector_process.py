"""A collector subprocess for tests: ``forktrace up`` (or a launcher that wraps it)
on free ports, ready once its discovery file names it, stopped cleanly or killed.

The test process keeps its own chDB engine, and chDB opens a data directory in
one process only, so tests that need a running collector start it as a user
does, in a process of its own. Its stdout and stderr go to a log file (a pipe
nobody reads would fill and block the collector); a failed start or stop
quotes the end of that log.

Imported from tests/ (on sys.path under pytest, by tests/conftest.py's folder),
by ``benchmarks/ingest.py`` (which puts tests/ on sys.path) and by
``benchmarks/fuzz.py`` through ``tests/fuzz/otlp_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forktrace.collector import config, discovery
from forktrace.collector.reader import EndpointReader, QueryResult

FORKTRACE_UP = (sys.executable, "-m", "forktrace.cli", "up")
_TAIL_CHARS = 3000  # of the log, in a failure message


class CollectorProcess:
    """``forktrace up --data-dir DATA_DIR --grpc-port 0 --http-port 0 *UP_ARGS``.

    ``log``: where its output goes, appended (default ``DATA_DIR/collector.log``);
    ``env``: variables set for it on top of this process's environment.
    Subclasses wrap the command (``command()``) or add reads of their own.
    """

    def __init__(
        self,
        data_dir: Path,
        *up_args: str,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.up_args = up_args
        self.log = log if log is not None else data_dir / "collector.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.http_endpoint = ""
        self.grpc_endpoint = ""
        self.found: discovery.Discovery | None = None
        self._log_start = 0  # where this run's output begins in the (appended) log

    def up_options(self) -> list[str]:
        return [
            *("--data-dir", str(self.data_dir), "--grpc-port", "0", "--http-port", "0"),
            *self.up_args,
        ]

    def command(self) -> list[str]:
        return [*FORKTRACE_UP, *self.up_options()]

    def start(self, *, timeout: float = 180.0) -> CollectorProcess:
        """Start it and wait until it serves: its discovery file names this process
        (it writes the file once both receivers listen)."""
        discovery_file = config.discovery_path(self.data_dir)
        discovery_file.unlink(missing_ok=True)  # a killed collector leaves its file behind
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env} if self.env is not None else None
        with self.log.open("ab") as log:
            self._log_start = log.tell()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while True:
            found = discovery.read(self.data_dir, check_alive=False)
            if found is not None and found.pid == self.process.pid:
                break
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the collector exited with {self.process.returncode} before serving; "
                    f"its output ends:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(
                    f"the collector did not serve within {timeout:g} s; "
                    f"its output ends:\n{self.tail()}"
                )
            time.sleep(0.02)
        self.found = found
        self.http_endpoint, self.grpc_endpoint = found.http_endpoint, found.grpc_endpoint
        return self

    def output(self) -> str:
        """What this run wrote to stdout and stderr so far."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def tail(self) -> str:
        return self.output()[-_TAIL_CHARS:]

    def stop(self, timeout: float = 180.0, *, check: bool = True) -> str:
        """SIGTERM (the clean stop), SIGKILL if it outlives ``timeout``; returns its output.
        ``check``: the clean stop is under test, so it must exit 0 within ``timeout``."""
        if self.process is None:
            assert not check, "the collector was never started"
            return ""
        self.process.terminate()
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            assert not check, (
                f"the collector did not stop within {timeout:g} s of SIGTERM; "
                f"its output ends:\n{self.tail()}"
            )
            return self.output()
        assert returncode == 0 or not check, (
            f"the collector exited with {returncode} on SIGTERM; its output ends:\n{self.tail()}"
        )
        return self.output()

    def kill(self) -> None:
        """SIGKILL if it still runs: no flush, no goodbye (and the end of every test)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    # -- reads through its endpoints ------------------------------------------------------

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.http_endpoint}/health", timeout=10) as response:
            return json.loads(response.read())

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        """Through ``/api/sql`` with the read token and certificate its discovery file names."""
        token, ca_file = (self.found.token, self.found.ca_file) if self.found else (None, None)
        return EndpointReader(self.http_endpoint, token, ca_file=ca_file).query(sql, parameters)

    def wait_for_count(self, sql: str, expected: int, timeout: float = 180.0) -> int:
        """Poll until ``sql`` (a count) reaches ``expected``; returns the last count."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.query(sql).rows[0][0]
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.1)
