"""Overhead of forktrace's framework integrations, next to OpenInference's.

For one framework per process, a fake-model agent run (no network: in-process
HTTP transports for the provider SDKs, the frameworks' own fake models
otherwise) is timed three ways in the same process:

- uninstrumented;
- instrumented by ``forktrace.instrument(<framework>)``;
- instrumented by the OpenInference instrumentor for that framework.

Both instrumentations send their spans to the same tracer provider, whose only
exporter drops them, so the numbers measure building spans, not exporting.
The modes alternate over several rounds and each reports its best round's
mean time per run (the least disturbed by other load on the machine); ratios
are to the uninstrumented run.

    nox -s "benchmark(framework='langgraph')"          # one framework, in its own venv
    python benchmarks/integrations.py langgraph --write  # in a venv that has it

``--write`` records the row in ``benchmarks/results/integrations.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import forktrace

RESULTS = Path(__file__).parent / "results" / "integrations.md"


class CountingExporter(SpanExporter):
    """Drops spans, counting them."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass
class Workload:
    package: str  # the framework's distribution, for its version
    openinference: str  # the OpenInference distribution
    run: Callable[[], Any]  # one agent run
    instrument_openinference: Callable[[TracerProvider], Callable[[], None]]  # returns undo


# --- workloads -------------------------------------------------------------------


def _json_transport(module: Any, body: dict[str, Any]) -> Any:
    payload = json.dumps(body).encode()
    return module.MockTransport(
        lambda request: module.Response(
            200, content=payload, headers={"content-type": "application/json"}
        )
    )


def _openai() -> Workload:
    import httpx2
    import openai

    completion = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-bench",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "done"},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }
    client = openai.OpenAI(
        api_key="bench",
        base_url="http://bench.invalid/v1",
        http_client=httpx2.Client(transport=_json_transport(httpx2, completion)),
    )
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "plan a trip"},
    ]

    def run() -> Any:
        # An agent loop's model calls: three turns of one conversation.
        for _ in range(3):
            client.chat.completions.create(model="gpt-bench", messages=messages)

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload("openai", "openinference-instrumentation-openai", run, openinference)


def _anthropic() -> Workload:
    import anthropic
    import httpx2

    message = {
        "id": "m1",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "content": [
            {"type": "thinking", "thinking": "short", "signature": "s"},
            {"type": "text", "text": "done"},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 2},
    }
    client = anthropic.Anthropic(
        api_key="bench",
        base_url="http://bench.invalid",
        http_client=httpx2.Client(transport=_json_transport(httpx2, message)),
    )

    def run() -> Any:
        for _ in range(3):
            client.messages.create(
                model="claude-bench",
                max_tokens=50,
                messages=[{"role": "user", "content": "plan a trip"}],
            )

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.anthropic import AnthropicInstrumentor

        instrumentor = AnthropicInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload("anthropic", "openinference-instrumentation-anthropic", run, openinference)


def _langgraph() -> Workload:
    import operator
    from typing import Annotated, TypedDict

    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import END, START, StateGraph

    @tool
    def look_up(topic: str) -> str:
        """Look a topic up."""
        return f"facts about {topic}"

    model = FakeMessagesListChatModel(responses=[AIMessage(content="a note")])

    # The functional form: this module's postponed annotations cannot see local imports.
    State = TypedDict("State", {"topic": str, "notes": Annotated[list, operator.add]}, total=False)  # noqa: UP013

    graph = StateGraph(State)
    graph.add_node("plan", lambda state: {})
    names = ["alpha", "beta", "gamma", "delta"]
    for name in names:

        def research(state: dict[str, Any], name: str = name) -> dict[str, Any]:
            facts = look_up.invoke({"topic": state["topic"]})
            return {"notes": [model.invoke(f"{name}: {facts}").text]}

        graph.add_node(name, research)
        graph.add_edge("plan", name)
    graph.add_node("decide", lambda state: {"notes": [model.invoke("decide").text]})
    graph.add_edge(START, "plan")
    graph.add_edge(names, "decide")
    graph.add_edge("decide", END)
    app = graph.compile(name="researchers")

    def run() -> Any:
        return app.invoke({"topic": "tides", "notes": []})

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.langchain import LangChainInstrumentor

        instrumentor = LangChainInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload("langgraph", "openinference-instrumentation-langchain", run, openinference)


