"""The report document: everything one HTML report shows, as one JSON-able dict.

Every fact about forks, branches, outcomes, decisions, tools, cost and waste
comes from the decision layer's views through ``forktrace.collector.views``
(``forktrace_runs``,
``forktrace_session_runs``, ``forktrace_forks``, ``forktrace_branches``,
``forktrace_decisions``, ``forktrace_tool_calls``, ``forktrace_interventions``;
see docs/sql.md), so the report, the CLI and Grafana give the same answers.
The only other reads are a narrow query of the run's normalised spans
(``forktrace_spans``) for the swimlanes and of their raw attributes
(``otel_traces``) for the details panel.

Shape of the document (times are milliseconds since ``origin``, the earliest
start among the runs shown)::

    format, generator, generated_at, title, session_id (or None), origin, end_ms
    activities: ["thinking", "tool", "waiting", "done", "failed"]
    runs: [{run_id, tag ("#1"... in a session, else ""), name, goal, outcome, session_id, span, start_ms, end_ms,
            duration_ms, agents, totals: {spans, forks, branches, decisions,
            tool_calls, llm_calls, errors, interventions, input_tokens,
            output_tokens, cost, waste_tokens, waste_cost,
            waste_token_share, waste_cost_share},
            forks: [{id, name, strategy, criterion, parent_path, winner,
                     winner_label, winner_path, start_ms, duration_ms, failed}],
            branches: [{id, fork_id, index, path, label, agent, outcome, reason,
                        wasted, start_ms, duration_ms, input_tokens,
                        output_tokens, cost, tool_calls, decisions, errors}],
            decisions: [{span, t_ms, agent, branch_path, question, options,
                         chosen, reasoning, confidence, maker}],
            interventions: [{span, t_ms, kind, author, message, agent, branch_path}],
            tools: [{span, t_ms, name, arguments, result, status, error,
                     duration_ms, agent, branch_path}]}]
    lanes: [{run, agent, path, label, span, outcome, end_ms}]
    spans: {id, lane, start, end, activity, name}     (parallel arrays)
    markers: [{type: fork|join|intervention, lane, t, label, span}]
    details: {span_id: {name, kind, status, status_message, start, duration_ms,
                        agent, branch_path, attributes, events: [{name, t_ms, attributes}]}}

Values longer than ``max_value_chars`` in ``details`` are cut with
forktrace's truncation marker and their original length, never silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from forktrace import __version__, semconv
from forktrace.collector import views
from forktrace.collector.reader import Reader

FORMAT = "forktrace.report/1"
ACTIVITIES = ("thinking", "tool", "waiting", "done", "failed")
THINKING, TOOL, WAITING, DONE, FAILED = range(len(ACTIVITIES))

# Spans that contain other work: drawn as their lane's background ("waiting"
# while nothing inside them is running).
CONTAINER_KINDS = frozenset({"run", "agent", "fork", "branch", "chain", "other"})

DEFAULT_MAX_VALUE_CHARS = 20_000


class ReportError(LookupError):
    """The run or session asked for is not in the data."""


def _ms(moment: dt.datetime | str | int, origin_ns: int) -> float:
    ns = moment if isinstance(moment, int) else _ns(moment)
    return round((ns - origin_ns) / 1e6, 3)


def _ns(moment: dt.datetime | str) -> int:
    """Epoch nanoseconds of a time the reader returned. A naive time is UTC
    (clickhouse-connect returns naive times from a UTC server, aware ones
    otherwise); every time in the report goes through here, so offsets agree.
    A string is the ISO form a collector endpoint sends for column types its
    reader does not turn back into datetimes (aggregate-function columns)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


# --- the run's own spans ------------------------------------------------------


