"""The rich tree of one run, as ``forktrace tree`` prints it.

The run at the root; under it, in time order, what happened outside any
branch (decisions, model and tool calls, interventions) and the forks; under a
fork its branches, coloured by outcome with the winner marked; under a branch
what happened in it, nested forks included. Built from a ``views.RunTree``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from forktrace.collector.views import RunTree

OUTCOME_STYLES = {
    "won": "bold green",
    "lost": "yellow",
    "failed": "bold red",
    "abandoned": "magenta",
    "cancelled": "bright_black",
    "merged": "cyan",
    "completed": "blue",
    "running": "cyan",
}
OUTCOME_MARKS = {"won": "★", "failed": "✗", "abandoned": "⊘", "cancelled": "⊘", "lost": "·"}
STATUS_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "bright_black"}

SNIPPET = 90


def duration(ms: int | None) -> str:
    if ms is None:
        return "?"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return f"{ms // 60_000}m{(ms % 60_000) / 1000:02.0f}s"


def tokens(count: int | None) -> str:
    count = count or 0
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.2f}M"


def dollars(cost: float | None) -> str:
    """A cost; an unknown one (an unpriced model) is shown as such, never as $0."""
    if cost is None:
        return "cost unknown"
    if 0 < cost < 0.0001:
        return f"${cost:.6f}"
    return f"${cost:.4f}" if cost < 1 else f"${cost:,.2f}"


def waste(run: dict[str, Any]) -> str:
    """A run's waste: its cost and share of the run's cost (of its tokens when unpriced)."""
    if not run["wasted_tokens"]:
        return ""
    if run["wasted_cost"] is not None and run["waste_cost_share"] is not None:
        return f"{dollars(run['wasted_cost'])} ({run['waste_cost_share']:.0%})"
    share = run["waste_share"]
    return f"{tokens(run['wasted_tokens'])} tok" + (f" ({share:.0%} of tokens)" if share else "")


def snippet(text: str | None, width: int = SNIPPET) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _at(value: dt.datetime | None, start: dt.datetime) -> str:
    if value is None:
        return ""
    return f"+{(value - start).total_seconds():.1f}s"


def _run_label(run: dict[str, Any]) -> Text:
    status = run["status"]
    label = Text.assemble(
        ("run ", "bold"),
        (run["name"] or run["run_id"], "bold"),
        "  ",
        (status, STATUS_STYLES.get(status, "cyan")),
        f"  {duration(run['duration_ms'])}",
        f"  {tokens(run['input_tokens'])} in / {tokens(run['output_tokens'])} out",
        f"  {dollars(run['cost'])}",
    )
    if run["wasted_tokens"]:
        label.append(f"  waste {waste(run)}", style="magenta")
    label.append(f"\n{run['run_id']}", style="bright_black")
    if run["session_id"]:
        label.append(f"  session {run['session_id']}", style="bright_black")
    return label


def _fork_label(fork: dict[str, Any]) -> str:
    parts = [f"[bold]⑂ fork {escape(fork['name'])}[/]"]
    if fork["strategy"]:
        parts.append(f"({escape(fork['strategy'])})")
    parts.append(f"{fork['branches'] or 0} branches")
    if fork["winner_label"]:
        parts.append(f"winner [green]{escape(fork['winner_label'])}[/]")
    if fork["criterion"]:
        parts.append(f"by {escape(fork['criterion'])}")
    return "  ".join(parts)


def _branch_label(branch: dict[str, Any]) -> str:
    outcome = branch["outcome"]
    style = OUTCOME_STYLES.get(outcome, "white")
    mark = OUTCOME_MARKS.get(outcome, "•")
    head = f"[{style}]{mark} {escape(branch['branch_path'])} {escape(branch['label'] or '')}  {outcome}[/]"
    parts = [head]
    if branch["outcome_reason"]:
        parts.append(f"[{style}]({escape(snippet(branch['outcome_reason'], 60))})[/]")
    parts.append(duration(branch["duration_ms"]))
    parts.append(f"{tokens((branch['input_tokens'] or 0) + (branch['output_tokens'] or 0))} tok")
    parts.append(dollars(branch["cost"]))
    if branch["tool_calls"]:
        parts.append(f"{branch['tool_calls']} tools")
    if branch["errors"]:
        parts.append(f"[red]{branch['errors']} errors[/]")
    return "  ".join(parts)


def _decision_label(d: dict[str, Any]) -> str:
    text = f"[cyan]? {escape(d['question'])}[/] → [bold]{escape(d['chosen'])}[/]"
    if d["options"]:
        # the options apart from the choice: "→ all three of a, b, all three" misread
        text += f"  [bright_black](options: {escape(' · '.join(d['options']))})[/]"
    if d["confidence"] is not None:
        text += f"  confidence {d['confidence']:.2f}"
    if d["agent"]:
        text += f"  [bright_black]{escape(d['maker'] or 'agent')} {escape(d['agent'])}[/]"
    if d["reasoning"]:
        text += f"\n[italic]“{escape(snippet(d['reasoning']))}”[/]"
    return text


def _tool_label(t: dict[str, Any]) -> str:
    call = f"{escape(t['tool_name'])}({escape(snippet(t['arguments'], 50))})"
    if t["status"] == "error":
        return f"[red]⚙ {call} failed: {escape(snippet(t['error'], 60))}[/]  {duration(t['duration_ms'])}"
    result = f" → {escape(snippet(t['result'], 50))}" if t["result"] else ""
    return f"⚙ {call}{result}  [bright_black]{duration(t['duration_ms'])}[/]"


def _llm_label(m: dict[str, Any]) -> str:
    text = (
        f"◆ {escape(m['model'] or 'model')}  {tokens(m['input_tokens'])} → "
        f"{tokens(m['output_tokens'])} tok  {dollars(m['cost'])}"
    )
    if m["agent"]:
        text += f"  [bright_black]{escape(m['agent'])}[/]"
    if m["status"] == "error":
        text = f"[red]{text}  failed: {escape(snippet(m['error'], 60))}[/]"
    if m["reasoning"]:
        text += f"\n[italic bright_black]{escape(snippet(m['reasoning']))}[/]"
    return text


def _intervention_label(i: dict[str, Any]) -> str:
    return (
        f"[bold magenta]✋ {escape(i['author'] or 'someone')} {escape(i['kind'])}[/]: "
        f"{escape(snippet(i['message']))}"
    )


def build(tree: RunTree, show_llm_calls: bool = True) -> Tree:
    """The rich renderable for a run."""
    start = tree.run["start"]
    # What happened directly in each branch, by branch id ('' = outside any
    # branch): ids, not paths, since two forks in a row number their branches alike.
    items: dict[str, list[tuple[Any, str | dict[str, Any]]]] = defaultdict(list)
    labelled = [
        (tree.decisions, _decision_label),
        (tree.tool_calls, _tool_label),
        (tree.llm_calls if show_llm_calls else [], _llm_label),
        (tree.interventions, _intervention_label),
    ]
    for rows, label in labelled:
        for row in rows:
            text = f"[bright_black]{_at(row['time'], start)}[/] {label(row)}"
            items[row["branch_id"]].append((row["time"], text))
    for fork in tree.forks:
        items[fork["parent_branch_id"]].append((fork["start"], fork))

    branches_by_fork: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for branch in tree.branches:
        branches_by_fork[branch["fork_id"]].append(branch)

    def fill(node: Tree, branch_id: str) -> None:
        for _, item in sorted(items.get(branch_id, []), key=lambda i: (i[0] is None, i[0])):
            if isinstance(item, str):
                node.add(item)
                continue
            fork_node = node.add(_fork_label(item))
            children = branches_by_fork.get(item["fork_id"], [])
            for branch in sorted(children, key=lambda b: (b["branch_index"], b["branch_id"])):
                fill(fork_node.add(_branch_label(branch)), branch["branch_id"])

    root = Tree(_run_label(tree.run), guide_style="bright_black")
    fill(root, "")
    return root