def _openai_agents() -> Workload:
    from agents import Agent, Model, ModelResponse, Runner, Usage, function_tool
    from agents.tracing import generation_span
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    class Scripted(Model):
        def __init__(self, tool: str | None) -> None:
            self._tool = tool

        async def get_response(
            self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
        ) -> Any:
            called = not isinstance(input, str) and any(
                isinstance(item, dict) and item.get("type") == "function_call_output"
                for item in input
            )
            if self._tool and not called:
                output: list[Any] = [
                    ResponseFunctionToolCall(
                        type="function_call", call_id="c1", name=self._tool, arguments="{}"
                    )
                ]
            else:
                text = ResponseOutputText(type="output_text", text="done", annotations=[])
                output = [
                    ResponseOutputMessage(
                        id="m", type="message", role="assistant", status="completed", content=[text]
                    )
                ]
            with generation_span(
                model="scripted",
                input=[],
                output=[],
                usage={"input_tokens": 10, "output_tokens": 2},
            ):
                pass
            return ModelResponse(
                output=output,
                usage=Usage(requests=1, input_tokens=10, output_tokens=2),
                response_id=None,
            )

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    @function_tool
    def look_up() -> str:
        """Look something up."""
        return "facts"

    specialist = Agent(name="specialist", model=Scripted("look_up"), tools=[look_up])
    triage = Agent(name="triage", model=Scripted("transfer_to_specialist"), handoffs=[specialist])
    loop = asyncio.new_event_loop()

    def run() -> Any:
        return loop.run_until_complete(Runner.run(triage, "help"))

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

        instrumentor = OpenAIAgentsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload(
        "openai-agents", "openinference-instrumentation-openai-agents", run, openinference
    )


def _pydantic_ai() -> Workload:
    from pydantic_ai import Agent
    from pydantic_ai.models.test import TestModel

    helper = Agent(TestModel(custom_output_text="facts"), name="helper")
    agent = Agent(TestModel(), name="writer")

    @agent.tool_plain
    async def look_up(topic: str) -> str:
        """Ask the helper agent."""
        return (await helper.run(topic)).output

    def run() -> Any:
        return agent.run_sync("write about tides")

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        # OpenInference reads Pydantic AI's own spans through a span processor,
        # as forktrace does; Pydantic AI's instrumentation must be on for it.
        from openinference.instrumentation.pydantic_ai import OpenInferenceSpanProcessor

        processor_active = {"on": True}
        provider.add_span_processor(_Toggle(OpenInferenceSpanProcessor(), processor_active))
        previous = Agent._instrument_default
        Agent.instrument_all(True)

        def undo() -> None:
            processor_active["on"] = False
            Agent.instrument_all(previous)

        return undo

    return Workload(
        "pydantic-ai-slim", "openinference-instrumentation-pydantic-ai", run, openinference
    )


