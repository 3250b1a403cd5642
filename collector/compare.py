"""``forktrace compare RUN A B``: two branches of a run side by side, in the terminal.

Each branch's outcome, duration, cost and tokens come from the
``forktrace_branches`` view, its tool calls and decisions from
``forktrace_tool_calls`` and ``forktrace_decisions``; its steps (model calls,
tool calls, decisions, handoffs in start order, nested branches included) from
the run's spans. Two branches diverge at the first step where they did
something different: another tool or other arguments, another model, another
choice. Which agent did it does not count, since sibling branches usually run
differently named workers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from forktrace.collector import views
from forktrace.collector.reader import Reader
from forktrace.collector.report.data import (
    CONTAINER_KINDS,
    ReportError,
    in_subtree,
    run_spans,
)


@dataclass(frozen=True)
class Step:
    kind: str
    agent: str
    text: str
    failed: bool
    signature: tuple[Any, ...]


@dataclass
class Side:
    """One branch: its row of forktrace_branches and what it did."""

    branch: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    tools: Counter[str] = field(default_factory=Counter)
    decisions: dict[str, str] = field(default_factory=dict)  # question -> chosen


@dataclass
class Comparison:
    run_id: str
    a: Side
    b: Side
    siblings: bool
    diverged_at: int | None  # index of the first differing step; None if none differs


def resolve_branch(branches: list[dict[str, Any]], spec: str) -> dict[str, Any]:
    """The branch ``spec`` names: an index path (``1``, ``0.2``), else a label,
    else a prefix of the branch id."""
    for match in (
        lambda b: b["branch_path"] == spec,
        lambda b: b["label"] == spec,
        lambda b: b["branch_id"].startswith(spec),
    ):
        found = [b for b in branches if match(b)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            listed = ", ".join(f"{b['branch_path']} ({b['branch_id']})" for b in found)
            raise ReportError(f"{spec!r} names {len(found)} branches: {listed}; use its path or id")
    known = ", ".join(f"{b['branch_path']} {b['label']}".strip() for b in branches) or "none"
    raise ReportError(f"no branch {spec!r} in this run; its branches: {known}")


def compare(reader: Reader, run_id: str, spec_a: str, spec_b: str) -> Comparison:
    run_id = views.resolve_run_id(reader, run_id)
    branches = views.run_view(reader, "forktrace_branches", run_id)
    if not branches:
        raise ReportError(f"run {run_id!r} has no branches (or does not exist)")
    chosen = [resolve_branch(branches, spec) for spec in (spec_a, spec_b)]
    if chosen[0]["branch_id"] == chosen[1]["branch_id"]:
        raise ReportError("both names give the same branch")

    tools = views.run_view(reader, "forktrace_tool_calls", run_id)
    decisions = views.run_view(reader, "forktrace_decisions", run_id)
    tool_by_span = {t["span_id"]: t for t in tools}
    decision_by_span = {d["span_id"]: d for d in decisions}
    spans = run_spans(reader, run_id)

    sides = []
    for branch in chosen:
        root = branch["branch_path"]
        side = Side(branch)
        for span in spans:
            if span.kind in CONTAINER_KINDS or not in_subtree(span.branch_path, root):
                continue
            side.steps.append(
                _step(span, tool_by_span.get(span.span_id), decision_by_span.get(span.span_id))
            )
        side.tools.update(t["tool_name"] for t in tools if in_subtree(t["branch_path"], root))
        side.decisions.update(
            (d["question"], d["chosen"]) for d in decisions if in_subtree(d["branch_path"], root)
        )
        sides.append(side)
    a, b = sides
    return Comparison(
        run_id=run_id,
        a=a,
        b=b,
        siblings=a.branch["fork_id"] == b.branch["fork_id"],
        diverged_at=_first_difference(
            [s.signature for s in a.steps], [s.signature for s in b.steps]
        ),
    )


def _step(span: Any, tool: dict[str, Any] | None, decision: dict[str, Any] | None) -> Step:
    if span.kind == "tool":
        arguments = tool["arguments"] if tool else span.tool_arguments
        text = f"tool {span.tool_name}({_short(arguments, 60)})"
        signature: tuple[Any, ...] = ("tool", span.tool_name, span.tool_arguments_hash)
    elif span.kind == "llm":
        text = f"model {span.model or span.name}"
        signature = ("llm", span.model)
    elif span.kind == "decision":
        question = decision["question"] if decision else span.name
        text = f"decision {_short(question, 40)} → {span.chosen}"
        signature = ("decision", question, span.chosen)
    else:
        text = f"{span.kind} {span.name}"
        signature = (span.kind, span.name)
    if span.failed:
        text += f"  ✗ {_short(span.status_message, 50)}"
    return Step(span.kind, span.agent, text, span.failed, (*signature, span.failed))


def _first_difference(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> int | None:
    for index, (left, right) in enumerate(zip(a, b, strict=False)):
        if left != right:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def _short(text: str, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- printing ----------------------------------------------------------------

_OUTCOME_STYLE = {"won": "bold green", "failed": "bold red", "lost": "dim", "abandoned": "yellow",
                  "cancelled": "dim", "merged": "magenta", "completed": "cyan"}  # fmt: skip
MAX_STEPS = 60


def print_comparison(
    comparison: Comparison, file: TextIO | None = None, width: int | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    from forktrace.collector.report.render import duration, money, number

    console = Console(file=file, width=width, soft_wrap=False)
    a, b = comparison.a.branch, comparison.b.branch

    def title(branch: dict[str, Any]) -> str:
        return f"{branch['branch_path']} {branch['label']}".strip()

    console.print(f"[bold]run {comparison.run_id}[/]: branch {title(a)} vs {title(b)}")
    if not comparison.siblings:
        console.print("[yellow]note: these branches belong to different forks, not siblings[/]")

    summary = Table(show_header=True, header_style="bold")
    summary.add_column("")
    summary.add_column(title(a))
    summary.add_column(title(b))

    def outcome(branch: dict[str, Any]) -> str:
        style = _OUTCOME_STYLE.get(branch["outcome"], "")
        reason = f" ({branch['outcome_reason']})" if branch["outcome_reason"] else ""
        return f"[{style}]{branch['outcome']}[/]{reason}" if style else branch["outcome"] + reason

    def agents(side: Side) -> str:
        # who did the branch's work: its steps' agents (the branch span itself
        # carries the agent that opened the fork)
        return ", ".join(dict.fromkeys(s.agent for s in side.steps if s.agent)) or "-"

    rows = [
        ("agents", agents(comparison.a), agents(comparison.b)),
        ("outcome", outcome(a), outcome(b)),
        ("duration", duration(a["duration_ms"]), duration(b["duration_ms"])),
        ("cost", money(a["cost"]), money(b["cost"])),
        ("tokens in / out", f"{number(a['input_tokens'])} / {number(a['output_tokens'])}",
         f"{number(b['input_tokens'])} / {number(b['output_tokens'])}"),
        ("model calls", number(a["llm_calls"]), number(b["llm_calls"])),
        ("tool calls", number(a["tool_calls"]), number(b["tool_calls"])),
        ("decisions", number(a["decisions"]), number(b["decisions"])),
        ("errors", number(a["errors"]), number(b["errors"])),
        ("steps", str(len(comparison.a.steps)), str(len(comparison.b.steps))),
    ]  # fmt: skip
    for row in rows:
        summary.add_row(*row)
    console.print(summary)

    at = comparison.diverged_at
    if at is None:
        console.print("[bold]no divergence[/]: the same steps in the same order")
    else:
        console.print(f"[bold]diverged at step {at + 1}[/]")
    steps = Table(show_header=True, header_style="bold", title="steps")
    steps.add_column("#", justify="right")
    steps.add_column(title(a), overflow="fold")
    steps.add_column(title(b), overflow="fold")
    count = max(len(comparison.a.steps), len(comparison.b.steps))
    for index in range(min(count, MAX_STEPS)):
        cells = []
        for side in (comparison.a, comparison.b):
            step = side.steps[index] if index < len(side.steps) else None
            cells.append(
                "" if step is None else f"[red]{step.text}[/]" if step.failed else step.text
            )
        marker = f"{index + 1} ◀ diverged" if index == at else str(index + 1)
        steps.add_row(marker, *cells, style="bold" if index == at else None)
    console.print(steps)
    if count > MAX_STEPS:
        console.print(f"… {count - MAX_STEPS} more steps; `forktrace report` shows them all")

    tools = Table(show_header=True, header_style="bold", title="tool calls")
    tools.add_column("tool")
    tools.add_column(title(a), justify="right")
    tools.add_column(title(b), justify="right")
    for name in sorted(set(comparison.a.tools) | set(comparison.b.tools)):
        tools.add_row(name, str(comparison.a.tools[name]), str(comparison.b.tools[name]))
    if tools.row_count:
        console.print(tools)

    decisions = Table(show_header=True, header_style="bold", title="decisions")
    decisions.add_column("question", overflow="fold")
    decisions.add_column(title(a), overflow="fold")
    decisions.add_column(title(b), overflow="fold")
    for question in list(dict.fromkeys([*comparison.a.decisions, *comparison.b.decisions])):
        decisions.add_row(
            question,
            comparison.a.decisions.get(question, ""),
            comparison.b.decisions.get(question, ""),
        )
    if decisions.row_count:
        console.print(decisions)
