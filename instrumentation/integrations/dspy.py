"""DSPy: a callback in ``dspy.settings`` plus a fork around its parallel executor.

forktrace adds a :class:`dspy.utils.callback.BaseCallback` to DSPy's global
callbacks (beside the user's, never replacing them) and turns DSPy's calls into:

- a ``ReAct`` module: an agent span ``invoke_agent {name}`` (name: the
  module's ``name`` attribute, else its class), ``forktrace.agent.name`` on
  everything inside; each pass of its loop is a span ``react step {n}``
  carrying the thought and the tool it chose;
- any other module (``Predict``, ``ChainOfThought``, user modules): a span
  ``module {class}``;
- an LM call: an llm span ``chat {model}`` with messages, the completion,
  tokens (from the LM's history entry for that very completion) and, as
  reasoning text, the provider's reasoning content or the ``next_thought`` /
  ``reasoning`` field the adapter asked the model for;
- a tool call: a tool span with name, arguments, result or error.

``dspy.Parallel`` (and everything else built on DSPy's ``ParallelExecutor``:
``Module.batch``, ``Evaluate``) runs items on worker threads that carry no
OpenTelemetry context. forktrace wraps ``ParallelExecutor.execute`` (DSPy has
no hook there): the call becomes a fork (strategy ``map``) and each item a
branch, ``completed`` or ``failed``. Parentage comes from DSPy's own call ids
(``ACTIVE_CALL_ID``, which DSPy hands to its workers), never from the span
current on a thread: each branch registers itself under an id of its own that
DSPy's calls in that item see as their parent.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from forktrace import semconv
from forktrace.integrations._shared import (
    Context,
    ForkSpans,
    LlmResult,
    SpanMap,
    Tracked,
    agent_lineage,
    child_context,
    end_span,
    llm_attributes,
    message,
    record_input_messages,
    record_llm_result,
    report,
    set_content,
    set_text,
    start_span,
    text_part,
)

# ChatAdapter output sections and JSONAdapter keys that hold a model's thinking.
_THOUGHT_FIELDS = ("next_thought", "reasoning")
_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\Z)", re.S)
_AGENT_MODULES = ("ReAct",)


def _is_agent(instance: Any) -> bool:
    return any(cls.__name__ in _AGENT_MODULES for cls in type(instance).__mro__)


def _agent_name(instance: Any) -> str:
    name = getattr(instance, "name", None)
    return name if isinstance(name, str) and name else type(instance).__name__


class _Calls:
    """DSPy call ids -> spans; parent lookup through DSPy's ``ACTIVE_CALL_ID``."""

    def __init__(self) -> None:
        self.map = SpanMap()

    def parent_context(self) -> Context:
        from dspy.utils.callback import ACTIVE_CALL_ID

        tracked = self.map.get(ACTIVE_CALL_ID.get())
        return tracked.context if tracked is not None else otel_context.get_current()

    def parent(self) -> Tracked | None:
        from dspy.utils.callback import ACTIVE_CALL_ID

        return self.map.get(ACTIVE_CALL_ID.get())

    def open(self, call_id: str, tracked: Tracked) -> None:
        # Current while the call runs (start and end run on one thread, or in
        # one task), so users' own spans and forks inside it nest under it.
        tracked.data["token"] = otel_context.attach(tracked.context)
        self.map.put(call_id, tracked)

    def close(self, call_id: str, exception: BaseException | None) -> Tracked | None:
        tracked = self.map.pop(call_id)
        if tracked is None:
            return None
        token = tracked.data.get("token")
        if token is not None:
            otel_context.detach(token)  # logs, never raises, if detached elsewhere
        if tracked.span is not None:
            end_span(tracked.span, exception)
        return tracked


def _callback_class() -> type:
    from dspy.utils.callback import BaseCallback

    class ForktraceCallback(BaseCallback):
        """forktrace's DSPy callback: every handler guarded, none raises."""

        def __init__(self, calls: _Calls) -> None:
            self.calls = calls

        def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            try:
                _module_start(self.calls, call_id, instance, inputs)
            except Exception as exc:
                report("dspy.module.start", exc)

        def on_module_end(
            self, call_id: str, outputs: Any, exception: BaseException | None = None
        ) -> None:
            try:
                _module_end(self.calls, call_id, outputs, exception)
            except Exception as exc:
                report("dspy.module.end", exc)

        def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            try:
                _lm_start(self.calls, call_id, instance, inputs)
            except Exception as exc:
                report("dspy.lm.start", exc)

        def on_lm_end(
            self, call_id: str, outputs: Any, exception: BaseException | None = None
        ) -> None:
            try:
                tracked = self.calls.map.get(call_id)
                if tracked is not None and tracked.span is not None and exception is None:
                    record_llm_result(tracked.span, _lm_result(tracked.data["lm"], outputs))
            except Exception as exc:
                report("dspy.lm.end", exc)
            finally:
                self.calls.close(call_id, exception)

        def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
            try:
                _tool_start(self.calls, call_id, instance, inputs)
            except Exception as exc:
                report("dspy.tool.start", exc)

        def on_tool_end(
            self, call_id: str, outputs: Any, exception: BaseException | None = None
        ) -> None:
            try:
                tracked = self.calls.map.get(call_id)
                if tracked is not None and tracked.span is not None and exception is None:
                    set_content(tracked.span, semconv.GEN_AI_TOOL_CALL_RESULT, outputs)
            except Exception as exc:
                report("dspy.tool.end", exc)
            finally:
                self.calls.close(call_id, exception)

    return ForktraceCallback