def _dspy() -> Workload:
    import dspy
    import wrapt
    from dspy.utils import DummyLM

    def look_up(topic: str) -> str:
        """Look a topic up."""
        return f"facts about {topic}"

    # Answers keyed by text of each turn's last message (DummyLM's dict mode).
    lm = DummyLM(
        {
            "I know enough\n\n[[ ## tool_name_1": {"reasoning": "enough", "answer": "notes"},
            "facts about tides\n\nRespond": {
                "next_thought": "I know enough",
                "next_tool_name": "finish",
                "next_tool_args": {},
            },
            "research tides": {
                "next_thought": "I should look tides up",
                "next_tool_name": "look_up",
                "next_tool_args": {"topic": "tides"},
            },
        }
    )
    dspy.configure(lm=lm, disable_history=False)
    agent = dspy.ReAct("question -> answer", tools=[look_up], max_iters=3)

    def run() -> Any:
        # A ReAct agent: a tool step, a finish step, the extract step.
        return agent(question="research tides")

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.dspy import DSPyInstrumentor

        instrumentor = DSPyInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        # Its uninstrument() unwraps the whole __wrapped__ chain, DSPy's own
        # callback decorator included (no DSPy callback fires after it), so
        # put back exactly what it wrapped, one level down.
        wrapped = []
        for owner, name in instrumentor._originals:
            parent, attribute, wrapper = wrapt.resolve_path(owner, name)
            wrapped.append((parent, attribute, wrapper.__wrapped__))

        def undo() -> None:
            instrumentor.uninstrument()
            for parent, attribute, original in wrapped:
                setattr(parent, attribute, original)

        return undo

    return Workload("dspy", "openinference-instrumentation-dspy", run, openinference)


def _smolagents() -> Workload:
    from smolagents import ToolCallingAgent, tool
    from smolagents.models import (
        ChatMessage,
        ChatMessageToolCall,
        ChatMessageToolCallFunction,
        MessageRole,
        Model,
    )
    from smolagents.monitoring import TokenUsage

    topics = ["tides", "winds", "waves", "currents"]

    def call(name: str, arguments: dict[str, Any]) -> ChatMessageToolCall:
        function = ChatMessageToolCallFunction(name=name, arguments=arguments)
        return ChatMessageToolCall(function=function, id=f"{name}-{arguments}", type="function")

    class Scripted(Model):
        """Four parallel look-ups, then the final answer."""

        def generate(self, messages: Any, **kwargs: Any) -> ChatMessage:
            done = any("facts about" in str(m.content) for m in messages)
            calls = (
                [call("final_answer", {"answer": "notes"})]
                if done
                else [call("look_up", {"topic": topic}) for topic in topics]
            )
            return ChatMessage(
                role=MessageRole.ASSISTANT,
                content="I should look these up",
                tool_calls=calls,
                token_usage=TokenUsage(input_tokens=40, output_tokens=7),
            )

    @tool
    def look_up(topic: str) -> str:
        """Look a topic up.

        Args:
            topic: what to look up.
        """
        return f"facts about {topic}"

    model = Scripted(model_id="scripted")

    def run() -> Any:
        agent = ToolCallingAgent(
            tools=[look_up], model=model, max_steps=3, max_tool_threads=4, verbosity_level=0
        )
        return agent.run("research the sea")

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.smolagents import SmolagentsInstrumentor

        instrumentor = SmolagentsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload("smolagents", "openinference-instrumentation-smolagents", run, openinference)


def _llama_index() -> Workload:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.base.llms.types import (
        ChatMessage,
        MessageRole,
        ThinkingBlock,
        ToolCallBlock,
    )
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import FunctionTool

    def look_up(topic: str) -> str:
        """Look a topic up."""
        return f"facts about {topic}"

    def answer(messages: Any, **kwargs: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role="assistant", content="notes on tides")
        return ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="I should look tides up"),
                ToolCallBlock(
                    tool_call_id="c1", tool_name="look_up", tool_kwargs={"topic": "tides"}
                ),
            ],
        )

    agent = FunctionAgent(
        name="researcher",
        description="researches",
        tools=[FunctionTool.from_defaults(look_up)],
        llm=MockFunctionCallingLLM(response_generator=answer, is_chat_model=True),
    )

    async def go() -> Any:
        return await agent.run("research tides")

    def run() -> Any:
        # A function agent: a model call with a tool call, the tool, a final model call.
        return asyncio.run(go())

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

        instrumentor = LlamaIndexInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload(
        "llama-index-core", "openinference-instrumentation-llama-index", run, openinference
    )


