"""The real provider packages replaying recorded real provider responses (vcrpy).

Every expected token count is read from the recorded response body in
``tests/cassettes`` (see the NOTICE there), not typed in: the tokens the provider reported
are the truth that spans and counters must show. Where a provider package drops something the raw
response had, the test says so (``KNOWN GAP``) and pins what the package passes on, so a
package release that fixes it makes the test fail and the README's Providers table gets
updated.

Two providers have no recording for some APIs, and run against local servers speaking
their HTTP API instead: Azure OpenAI (examples/_local_provider.py on Azure's URL) and the
Bedrock streams and Converse (examples/_provider_server.py, AWS's event-stream format).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import vcr
import yaml
from conftest import Telemetry
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from _local_provider import LocalProvider, prompt_tokens, words
from _provider_server import ProviderServer, Reply

# The recordings name models that have since been retired; the SDK says so on every call.
# The Cohere SDK still reads pydantic's deprecated __fields__.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `__fields__` attribute is deprecated"),
]

CASSETTES = Path(__file__).parent / "cassettes"
RECORDER = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path"])

# gen_ai.provider.name → genai-prices provider id, for the reference price
PRICES_PROVIDER = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "cohere": "cohere",
}
CALL_MODES = ("invoke", "ainvoke")
STREAM_MODES = ("stream", "astream", "invoke-streaming", "ainvoke-streaming")


# -- the recordings -----------------------------------------------------------------------


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its response, the body decoded."""

    host: str
    port: int
    path: str
    request: dict[str, Any]
    body: str

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def events(self) -> list[dict[str, Any]]:
        """The JSON payloads of a server-sent-events body (``[DONE]`` left out)."""
        found = []
        for line in self.body.splitlines():
            if line.startswith("data:"):
                payload = line[len("data:") :].strip()
                if payload and payload != "[DONE]":
                    found.append(json.loads(payload))
        return found


def recording(name: str) -> list[Interaction]:
    data = yaml.safe_load((CASSETTES / name).read_text(encoding="utf-8"))
    found = []
    for interaction in data["interactions"]:
        request, response = interaction["request"], interaction["response"]
        raw = response["body"]["string"]
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        if isinstance(raw, bytes):
            if "gzip" in (headers.get("content-encoding") or []):
                raw = gzip.decompress(raw)
            raw = raw.decode("utf-8")
        uri = urlsplit(request["uri"])
        port = uri.port or {"https": 443, "http": 80}[uri.scheme]
        body = request.get("body") or "{}"
        found.append(
            Interaction(
                host=str(uri.hostname),
                port=port,
                path=uri.path,
                request=json.loads(body if isinstance(body, str) else body.decode("utf-8")),
                body=raw,
            )
        )
    return found


@contextmanager
def cassette(name: str, repeats: bool = True) -> Iterator[Any]:
    """Replay ``name``; ``repeats``: an interaction may answer more than one request."""
    with RECORDER.use_cassette(str(CASSETTES / name), allow_playback_repeats=repeats) as played:
        yield played


@dataclass(frozen=True)
class Expected:
    """What the span must say. ``input`` includes cache reads and writes (semconv)."""

    input: int
    output: int
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()


