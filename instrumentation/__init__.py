"""forktrace: make parallel AI-agent work legible.

Record runs, agents, forks, branches, decisions, tool and model calls as
OpenTelemetry spans whose lineage (session, run, agent, fork, branch) is
stamped on every span inside a run::

    import forktrace

    forktrace.init(service_name="my-agents")
    with forktrace.run("fix-bug", goal="make the tests pass"):
        with forktrace.fork("approach", strategy="best_of") as f:
            ...
"""

__version__ = "0.1.0"

from forktrace.config import ConfigError
from forktrace.context import Lineage, LineageSpanProcessor, current_lineage, wrap
from forktrace.delivery import dropped_spans
from forktrace.fork import Branch, Fork, branch, current_fork
from forktrace.integrations import instrument, uninstrument
from forktrace.propagation import branch_from
from forktrace.semconv import (
    BranchOutcome,
    DecisionMaker,
    ForkStrategy,
    InterventionKind,
    RunOutcome,
)
from forktrace.setup import init, shutdown
from forktrace.spans import LLM, Agent, Decision, Handoff, Run, Tool, intervene

# The API reads as verbs and nouns of the work: forktrace.run(...), forktrace.fork(...).
run = Run
agent = Agent
fork = Fork
decision = Decision
tool = Tool
llm = LLM
handoff = Handoff

__all__ = [
    "LLM",
    "Agent",
    "Branch",
    "BranchOutcome",
    "ConfigError",
    "Decision",
    "DecisionMaker",
    "Fork",
    "ForkStrategy",
    "Handoff",
    "InterventionKind",
    "Lineage",
    "LineageSpanProcessor",
    "Run",
    "RunOutcome",
    "Tool",
    "__version__",
    "agent",
    "branch",
    "branch_from",
    "current_fork",
    "current_lineage",
    "decision",
    "dropped_spans",
    "fork",
    "handoff",
    "init",
    "instrument",
    "intervene",
    "llm",
    "run",
    "shutdown",
    "tool",
    "uninstrument",
    "wrap",
]
