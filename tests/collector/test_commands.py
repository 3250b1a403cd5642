"""The collector's CLI commands, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

FORKTRACE = [sys.executable, "-m", "forktrace.cli"]


def run(*args: str, without: str | None = None) -> subprocess.CompletedProcess[str]:
    if without is None:
        command = [*FORKTRACE, *args]
    else:  # the module cannot be imported, as if the extra were not installed
        command = [
            sys.executable,
            "-c",
            f"import sys; sys.modules[{without!r}] = None; sys.argv = ['forktrace', *sys.argv[1:]]; "
            "from forktrace.cli import main; main()",
            *args,
        ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_up_without_the_collector_extra_names_the_pip_line():
    completed = run("up", without="chdb")
    assert completed.returncode == 2
    assert 'pip install "forktrace[collector]"' in completed.stderr


def test_schema_print_renders_the_cluster_variant():
    completed = run("schema", "print", "--cluster", "main", "--ttl", "30d")
    assert completed.returncode == 0, completed.stderr
    assert "CREATE TABLE IF NOT EXISTS otel_traces_local ON CLUSTER main" in completed.stdout
    assert "TTL toDateTime(Timestamp) + INTERVAL 30 DAY" in completed.stdout
    assert "CREATE TABLE IF NOT EXISTS otel_traces_otlp_ingest ON CLUSTER main" in completed.stdout


def test_sql_on_a_data_dir_without_data_says_what_to_do(tmp_path):
    completed = run("sql", "SELECT 1", "--data-dir", str(tmp_path))
    assert completed.returncode == 1
    assert "forktrace up" in completed.stderr


def test_up_refuses_worker_counts_below_one_before_opening_anything(tmp_path):
    completed = run(
        "up", "--data-dir", str(tmp_path), "--query-clients", "0", "--insert-workers", "0"
    )
    assert completed.returncode != 0
    assert "query-clients must be at least 1, got 0" in completed.stderr + completed.stdout
    assert "insert-workers must be at least 1, got 0" in completed.stderr + completed.stdout
    assert not (tmp_path / "collector.json").exists()
