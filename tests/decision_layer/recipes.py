"""The post-mortem recipes of docs/sql.md, as (title, sql) pairs."""

from __future__ import annotations

import re
from pathlib import Path

SQL_MD = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def recipes() -> list[tuple[str, str]]:
    text = SQL_MD.read_text(encoding="utf-8")
    section = text.split("\n## Recipes\n", 1)[1]
    found = []
    for block in re.split(r"\n### ", section)[1:]:
        title = block.splitlines()[0].strip()
        sql = re.search(r"```sql\n(.*?)```", block, re.DOTALL)
        if sql:
            found.append((title, sql[1].strip()))
    return found