@dataclass(frozen=True)
class Span:
    span_id: str
    parent_span_id: str
    kind: str
    name: str
    agent: str
    branch_path: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    model: str
    tool_name: str
    tool_arguments: str
    tool_arguments_hash: int
    chosen: str
    event_times_ns: tuple[int, ...]
    event_names: tuple[str, ...]
    event_attributes: tuple[dict[str, str], ...]

    @property
    def failed(self) -> bool:
        return self.status == "Error"

    @property
    def activity(self) -> int:
        if self.kind in CONTAINER_KINDS:
            return WAITING
        if self.failed:
            return FAILED
        return TOOL if self.kind == "tool" else THINKING


_SPAN_COLUMNS = """
    span_id, parent_span_id, toString(kind) AS kind, toString(name) AS name,
    toString(agent) AS agent, branch_path,
    start, end,
    toString(status) AS status, status_message, toString(model) AS model,
    toString(tool_name) AS tool_name, tool_arguments, tool_arguments_hash,
    attributes['forktrace.decision.chosen'] AS chosen,
    event_times,
    arrayMap(n -> toString(n), event_names) AS event_names, event_attributes
"""


def in_subtree(path: str, root: str) -> bool:
    """Whether branch path ``path`` lies in the subtree of branch ``root``."""
    return path == root or path.startswith(f"{root}.")


def run_spans(reader: Reader, run_id: str) -> list[Span]:
    """The run's spans in start order (one per span id): the narrow per-span
    read the views do not cover."""
    result = reader.query(
        f"SELECT {_SPAN_COLUMNS} FROM forktrace_spans WHERE run_id = {{run_id:String}} "
        "ORDER BY start, span_id",
        {"run_id": run_id},
    )
    unique: dict[str, Span] = {}
    for row in result.dicts():
        row["start_ns"], row["end_ns"] = _ns(row.pop("start")), _ns(row.pop("end"))
        row["event_times_ns"] = tuple(_ns(moment) for moment in row.pop("event_times"))
        row["event_names"] = tuple(row["event_names"])
        row["event_attributes"] = tuple(dict(a) for a in row["event_attributes"])
        unique[row["span_id"]] = Span(**row)  # a span exported twice: keep one copy
    return list(unique.values())


def _raw_attributes(
    reader: Reader, trace_ids: Sequence[str], span_ids: set[str]
) -> dict[str, tuple[dict[str, str], list[tuple[int, str, dict[str, str]]]]]:
    """Every attribute and event of the run's spans, from otel_traces: the
    normalised spans keep only forktrace's own attributes."""
    if not trace_ids:
        return {}
    result = reader.query(
        "SELECT SpanId, SpanAttributes, ServiceName, Events.Timestamp AS event_times, "
        "Events.Name AS event_names, Events.Attributes AS event_attributes "
        "FROM otel_traces WHERE TraceId IN {trace_ids:Array(String)}",
        {"trace_ids": list(trace_ids)},
    )
    found = {}
    for span_id, attributes, service, times, names, event_attributes in result.rows:
        if span_id in span_ids:
            merged = {"service.name": service, **dict(attributes)}
            found[span_id] = (
                merged,
                list(zip(times, names, map(dict, event_attributes), strict=True)),
            )
    return found


