"""One environment per framework integration.

Agent frameworks pin conflicting versions of one another's dependencies (and
of OpenTelemetry), so each integration is tested in a virtualenv holding only
forktrace, that framework and the test tools. The main pytest run skips these
test modules when their framework is missing; here FORKTRACE_REQUIRE_FRAMEWORK
turns that skip into a failure, so a broken install cannot pass as green.

    nox -s integrations            # every framework's tests
    nox -s "integration(framework='openai')"   # one framework
    nox -s benchmark               # benchmarks/integrations.py, one process per framework

Virtualenvs are reused between runs and pip keeps its cache, so a re-run only
runs the tests.
"""

from __future__ import annotations

import nox

nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["integration"]

# Framework name -> (forktrace extra, test module suffix).
FRAMEWORKS = {
    "openai": ("openai", "openai"),
    "anthropic": ("anthropic", "anthropic"),
    "langgraph": ("langgraph", "langgraph"),
    "openai-agents": ("openai-agents", "openai_agents"),
    "pydantic-ai": ("pydantic-ai", "pydantic_ai"),
    "crewai": ("crewai", "crewai"),
    "dspy": ("dspy", "dspy"),
    "smolagents": ("smolagents", "smolagents"),
    "llama-index": ("llama-index", "llama_index"),
    "autogen": ("autogen", "autogen"),
    "strands": ("strands", "strands"),
    "google-adk": ("google-adk", "google_adk"),
}
TEST_DEPS = ("pytest>=8", "pytest-asyncio>=0.23", "aiohttp>=3.9")
# Test-only packages of one framework's session: each framework's OpenAI model class and the
# openai integration's own needs, to test that a model call made through the framework with
# forktrace's openai integration also on is recorded once.
_OPENAI_SDK = ("openai>=1.40,<4", "wrapt>=1.14,<3")
FRAMEWORK_TEST_DEPS = {
    "autogen": ("autogen-ext[openai]>=0.6.2,<0.8",),
    "langgraph": ("langchain-openai>=0.3,<2", *_OPENAI_SDK),
    "pydantic-ai": ("pydantic-ai-slim[openai]>=1.0,<3", *_OPENAI_SDK),
    "strands": ("strands-agents[openai]>=1.20,<2", *_OPENAI_SDK),
    "openai-agents": _OPENAI_SDK,
    "smolagents": _OPENAI_SDK,
    "dspy": _OPENAI_SDK,
    "crewai": _OPENAI_SDK,
    "llama-index": ("llama-index-llms-openai>=0.5,<0.7", *_OPENAI_SDK),
}

# The OpenInference instrumentor the benchmark compares against, per framework.
OPENINFERENCE = {
    "openai": "openinference-instrumentation-openai",
    "anthropic": "openinference-instrumentation-anthropic",
    "langgraph": "openinference-instrumentation-langchain",
    "openai-agents": "openinference-instrumentation-openai-agents",
    "pydantic-ai": "openinference-instrumentation-pydantic-ai",
    "dspy": "openinference-instrumentation-dspy",
    "smolagents": "openinference-instrumentation-smolagents",
    "llama-index": "openinference-instrumentation-llama-index",
    "autogen": "openinference-instrumentation-autogen-agentchat",
    "strands": "openinference-instrumentation-strands-agents",
    "google-adk": "openinference-instrumentation-google-adk",
}


@nox.session(tags=["integrations"])
@nox.parametrize("framework", list(FRAMEWORKS))
def integration(session: nox.Session, framework: str) -> None:
    extra, module = FRAMEWORKS[framework]
    session.install("-e", f".[{extra}]", *TEST_DEPS, *FRAMEWORK_TEST_DEPS.get(framework, ()))
    session.run(
        "pytest",
        f"tests/integrations/test_{module}.py",
        "-q",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"FORKTRACE_REQUIRE_FRAMEWORK": "1"},
    )


@nox.session
@nox.parametrize("framework", list(OPENINFERENCE))
def benchmark(session: nox.Session, framework: str) -> None:
    extra, _ = FRAMEWORKS[framework]
    session.install("-e", f".[{extra}]", "aiohttp>=3.9", OPENINFERENCE[framework])
    session.run("python", "benchmarks/integrations.py", framework, *session.posargs)
