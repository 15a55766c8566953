"""invoke_agent and execute_tool spans; the agent span sums its model calls' usage."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import ScriptedChat, usage_metadata
from langchain.agents import create_agent
from langchain_core.tools import tool
from opentelemetry.trace import SpanKind, StatusCode

from otel_llm_usage import track_usage


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"Results for {query}: the 2024 Super Bowl was won by the Kansas City Chiefs."


# The seeds' agent run: 1538 prompt / 137 completion tokens on gpt-3.5-turbo-0125 in
# total, $0.0009745. Split over the two model calls an agent makes.
SCRIPT = [
    {
        "tool_call": {"name": "search", "args": {"query": "super bowl 2024"}, "id": "call_1"},
        "usage": usage_metadata(611, 32),
    },
    {"text": "The Kansas City Chiefs won.", "usage": usage_metadata(927, 105)},
]


def make_model(**kwargs: Any) -> ScriptedChat:
    return ScriptedChat(
        model_name="gpt-3.5-turbo-0125",
        response_model="gpt-3.5-turbo-0125",
        script=SCRIPT,
        calls=[],
        **kwargs,
    )


def by_name(spans: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def assert_agent_run(
    telemetry: Any, usage: Any, user_span: Any, *, tool_call_id: bool = True
) -> None:
    spans = by_name(telemetry.model_spans())
    (agent,) = spans["invoke_agent weather_agent"]
    chats = spans["chat gpt-3.5-turbo-0125"]
    (tool_span,) = spans["execute_tool search"]
    assert len(chats) == 2
    assert agent.kind is SpanKind.INTERNAL
    assert agent.parent.span_id == user_span.get_span_context().span_id
    for child in [*chats, tool_span]:
        assert child.context.trace_id == agent.context.trace_id
    # chat and tool spans nest under the agent span (directly or through graph nodes)
    ids = {s.context.span_id: s for s in telemetry.spans()}

    def ancestors(span: Any) -> list[int]:
        found = []
        while span.parent is not None and span.parent.span_id in ids:
            span = ids[span.parent.span_id]
            found.append(span.context.span_id)
        return found

    for child in [*chats, tool_span]:
        assert agent.context.span_id in ancestors(child)
    assert dict(agent.attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "weather_agent",
        "gen_ai.provider.name": "openai",
        "llm_usage.model_calls": 2,
        # roll-ups under our names (gen_ai.usage.* stays on the inference spans only)
        "llm_usage.agent.input_tokens": 1538,
        "llm_usage.agent.output_tokens": 137,
        "llm_usage.agent.cache_read.input_tokens": 0,
        "llm_usage.agent.cache_creation.input_tokens": 0,
        "llm_usage.agent.reasoning.output_tokens": 0,
        "llm_usage.agent.cost.amount": pytest.approx(0.0009745, rel=1e-12),
        "llm_usage.agent.cost.currency": "USD",
    }
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats) == 1538
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in chats) == 137
    expected_tool = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": "Search the web.",
    }
    if tool_call_id:  # the classic AgentExecutor does not pass the call id to the tool
        expected_tool["gen_ai.tool.call.id"] = "call_1"
    assert dict(tool_span.attributes) == expected_tool
    assert tool_span.kind is SpanKind.INTERNAL
    # the three views agree
    assert (usage.input_tokens, usage.output_tokens) == (1538, 137)
    assert usage.total_cost == pytest.approx(0.0009745, rel=1e-12)
    assert usage.successful_requests == 2
    assert telemetry.tokens("input") == 1538
    assert telemetry.tokens("output") == 137


def test_agent_run_rolls_up_usage_and_cost(telemetry):
    agent = create_agent(make_model(), tools=[search], name="weather_agent")
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as user_span, track_usage() as usage:
        result = agent.invoke({"messages": [{"role": "user", "content": "Who won?"}]})
    assert result["messages"][-1].content == "The Kansas City Chiefs won."
    assert_agent_run(telemetry, usage, user_span)


async def test_async_agent_run_rolls_up_usage_and_cost(telemetry):
    agent = create_agent(make_model(), tools=[search], name="weather_agent")
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as user_span, track_usage() as usage:
        result = await agent.ainvoke({"messages": [{"role": "user", "content": "Who won?"}]})
    assert result["messages"][-1].content == "The Kansas City Chiefs won."
    assert_agent_run(telemetry, usage, user_span)


def test_streamed_agent_run(telemetry):
    agent = create_agent(make_model(), tools=[search], name="weather_agent")
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as user_span, track_usage() as usage:
        steps = list(
            agent.stream(
                {"messages": [{"role": "user", "content": "Who won?"}]}, stream_mode="updates"
            )
        )
    assert len(steps) == 3  # model, tools, model
    assert_agent_run(telemetry, usage, user_span)


def test_nested_agents_each_sum_their_own_calls(telemetry):
    inner = create_agent(make_model(), tools=[search], name="researcher")

    @tool
    def ask_researcher(question: str) -> str:
        """Ask the research agent."""
        return inner.invoke({"messages": [{"role": "user", "content": question}]})["messages"][
            -1
        ].content

    outer_script = [
        {
            "tool_call": {"name": "ask_researcher", "args": {"question": "who?"}, "id": "c9"},
            "usage": usage_metadata(100, 10),
        },
        {"text": "Done.", "usage": usage_metadata(200, 20)},
    ]
    outer_model = ScriptedChat(model_name="gpt-4o-mini", script=outer_script, calls=[])
    outer = create_agent(outer_model, tools=[ask_researcher], name="boss")
    outer.invoke({"messages": [{"role": "user", "content": "go"}]})
    spans = by_name(telemetry.model_spans())
    (boss,) = spans["invoke_agent boss"]
    (researcher,) = spans["invoke_agent researcher"]
    assert boss.attributes["llm_usage.model_calls"] == 4
    assert boss.attributes["llm_usage.agent.input_tokens"] == 100 + 200 + 1538
    assert boss.attributes["llm_usage.agent.output_tokens"] == 10 + 20 + 137
    assert researcher.attributes["llm_usage.model_calls"] == 2
    assert researcher.attributes["llm_usage.agent.input_tokens"] == 1538
    assert "gen_ai.provider.name" in boss.attributes


def test_tool_error_marks_span(telemetry):
    @tool
    def broken(query: str) -> str:
        """Always fails."""
        raise ValueError("no network")

    with pytest.raises(ValueError, match="no network"):
        broken.invoke({"query": "x"})
    (span,) = telemetry.model_spans()
    assert span.name == "execute_tool broken"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"


def test_tool_content_only_when_capture_is_on(telemetry, monkeypatch):
    from otel_llm_usage import LangChainUsageInstrumentor

    search.invoke({"query": "owls"})
    (plain,) = telemetry.model_spans()
    assert "gen_ai.tool.call.arguments" not in plain.attributes
    assert "gen_ai.tool.call.result" not in plain.attributes

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    search.invoke({"query": "owls"})
    captured = telemetry.model_spans()[-1]
    assert captured.attributes["gen_ai.tool.call.arguments"] == '{"query": "owls"}'
    assert captured.attributes["gen_ai.tool.call.result"] == (
        "Results for owls: the 2024 Super Bowl was won by the Kansas City Chiefs."
    )


def classic_executor() -> Any:
    from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages(
        [("human", "{input}"), ("placeholder", "{agent_scratchpad}")]
    )
    agent = create_tool_calling_agent(make_model(), [search], prompt)
    return AgentExecutor(agent=agent, tools=[search], name="weather_agent")


def test_classic_agent_executor_rolls_up_usage(telemetry):
    executor = classic_executor()
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as user_span, track_usage() as usage:
        result = executor.invoke({"input": "Who won?"})
    assert result["output"] == "The Kansas City Chiefs won."
    assert_agent_run(telemetry, usage, user_span, tool_call_id=False)


async def test_classic_agent_executor_astream(telemetry):
    executor = classic_executor()
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as user_span, track_usage() as usage:
        steps = [step async for step in executor.astream({"input": "Who won?"})]
    assert steps[-1]["output"] == "The Kansas City Chiefs won."
    assert_agent_run(telemetry, usage, user_span, tool_call_id=False)


def test_agent_runs_answered_by_the_llm_cache_count_cache_hits_not_missing_usage(telemetry):
    """Run 1 asks the provider twice; run 2 (same question, a different search result) is
    answered from the cache for its first call and by the provider for its second; run 3
    (the same as run 2) wholly from the cache. A cache hit is a known zero."""
    from langchain_core.caches import InMemoryCache

    results = iter(
        ["Chiefs 25, 49ers 22.", "The Chiefs won in overtime.", "The Chiefs won in overtime."]
    )

    @tool
    def lookup(query: str) -> str:
        """Search the web."""
        return next(results)

    model = make_model(cache=InMemoryCache())
    agent = create_agent(model, tools=[lookup], name="weather_agent")
    question = {"messages": [{"role": "user", "content": "Who won?"}]}
    with track_usage() as usage:
        agent.invoke(question)
        model.calls.append(1)  # the provider's next answer is the text, not a tool call
        agent.invoke(question)
        agent.invoke(question)
    first, second, third = by_name(telemetry.model_spans())["invoke_agent weather_agent"]
    assert first.attributes["llm_usage.model_calls"] == 2
    assert "llm_usage.cache_hits" not in first.attributes
    assert (
        second.attributes["llm_usage.model_calls"],
        second.attributes["llm_usage.cache_hits"],
        second.attributes["llm_usage.agent.input_tokens"],
        second.attributes["llm_usage.agent.output_tokens"],
    ) == (2, 1, 927, 105)
    assert second.attributes["llm_usage.agent.cost.amount"] == pytest.approx(
        927 * 0.5e-6 + 105 * 1.5e-6, rel=1e-12
    )
    assert (
        third.attributes["llm_usage.model_calls"],
        third.attributes["llm_usage.cache_hits"],
        third.attributes["llm_usage.agent.input_tokens"],
        third.attributes["llm_usage.agent.output_tokens"],
        third.attributes["llm_usage.agent.cost.amount"],
    ) == (2, 2, 0, 0, 0.0)
    for span in (first, second, third):
        assert "llm_usage.calls_without_usage" not in span.attributes
    assert (usage.cache_hits, usage.successful_requests, usage.calls_without_usage) == (3, 3, 0)
    assert (usage.input_tokens, usage.output_tokens) == (1538 + 927, 137 + 105)