def _cut(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return f"{value[:limit]}{semconv.TRUNCATION_MARKER} (original length {len(value)})"


# --- building the document ----------------------------------------------------


@dataclass
class _Lanes:
    """One lane per (run, agent, branch path), in order of first appearance."""

    lanes: list[dict[str, Any]]
    index: dict[tuple[int, str, str], int]

    def assign(self, run: int, spans: Sequence[Span], origin_ns: int) -> list[int]:
        """The lane of each span. A branch span joins the lane of the agent that
        works in its branch, so a branch run by one agent is one lane, not two."""
        lanes = [-1] * len(spans)
        for i, span in enumerate(spans):
            if span.kind != "branch":
                lanes[i] = self._lane(run, span.agent, span.branch_path, span, origin_ns)
        worker: dict[str, str] = {}  # branch path -> the first agent seen working in it
        for lane_run, agent, path in self.index:
            if lane_run == run:
                worker.setdefault(path, agent)
        for i, span in enumerate(spans):
            if span.kind == "branch":
                agent = worker.get(span.branch_path, span.agent)
                lanes[i] = self._lane(run, agent, span.branch_path, span, origin_ns)
        return lanes

    def _lane(self, run: int, agent: str, path: str, span: Span, origin_ns: int) -> int:
        key = (run, agent, path)
        if key not in self.index:
            self.index[key] = len(self.lanes)
            self.lanes.append(
                {
                    "run": run,
                    "agent": agent,
                    "path": path,
                    "span": span.span_id,
                    "end_ms": _ms(span.end_ns, origin_ns),
                }
            )
        lane = self.lanes[self.index[key]]
        lane["end_ms"] = max(lane["end_ms"], _ms(span.end_ns, origin_ns))
        if span.kind == "branch":
            lane["span"] = span.span_id  # clicking the lane's background opens the branch
        return self.index[key]


def _natural_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.split(".") if part.isdigit())


def _run_section(reader: Reader, row: dict[str, Any], origin_ns: int) -> dict[str, Any]:
    run_id = row["run_id"]
    forks = views.run_view(reader, "forktrace_forks", run_id)
    branches = views.run_view(reader, "forktrace_branches", run_id)
    decisions = views.run_view(reader, "forktrace_decisions", run_id)
    tools = views.run_view(reader, "forktrace_tool_calls", run_id)
    interventions = views.run_view(reader, "forktrace_interventions", run_id)
    return {
        "run_id": run_id,
        "tag": "",
        "name": row["name"],
        "goal": row["goal"],
        "outcome": row["status"],
        "session_id": row["session_id"],
        "span": "",
        "start_ms": _ms(row["start"], origin_ns),
        "end_ms": _ms(row["end"], origin_ns),
        "duration_ms": row["duration_ms"],
        "agents": list(row["agents"]),
        "totals": {
            **{
                key: row[key]
                for key in (
                    "forks",
                    "branches",
                    "decisions",
                    "tool_calls",
                    "llm_calls",
                    "errors",
                    "interventions",
                    "input_tokens",
                    "output_tokens",
                    "cost",
                )
            },
            "waste_tokens": row["wasted_tokens"] or 0,
            "waste_cost": row["wasted_cost"],
            "waste_token_share": row["waste_share"],
            "waste_cost_share": row["waste_cost_share"],
        },
        "forks": [
            {
                "id": f["fork_id"],
                "name": f["name"],
                "strategy": f["strategy"],
                "criterion": f["criterion"],
                "parent_path": f["parent_branch_path"],
                "winner": f["winner_branch_id"],
                "winner_label": f["winner_label"] or f["winner_path"],
                "winner_path": f["winner_path"],
                "start_ms": _ms(f["start"], origin_ns),
                "duration_ms": f["duration_ms"],
                "failed": bool(f["failed"]),
            }
            for f in forks
        ],
        "branches": sorted(
            (
                {
                    "id": b["branch_id"],
                    "fork_id": b["fork_id"],
                    "index": b["branch_index"],
                    "path": b["branch_path"],
                    "label": b["label"],
                    "agent": b["agent"],
                    "outcome": b["outcome"],
                    "reason": b["outcome_reason"],
                    "wasted": bool(b["is_waste"]),
                    "start_ms": _ms(b["start"], origin_ns) if b["start"] is not None else None,
                    "duration_ms": b["duration_ms"],
                    "input_tokens": b["input_tokens"] or 0,
                    "output_tokens": b["output_tokens"] or 0,
                    "cost": b["cost"],
                    "tool_calls": b["tool_calls"] or 0,
                    "decisions": b["decisions"] or 0,
                    "errors": b["errors"] or 0,
                }
                for b in branches
            ),
            key=lambda b: _natural_key(b["path"]),
        ),
        "decisions": [
            {
                "span": d["span_id"],
                "t_ms": _ms(d["time"], origin_ns),
                "agent": d["agent"],
                "branch_path": d["branch_path"],
                "question": d["question"],
                "options": list(d["options"]),
                "chosen": d["chosen"],
                "reasoning": d["reasoning"],
                "confidence": d["confidence"],
                "maker": d["maker"],
            }
            for d in decisions
        ],
        "interventions": [
            {
                "span": i["span_id"],
                "t_ms": _ms(i["time"], origin_ns),
                "kind": i["kind"],
                "author": i["author"],
                "message": i["message"],
                "agent": i["agent"],
                "branch_path": i["branch_path"],
            }
            for i in interventions
        ],
        "tools": [
            {
                "span": t["span_id"],
                "t_ms": _ms(t["time"], origin_ns),
                "name": t["tool_name"],
                "arguments": t["arguments"],
                "result": t["result"],
                "status": "Error" if t["status"] == "error" else "Ok",
                "error": t["error"],
                "duration_ms": t["duration_ms"],
                "agent": t["agent"],
                "branch_path": t["branch_path"],
            }
            for t in tools
        ],
    }


