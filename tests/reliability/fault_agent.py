"""An agent traced by forktrace the normal way (init, batch processor, OTLP
exporter), doing a fixed amount of work in many tool calls.

Run as ``python fault_agent.py ENDPOINT PROTOCOL SPANS``; ENDPOINT ``none``
traces without exporting (the baseline). Prints one JSON line: seconds spent
working and shutting down, process CPU seconds, and forktrace.dropped_spans()
after shutdown. Any exception reaching the agent fails the run (exit 1).
"""

from __future__ import annotations

import json
import os
import sys
import time

import forktrace

EXPORT_TIMEOUT = 1.0


def work() -> int:
    return sum(i * i for i in range(1000))


def main() -> None:
    endpoint, protocol, spans = sys.argv[1], sys.argv[2], int(sys.argv[3])
    exporting = endpoint != "none"
    forktrace.init(
        service_name="fault-agent",
        endpoint=endpoint if exporting else None,
        protocol=protocol,
        export=exporting,
        export_timeout=EXPORT_TIMEOUT,
    )
    started = time.perf_counter()
    with forktrace.run("fault-run"):
        for step in range(spans - 1):
            with forktrace.tool("step", arguments={"step": step}):
                work()
    worked = time.perf_counter()
    forktrace.shutdown()
    stopped = time.perf_counter()
    cpu = os.times()
    print(
        json.dumps(
            {
                "work_seconds": worked - started,
                "shutdown_seconds": stopped - worked,
                "cpu_seconds": cpu.user + cpu.system,
                "dropped": forktrace.dropped_spans(),
                "export_timeout": EXPORT_TIMEOUT,
            }
        )
    )


if __name__ == "__main__":
    main()