# --- modules, LM calls, tools -------------------------------------------------------


def _module_start(calls: _Calls, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
    parent = calls.parent()
    context = parent.context if parent is not None else otel_context.get_current()
    if _is_agent(instance):
        name = _agent_name(instance)
        lineage = agent_lineage(name, context)
        span = start_span(
            f"invoke_agent {name}",
            semconv.Kind.AGENT,
            operation=semconv.Operation.INVOKE_AGENT,
            attributes={semconv.GEN_AI_AGENT_NAME: name, "dspy.module": type(instance).__name__},
            context=context,
            lineage=lineage,
        )
        set_content(span, semconv.GEN_AI_INPUT_MESSAGES, _user_message(inputs.get("kwargs")))
        tracked = Tracked(span, child_context(span, context, lineage), {"steps": itertools.count()})
    else:
        step = None
        if parent is not None and parent.data.get("react") is instance:
            step = next(parent.data["steps"])
        name = f"react step {step}" if step is not None else f"module {type(instance).__name__}"
        span = start_span(
            name,
            None,
            attributes={"dspy.module": type(instance).__name__, "dspy.react.step": step},
            context=context,
        )
        tracked = Tracked(span, child_context(span, context), {"step": step is not None})
    if _is_agent(instance):
        tracked.data["react"] = getattr(instance, "react", None)
    calls.open(call_id, tracked)


def _module_end(calls: _Calls, call_id: str, outputs: Any, exception: BaseException | None) -> None:
    tracked = calls.map.get(call_id)
    if tracked is not None and tracked.span is not None and exception is None:
        if tracked.data.get("step"):
            # A ReAct step: the thought and the tool it chose, readable on the step.
            thought = getattr(outputs, "next_thought", None)
            if thought:
                set_content(tracked.span, semconv.LLM_REASONING, str(thought))
            set_text(tracked.span, "dspy.react.tool", getattr(outputs, "next_tool_name", None))
        elif "steps" in tracked.data:
            answer = _prediction_text(outputs)
            if answer:
                set_content(
                    tracked.span,
                    semconv.GEN_AI_OUTPUT_MESSAGES,
                    [message("assistant", [text_part(answer)])],
                )
    calls.close(call_id, exception)


def _lm_start(calls: _Calls, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
    context = calls.parent_context()
    model = str(getattr(instance, "model", None) or "lm")
    provider = model.split("/", 1)[0] if "/" in model else None
    span = start_span(
        f"chat {model}",
        semconv.Kind.LLM,
        operation=semconv.Operation.CHAT,
        attributes=llm_attributes(provider, model),
        context=context,
    )
    record_input_messages(span, _messages(inputs))
    calls.open(call_id, Tracked(span, child_context(span, context), {"lm": instance}))


def _tool_start(calls: _Calls, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
    context = calls.parent_context()
    name = str(getattr(instance, "name", None) or type(instance).__name__)
    span = start_span(
        f"execute_tool {name}",
        semconv.Kind.TOOL,
        operation=semconv.Operation.EXECUTE_TOOL,
        attributes={semconv.GEN_AI_TOOL_NAME: name},
        context=context,
    )
    set_text(span, semconv.GEN_AI_TOOL_DESCRIPTION, getattr(instance, "desc", None))
    arguments = inputs.get("kwargs", inputs)
    set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
    calls.open(call_id, Tracked(span, child_context(span, context)))


def _user_message(kwargs: Any) -> list[dict[str, Any]] | None:
    if not isinstance(kwargs, dict) or not kwargs:
        return None
    body = "\n".join(f"{key}: {value}" for key, value in kwargs.items())
    return [message("user", [text_part(body)])]


def _prediction_text(outputs: Any) -> str | None:
    if outputs is None or not hasattr(outputs, "items"):
        return None
    fields = {k: v for k, v in outputs.items() if k not in ("trajectory", *_THOUGHT_FIELDS)}
    return "\n".join(f"{key}: {value}" for key, value in fields.items()) or None


def _messages(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    messages = inputs.get("messages")
    if messages is None and inputs.get("prompt") is not None:
        return [message("user", [text_part(str(inputs["prompt"]))])]
    return [
        message(str(item.get("role") or "user"), [text_part(str(item.get("content") or ""))])
        for item in messages or ()
        if isinstance(item, dict)
    ]


def _thoughts(completion: str) -> list[str]:
    """The thinking fields of a ChatAdapter or JSONAdapter completion."""
    sections = dict(_SECTION.findall(completion))
    if not sections and completion.lstrip().startswith("{"):
        try:
            parsed = json.loads(completion)
        except ValueError:
            parsed = {}
        sections = parsed if isinstance(parsed, dict) else {}
    return [str(sections[key]).strip() for key in _THOUGHT_FIELDS if sections.get(key)]


def _lm_result(lm: Any, outputs: Any) -> LlmResult:
    result = LlmResult()
    for output in outputs if isinstance(outputs, list) else ():
        if isinstance(output, dict):
            completion = str(output.get("text") or "")
            if output.get("reasoning_content"):
                result.reasoning.append(str(output["reasoning_content"]))
        else:
            completion = str(output)
        result.text.append(completion)
        result.reasoning.extend(_thoughts(completion))
    entry = _history_entry(lm, outputs)
    if entry is not None:
        result.add_usage(entry.get("usage"))
        result.response_model = entry.get("response_model")
    return result


def _history_entry(lm: Any, outputs: Any) -> dict[str, Any] | None:
    # The LM's history is shared by every thread calling it: the entry for this
    # call is the one holding this very outputs list, not necessarily the last.
    history = getattr(lm, "history", None) or ()
    for entry in reversed(history[-32:]):
        if isinstance(entry, dict) and entry.get("outputs") is outputs:
            return entry
    return None


# --- dspy.Parallel as a fork ------------------------------------------------------------


def _branch_label(item: Any, index: int) -> str:
    module = item[0] if isinstance(item, tuple) and len(item) == 2 else None
    # callable(), not hasattr(module, "forward"): DSPy warns when forward is read.
    if module is not None and callable(module):
        return f"{_agent_name(module)}[{index}]"
    return f"item[{index}]"


def _traced_execute(calls: _Calls, original: Callable[..., Any]) -> Callable[..., Any]:
    def execute(executor: Any, function: Callable[[Any], Any], data: Any) -> Any:
        try:
            items = list(data)
            fork = ForkSpans(
                "dspy.Parallel",
                semconv.ForkStrategy.MAP,
                calls.parent_context(),
                attributes={"dspy.num_threads": getattr(executor, "num_threads", None)},
            )
        except Exception as exc:
            report("dspy.parallel", exc)
            return original(executor, function, data)
        indexes = {id(item): index for index, item in enumerate(items)}
        try:
            return original(executor, _as_branch(calls, fork, function, indexes), items)
        finally:
            fork.end()

    return execute


def _as_branch(
    calls: _Calls, fork: ForkSpans, function: Callable[[Any], Any], indexes: dict[int, int]
) -> Callable[[Any], Any]:
    from dspy.utils.callback import ACTIVE_CALL_ID

    def run_branch(item: Any) -> Any:
        try:
            label = _branch_label(item, indexes.get(id(item), 0))
            span, context = fork.branch(label)
            branch_id = f"forktrace-branch-{uuid.uuid4().hex}"
            calls.map.put(branch_id, Tracked(span, context))
            call_token = ACTIVE_CALL_ID.set(branch_id)
            otel_token = otel_context.attach(context)
        except Exception as exc:
            report("dspy.parallel.branch", exc)
            return function(item)
        try:
            result = function(item)
        except BaseException as error:
            fork.end_branch(span, semconv.BranchOutcome.FAILED, str(error)[:200], error=error)
            raise
        else:
            fork.end_branch(span, semconv.BranchOutcome.COMPLETED)
            return result
        finally:
            calls.map.pop(branch_id)
            ACTIVE_CALL_ID.reset(call_token)
            otel_context.detach(otel_token)

    return run_branch


# --- registration --------------------------------------------------------------------


def _settings_config() -> dict[str, Any]:
    # DSPy's global settings; written directly rather than through
    # dspy.configure(), which would make forktrace's thread the only one
    # allowed to configure DSPy afterwards.
    # (by module path: the package attribute ``settings`` is the Settings object).
    return importlib.import_module("dspy.dsp.utils.settings").main_thread_config


class Instrumentor:
    def __init__(self) -> None:
        self.calls: _Calls | None = None
        self._callback: Any = None
        self._execute: Callable[..., Any] | None = None

    def instrument(self, **options: Any) -> None:
        from dspy.utils.parallelizer import ParallelExecutor

        calls = self.calls = _Calls()
        self._callback = _callback_class()(calls)
        config = _settings_config()
        config["callbacks"] = [*config.get("callbacks", []), self._callback]
        self._execute = ParallelExecutor.execute
        ParallelExecutor.execute = _traced_execute(calls, self._execute)

    def uninstrument(self) -> None:
        from dspy.utils.parallelizer import ParallelExecutor

        config = _settings_config()
        config["callbacks"] = [
            callback for callback in config.get("callbacks", []) if callback is not self._callback
        ]
        if self._execute is not None:
            ParallelExecutor.execute = self._execute
        self._callback = self._execute = self.calls = None