def _autogen() -> Workload:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_agentchat.teams import DiGraphBuilder, GraphFlow
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, RequestUsage
    from autogen_ext.models.replay import ReplayChatCompletionClient

    tools_ok = {
        "vision": False,
        "function_calling": True,
        "json_output": False,
        "family": "unknown",
        "structured_output": False,
    }

    async def look_up(topic: str) -> str:
        """Look a topic up."""
        return f"facts about {topic}"

    def researcher(topic: str) -> AssistantAgent:
        call = CreateResult(
            finish_reason="function_calls",
            content=[
                FunctionCall(id=topic, name="look_up", arguments=json.dumps({"topic": topic}))
            ],
            usage=RequestUsage(prompt_tokens=11, completion_tokens=7),
            cached=False,
            thought=f"I should look {topic} up",
        )
        client = ReplayChatCompletionClient([call, f"notes on {topic}"], model_info=tools_ok)
        return AssistantAgent(topic, model_client=client, tools=[look_up], reflect_on_tool_use=True)

    def talker(name: str) -> AssistantAgent:
        return AssistantAgent(name, model_client=ReplayChatCompletionClient([f"{name} done"]))

    # The replay client warns on every call ("Token count has been done only on string
    # content"): printing those lines would dominate the times.
    logging.getLogger("autogen_core.events").setLevel(logging.ERROR)

    def run() -> Any:
        # A GraphFlow: a planner fans out to four researchers (concurrent; each a model
        # call with a tool call, the tool, a final model call), joined by an editor.
        builder = DiGraphBuilder()
        planner, editor = talker("planner"), talker("editor")
        builder.add_node(planner).add_node(editor)
        for topic in ("tides", "winds", "waves", "currents"):
            worker = researcher(topic)
            builder.add_node(worker).add_edge(planner, worker).add_edge(worker, editor)
        flow = GraphFlow(participants=builder.get_participants(), graph=builder.build())
        return asyncio.run(flow.run(task="survey"))

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.autogen_agentchat import (
            AutogenAgentChatInstrumentor,
        )

        instrumentor = AutogenAgentChatInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload(
        "autogen-agentchat", "openinference-instrumentation-autogen-agentchat", run, openinference
    )


def _google_adk() -> Workload:
    import warnings

    from google.adk.agents import LlmAgent, ParallelAgent
    from google.adk.models.base_llm import BaseLlm
    from google.adk.models.llm_response import LlmResponse
    from google.adk.runners import InMemoryRunner
    from google.genai import types

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # ParallelAgent

    class Scripted(BaseLlm):
        """A tool call with a thought part, then the answer."""

        async def generate_content_async(self, llm_request: Any, stream: bool = False) -> Any:
            topic = self.model
            usage = types.GenerateContentResponseUsageMetadata(
                prompt_token_count=11, candidates_token_count=7
            )
            if any(content.role == "model" for content in llm_request.contents):
                yield LlmResponse(
                    content=types.Content(role="model", parts=[types.Part(text=f"on {topic}")]),
                    usage_metadata=usage,
                )
                return
            call = types.FunctionCall(name="look_up", args={"topic": topic}, id=topic)
            yield LlmResponse(
                content=types.Content(
                    role="model",
                    parts=[
                        types.Part(text=f"I should look {topic} up", thought=True),
                        types.Part(function_call=call),
                    ],
                ),
                usage_metadata=usage,
            )

    def look_up(topic: str) -> str:
        """Look a topic up."""
        return f"facts about {topic}"

    survey = ParallelAgent(
        name="survey",
        sub_agents=[
            LlmAgent(name=topic, model=Scripted(model=topic), tools=[look_up])
            for topic in ("tides", "winds", "waves", "currents")
        ],
    )
    message = types.Content(role="user", parts=[types.Part(text="survey")])

    async def go() -> Any:
        # A Runner per run: forktrace's plugin is added when a Runner is made.
        runner = InMemoryRunner(agent=survey, app_name="bench")
        session = await runner.session_service.create_session(app_name="bench", user_id="u")
        return [
            event
            async for event in runner.run_async(
                user_id="u", session_id=session.id, new_message=message
            )
        ]

    def run() -> Any:
        # A ParallelAgent: four sub-agents at once, each a model call with a tool call,
        # the tool, a final model call.
        return asyncio.run(go())

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        from openinference.instrumentation.google_adk import GoogleADKInstrumentor

        instrumentor = GoogleADKInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        return instrumentor.uninstrument

    return Workload("google-adk", "openinference-instrumentation-google-adk", run, openinference)


