"""The spool's disk full under load: 429 / RESOURCE_EXHAUSTED with retry
information, no crash, and acknowledgements again once space returns; every
acknowledged span is then stored exactly once.

The disk is a 4 MB tmpfs mounted on the spool directory when this process
may mount one (root); elsewhere the fault launcher makes every spool write
fail with ENOSPC. Either way the store is held down while the disk is full,
so the inserter cannot free space by deleting segments behind the test's back.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fault_collector import FaultCollector, LoadSender, Stored

UP_ARGS = ("--batch-age", "0.2", "--spool-limit-mb", "64", "--max-request-mb", "1")


class FullDisk:
    """Fills the spool's disk and frees it again."""

    def __init__(self, spool: Path, tmp_path: Path) -> None:
        self.spool = spool
        self.flag = tmp_path / "disk-full"
        self.mounted = False

    def mount(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(self.spool)],
            capture_output=True,
            check=False,
        )
        self.mounted = mounted.returncode == 0

    def launcher_faults(self) -> tuple[str, ...]:
        return () if self.mounted else ("--disk-full-while", str(self.flag))

    def fill(self) -> None:
        if not self.mounted:
            self.flag.touch()
            return
        with open(self.spool / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        # the last few bytes too, so no request fits
        with open(self.spool / "filler-tail", "wb", buffering=0) as tail:
            try:
                while True:
                    tail.write(b"\0" * 512)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    def free(self) -> None:
        if self.mounted:
            for name in ("filler", "filler-tail"):
                (self.spool / name).unlink()
        else:
            self.flag.unlink()

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.spool)], check=False)


@contextmanager
def full_disk(spool: Path, tmp_path: Path) -> Iterator[FullDisk]:
    disk = FullDisk(spool, tmp_path)
    disk.mount()
    print("disk full:", "a 4 MB tmpfs" if disk.mounted else "ENOSPC from the fault launcher")
    try:
        yield disk
    finally:
        disk.unmount()


def test_a_full_spool_disk_throttles_and_recovers(tmp_path: Path) -> None:
    store_down = tmp_path / "store-down"
    collector = FaultCollector(tmp_path / "data", *UP_ARGS)
    with full_disk(collector.data_dir / "spool", tmp_path) as disk:
        collector.start("--store-down-while", str(store_down), *disk.launcher_faults())
        assert collector.process is not None
        sender = LoadSender(collector.data_dir, tmp_path / "load", "run-disk", "--pad", "10")
        try:
            sender.wait_acknowledged(more_than=100)
            store_down.touch()
            disk.fill()
            sender.wait_summary("http_429", 5)
            sender.wait_summary("grpc_resource_exhausted", 5)
            assert collector.health()["status"] == "ok"
            while_full = len(sender.acknowledged())
            time.sleep(1.0)  # still full: nothing more is acknowledged
            assert len(sender.acknowledged()) == while_full

            disk.free()
            sender.wait_acknowledged(more_than=while_full + 100)
            store_down.unlink()
            summary = sender.stop()
            collector.wait_drained()
            assert not (collector.data_dir / "spool" / "rejected").exists()
            stored = Stored.read(collector, "run-disk")
            collector.stop()
        finally:
            sender.kill()
            collector.kill()

    print(f"sender: {summary}")
    assert summary["retry_after_seen"] == ["5"]
    assert summary["grpc_retry_delay_seen"] == [5.0]
    assert any(os.strerror(errno.ENOSPC) in message for message in summary["throttle_messages"])
    stored.assert_exactly_once(sender.acknowledged())