def openai_reported(body: dict[str, Any]) -> Expected:
    """A chat-completions (or legacy completions) JSON body: prompt_tokens INCLUDES the
    cached tokens, completion_tokens INCLUDES the reasoning tokens."""
    usage = body["usage"]
    return Expected(
        input=usage["prompt_tokens"],
        output=usage["completion_tokens"],
        cache_read=(usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
        reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
        response_model=body["model"],
        response_id=body["id"],
        finish_reasons=tuple(choice["finish_reason"] for choice in body["choices"]),
    )


def openai_stream_reported(events: list[dict[str, Any]]) -> Expected:
    """A chat-completions stream: usage in the chunk that has it (stream_options)."""
    (usage_chunk,) = [event for event in events if event.get("usage")]
    final = [event for event in events if event["choices"] and event["choices"][0]["finish_reason"]]
    body = {
        "usage": usage_chunk["usage"],
        "model": final[-1]["model"],
        "id": events[0]["id"],
        "choices": [choice for event in final for choice in event["choices"]],
    }
    return openai_reported(body)


def anthropic_reported(body: dict[str, Any]) -> Expected:
    """A messages JSON body (Anthropic, or Anthropic on Bedrock InvokeModel): input_tokens
    EXCLUDES cache reads and writes; the semconv input count includes them."""
    usage = body["usage"]
    cache_read = usage.get("cache_read_input_tokens") or 0
    cache_creation = usage.get("cache_creation_input_tokens") or 0
    return Expected(
        input=usage["input_tokens"] + cache_read + cache_creation,
        output=usage["output_tokens"],
        cache_read=cache_read,
        cache_creation=cache_creation,
        response_model=body["model"],
        response_id=body["id"],
        finish_reasons=(body["stop_reason"],),
    )


# -- calling a model every way -------------------------------------------------------------


async def call(model: Any, mode: str, prompt: Any) -> Any:
    """One call of ``model`` by ``mode``; ``*-streaming`` modes are ``invoke``/``ainvoke``
    of a model built with ``streaming=True`` (LangChain then streams underneath)."""
    if mode in ("invoke", "invoke-streaming"):
        return model.invoke(prompt)
    if mode in ("ainvoke", "ainvoke-streaming"):
        return await model.ainvoke(prompt)
    if mode == "stream":
        return list(model.stream(prompt))
    if mode == "astream":
        return [chunk async for chunk in model.astream(prompt)]
    raise AssertionError(mode)


def streams(mode: str) -> bool:
    """Whether the provider streams (every mode but a plain invoke/ainvoke)."""
    return mode not in CALL_MODES


def chunked(mode: str) -> bool:
    """Whether the caller gets chunks."""
    return mode in ("stream", "astream")


# -- what a call must leave behind --------------------------------------------------------


def reference_cost(provider: str, model: str, expected: Expected) -> float:
    """genai-prices' own figure for the same usage (its input includes cache tokens)."""
    usage = PricesUsage(
        input_tokens=expected.input,
        cache_read_tokens=expected.cache_read,
        cache_write_tokens=expected.cache_creation,
        output_tokens=expected.output,
    )
    return float(calc_price(usage, model, provider_id=PRICES_PROVIDER[provider]).total_price)


def the_span(telemetry: Telemetry) -> ReadableSpan:
    spans = telemetry.model_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def assert_call(
    telemetry: Telemetry,
    expected: Expected,
    *,
    provider: str,
    request_model: str,
    address: str | None,
    port: int | None,
    stream: bool,
    got_chunks: bool | None = None,
    operation: str = "chat",
    priced: bool = True,
) -> ReadableSpan:
    """Exactly one span with ``expected``, and counters that say the same. ``address``
    None: the server address is not checked (see the Cohere tests). ``got_chunks``: whether
    the caller got chunks (``stream``/``astream``), default ``stream``; ``invoke`` of a
    ``streaming=True`` model streams from the provider (``stream``) but hands back one
    message, and its span has no time to first chunk."""
    span = the_span(telemetry)
    attributes = dict(span.attributes or {})
    assert span.name == f"{operation} {request_model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attributes["gen_ai.operation.name"] == operation
    assert attributes["gen_ai.provider.name"] == provider
    assert attributes["gen_ai.request.model"] == request_model
    if address is not None:
        assert attributes["server.address"] == address
        assert attributes["server.port"] == port
    assert attributes.get("gen_ai.request.stream", False) is stream
    assert attributes.get("gen_ai.response.model") == expected.response_model
    assert attributes.get("gen_ai.response.id") == expected.response_id
    assert tuple(attributes.get("gen_ai.response.finish_reasons", ())) == expected.finish_reasons
    assert attributes["gen_ai.usage.input_tokens"] == expected.input
    assert attributes["gen_ai.usage.output_tokens"] == expected.output
    assert attributes.get("gen_ai.usage.cache_read.input_tokens", 0) == expected.cache_read
    assert attributes.get("gen_ai.usage.cache_creation.input_tokens", 0) == expected.cache_creation
    assert attributes.get("gen_ai.usage.reasoning.output_tokens", 0) == expected.reasoning
    assert "llm_usage.usage.missing" not in attributes

    source = {"llm_usage__usage__source": "reported", "gen_ai__provider__name": provider}
    for token_type, value in (
        ("input", expected.input),
        ("output", expected.output),
        ("cache_read", expected.cache_read),
        ("cache_creation", expected.cache_creation),
        ("reasoning", expected.reasoning),
    ):
        assert telemetry.counter("llm_usage.tokens", gen_ai__token__type=token_type, **source) == (
            value
        )
        assert telemetry.tokens(token_type) == value  # and nothing under any other series
    assert telemetry.counter("llm_usage.requests", **source) == 1
    assert telemetry.counter("llm_usage.requests") == 1
    histogram = "gen_ai.client.token.usage"
    assert telemetry.counter(histogram, gen_ai__token__type="input") == expected.input
    assert telemetry.counter(histogram, gen_ai__token__type="output") == expected.output
    series = {"gen_ai__request__model": request_model, "gen_ai__operation__name": operation}
    if expected.response_model is not None:
        series["gen_ai__response__model"] = expected.response_model
    if address is not None:
        series["server__address"] = address
    output = telemetry.counter("llm_usage.tokens", gen_ai__token__type="output", **series)
    assert output == expected.output
    if priced:
        cost = attributes["gen_ai.usage.cost.amount"]
        assert attributes["gen_ai.usage.cost.currency"] == "USD"
        assert telemetry.counter("llm_usage.cost", **source) == cost
        model = expected.response_model or request_model
        assert cost == pytest.approx(reference_cost(provider, model, expected), rel=1e-12)
    if got_chunks is None:
        got_chunks = stream
    if got_chunks:
        assert attributes["gen_ai.response.time_to_first_chunk"] >= 0
        assert attributes["llm_usage.stream.chunks"] > 0
    else:
        assert "gen_ai.response.time_to_first_chunk" not in attributes
    return span


# -- OpenAI chat completions ----------------------------------------------------------------


def openai_chat(interaction: Interaction, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    scheme = "https" if interaction.port == 443 else "http"
    return ChatOpenAI(
        model=interaction.request["model"],
        base_url=f"{scheme}://{interaction.host}:{interaction.port}/v1",
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        **kwargs,
    )


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_openai_chat(telemetry: Telemetry, mode: str) -> None:
    """lc_chat_openai_invoke.yaml: gpt-4o-mini, a long prompt, most of it a cache read."""
    (recorded,) = recording("lc_chat_openai_invoke.yaml")
    expected = openai_reported(recorded.json())
    assert expected.cache_read > 0  # the point of this recording
    messages = [(m["role"], m["content"]) for m in recorded.request["messages"]]
    with cassette("lc_chat_openai_invoke.yaml"):
        message = await call(openai_chat(recorded), mode, messages)
    assert message.usage_metadata["input_token_details"]["cache_read"] == expected.cache_read
    assert_call(
        telemetry,
        expected,
        provider="openai",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=False,
    )


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_openai_tool_calls(telemetry: Telemetry, mode: str) -> None:
    """lc_tool_calls_openai.yaml: bind_tools, with a tool round in the history."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    (recorded,) = recording("lc_tool_calls_openai.yaml")
    expected = openai_reported(recorded.json())

    history = recorded.request["messages"]
    call_id = history[2]["tool_calls"][0]["id"]
    messages = [
        SystemMessage(history[0]["content"]),
        HumanMessage(history[1]["content"]),
        AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"location": "San Francisco"}, "id": call_id}
            ],
        ),
        ToolMessage(history[3]["content"], tool_call_id=call_id),
        HumanMessage(history[4]["content"]),
    ]
    model = openai_chat(recorded, temperature=recorded.request["temperature"])
    with cassette("lc_tool_calls_openai.yaml"):
        message = await call(model.bind_tools(recorded.request["tools"]), mode, messages)
    (tool_call,) = recorded.json()["choices"][0]["message"]["tool_calls"]
    assert message.tool_calls[0]["id"] == tool_call["id"]
    span = assert_call(
        telemetry,
        expected,
        provider="openai",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=False,
    )
    assert span.attributes["gen_ai.request.temperature"] == recorded.request["temperature"]


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_openai_structured_output(telemetry: Telemetry, mode: str) -> None:
    """lc_structured_output_openai.yaml: with_structured_output (json_schema)."""
    from pydantic import BaseModel, Field

    (recorded,) = recording("lc_structured_output_openai.yaml")
    expected = openai_reported(recorded.json())

    class FoodAnalysis(BaseModel):
        name: str = Field(description="The name of the food item")
        healthy: bool = Field(description="Whether the food is good for you")
        calories: int = Field(description="Estimated calories per serving")
        taste_profile: list[str] = Field(description="List of taste characteristics")

    model = openai_chat(recorded, temperature=0.0).with_structured_output(FoodAnalysis)
    with cassette("lc_structured_output_openai.yaml"):
        food = await call(model, mode, recorded.request["messages"][0]["content"])
    answer = json.loads(recorded.json()["choices"][0]["message"]["content"])
    assert food.model_dump() == answer
    assert_call(
        telemetry,
        expected,
        provider="openai",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=False,
    )


def test_openai_prompt_caching_four_calls(telemetry: Telemetry) -> None:
    """openai_prompt_caching.yaml: four calls of one long prompt; OpenAI reported a cache
    read on one of them. Each span has its own call's numbers, the counters their sum."""
    recorded = recording("openai_prompt_caching.yaml")
    expected = [openai_reported(interaction.json()) for interaction in recorded]
    assert [e.cache_read > 0 for e in expected].count(True) == 1
    messages = [(m["role"], m["content"]) for m in recorded[0].request["messages"]]
    model = openai_chat(recorded[0])
    with cassette("openai_prompt_caching.yaml", repeats=False) as played:
        for _ in recorded:
            model.invoke(messages)
        assert played.all_played
    spans = telemetry.model_spans()
    assert len(spans) == len(expected)
    for span, wanted in zip(spans, expected, strict=True):
        assert span.attributes["gen_ai.response.id"] == wanted.response_id
        assert span.attributes["gen_ai.usage.input_tokens"] == wanted.input
        assert span.attributes["gen_ai.usage.output_tokens"] == wanted.output
        assert span.attributes.get("gen_ai.usage.cache_read.input_tokens", 0) == wanted.cache_read
    assert telemetry.tokens("input") == sum(e.input for e in expected)
    assert telemetry.tokens("output") == sum(e.output for e in expected)
    assert telemetry.tokens("cache_read") == sum(e.cache_read for e in expected)
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="reported") == 4


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_openai_chat_stream(telemetry: Telemetry, mode: str) -> None:
    """openai_chat_streaming.yaml: an OpenAI-compatible server on localhost:5002, a stream
    whose last chunk carries the usage (stream_usage=True asks for it)."""
    (recorded,) = recording("openai_chat_streaming.yaml")
    events = recorded.events()
    reported = openai_stream_reported(events)
    kwargs: dict[str, Any] = {"stream_usage": True}
    if mode.endswith("-streaming"):
        kwargs["streaming"] = True
    prompt = recorded.request["messages"][0]["content"]
    with cassette("openai_chat_streaming.yaml"):
        result = await call(openai_chat(recorded, **kwargs), mode, prompt)
    text = "".join(
        event["choices"][0]["delta"].get("content") or "" for event in events if event["choices"]
    )
    assert (
        result.content if hasattr(result, "content") else "".join(c.content for c in result)
    ) == (text)
    # KNOWN GAP (langchain-openai 1.7.3): stream chunks keep no response id, so the span
    # has none although every recorded chunk says reported.response_id.
    expected = Expected(
        input=reported.input,
        output=reported.output,
        cache_read=reported.cache_read,
        reasoning=reported.reasoning,
        response_model=reported.response_model,
        response_id=None,
        finish_reasons=reported.finish_reasons,
    )
    assert_call(
        telemetry,
        expected,
        provider="openai",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=True,
        got_chunks=chunked(mode),
    )


def test_known_gap_openai_stream_chunks_carry_no_response_id() -> None:
    """Pins the gap above: if this fails, langchain-openai now keeps the chunk id, and
    test_openai_chat_stream must expect it on the span (and the README table changes)."""
    (recorded,) = recording("openai_chat_streaming.yaml")
    response_id = recorded.events()[0]["id"]
    with cassette("openai_chat_streaming.yaml"):
        chunks = list(openai_chat(recorded, stream_usage=True).stream("hi"))
    carried = {c.id for c in chunks} | {c.response_metadata.get("id") for c in chunks}
    assert response_id not in carried


# -- Azure OpenAI (no recording: the local OpenAI stand-in, Azure's URL) -------------------


@pytest.mark.parametrize("mode", (*CALL_MODES, "stream", "astream"))
async def test_azure_openai(telemetry: Telemetry, mode: str) -> None:
    """AzureChatOpenAI against examples/_local_provider.py answering Azure's deployment
    path. The request names a deployment; the response names the model behind it."""
    from langchain_openai import AzureChatOpenAI

    deployment, served = "prod-chat", "gpt-4o-mini-2024-07-18"
    with LocalProvider(azure=True, response_model=served) as server:
        model = AzureChatOpenAI(
            azure_endpoint=server.endpoint,
            azure_deployment=deployment,
            api_version="2024-10-21",
            api_key="azure-test-key",  # type: ignore[arg-type]
            max_retries=0,
            stream_usage=True,
        )
        prompt = "Tell me a joke about deployments"
        result = await call(model, mode, prompt)
        (path,) = server.paths
        body = server.requests[-1]
        answer = server.complete(body)[1]  # deterministic: the same answer again
    assert path == f"/openai/deployments/{deployment}/chat/completions?api-version=2024-10-21"
    text = result.content if hasattr(result, "content") else "".join(c.content for c in result)
    assert text == answer
    # the local provider's rule: 4 + words per message; words of the answer
    expected = Expected(
        input=prompt_tokens(body["messages"]),
        output=words(answer),
        response_model=served,
        response_id=None if streams(mode) else "chatcmpl-local-1",  # see the OpenAI gap
        finish_reasons=("stop",),
    )
    assert expected.input == 4 + words(prompt)
    assert_call(
        telemetry,
        expected,
        provider="azure.ai.openai",
        request_model=deployment,
        address="127.0.0.1",
        port=int(server.endpoint.rsplit(":", 1)[1]),
        stream=streams(mode),
    )


# -- legacy OpenAI completions (a vLLM server) ---------------------------------------------


def legacy_openai(interaction: Interaction, **kwargs: Any) -> Any:
    from langchain_openai import OpenAI

    return OpenAI(
        model=interaction.request["model"],
        base_url=f"http://{interaction.host}:{interaction.port}/v1",
        api_key="EMPTY",  # type: ignore[arg-type]
        max_tokens=interaction.request["max_tokens"],
        max_retries=0,
        **kwargs,
    )


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_legacy_openai_completion(telemetry: Telemetry, mode: str) -> None:
    """lc_legacy_openai_completion.yaml: vLLM /v1/completions, usage in the JSON body."""
    (recorded,) = recording("lc_legacy_openai_completion.yaml")
    reported = openai_reported(recorded.json())
    with cassette("lc_legacy_openai_completion.yaml"):
        text = await call(legacy_openai(recorded), mode, recorded.request["prompt"])
    assert text == recorded.json()["choices"][0]["text"]
    # KNOWN GAP (langchain-openai 1.7.3): the legacy LLM's llm_output has no response id.
    expected = Expected(
        input=reported.input,
        output=reported.output,
        response_model=reported.response_model,
        finish_reasons=reported.finish_reasons,
    )
    span = assert_call(
        telemetry,
        expected,
        provider="openai",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=False,
        operation="text_completion",
        priced=False,
    )
    assert span.attributes["llm_usage.price.missing"] is True  # opt-125m has no price
    assert span.attributes["gen_ai.request.max_tokens"] == recorded.request["max_tokens"]


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_legacy_openai_completion_stream_reports_no_usage(
    telemetry: Telemetry, mode: str
) -> None:
    """lc_legacy_openai_completion_stream.yaml: the server streamed no usage at all
    (``"usage": null`` in every chunk): the span says usage is missing, no zeros counted."""
    (recorded,) = recording("lc_legacy_openai_completion_stream.yaml")
    events = recorded.events()
    assert all(event["usage"] is None for event in events)
    kwargs = {"streaming": True} if mode.endswith("-streaming") else {}
    with cassette("lc_legacy_openai_completion_stream.yaml"):
        result = await call(legacy_openai(recorded, **kwargs), mode, recorded.request["prompt"])
    text = "".join(event["choices"][0]["text"] for event in events)
    assert (result if isinstance(result, str) else "".join(result)) == text
    span = the_span(telemetry)
    assert span.name == f"text_completion {recorded.request['model']}"
    assert span.attributes["llm_usage.usage.missing"] is True
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert span.attributes["gen_ai.request.stream"] is True  # the provider streamed
    if mode.endswith("-streaming"):  # generate() returns an LLMResult with the metadata
        assert span.attributes["gen_ai.response.model"] == events[-1]["model"]
        assert span.attributes["gen_ai.response.finish_reasons"] == (
            events[-1]["choices"][0]["finish_reason"],
        )
    else:
        # KNOWN GAP (langchain-core BaseLLM.stream yields bare strings): the finish reason
        # and model of the last chunk never reach the caller, so the span has neither.
        assert "gen_ai.response.finish_reasons" not in span.attributes
        assert "gen_ai.response.model" not in span.attributes
        assert span.attributes["llm_usage.stream.chunks"] == len(events)
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="missing") == 1
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="reported") == 0
    assert telemetry.tokens("input") == 0
    assert telemetry.tokens("output") == 0


