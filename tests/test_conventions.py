"""semantic-conventions-genai v0.1.0 details, with the real provider packages against the
local server: the scope's schema URL, ``gen_ai.request.choice.count`` (usage and cost
counted once for n > 1), OpenAI's service tiers, an integer ``gen_ai.request.top_k``, and
the chunk-timing histograms' bucket advice."""

from __future__ import annotations

import pytest
from _provider_server import ProviderServer, Reply
from fakes import FakeChat
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from otel_llm_usage import semconv as sc
from otel_llm_usage import track_usage

# genai-prices: gpt-4o-mini is $0.15 / $0.60 per million input / output tokens
IN, OUT = 0.15e-6, 0.60e-6


def chat(server: ProviderServer, **kwargs: object) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini",
        base_url=server.openai_url,
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_choice_count_and_service_tier(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=10, output=8, service_tier="flex"))
    with track_usage() as usage:
        result = chat(server, n=2, service_tier="flex").generate([[HumanMessage("hi")]])
    assert len(result.generations[0]) == 2
    assert server.requests[0].body["n"] == 2
    (span,) = telemetry.model_spans()
    attributes = dict(span.attributes)
    assert attributes[sc.GEN_AI_REQUEST_CHOICE_COUNT] == 2
    assert attributes[sc.OPENAI_REQUEST_SERVICE_TIER] == "flex"
    assert attributes[sc.OPENAI_RESPONSE_SERVICE_TIER] == "flex"
    assert attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "stop")
    assert attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert attributes[sc.GEN_AI_RESPONSE_ID] == "chatcmpl-test-1"
    # one usage for the call, not one per choice
    assert (
        attributes[sc.GEN_AI_USAGE_INPUT_TOKENS],
        attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS],
    ) == (
        10,
        8,
    )
    assert attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(10 * IN + 8 * OUT)
    assert (telemetry.tokens("input"), telemetry.tokens("output")) == (10, 8)
    assert (usage.input_tokens, usage.output_tokens, usage.successful_requests) == (10, 8, 1)
    assert usage.total_cost == pytest.approx(10 * IN + 8 * OUT)


def test_one_choice_has_no_choice_count(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=3, output=1))
    chat(server, n=1).invoke("hi")
    (span,) = telemetry.model_spans()
    assert sc.GEN_AI_REQUEST_CHOICE_COUNT not in span.attributes
    assert sc.OPENAI_REQUEST_SERVICE_TIER not in span.attributes
    assert sc.OPENAI_RESPONSE_SERVICE_TIER not in span.attributes


def test_top_k_is_an_integer(telemetry, server) -> None:  # type: ignore[no-untyped-def]
    server.script(Reply(input=3, output=1))
    ChatAnthropic(
        model="claude-3-5-haiku-20241022",
        base_url=server.url,
        api_key="sk-ant-test",  # type: ignore[arg-type]
        top_k=5,
        max_retries=0,
    ).invoke("hi")  # type: ignore[call-arg]
    (span,) = telemetry.model_spans()
    value = span.attributes[sc.GEN_AI_REQUEST_TOP_K]
    assert value == 5 and type(value) is int


def test_schema_url_and_chunk_buckets(telemetry) -> None:  # type: ignore[no-untyped-def]
    list(FakeChat().stream("hi"))
    (span,) = telemetry.model_spans()
    assert span.instrumentation_scope.schema_url == sc.SCHEMA_URL
    assert sc.SCHEMA_URL == "https://opentelemetry.io/schemas/gen-ai/0.1.0"
    data = telemetry.reader.get_metrics_data()
    bounds = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert scope_metrics.scope.schema_url == sc.SCHEMA_URL
            for metric in scope_metrics.metrics:
                for point in getattr(metric.data, "data_points", ()):
                    if hasattr(point, "explicit_bounds"):
                        bounds[metric.name] = tuple(point.explicit_bounds)
    advice = (
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    )
    assert bounds[sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK] == advice
    assert bounds[sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK] == advice
    assert bounds[sc.GEN_AI_CLIENT_OPERATION_DURATION] == advice
