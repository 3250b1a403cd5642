"""Every attribute name and enum value forktrace writes or reads, in one place.

forktrace follows the OpenTelemetry GenAI semantic conventions where they
cover the work (agents, model calls, tools) and adds what they lack (runs,
forks, branches, decisions, interventions, lineage) under its own
``forktrace.`` prefix. The collector and the SQL layer read these same names,
so a rename here is a schema change.
"""

from __future__ import annotations

from enum import Enum

# --- OpenTelemetry GenAI conventions --------------------------------------

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # older name of gen_ai.provider.name, still read
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
ERROR_TYPE = "error.type"


class Operation(str, Enum):
    """Values of ``gen_ai.operation.name``."""

    INVOKE_AGENT = "invoke_agent"
    EXECUTE_TOOL = "execute_tool"
    CHAT = "chat"
    INVOKE_WORKFLOW = "invoke_workflow"
    PLAN = "plan"


# --- forktrace: span kinds -------------------------------------------------

KIND = "forktrace.kind"


class Kind(str, Enum):
    """Values of ``forktrace.kind``: what a span is in the semantic model."""

    RUN = "run"
    AGENT = "agent"
    LLM = "llm"
    TOOL = "tool"
    DECISION = "decision"
    FORK = "fork"
    BRANCH = "branch"
    HANDOFF = "handoff"


# --- forktrace: lineage, stamped on every span inside a run -----------------

SESSION_ID = "forktrace.session.id"
RUN_ID = "forktrace.run.id"
AGENT_NAME = "forktrace.agent.name"
FORK_ID = "forktrace.fork.id"
BRANCH_ID = "forktrace.branch.id"
BRANCH_PATH = "forktrace.branch.path"

LINEAGE_KEYS = (SESSION_ID, RUN_ID, AGENT_NAME, FORK_ID, BRANCH_ID, BRANCH_PATH)

# --- run -------------------------------------------------------------------

RUN_NAME = "forktrace.run.name"
RUN_GOAL = "forktrace.run.goal"
RUN_OUTCOME = "forktrace.run.outcome"


class RunOutcome(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# --- fork and branch -------------------------------------------------------

FORK_NAME = "forktrace.fork.name"
FORK_STRATEGY = "forktrace.fork.strategy"
FORK_BRANCH_COUNT = "forktrace.fork.branch_count"
FORK_WINNER = "forktrace.fork.winner"  # the winning branch's id
FORK_CRITERION = "forktrace.fork.criterion"


class ForkStrategy(str, Enum):
    ALL = "all"
    RACE = "race"
    BEST_OF = "best_of"
    VOTE = "vote"
    MAP = "map"


# Ids: a fork's id is its fork span's SpanId and a branch's id is its branch
# span's SpanId (16 lowercase hex digits), so the views join on SpanId. The run
# id is a uuid4 hex unless the user gives one. A branch path is the chain of
# branch indices from the run down, dot-separated ("1.0.2"); outside any
# branch it is the empty string.
#
# Which span carries what: a fork span has FORK_ID = its own id and the lineage
# of the branch it was opened in; a branch span has FORK_ID = its fork's id and
# BRANCH_ID / BRANCH_PATH = its own; every other span carries the innermost
# fork, branch and agent around it.

BRANCH_INDEX = "forktrace.branch.index"
BRANCH_LABEL = "forktrace.branch.label"
BRANCH_OUTCOME = "forktrace.branch.outcome"
BRANCH_OUTCOME_REASON = "forktrace.branch.outcome_reason"


# A branch's outcome is often known only after its span ended (the losers of a
# fork are known when the fork chooses). The fork span therefore carries one
# BRANCH_OUTCOME_EVENT per branch when it ends, with BRANCH_ID, BRANCH_OUTCOME
# and BRANCH_OUTCOME_REASON; that event wins over the branch span's own
# BRANCH_OUTCOME attribute, which records what was known when the branch ended
# (failed, cancelled, or set explicitly).
BRANCH_OUTCOME_EVENT = "forktrace.branch.outcome"


class BranchOutcome(str, Enum):
    WON = "won"
    LOST = "lost"
    ABANDONED = "abandoned"
    FAILED = "failed"
    MERGED = "merged"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


# --- decision --------------------------------------------------------------

DECISION_QUESTION = "forktrace.decision.question"
DECISION_OPTIONS = "forktrace.decision.options"  # string[]
DECISION_CHOSEN = "forktrace.decision.chosen"
DECISION_REASONING = "forktrace.decision.reasoning"
DECISION_CONFIDENCE = "forktrace.decision.confidence"
DECISION_MAKER = "forktrace.decision.maker"


class DecisionMaker(str, Enum):
    AGENT = "agent"
    MODEL = "model"
    HUMAN = "human"
    POLICY = "policy"


# --- handoff ---------------------------------------------------------------

HANDOFF_FROM = "forktrace.handoff.from"
HANDOFF_TO = "forktrace.handoff.to"

# --- llm extras the GenAI conventions keep only inside message parts --------

LLM_REASONING = "forktrace.llm.reasoning"

# --- human intervention: a span event --------------------------------------

INTERVENTION_EVENT = "forktrace.intervention"
INTERVENTION_KIND = "kind"
INTERVENTION_AUTHOR = "author"
INTERVENTION_MESSAGE = "message"


class InterventionKind(str, Enum):
    APPROVE = "approve"
    REJECT = "reject"
    REDIRECT = "redirect"
    EDIT = "edit"
    ABORT = "abort"


# --- truncation of long text ----------------------------------------------
# A truncated value ends with TRUNCATION_MARKER and its original length is
# recorded under "<attribute>" + ORIGINAL_LENGTH_SUFFIX.

TRUNCATION_MARKER = "…[truncated by forktrace]"
ORIGINAL_LENGTH_SUFFIX = ".original_length"

# --- OpenInference names the collector reads as their GenAI equivalents -----

OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