# -- Anthropic ------------------------------------------------------------------------------


def anthropic_chat(interaction: Interaction, **kwargs: Any) -> Any:
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(
        model=interaction.request["model"],
        api_key="sk-ant-test",  # type: ignore[arg-type]
        max_tokens=interaction.request["max_tokens"],
        max_retries=0,
        **kwargs,
    )


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_anthropic_messages(telemetry: Telemetry, mode: str) -> None:
    """lc_chat_anthropic_invoke.yaml: claude-2.1, a system prompt, usage in the body."""
    (recorded,) = recording("lc_chat_anthropic_invoke.yaml")
    expected = anthropic_reported(recorded.json())
    messages = [("system", recorded.request["system"])] + [
        (m["role"], m["content"]) for m in recorded.request["messages"]
    ]
    with cassette("lc_chat_anthropic_invoke.yaml"):
        message = await call(anthropic_chat(recorded), mode, messages)
    assert message.content == recorded.json()["content"][0]["text"]
    span = assert_call(
        telemetry,
        expected,
        provider="anthropic",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=False,
    )
    assert span.attributes["gen_ai.request.max_tokens"] == recorded.request["max_tokens"]


def anthropic_stream_reported(events: list[dict[str, Any]]) -> tuple[Expected, int]:
    """(what the provider reported, the input tokens of its message_start)."""
    (start,) = [e for e in events if e["type"] == "message_start"]
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    message = start["message"]
    body = {
        "usage": {**message["usage"], **delta["usage"]},  # output: the cumulative count
        "model": message["model"],
        "id": message["id"],
        "stop_reason": delta["delta"]["stop_reason"],
    }
    return anthropic_reported(body), message["usage"]["input_tokens"]


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_anthropic_messages_stream(telemetry: Telemetry, mode: str) -> None:
    """anthropic_messages_streaming.yaml (claude-3-haiku, 2024): input tokens only in
    message_start, the cumulative output count in message_delta."""
    (recorded,) = recording("anthropic_messages_streaming.yaml")
    events = recorded.events()
    reported, start_input = anthropic_stream_reported(events)
    assert reported.input == start_input > 0
    kwargs = {"streaming": True} if mode.endswith("-streaming") else {}
    prompt = recorded.request["messages"][0]["content"]
    with cassette("anthropic_messages_streaming.yaml"):
        result = await call(anthropic_chat(recorded, **kwargs), mode, prompt)
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert (
        result.content if hasattr(result, "content") else "".join(c.content for c in result)
    ) == (text)
    # KNOWN GAPS (langchain-anthropic 1.7.7): usage is read from message_delta only, so a
    # stream whose message_delta has no input_tokens (the API before 2025, as recorded
    # here) gets 0 input tokens; and the message id of message_start is not kept.
    expected = Expected(
        input=0,
        output=reported.output,
        response_model=reported.response_model,
        response_id=None,
        finish_reasons=reported.finish_reasons,
    )
    assert_call(
        telemetry,
        expected,
        provider="anthropic",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=True,
        got_chunks=chunked(mode),
    )


