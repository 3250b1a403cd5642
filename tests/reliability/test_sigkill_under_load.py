"""SIGKILL the collector 20 times under load; every acknowledged span is
stored exactly once, in otel_traces and in the decision layer tables.

The kill points come from a seeded generator (printed, and settable with
FORKTRACE_FAULT_SEED to replay a failure): most rounds kill after a random
delay, wherever the collector happens to be (receiving, fsyncing, sealing,
inserting); every fourth round the collector kills itself right after an
insert and before deleting the segment, so the next start replays a segment
the store already holds, which must add nothing anywhere.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from fault_collector import FaultCollector, LoadSender, Stored

KILLS = 20
# batches sealed every second or 400 spans: kills land among inserts and replays
UP_ARGS = ("--batch-age", "1.0", "--batch-spans", "400", "--spool-limit-mb", "64")


def test_acknowledged_spans_survive_20_kills_exactly_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("FORKTRACE_FAULT_SEED", "20261201"))
    print(f"kill points from seed {seed} (FORKTRACE_FAULT_SEED to replay)")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    collector = FaultCollector(data_dir, *UP_ARGS)
    sender = LoadSender(data_dir, tmp_path / "load", "run-kill", "--spans", "20", "--rate", "40")
    worst_moments = 0
    try:
        for round_number in range(KILLS):
            acknowledged = len(sender.acknowledged())
            if round_number % 4 == 3:
                inserts = rng.randint(1, 3)
                print(f"kill {round_number + 1}: after insert {inserts}, before the delete")
                collector.start("--kill-after-inserts", str(inserts))
                assert collector.process is not None
                assert collector.process.wait(timeout=60) == -signal.SIGKILL
                worst_moments += 1
            else:
                delay = rng.uniform(0.0, 1.0)
                print(f"kill {round_number + 1}: {delay:.2f} s after the start")
                collector.start()
                sender.wait_acknowledged(more_than=acknowledged)
                time.sleep(delay)
                collector.kill()
        collector.start()
        sender.wait_acknowledged(more_than=len(sender.acknowledged()))
        summary = sender.stop()
        collector.wait_drained(timeout=180)  # every kill left segments to replay
        stored = Stored.read(collector, "run-kill")
        collector.stop()
    finally:
        sender.kill()
        collector.kill()

    acknowledged = sender.acknowledged()
    print(f"acknowledged {len(acknowledged)} spans, stored {len(stored.otel_traces)}: {summary}")
    assert worst_moments == KILLS // 4
    assert len(acknowledged) >= 20 * KILLS // 2  # the load was real in most rounds
    stored.assert_exactly_once(acknowledged, collector.inserts)
