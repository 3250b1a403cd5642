"""Write the scripted session into a forktrace data directory.

Run as a script (``python populate.py DATA_DIR``): the CLI tests need data in a
directory of their own, and chDB opens one path per process, so it is written
from a process of its own too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import scenario

from forktrace.collector import config, schema, store


def main(data_dir: str) -> None:
    client = store.connect(engine_path=config.engine_path(Path(data_dir)))
    schema.apply(client)
    scenario.insert_session(client)
    client.close()


if __name__ == "__main__":
    main(sys.argv[1])