def test_known_gap_anthropic_stream_drops_message_start_usage() -> None:
    """Pins the gap above: the package's own chunks say 0 input tokens where the
    provider said more. If this fails, langchain-anthropic now reads message_start usage:
    test_anthropic_messages_stream must expect the provider's count."""
    (recorded,) = recording("anthropic_messages_streaming.yaml")
    _, start_input = anthropic_stream_reported(recorded.events())
    with cassette("anthropic_messages_streaming.yaml"):
        chunks = list(anthropic_chat(recorded).stream("hi"))
    package_input = sum((c.usage_metadata or {}).get("input_tokens", 0) for c in chunks)
    assert start_input > 0
    assert package_input == 0
    assert all(c.id is None or c.id.startswith("lc_") for c in chunks)


# -- AWS Bedrock ----------------------------------------------------------------------------


def bedrock_region(host: str) -> str:
    """bedrock-runtime.{region}.amazonaws.com → region."""
    service, region, *_ = host.split(".")
    assert service == "bedrock-runtime"
    return region


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_bedrock_invoke_model(telemetry: Telemetry, aws: None, mode: str) -> None:
    """lc_chat_bedrock_invoke.yaml: ChatBedrock (InvokeModel), Claude 3 Haiku."""
    from langchain_aws import ChatBedrock

    (recorded,) = recording("lc_chat_bedrock_invoke.yaml")
    reported = anthropic_reported(recorded.json())
    model_id = recorded.path.split("/")[2].replace("%3A", ":")  # /model/{id}/invoke
    model = ChatBedrock(model_id=model_id, region_name=bedrock_region(recorded.host))
    with cassette("lc_chat_bedrock_invoke.yaml"):
        message = await call(model, mode, recorded.request["messages"][0]["content"])
    assert message.content == recorded.json()["content"][0]["text"]
    # KNOWN GAPS (langchain-aws 1.9.1): the response's own "model" and "id" are dropped;
    # the package names the request's model id, and the span has no response id.
    assert reported.response_model != model_id
    expected = Expected(
        input=reported.input,
        output=reported.output,
        response_model=model_id,
        finish_reasons=reported.finish_reasons,
    )
    assert_call(
        telemetry,
        expected,
        provider="aws.bedrock",
        request_model=model_id,
        address=recorded.host,
        port=recorded.port,
        stream=False,
    )