def _strands() -> Workload:
    from strands import Agent, tool
    from strands.models import Model
    from strands.multiagent import GraphBuilder

    class Scripted(Model):
        """A reasoning block and a tool call, then the answer (Strands' stream events)."""

        def __init__(self, topic: str | None) -> None:
            self.config = {"model_id": "scripted"}
            self.topic = topic

        def update_config(self, **model_config: Any) -> None:
            self.config.update(model_config)

        def get_config(self) -> Any:
            return self.config

        async def structured_output(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError
            yield

        async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
            usage = {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18}
            called = any("toolResult" in block for m in messages for block in m["content"])
            yield {"messageStart": {"role": "assistant"}}
            if self.topic is None or called:
                blocks: list[tuple[dict[str, Any], dict[str, Any]]] = [({}, {"text": "done"})]
            else:
                use = {"toolUse": {"name": "look_up", "toolUseId": self.topic}}
                arguments = json.dumps({"topic": self.topic})
                blocks = [
                    ({}, {"reasoningContent": {"text": f"I should look {self.topic} up"}}),
                    (use, {"toolUse": {"input": arguments}}),
                ]
            for start, delta in blocks:
                yield {"contentBlockStart": {"start": start}}
                yield {"contentBlockDelta": {"delta": delta}}
                yield {"contentBlockStop": {}}
            stop = "end_turn" if len(blocks) == 1 else "tool_use"
            yield {"messageStop": {"stopReason": stop}}
            yield {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}

    @tool
    def look_up(topic: str) -> str:
        """Look a topic up."""
        return f"facts about {topic}"

    def run() -> Any:
        # A Graph: a planner fans out to four researchers (run concurrently; each a model
        # call with reasoning and a tool call, the tool, a final model call), joined by an
        # editor. Built per run: forktrace's hooks are added when agents and graphs are made.
        builder = GraphBuilder()
        for name in ("planner", "editor"):
            builder.add_node(Agent(name=name, model=Scripted(None), callback_handler=None), name)
        for topic in ("tides", "winds", "waves", "currents"):
            agent = Agent(name=topic, model=Scripted(topic), tools=[look_up], callback_handler=None)
            builder.add_node(agent, topic)
            builder.add_edge("planner", topic)
            builder.add_edge(topic, "editor")
        builder.set_max_node_executions(10)
        return builder.build()("survey")

    def openinference(provider: TracerProvider) -> Callable[[], None]:
        # OpenInference reads Strands' own spans through a span processor, as forktrace does.
        from openinference.instrumentation.strands_agents import (
            StrandsAgentsToOpenInferenceProcessor,
        )

        state = {"on": True}
        provider.add_span_processor(_Toggle(StrandsAgentsToOpenInferenceProcessor(), state))
        return lambda: state.update(on=False)

    return Workload(
        "strands-agents", "openinference-instrumentation-strands-agents", run, openinference
    )


class _Toggle(SpanProcessor):
    """A span processor that can be switched off (a provider cannot drop one)."""

    def __init__(self, inner: SpanProcessor, state: dict[str, bool]) -> None:
        self._inner = inner
        self._state = state

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self._state["on"]:
            self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self._state["on"]:
            self._inner.on_end(span)


WORKLOADS: dict[str, Callable[[], Workload]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "langgraph": _langgraph,
    "openai-agents": _openai_agents,
    "pydantic-ai": _pydantic_ai,
    "dspy": _dspy,
    "smolagents": _smolagents,
    "llama-index": _llama_index,
    "autogen": _autogen,
    "google-adk": _google_adk,
    "strands": _strands,
}


# --- measuring -------------------------------------------------------------------


def _time_runs(run: Callable[[], Any], runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        run()
    return (time.perf_counter() - start) / runs


def measure(framework: str, runs: int, rounds: int) -> dict[str, Any]:
    exporter = CountingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    forktrace.init(tracer_provider=provider, export=False)
    workload = WORKLOADS[framework]()

    def plain() -> Callable[[], None]:
        return lambda: None

    def with_forktrace() -> Callable[[], None]:
        forktrace.instrument(framework)
        return lambda: forktrace.uninstrument(framework)

    modes: dict[str, Callable[[], Callable[[], None]]] = {
        "uninstrumented": plain,
        "forktrace": with_forktrace,
        "openinference": lambda: workload.instrument_openinference(provider),
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    spans: dict[str, float] = {}
    errors: dict[str, str] = {}
    for _ in range(3):  # warm up imports and caches
        workload.run()
    order = list(modes)
    for round_number in range(rounds):
        # Rotate the order each round, so no mode always runs after the same one.
        shift = round_number % len(order)
        for mode in order[shift:] + order[:shift]:
            enable = modes[mode]
            if mode in errors:
                continue
            try:
                undo = enable()
            except Exception as exc:  # an instrumentor that does not support this version
                errors[mode] = f"{type(exc).__name__}: {exc}"
                continue
            before = exporter.count
            try:
                times[mode].append(_time_runs(workload.run, runs))
            finally:
                undo()
            spans[mode] = (exporter.count - before) / runs
    base = min(times["uninstrumented"])
    result: dict[str, Any] = {
        "framework": framework,
        "version": metadata.version(workload.package),
        "openinference_version": _version(workload.openinference),
        "runs": runs,
        "rounds": rounds,
        "python": platform.python_version(),
    }
    for mode in modes:
        if times[mode]:
            best = min(times[mode])
            result[mode] = {"ms": best * 1000, "ratio": best / base, "spans": spans.get(mode, 0)}
        else:
            result[mode] = {"error": errors.get(mode, "not measured")}
    return result


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- reporting -------------------------------------------------------------------

HEADER = (
    "| framework | version | uninstrumented ms/run | forktrace ms/run (ratio, spans/run) "
    "| OpenInference ms/run (ratio, spans/run) | OpenInference version |\n"
    "|---|---|---|---|---|---|\n"
)


def _cell(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"n/a ({entry['error'][:80]})"
    return f"{entry['ms']:.3f} ({entry['ratio']:.2f}x, {entry['spans']:.0f})"


def row(result: dict[str, Any]) -> str:
    return (
        f"| {result['framework']} | {result['version']} | {result['uninstrumented']['ms']:.3f} "
        f"| {_cell(result['forktrace'])} | {_cell(result['openinference'])} "
        f"| {result['openinference_version']} |"
    )


def write(result: dict[str, Any]) -> None:
    """Put this framework's row into the results table, keeping the others."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    start = text.find(HEADER)
    if start < 0:
        raise SystemExit(f"{RESULTS} has no results table header")
    table_start = start + len(HEADER)
    lines = text[table_start:].split("\n")
    count = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    rows = [line for line in lines[:count] if not line.startswith(f"| {result['framework']} |")]
    rows = sorted([*rows, row(result)])
    table_end = table_start + sum(len(line) + 1 for line in lines[:count])
    RESULTS.write_text(
        text[:table_start] + "".join(f"{line}\n" for line in rows) + text[table_end:]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=sorted(WORKLOADS))
    parser.add_argument("--runs", type=int, default=20, help="agent runs per round and mode")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write", action="store_true", help=f"record the row in {RESULTS.name}")
    args = parser.parse_args(argv)
    result = measure(args.framework, args.runs, args.rounds)
    print(json.dumps(result, indent=2))
    print(row(result))
    if args.write:
        write(result)


if __name__ == "__main__":
    sys.exit(main())
