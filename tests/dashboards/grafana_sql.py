"""Turn a panel's SQL into what the ClickHouse datasource sends to ClickHouse.

Three steps, in the plugin's order:

1. ``$__conditionalAll(condition, $var)`` (the plugin's frontend,
   ``CHDatasource.applyConditionalAll``): the condition, or ``1=1`` when the
   variable is empty or "All";
2. template variables (Grafana's ``templateSrv.replace`` with the plugin's
   ``format``): a single value goes in as it is (so SQL quotes it), several
   values as ``'a','b'``; unknown ``$names`` are left alone;
3. the backend macros (``pkg/macros/macros.go``): ``$__timeFilter(col)``,
   ``$__fromTime``, ``$__interval_s`` and the rest, with the same output text.
   An unknown macro is an error, as it is in the plugin.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

ALL = "$__all"


@dataclass
class QueryContext:
    """What Grafana knows when it runs a panel: time range, interval, variables."""

    time_from: datetime
    time_to: datetime
    interval_ms: int = 60_000
    #: name -> current value (a string, a list of strings, or ALL).
    variables: dict[str, str | list[str]] = field(default_factory=dict)
    #: name -> every option, for variables set to ALL.
    options: dict[str, list[str]] = field(default_factory=dict)


def expand(sql: str, ctx: QueryContext) -> str:
    sql = _conditional_all(sql, ctx.variables)
    sql = _template_variables(sql, ctx)
    return _backend_macros(sql, ctx)


# --- 1. $__conditionalAll ----------------------------------------------------

_CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_NAME = re.compile(r"(?<=\$\{)\w+(?=\})|(?<=\$)\w+")


def _conditional_all(sql: str, variables: Mapping[str, str | list[str]]) -> str:
    at = sql.rfind(_CONDITIONAL_ALL)
    while at != -1:
        args, end = _macro_args(sql, at + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll takes 2 arguments, got {args!r}")
        condition, variable = args
        phrase = condition
        name = _VARIABLE_NAME.search(variable.strip())
        if name:
            value = variables.get(name[0], "")
            flat = ",".join(value) if isinstance(value, list) else value
            if flat in ("", ALL):
                phrase = "1=1"
        sql = sql[:at] + phrase + sql[end:]
        at = sql.rfind(_CONDITIONAL_ALL)
    return sql


# --- 2. template variables ----------------------------------------------------

_TEMPLATE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")


def _template_variables(sql: str, ctx: QueryContext) -> str:
    builtins = {
        "__from": str(_ms(ctx.time_from)),
        "__to": str(_ms(ctx.time_to)),
        "__interval_ms": str(ctx.interval_ms),
        "__interval": f"{max(ctx.interval_ms // 1000, 1)}s",
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        if name in builtins:
            return builtins[name]
        if name not in ctx.variables:
            return match[0]  # not a variable: a macro, or text the plugin leaves alone
        value = ctx.variables[name]
        if value == ALL or value == [ALL]:
            value = ctx.options.get(name, [])
        if isinstance(value, list):
            return "'" + "','".join(value) + "'"
        return value

    return _TEMPLATE.sub(replace, sql)


# --- 3. backend macros --------------------------------------------------------


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _one(args: Sequence[str], name: str) -> str:
    if len(args) != 1:
        raise ValueError(f"$__{name}: expected 1 argument, received {len(args)}")
    return args[0]


def _range(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _macros(ctx: QueryContext) -> dict[str, Callable[[Sequence[str]], str]]:
    start, end = ctx.time_from, ctx.time_to
    dt_from, dt_to = f"toDateTime({_seconds(start)})", f"toDateTime({_seconds(end)})"
    ms_from = f"fromUnixTimestamp64Milli({_ms(start)})"
    ms_to = f"fromUnixTimestamp64Milli({_ms(end)})"
    date_from, date_to = f"toDate('{start:%Y-%m-%d}')", f"toDate('{end:%Y-%m-%d}')"
    seconds = max(math.floor(ctx.interval_ms / 1000), 1)
    millis = max(ctx.interval_ms, 1)

    def date_time_filter(args: Sequence[str]) -> str:
        if len(args) != 2:
            raise ValueError(f"$__dateTimeFilter: expected 2 arguments, received {len(args)}")
        return f"({_range(args[0], date_from, date_to)}) AND ({_range(args[1], dt_from, dt_to)})"

    return {
        "fromTime": lambda args: dt_from,
        "toTime": lambda args: dt_to,
        "fromTime_ms": lambda args: ms_from,
        "toTime_ms": lambda args: ms_to,
        "timeFilter": lambda args: _range(_one(args, "timeFilter"), dt_from, dt_to),
        "timeFilter_ms": lambda args: _range(_one(args, "timeFilter_ms"), ms_from, ms_to),
        "dateFilter": lambda args: _range(_one(args, "dateFilter"), date_from, date_to),
        "dateTimeFilter": date_time_filter,
        "dt": date_time_filter,
        "timeInterval": lambda args: (
            f"toStartOfInterval(toDateTime({_one(args, 'timeInterval')}), INTERVAL {seconds} second)"
        ),
        "timeInterval_ms": lambda args: (
            f"toStartOfInterval(toDateTime64({_one(args, 'timeInterval_ms')}, 3), "
            f"INTERVAL {millis} millisecond)"
        ),
        "interval_s": lambda args: str(seconds),
    }


_MACRO = re.compile(r"\$__(\w+)")


def _backend_macros(sql: str, ctx: QueryContext) -> str:
    macros = _macros(ctx)
    out, pos = [], 0
    for match in _MACRO.finditer(sql):
        if match.start() < pos:
            continue
        name = match[1]
        if name not in macros:
            raise ValueError(f"undefined macro: $__{name}")
        args: list[str] = []
        end = match.end()
        if end < len(sql) and sql[end] == "(":
            args, end = _macro_args(sql, end)
        out.append(sql[pos : match.start()])
        out.append(macros[name]([a.strip() for a in args]))
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Arguments of the call whose ``(`` is at ``open_paren``, split on top-level
    commas; returns them and the index after the closing ``)``."""
    depth, args, start = 0, [], open_paren + 1
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise ValueError(f"unbalanced parentheses in macro call at {open_paren}: {sql[open_paren:]!r}")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)