def test_bedrock_converse_stubbed(telemetry: Telemetry, aws: None) -> None:
    """ChatBedrockConverse: there is NO recording of the Converse API in the test data,
    so botocore's Stubber answers with Converse's documented shape. inputTokens EXCLUDES
    cacheReadInputTokens and cacheWriteInputTokens; the span's input includes them."""
    import boto3
    from botocore.stub import Stubber
    from langchain_aws import ChatBedrockConverse

    model_id = "anthropic.claude-3-5-sonnet-20241022-v2:0"
    usage = {"inputTokens": 30, "outputTokens": 12, "cacheReadInputTokens": 60}
    usage["cacheWriteInputTokens"] = 40
    usage["totalTokens"] = 30 + 60 + 40 + 12
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Hello."}]}},
                "stopReason": "end_turn",
                "usage": usage,
                "metrics": {"latencyMs": 120},
            },
        )
        model = ChatBedrockConverse(client=client, model=model_id, region_name="us-east-1")
        assert model.invoke("Say hello").content == "Hello."
        stubber.assert_no_pending_responses()
    expected = Expected(
        input=usage["inputTokens"] + usage["cacheReadInputTokens"] + usage["cacheWriteInputTokens"],
        output=usage["outputTokens"],
        cache_read=usage["cacheReadInputTokens"],
        cache_creation=usage["cacheWriteInputTokens"],
        response_model=model_id,
        finish_reasons=("end_turn",),
    )
    assert_call(
        telemetry,
        expected,
        provider="aws.bedrock",
        request_model=model_id,
        address="bedrock-runtime.us-east-1.amazonaws.com",
        port=443,
        stream=False,
    )


