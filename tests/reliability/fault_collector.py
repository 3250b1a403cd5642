"""The pieces the fault tests share: a collector subprocess started through
the fault launcher, the load sender, and the exactly-once check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector_process import CollectorProcess

HERE = Path(__file__).parent
LAUNCHER = HERE / "fault_launcher.py"
SENDER = HERE / "fault_sender.py"


class FaultCollector(CollectorProcess):
    """``forktrace up`` in a subprocess, with the launcher's fault options."""

    def __init__(self, data_dir: Path, *up_args: str) -> None:
        # the log and insert log sit beside the data dir: a test may mount its spool
        super().__init__(data_dir, *up_args, log=data_dir.parent / "collector.log")
        self.inserts = data_dir.parent / "inserts.log"  # which segment held which traces
        self.faults: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return [
            *(sys.executable, str(LAUNCHER), "--log-inserts", str(self.inserts)),
            *self.faults,
            "--",
            *self.up_options(),
        ]

    def start(self, *faults: str, timeout: float = 120.0) -> FaultCollector:
        """Start with these fault options (the launcher's); none for a plain start."""
        self.faults = faults
        super().start(timeout=timeout)
        return self

    def spooled_segments(self) -> list[Path]:
        return sorted((self.data_dir / "spool").glob("*.otlp"))

    def wait_drained(self, timeout: float = 60.0) -> None:
        """Until the spool holds no segment: everything acknowledged is inserted."""
        deadline = time.monotonic() + timeout
        while self.spooled_segments():
            assert self.process is not None and self.process.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"spool not drained: {self.spooled_segments()}"
            time.sleep(0.1)

    def stop(self, timeout: float = 120.0, *, check: bool = True) -> str:
        """SIGTERM, the clean stop; it must exit 0."""
        return super().stop(timeout, check=check)


class LoadSender:
    """The sender subprocess; stopped by a flag file so it writes its summary."""

    def __init__(self, data_dir: Path, out_dir: Path, run_id: str, *args: str) -> None:
        self.out_dir = out_dir
        self.run_id = run_id
        out_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(SENDER), str(data_dir), str(out_dir), run_id, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def acknowledged(self) -> list[str]:
        path = self.out_dir / "acknowledged"
        if not path.exists():
            return []
        # a line is complete once its newline is written
        lines = path.read_text().split("\n")[:-1]
        return [span_id for line in lines for span_id in line.split()]

    def wait_acknowledged(self, more_than: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged()) <= more_than:
            assert self.process.poll() is None, self.process.communicate()[0]
            assert time.monotonic() < deadline, "the collector acknowledged nothing new"
            time.sleep(0.05)

    def summary(self) -> dict[str, Any]:
        """The sender's counts so far."""
        path = self.out_dir / "summary.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def wait_summary(self, key: str, at_least: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.summary().get(key, 0) < at_least:
            assert self.process.poll() is None, self.process.communicate()[0]
            assert time.monotonic() < deadline, f"{key} stayed below {at_least}: {self.summary()}"
            time.sleep(0.1)

    def stop(self) -> dict[str, Any]:
        (self.out_dir / "stop").touch()
        output, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, output
        return json.loads((self.out_dir / "summary.json").read_text())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Stored:
    """How often each span id of one run is stored, per table."""

    otel_traces: Counter[str] = field(default_factory=Counter)
    forktrace_spans: Counter[str] = field(default_factory=Counter)
    llm_calls: int = 0  # forktrace_usage, summed (an AggregatingMergeTree)
    input_tokens: int = 0  # forktrace_run_totals, summed
    duplicated_traces: list[str] = field(default_factory=list)  # to explain a duplicate

    @classmethod
    def read(cls, collector: FaultCollector, run_id: str) -> Stored:
        stored = cls()
        for span_id, count in collector.query(
            "SELECT SpanId, count() FROM otel_traces "
            f"WHERE SpanAttributes['forktrace.run.id'] = '{run_id}' GROUP BY SpanId"
        ).rows:
            stored.otel_traces[span_id] = count
        for span_id, count in collector.query(
            "SELECT span_id, count() FROM forktrace_spans "
            f"WHERE run_id = '{run_id}' GROUP BY span_id"
        ).rows:
            stored.forktrace_spans[span_id] = count
        stored.duplicated_traces = [
            trace_id
            for (trace_id,) in collector.query(
                "SELECT DISTINCT TraceId FROM otel_traces "
                f"WHERE SpanAttributes['forktrace.run.id'] = '{run_id}' AND SpanId IN ("
                "SELECT SpanId FROM otel_traces GROUP BY SpanId HAVING count() > 1)"
            ).rows
        ]
        stored.llm_calls = collector.query(
            f"SELECT sum(llm_calls) FROM forktrace_usage WHERE run_id = '{run_id}'"
        ).rows[0][0]
        stored.input_tokens = collector.query(
            f"SELECT input_tokens FROM forktrace_runs WHERE run_id = '{run_id}'"
        ).rows[0][0]
        return stored

    def assert_exactly_once(self, acknowledged: list[str], inserts: Path | None = None) -> None:
        """Every acknowledged span once in every table; nothing stored twice.
        ``inserts``: the launcher's insert log, quoted for the traces stored twice."""
        if self.duplicated_traces and inserts is not None and inserts.exists():
            lines = [
                line
                for line in inserts.read_text().splitlines()
                if any(trace_id in line for trace_id in self.duplicated_traces)
            ]
            raise AssertionError(
                f"{len(self.duplicated_traces)} traces stored more than once; the inserts "
                "that held them (time, pid, token, traces):\n" + "\n".join(lines)
            )
        assert len(set(acknowledged)) == len(acknowledged)
        for table in ("otel_traces", "forktrace_spans"):
            counts: Counter[str] = getattr(self, table)
            missing = [span_id for span_id in acknowledged if counts[span_id] == 0]
            twice = {span_id: n for span_id, n in counts.items() if n > 1}
            assert not missing, f"{table}: {len(missing)} acknowledged spans lost"
            assert not twice, f"{table}: {len(twice)} spans stored more than once"
        assert set(self.forktrace_spans) == set(self.otel_traces)
        # each span is one model call of one input token: the aggregates count each once
        assert self.llm_calls == len(self.otel_traces), "forktrace_usage counts a replay twice"
        assert self.input_tokens == len(self.otel_traces), "forktrace_run_totals double counts"