def run_tag(index: int) -> str:
    """How a session report names its runs where space is short (lane labels)."""
    return f"#{index + 1}"


def _lane_label(lane: dict[str, Any], labels: dict[str, str], many_runs: bool) -> str:
    parts = [lane["agent"] or "run"]
    if lane["path"]:
        label = labels.get(lane["path"])
        parts.append(f"{lane['path']} {label}" if label else lane["path"])
    text = " · ".join(parts)
    return f"{run_tag(lane['run'])} {text}" if many_runs else text


def build(
    reader: Reader,
    run_id: str | None = None,
    *,
    session_id: str | None = None,
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The report document for one run, or for every run of a session."""
    runs = _run_rows(reader, run_id, session_id)
    origin_ns = min(_ns(r["start"]) for r in runs)
    end_ns = max(_ns(r["end"]) for r in runs)
    sections = [_run_section(reader, row, origin_ns) for row in runs]
    if len(sections) > 1:
        for index, section in enumerate(sections):
            section["tag"] = run_tag(index)

    lanes = _Lanes([], {})
    spans: dict[str, list[Any]] = {
        k: [] for k in ("id", "lane", "start", "end", "activity", "name")
    }
    markers: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for run_index, (row, section) in enumerate(zip(runs, sections, strict=True)):
        run_spans_ = run_spans(reader, row["run_id"])
        raw = _raw_attributes(reader, row["trace_ids"], {s.span_id for s in run_spans_})
        for span, lane in zip(
            run_spans_, lanes.assign(run_index, run_spans_, origin_ns), strict=True
        ):
            _add_span(spans, span, lane, origin_ns)
            markers.extend(_markers(span, lane, origin_ns))
            details[span.span_id] = _details(
                span, raw.get(span.span_id), origin_ns, max_value_chars
            )
            if span.kind == "run" and not section["span"]:
                section["span"] = span.span_id
        labels = {b["path"]: b["label"] for b in section["branches"]}
        outcomes = {b["path"]: b["outcome"] for b in section["branches"]}
        for lane in lanes.lanes:
            if lane["run"] == run_index:
                lane["label"] = _lane_label(lane, labels, len(runs) > 1)
                lane["outcome"] = outcomes.get(lane["path"]) or (
                    "failed" if row["status"] == "failed" and not lane["path"] else None
                )

    lane_order = sorted(range(len(lanes.lanes)), key=lambda i: _lane_sort_key(lanes.lanes[i]))
    renumber = {old: new for new, old in enumerate(lane_order)}
    spans["lane"] = [renumber[i] for i in spans["lane"]]
    for marker in markers:
        marker["lane"] = renumber[marker["lane"]]

    title = f"session {session_id}" if session_id else (runs[0]["name"] or runs[0]["run_id"])
    return {
        "format": FORMAT,
        "generator": f"forktrace {__version__}",
        "generated_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "title": title,
        "session_id": session_id,
        "origin": _iso(origin_ns),
        "end_ms": _ms(end_ns, origin_ns),
        "activities": list(ACTIVITIES),
        "runs": sections,
        "lanes": [lanes.lanes[i] for i in lane_order],
        "spans": spans,
        "markers": markers,
        "details": details,
    }


def _lane_sort_key(lane: dict[str, Any]) -> tuple[Any, ...]:
    # Per run: the run's own lane first, then branches in tree order, agents by name.
    return (
        lane["run"],
        _natural_key(lane["path"]),
        lane["path"],
        lane["agent"] != "",
        lane["agent"],
    )


def _run_rows(reader: Reader, run_id: str | None, session_id: str | None) -> list[dict[str, Any]]:
    if session_id:
        rows = views.session_runs(reader, session_id)
        if not rows:
            raise ReportError(f"no runs in session {session_id!r}")
        if run_id:
            # the asked-for run first, its session's other runs beside it
            chosen = views.resolve_run_id(reader, run_id)
            rows.sort(key=lambda r: r["run_id"] != chosen)
        return rows
    if not run_id:
        raise ReportError("give a run id, or a session")
    return [views.run(reader, views.resolve_run_id(reader, run_id))]


def _add_span(columns: dict[str, list[Any]], span: Span, lane: int, origin_ns: int) -> None:
    columns["id"].append(span.span_id)
    columns["lane"].append(lane)
    columns["start"].append(_ms(span.start_ns, origin_ns))
    columns["end"].append(_ms(span.end_ns, origin_ns))
    columns["activity"].append(span.activity)
    columns["name"].append(span.name)


def _markers(span: Span, lane: int, origin_ns: int) -> Iterable[dict[str, Any]]:
    if span.kind == "fork":
        yield {
            "type": "fork",
            "lane": lane,
            "t": _ms(span.start_ns, origin_ns),
            "label": span.name,
            "span": span.span_id,
        }
        yield {
            "type": "join",
            "lane": lane,
            "t": _ms(span.end_ns, origin_ns),
            "label": span.name,
            "span": span.span_id,
        }
    for time_ns, name, attributes in zip(
        span.event_times_ns, span.event_names, span.event_attributes, strict=True
    ):
        if name == semconv.INTERVENTION_EVENT:
            what = attributes.get(semconv.INTERVENTION_KIND, "intervention")
            who = attributes.get(semconv.INTERVENTION_AUTHOR, "")
            yield {
                "type": "intervention",
                "lane": lane,
                "t": _ms(time_ns, origin_ns),
                "label": f"{what} by {who}" if who else what,
                "span": span.span_id,
            }


def _details(
    span: Span,
    raw: tuple[dict[str, str], list[tuple[int, str, dict[str, str]]]] | None,
    origin_ns: int,
    limit: int,
) -> dict[str, Any]:
    attributes, events = raw or (
        {},
        list(zip(span.event_times_ns, span.event_names, span.event_attributes, strict=True)),
    )
    return {
        "name": span.name,
        "kind": span.kind,
        "status": span.status,
        "status_message": _cut(span.status_message, limit),
        "start": _iso(span.start_ns),
        "duration_ms": round((span.end_ns - span.start_ns) / 1e6, 3),
        "agent": span.agent,
        "branch_path": span.branch_path,
        "attributes": {key: _cut(value, limit) for key, value in attributes.items()},
        "events": [
            {
                "name": name,
                "t_ms": _ms(time_ns, origin_ns),
                "attributes": {k: _cut(v, limit) for k, v in event_attributes.items()},
            }
            for time_ns, name, event_attributes in events
        ],
    }


def _iso(epoch_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch_ns / 1e9, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