# Bedrock streams: there is no recording of either stream API in the test data, and
# botocore's Stubber cannot stub an event stream. So examples/_provider_server.py speaks the
# Bedrock runtime API, AWS's binary event-stream format included, and the real boto3
# client talks HTTP to it through endpoint_url. Usage as Bedrock reports it: input EXCLUDES
# the cache reads and writes (the span's input includes them).
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
BEDROCK_REPLY = Reply(
    text="Bedrock streams in binary frames.", input=13, output=9, cache_read=20, cache_creation=5
)


@pytest.fixture(scope="module")
def bedrock_server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


@pytest.fixture
def bedrock(bedrock_server: ProviderServer, aws: None) -> Iterator[ProviderServer]:
    bedrock_server.reset()
    yield bedrock_server
    assert bedrock_server.pending == 0, "the test scripted replies it did not use"


def bedrock_chat(api: str, server: ProviderServer, **kwargs: Any) -> Any:
    """ChatBedrock (InvokeModel) or ChatBedrockConverse, boto3 pointed at ``server``,
    no retries (botocore retries throttling by default)."""
    from botocore.config import Config
    from langchain_aws import ChatBedrock, ChatBedrockConverse

    options: dict[str, Any] = {
        "region_name": "us-east-1",
        "endpoint_url": server.url,
        "config": Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        **kwargs,
    }
    if api == "invoke_model":
        return ChatBedrock(model_id=BEDROCK_MODEL, **options)
    return ChatBedrockConverse(model=BEDROCK_MODEL, **options)


