"""One span per provider call, with exact usage, on every LangChain call path."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from fakes import FakeChat, FakeChatNoStream, FakeCompletion, usage_metadata
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tracers._streaming import _V2StreamingCallbackHandler
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

warnings.filterwarnings("ignore", message=".*v3.*")

CHAT_REQUEST = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 256,
    "server.address": "api.openai.com",
    "server.port": 443,
}
CHAT_RESPONSE = {
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 11,
    "gen_ai.usage.output_tokens": 16,
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens
    "gen_ai.usage.cost.amount": 1.125e-05,
    "gen_ai.usage.cost.currency": "USD",
    "gen_ai.usage.cost.source": "local",
}
TEXT = FakeChat().text


def chain(model: Any) -> Any:
    prompt = ChatPromptTemplate.from_messages([("human", "Tell me a joke about {topic}")])
    return prompt | model | StrOutputParser()


def assert_chat_span(span: Any, *, stream: bool, response_id: str) -> None:
    expected: dict[str, Any] = {**CHAT_REQUEST, **CHAT_RESPONSE}
    expected["gen_ai.response.id"] = response_id
    if stream:
        expected["gen_ai.request.stream"] = True
        expected["llm_usage.stream.chunks"] = 6
    attributes = dict(span.attributes)
    ttfc = attributes.pop("gen_ai.response.time_to_first_chunk", None)
    assert (ttfc is not None) == stream
    if stream:
        assert 0 <= ttfc < 5
    assert attributes == expected
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.is_ok


def assert_token_counters(telemetry: Any, calls: int) -> None:
    assert telemetry.tokens("input") == 11 * calls
    assert telemetry.tokens("output") == 16 * calls
    assert telemetry.tokens("cache_read") == 0
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="reported") == calls


def test_invoke(telemetry):
    message = FakeChat().invoke("Tell me a joke")
    assert message.content == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=False, response_id="chatcmpl-fake-1")
    assert_token_counters(telemetry, 1)


def test_standard_metrics(telemetry):
    FakeChat().invoke("Tell me a joke")
    metrics = telemetry.metrics()
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    usage_points = {
        p.attributes["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]
    }
    assert {k: (p.count, p.sum) for k, p in usage_points.items()} == {
        "input": (1, 11),
        "output": (1, 16),
    }
    assert list(usage_points["input"].explicit_bounds)[:4] == [1, 4, 16, 64]
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics


async def test_ainvoke(telemetry):
    message = await FakeChat().ainvoke("Tell me a joke")
    assert message.content == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=False, response_id="chatcmpl-fake-1")
    assert_token_counters(telemetry, 1)


def test_batch_makes_one_span_per_input(telemetry):
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as parent:
        results = FakeChat().batch(["a", "b", "c"])
    assert [r.content for r in results] == [TEXT] * 3
    spans = telemetry.model_spans()
    assert len(spans) == 3
    for span in spans:
        assert_chat_span(span, stream=False, response_id="chatcmpl-fake-1")
        assert span.parent.span_id == parent.get_span_context().span_id
    assert_token_counters(telemetry, 3)


async def test_abatch(telemetry):
    results = await FakeChat().abatch(["a", "b", "c", "d"])
    assert len(results) == 4
    assert len(telemetry.model_spans()) == 4
    assert_token_counters(telemetry, 4)


def test_stream(telemetry):
    chunks = list(FakeChat().stream("Tell me a joke"))
    assert "".join(str(c.content) for c in chunks) == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=True, response_id="chatcmpl-s1")
    assert_token_counters(telemetry, 1)
    metrics = telemetry.metrics()
    (first_chunk,) = metrics["gen_ai.client.operation.time_to_first_chunk"]
    (per_chunk,) = metrics["gen_ai.client.operation.time_per_output_chunk"]
    assert (first_chunk.count, per_chunk.count) == (1, 1)


async def test_astream(telemetry):
    chunks = [c async for c in FakeChat().astream("Tell me a joke")]
    assert "".join(str(c.content) for c in chunks) == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=True, response_id="chatcmpl-s1")
    assert_token_counters(telemetry, 1)


def test_stream_sums_usage_split_over_chunks(telemetry):
    """Anthropic reports input in message_start and output in message_delta."""

    class SplitUsage(FakeChat):
        def _stream_chunks(self):  # type: ignore[override]
            from langchain_core.messages import AIMessageChunk
            from langchain_core.outputs import ChatGenerationChunk

            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="", usage_metadata=usage_metadata(25, 0, cache_read=20)
                )
            )
            yield ChatGenerationChunk(message=AIMessageChunk(content="Hello"))
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata={"input_tokens": 0, "output_tokens": 9, "total_tokens": 9},
                    response_metadata={"stop_reason": "end_turn"},
                )
            )

    list(SplitUsage(provider="anthropic").stream("hi"))
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 25
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 20
    assert span.attributes["gen_ai.usage.output_tokens"] == 9
    assert span.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    assert telemetry.tokens("cache_read") == 20


# v1 is deprecated by LangChain but still used: it must keep working.
@pytest.mark.filterwarnings("ignore:astream_events version='v1' is deprecated")
@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_astream_events_bare_model(telemetry, version):
    events = [e async for e in FakeChat().astream_events("hi", version=version)]
    ends = [e for e in events if e["event"] == "on_chat_model_end"]
    assert len(ends) == 1
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=True, response_id="chatcmpl-s1")
    assert_token_counters(telemetry, 1)


# v1 is deprecated by LangChain but still used: it must keep working.
@pytest.mark.filterwarnings("ignore:astream_events version='v1' is deprecated")
@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_astream_events_chain(telemetry, version):
    events = [e async for e in chain(FakeChat()).astream_events({"topic": "owls"}, version=version)]
    streamed = "".join(e["data"]["chunk"] for e in events if e["event"] == "on_parser_stream")
    assert streamed == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=True, response_id="chatcmpl-s1")
    assert_token_counters(telemetry, 1)


def test_chain_stream(telemetry):
    """Sync stream_events exists only as version="v3" on a chat model (below); a
    chain streams through each step's transform, which ends in the model's stream()."""
    assert "".join(chain(FakeChat()).stream({"topic": "owls"})) == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=True, response_id="chatcmpl-s1")
    assert_token_counters(telemetry, 1)


async def test_chain_astream(telemetry):
    parts = [p async for p in chain(FakeChat()).astream({"topic": "owls"})]
    assert "".join(parts) == TEXT
    (span,) = telemetry.model_spans()
    assert_chat_span(span, stream=True, response_id="chatcmpl-s1")


def test_stream_events_v3(telemetry):
    stream = FakeChat().stream_events("hi", version="v3")
    assert stream.output.usage_metadata["input_tokens"] == 11
    (span,) = telemetry.model_spans()
    attributes = dict(span.attributes)
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["gen_ai.usage.output_tokens"] == 16
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert_token_counters(telemetry, 1)


async def test_astream_events_v3(telemetry):
    stream = await FakeChat().astream_events("hi", version="v3")
    message = await stream.output
    assert message.usage_metadata["output_tokens"] == 16
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 16
    assert_token_counters(telemetry, 1)


def test_invoke_through_v2_event_path_makes_one_span(telemetry):
    """A LangGraph-style v2 handler routes invoke through _iter_v2_events."""

    class V2Handler(BaseCallbackHandler, _V2StreamingCallbackHandler):
        def __init__(self) -> None:
            self.events: list[Any] = []

        def on_stream_event(self, event: Any, **kwargs: Any) -> None:
            self.events.append(event)

    handler = V2Handler()
    message = FakeChat().invoke("hi", config={"callbacks": [handler]})
    assert message.usage_metadata["input_tokens"] == 11
    assert handler.events  # the v2 path really ran
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 16
    assert_token_counters(telemetry, 1)


def test_generate_two_message_lists_makes_two_spans(telemetry):
    result = FakeChat().generate([[HumanMessage("a")], [HumanMessage("b")]])
    assert len(result.generations) == 2
    spans = telemetry.model_spans()
    assert len(spans) == 2
    for span in spans:
        assert_chat_span(span, stream=False, response_id="chatcmpl-fake-1")
    assert_token_counters(telemetry, 2)


async def test_agenerate_two_message_lists(telemetry):
    await FakeChat().agenerate([[HumanMessage("a")], [HumanMessage("b")]])
    assert len(telemetry.model_spans()) == 2
    assert_token_counters(telemetry, 2)


def test_invoke_that_streams_internally(telemetry):
    message = FakeChat(streaming=True).invoke("hi")
    assert message.content == TEXT
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 16
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert_token_counters(telemetry, 1)


class Joke(BaseModel):
    setup: str
    punchline: str


def test_with_structured_output(telemetry):
    model = FakeChat(
        tool_call={
            "name": "Joke",
            "args": {"setup": "Why?", "punchline": "Because."},
            "id": "call_1",
        },
        usage=usage_metadata(85, 21),
    )
    joke = model.with_structured_output(Joke).invoke("Tell me a joke")
    assert joke == Joke(setup="Why?", punchline="Because.")
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 85
    assert span.attributes["gen_ai.usage.output_tokens"] == 21
    assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert telemetry.tokens("input") == 85


def test_bind_tools(telemetry):
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    model = FakeChat(
        tool_call={"name": "get_weather", "args": {"city": "Paris"}, "id": "call_9"},
        usage=usage_metadata(60, 15),
    )
    message = model.bind_tools([get_weather]).invoke("Weather in Paris?")
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 60
    assert span.attributes["gen_ai.usage.output_tokens"] == 15


def test_stream_falling_back_to_invoke_makes_one_span(telemetry):
    chunks = list(FakeChatNoStream().stream("hi"))
    assert len(chunks) == 1
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 16
    assert_token_counters(telemetry, 1)


async def test_astream_falling_back_to_ainvoke_makes_one_span(telemetry):
    chunks = [c async for c in FakeChatNoStream().astream("hi")]
    assert len(chunks) == 1
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.output_tokens"] == 16
    assert_token_counters(telemetry, 1)


def test_cache_and_reasoning_tokens(telemetry):
    model = FakeChat(
        usage=usage_metadata(1200, 300, cache_read=1000, cache_creation=150, reasoning=200)
    )
    model.invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 1200
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 150
    assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 200
    assert [
        telemetry.tokens(t)
        for t in ("input", "output", "cache_read", "cache_creation", "reasoning")
    ] == [1200, 300, 1000, 150, 200]


def test_no_usage_reported_is_marked_not_zero(telemetry):
    FakeChat(usage={}).invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes["llm_usage.usage.missing"] is True
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert telemetry.tokens("input") == 0
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="missing") == 1
    assert "gen_ai.client.token.usage" not in telemetry.metrics()


# -- legacy text-completion models -----------------------------------------------------

COMPLETION_REQUEST = {
    "gen_ai.operation.name": "text_completion",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-3.5-turbo-instruct",
    "server.address": "localhost",
    "server.port": 8000,
}


def test_legacy_invoke(telemetry):
    assert FakeCompletion().invoke("Tell me a joke") == FakeCompletion().text
    (span,) = telemetry.model_spans()
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert dict(span.attributes) == {
        **COMPLETION_REQUEST,
        "gen_ai.response.model": "gpt-3.5-turbo-instruct",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 4,
        "gen_ai.usage.output_tokens": 14,
        "gen_ai.usage.cost.amount": 3.4e-05,
        "gen_ai.usage.cost.currency": "USD",
        "gen_ai.usage.cost.source": "local",
    }
    assert (telemetry.tokens("input"), telemetry.tokens("output")) == (4, 14)


def test_legacy_generate_with_two_prompts_is_one_provider_call(telemetry):
    result = FakeCompletion().generate(["a", "b"])
    assert len(result.generations) == 2
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 8
    assert span.attributes["gen_ai.usage.output_tokens"] == 28
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop", "stop")


async def test_legacy_ainvoke(telemetry):
    await FakeCompletion().ainvoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.output_tokens"] == 14


def test_legacy_stream_has_no_usage_and_says_so(telemetry):
    text = "".join(FakeCompletion().stream("hi"))
    assert text.strip() == FakeCompletion().text.strip()
    (span,) = telemetry.model_spans()
    assert dict(span.attributes) | {"gen_ai.response.time_to_first_chunk": 0} == {
        **COMPLETION_REQUEST,
        "gen_ai.request.stream": True,
        "llm_usage.usage.missing": True,
        "llm_usage.stream.chunks": 9,
        "gen_ai.response.time_to_first_chunk": 0,
    }
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="missing") == 1


async def test_legacy_astream(telemetry):
    parts = [p async for p in FakeCompletion().astream("hi")]
    assert len(parts) == 9
    (span,) = telemetry.model_spans()
    assert span.attributes["llm_usage.stream.chunks"] == 9
