"""OTEL_LLM_USAGE_REQUEST_STREAM_USAGE: ask OpenAI-compatible servers for stream usage,
with the real langchain-openai ChatOpenAI talking HTTP to a local server."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from langchain_openai import ChatOpenAI

from otel_llm_usage import LangChainUsageInstrumentor, track_usage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _local_provider import LocalProvider, prompt_tokens, words

PROMPT = "Tell me a joke about spans"
SWITCH = "OTEL_LLM_USAGE_REQUEST_STREAM_USAGE"


@pytest.fixture
def server() -> Iterator[LocalProvider]:
    with LocalProvider() as provider:
        yield provider


@pytest.fixture
def reinstrument(telemetry, monkeypatch):
    def switch(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(SWITCH, raising=False)
        else:
            monkeypatch.setenv(SWITCH, value)
        instrumentor = LangChainUsageInstrumentor()
        instrumentor.uninstrument()
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )

    return switch


def model(server: LocalProvider, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", base_url=server.url, api_key="sk-test", **kwargs)


def expected_usage(server: LocalProvider) -> tuple[int, int]:
    body = server.requests[-1]
    answer = server.complete(body)[1]  # deterministic: the same answer again
    return prompt_tokens(body["messages"]), words(answer)


def test_off_by_default_a_custom_base_url_stream_has_no_usage(telemetry, server):
    chunks = list(model(server).stream(PROMPT))
    assert "stream_options" not in server.requests[-1]
    (span,) = telemetry.model_spans()
    assert span.attributes["llm_usage.usage.missing"] is True
    assert "".join(str(c.content) for c in chunks)


def test_on_asks_for_usage_and_reports_it_without_changing_content(telemetry, server, reinstrument):
    plain = [c.content for c in model(server).stream(PROMPT)]
    reinstrument("true")
    with track_usage() as usage:
        asked = [c.content for c in model(server).stream(PROMPT)]
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    # the application sees the same content chunks and the same final text
    assert [c for c in asked if c] == [c for c in plain if c]
    assert "".join(map(str, asked)) == "".join(map(str, plain))
    span = telemetry.model_spans()[-1]
    prompt, completion = expected_usage(server)
    assert span.attributes["gen_ai.usage.input_tokens"] == prompt
    assert span.attributes["gen_ai.usage.output_tokens"] == completion
    assert (usage.input_tokens, usage.output_tokens) == (prompt, completion)


async def test_on_for_astream(telemetry, server, reinstrument):
    reinstrument("true")
    parts = [c async for c in model(server).astream(PROMPT)]
    assert parts
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == expected_usage(server)[0]


def test_host_list(telemetry, server, reinstrument):
    reinstrument("llm.example.com, 127.0.0.1")
    list(model(server).stream(PROMPT))
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    reinstrument("llm.example.com")
    list(model(server).stream(PROMPT))
    assert "stream_options" not in server.requests[-1]


def test_an_explicit_choice_of_the_user_is_respected(telemetry, server, reinstrument):
    reinstrument("true")
    list(model(server, stream_usage=False).stream(PROMPT))
    assert "stream_options" not in server.requests[-1]
    list(model(server).stream(PROMPT, stream_usage=False))
    assert "stream_options" not in server.requests[-1]
    spans = telemetry.model_spans()
    assert all(s.attributes["llm_usage.usage.missing"] is True for s in spans)


def test_a_server_rejecting_the_option(telemetry, reinstrument, caplog):
    reinstrument("true")
    caplog.set_level(logging.WARNING)
    with LocalProvider(reject_stream_options=True) as server:
        errors = []
        for _ in range(2):
            with pytest.raises(openai.BadRequestError) as raised:
                list(model(server, max_retries=0).stream(PROMPT))
            errors.append(raised.value)
    assert errors[0].status_code == 400
    assert "stream_options" in str(errors[0])
    spans = telemetry.model_spans()
    # langchain-openai re-raises the SDK's error as its own subclass of it
    assert [s.attributes["error.type"] for s in spans] == [
        "langchain_openai.chat_models.base.OpenAIInvalidRequestError"
    ] * 2
    warnings = [r for r in caplog.records if SWITCH in r.getMessage()]
    assert len(warnings) == 1
    assert "127.0.0.1" in warnings[0].getMessage()


def test_agent_streaming_through_a_compatible_server_reports_usage_on_every_call(
    telemetry, server, reinstrument
):
    """The recorded agent run (lc_agent_openai.yaml) streamed every model call without
    usage; asked for it, an OpenAI-compatible server reports it on every call."""
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def search(query: str) -> str:
        """Search the web."""
        return "nothing found"

    reinstrument("true")
    agent = create_agent(model(server), tools=[search], name="researcher")
    list(agent.stream({"messages": [{"role": "user", "content": PROMPT}]}, stream_mode="messages"))
    chats = [s for s in telemetry.model_spans() if s.name.startswith("chat ")]
    assert chats
    for span in chats:
        assert span.attributes["gen_ai.request.stream"] is True
        assert span.attributes["gen_ai.usage.input_tokens"] > 0
        assert "llm_usage.usage.missing" not in span.attributes


def test_on_for_stream_events_v3(telemetry, server, reinstrument):
    reinstrument("true")
    stream = model(server).stream_events(PROMPT, version="v3")
    message = stream.output
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    prompt, completion = expected_usage(server)
    assert message.usage_metadata["input_tokens"] == prompt
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == prompt
    assert span.attributes["gen_ai.usage.output_tokens"] == completion


async def test_on_for_astream_events_v3(telemetry, server, reinstrument):
    reinstrument("true")
    stream = await model(server).astream_events(PROMPT, version="v3")
    message = await stream.output
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    prompt, completion = expected_usage(server)
    assert message.usage_metadata["output_tokens"] == completion
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == prompt
    assert span.attributes["gen_ai.usage.output_tokens"] == completion


def test_streams_without_usage_from_a_custom_endpoint_warn_once_naming_the_switch(
    telemetry, server, caplog
):
    caplog.set_level(logging.WARNING, "otel_llm_usage")
    for _ in range(3):
        list(model(server).stream(PROMPT))
    list(model(server, stream_usage=False).stream(PROMPT))  # the user's choice: no word
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("otel_llm_usage")]
    host = f"127.0.0.1:{server.url.rsplit(':', 1)[1].split('/')[0]}"
    assert warnings == [
        f"otel-llm-usage: streams from {host} report no token usage: the server was not "
        f"asked for it (stream_options.include_usage). Set {SWITCH}=true (or a list of "
        "hosts) to ask, or pass stream_usage=True to the model"
    ]
    assert [s.attributes["llm_usage.usage.missing"] for s in telemetry.model_spans()] == [True] * 4