@pytest.mark.parametrize("mode", CALL_MODES + STREAM_MODES)
@pytest.mark.parametrize("api", ("invoke_model", "converse"))
async def test_bedrock_local_server(
    telemetry: Telemetry, bedrock: ProviderServer, api: str, mode: str
) -> None:
    """InvokeModel(+WithResponseStream) and Converse(+Stream) with every token class."""
    reply = BEDROCK_REPLY
    bedrock.script(reply)
    kwargs = {"streaming": True} if mode.endswith("-streaming") else {}
    received = await call(bedrock_chat(api, bedrock, **kwargs), mode, "Say something short")
    action = {"invoke_model": "invoke", "converse": "converse"}[api]
    if streams(mode):
        action += "-with-response-stream" if api == "invoke_model" else "-stream"
    assert bedrock.requests[0].path == f"/model/{BEDROCK_MODEL}/{action}".replace(":", "%3A")
    text = "".join(chunk.text for chunk in received) if chunked(mode) else received.text
    assert text == reply.text
    expected = Expected(
        input=reply.input + reply.cache_read + reply.cache_creation,
        output=reply.output,
        cache_read=reply.cache_read,
        cache_creation=reply.cache_creation,
        # KNOWN GAP (langchain-aws 1.9.1): neither API's response id reaches the message
        # (Converse has none; InvokeModel's Anthropic "id" is dropped), and the package
        # names the request's model id.
        response_model=BEDROCK_MODEL,
        finish_reasons=("end_turn",),
    )
    assert_call(
        telemetry,
        expected,
        provider="aws.bedrock",
        request_model=BEDROCK_MODEL,
        address="127.0.0.1",
        port=bedrock.port,
        stream=streams(mode),
        got_chunks=chunked(mode),
    )


@pytest.mark.parametrize("mode", ("stream", "astream"))
@pytest.mark.parametrize("api", ("invoke_model", "converse"))
async def test_bedrock_stream_error_event(
    telemetry: Telemetry, bedrock: ProviderServer, api: str, mode: str
) -> None:
    """Bedrock reports a stream that fails midway IN the stream (an exception message,
    modelStreamErrorException): botocore's error reaches the caller unchanged, the span
    ends once as an error, with the chunks that came before it."""
    from botocore.exceptions import EventStreamError

    bedrock.script(replace(BEDROCK_REPLY, cut_after=3))
    received: list[Any] = []
    with pytest.raises(EventStreamError) as raised:
        if mode == "stream":
            received.extend(bedrock_chat(api, bedrock).stream("Say something short"))
        else:
            async for chunk in bedrock_chat(api, bedrock).astream("Say something short"):
                received.append(chunk)
    assert raised.value.response["Error"]["Code"] == "modelStreamErrorException"
    span = the_span(telemetry)
    attributes = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attributes["error.type"] == "botocore.exceptions.EventStreamError"
    assert attributes["llm_usage.stream.chunks"] == len(received) > 0
    assert "gen_ai.usage.input_tokens" not in attributes
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="error") == 1
    assert telemetry.tokens("input") == 0


