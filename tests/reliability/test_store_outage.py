"""The store unreachable for 30 seconds under load: the collector keeps
spooling, answers 429 / RESOURCE_EXHAUSTED with retry information once its
small spool is full, stays up, and inserts everything once the store is back,
without a restart; every acknowledged span is then stored exactly once."""

from __future__ import annotations

import time
from pathlib import Path

from fault_collector import FaultCollector, LoadSender, Stored

OUTAGE_SECONDS = 30.0
UP_ARGS = ("--batch-age", "0.2", "--spool-limit-mb", "1", "--max-request-mb", "1")


def test_a_30_second_store_outage_loses_nothing(tmp_path: Path) -> None:
    store_down = tmp_path / "store-down"
    collector = FaultCollector(tmp_path / "data", *UP_ARGS)
    collector.start("--store-down-while", str(store_down))
    assert collector.process is not None
    pid = collector.process.pid
    # 20 spans of 1 kB a request: the 1 MB spool fills in about 50 requests
    sender = LoadSender(collector.data_dir, tmp_path / "load", "run-outage", "--pad", "1000")
    try:
        sender.wait_acknowledged(more_than=100)
        store_down.touch()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        # both transports hit the full spool while the store is away
        sender.wait_summary("http_429", 1, timeout=OUTAGE_SECONDS)
        sender.wait_summary("grpc_resource_exhausted", 1, timeout=OUTAGE_SECONDS)
        while time.monotonic() < outage_ends:
            assert collector.health()["status"] == "ok"
            time.sleep(1.0)
        during_outage = len(sender.acknowledged())
        throttled_during_outage = sender.summary()["http_429"]
        store_down.unlink()

        # recovery without a restart: acknowledgements resume, then the spool drains
        sender.wait_acknowledged(more_than=during_outage + 100, timeout=60)
        summary = sender.stop()
        collector.wait_drained()
        assert collector.process.poll() is None and collector.process.pid == pid
        stored = Stored.read(collector, "run-outage")
        collector.stop()
    finally:
        sender.kill()
        collector.kill()

    print(f"throttled during the outage: {throttled_during_outage}; sender: {summary}")
    assert summary["retry_after_seen"] == ["5"]
    assert summary["grpc_retry_delay_seen"] == [5.0]
    assert all("retry later" in message for message in summary["throttle_messages"])
    assert "insert failed" in collector.output()  # the inserter saw the outage and retried
    stored.assert_exactly_once(sender.acknowledged())