@pytest.mark.parametrize("api", ("invoke_model", "converse"))
async def test_bedrock_throttled(telemetry: Telemetry, bedrock: ProviderServer, api: str) -> None:
    """A 429 ThrottlingException, retries off: botocore's modeled error, unchanged."""
    bedrock.script(Reply(status=429))
    with pytest.raises(Exception) as raised:
        await bedrock_chat(api, bedrock).ainvoke("Say something short")
    error = raised.value
    assert type(error).__name__ == "ThrottlingException"
    assert error.response["Error"]["Code"] == "ThrottlingException"  # type: ignore[attr-defined]
    span = the_span(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "botocore.errorfactory.ThrottlingException"
    assert (
        telemetry.counter(
            "llm_usage.requests",
            llm_usage__usage__source="error",
            error__type="botocore.errorfactory.ThrottlingException",
        )
        == 1
    )


# -- Cohere ---------------------------------------------------------------------------------


def cohere_chat(interaction: Interaction, **kwargs: Any) -> Any:
    from langchain_cohere import ChatCohere

    return ChatCohere(
        model=interaction.request["model"],
        cohere_api_key="co-test",  # type: ignore[arg-type]
        temperature=interaction.request["temperature"],
        **kwargs,
    )


def cohere_reported() -> tuple[Interaction, Expected, dict[str, Any]]:
    """(the interaction, the BILLED usage the span must show, the raw usage)."""
    (recorded,) = recording("lc_chain_stream_cohere_usage.yaml")
    events = recorded.events()
    (end,) = [e for e in events if e["type"] == "message-end"]
    usage = end["delta"]["usage"]
    billed = usage["billed_units"]
    expected = Expected(
        input=billed["input_tokens"],
        output=billed["output_tokens"],
        finish_reasons=(end["delta"]["finish_reason"],),
    )
    return recorded, expected, usage


@pytest.mark.parametrize("mode", STREAM_MODES)
async def test_cohere_stream_reports_billed_units(telemetry: Telemetry, mode: str) -> None:
    """lc_chain_stream_cohere_usage.yaml: Cohere v2 chat stream; message-end carries
    billed_units, tokens used and cached_tokens. langchain-cohere's SYNC stream puts the
    billed units only in the last chunk's response_metadata["token_count"] (its async
    stream also sets usage_metadata): usage is read from there. server.address comes from
    the Cohere SDK's client wrapper."""
    recorded, expected, usage = cohere_reported()
    # billed and used differ: the span reports BILLED units (what the call costs)
    assert usage["tokens"]["input_tokens"] != usage["billed_units"]["input_tokens"]
    assert usage["cached_tokens"] > 0  # reported by Cohere, dropped by the package
    kwargs = {"streaming": True} if mode.endswith("-streaming") else {}
    prompt = recorded.request["messages"][0]["content"]
    with cassette("lc_chain_stream_cohere_usage.yaml"):
        await call(cohere_chat(recorded, **kwargs), mode, prompt)
    # KNOWN GAPS (langchain-cohere 0.6.0): the message id and Cohere's cached_tokens are
    # dropped (so no cache_read on the span); Cohere streams name no response model.
    assert_call(
        telemetry,
        expected,
        provider="cohere",
        request_model=recorded.request["model"],
        address=recorded.host,
        port=recorded.port,
        stream=True,
        got_chunks=chunked(mode),
    )


@pytest.mark.parametrize("mode", CALL_MODES)
async def test_cohere_invoke_local_server(telemetry: Telemetry, mode: str) -> None:
    """There is no recording of a Cohere call that does not stream: the local server
    answers the v2 chat JSON with the recorded stream's usage (billed, used, cached)."""
    from langchain_cohere import ChatCohere

    recorded, billed, usage = cohere_reported()
    reply = Reply(
        text="Spans all the way down.",
        input=usage["billed_units"]["input_tokens"],
        used_input=usage["tokens"]["input_tokens"],
        output=usage["billed_units"]["output_tokens"],
        cache_read=usage["cached_tokens"],
    )
    model_name = recorded.request["model"]
    with ProviderServer(reply) as server:
        model = ChatCohere(
            model=model_name,
            cohere_api_key="co-test",  # type: ignore[arg-type]
            base_url=server.url,
        )
        message = await call(model, mode, "Tell me a joke")
    assert message.text == reply.text
    # KNOWN GAP (langchain-cohere 0.6.0): a call that does not stream passes on the tokens
    # USED (usage.tokens), not the billed units, which the package drops (its streams pass
    # on the billed units); cached_tokens is dropped too. So its span says what was used.
    assert billed.input != reply.used_input
    assert_call(
        telemetry,
        Expected(
            input=reply.used_input,
            output=reply.output,
            response_id="co-test-1",
            finish_reasons=("COMPLETE",),
        ),
        provider="cohere",
        request_model=model_name,
        address="127.0.0.1",
        port=server.port,
        stream=False,
    )
