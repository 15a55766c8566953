"""Our chat span sits between the application's span and the HTTP client span of the
provider call, with opentelemetry-instrumentation-httpx switched on, for invoke, ainvoke,
stream and astream (the real ChatOpenAI and ChatAnthropic against the local provider);
and, for Bedrock, with opentelemetry-instrumentation-botocore on: no second GenAI span."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from _provider_server import ProviderServer, Reply
from conftest import Telemetry
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

# One server and one event loop for the module: the provider packages cache their async
# HTTP clients by base URL, and a client must stay on one loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

MODES = ("invoke", "ainvoke", "stream", "astream")


def _sdk_uses_httpx2() -> bool:
    """openai / anthropic 3.x and 2.x send with httpx2, earlier releases with httpx."""
    import openai._base_client

    return hasattr(openai._base_client, "httpx2")


@pytest.fixture(scope="module")
def module_server() -> Iterator[ProviderServer]:
    with ProviderServer(default=Reply(input=12, output=4, text="a b c d")) as running:
        yield running


@pytest.fixture
def http_telemetry(telemetry: Telemetry) -> Iterator[Telemetry]:
    """The ``telemetry`` fixture plus the httpx instrumentation on its tracer provider.
    The provider SDKs send with httpx2 when it is installed: its instrumentor (in the same
    package, since 0.65b0) is switched on as well, else no HTTP span would be made."""
    instrumentors: list[Any] = [HTTPXClientInstrumentor()]
    if importlib.util.find_spec("httpx2") is not None:
        from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

        instrumentors.append(HTTPX2ClientInstrumentor())
    elif _sdk_uses_httpx2():  # pragma: no cover - an inconsistent installation
        pytest.fail("the provider SDKs use httpx2, which is not importable")
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        yield telemetry
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()


def model(provider: str, server: ProviderServer) -> Any:
    if provider == "openai":
        return ChatOpenAI(
            model="gpt-4o-mini",
            base_url=server.openai_url,
            api_key="sk-test",  # type: ignore[arg-type]
            max_retries=0,
            stream_usage=True,
        )
    return ChatAnthropic(
        model="claude-3-5-sonnet-20241022",
        base_url=server.url,
        api_key="sk-ant-test",  # type: ignore[arg-type]
        max_retries=0,
    )


async def call(chat: Any, mode: str) -> None:
    if mode == "invoke":
        chat.invoke("hello")
    elif mode == "ainvoke":
        await chat.ainvoke("hello")
    elif mode == "stream":
        for _ in chat.stream("hello"):
            pass
    else:
        async for _ in chat.astream("hello"):
            pass


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", ("openai", "anthropic"))
async def test_http_span_is_a_child_of_the_chat_span(
    http_telemetry: Telemetry, module_server: ProviderServer, provider: str, mode: str
) -> None:
    tracer = http_telemetry.tracer_provider.get_tracer("the-application")
    with tracer.start_as_current_span("handle request") as user_span:
        await call(model(provider, module_server), mode)
    spans = http_telemetry.spans()
    (chat,) = http_telemetry.model_spans()
    (http,) = [s for s in spans if s.instrumentation_scope.name.startswith("opentelemetry.inst")]
    (user,) = [s for s in spans if s.name == "handle request"]
    assert len(spans) == 3
    assert user.context.span_id == user_span.get_span_context().span_id
    trace_id = user.context.trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}
    assert parent_id(chat) == user.context.span_id
    assert parent_id(http) == chat.context.span_id
    assert http.kind is SpanKind.CLIENT
    assert http.name == "POST"
    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    assert http.attributes.get("url.full", http.attributes.get("http.url")) == (
        module_server.url + path
    )
    # the HTTP call happens inside the chat span's time
    assert chat.start_time <= http.start_time <= http.end_time <= chat.end_time
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12
    assert chat.attributes["gen_ai.usage.output_tokens"] == 4


# -- Bedrock: botocore's own instrumentation under our span ---------------------------------


@pytest.fixture
def botocore_telemetry(telemetry: Telemetry, aws: None) -> Iterator[Telemetry]:
    """The ``telemetry`` fixture plus opentelemetry-instrumentation-botocore, which
    ``opentelemetry-instrument`` also loads when it is installed."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    instrumentor = BotocoreInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()


BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
BOTOCORE_SCOPE = "opentelemetry.instrumentation.botocore.bedrock-runtime"


def histogram_sum(telemetry: Telemetry, scope: str, name: str, token_type: str) -> float:
    data = telemetry.reader.get_metrics_data()
    total = 0.0
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != scope:
                continue
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        if point.attributes.get("gen_ai.token.type") == token_type:
                            total += point.sum
    return total


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", ("invoke_model", "converse"))
async def test_bedrock_botocore_makes_no_second_genai_span(
    botocore_telemetry: Telemetry, module_server: ProviderServer, api: str, mode: str
) -> None:
    """user span → our chat span, and nothing from botocore's Bedrock extension: it would
    describe the same call again (a second ``chat`` span and the tokens twice in
    ``gen_ai.client.token.usage``), so inside our call the provider hook calls past it
    (interop.py). The standard histogram counts the call once, under our scope."""
    from langchain_aws import ChatBedrock, ChatBedrockConverse

    options: dict[str, Any] = {"region_name": "us-east-1", "endpoint_url": module_server.url}
    chat: Any = (
        ChatBedrock(model_id=BEDROCK_MODEL, **options)
        if api == "invoke_model"
        else ChatBedrockConverse(model=BEDROCK_MODEL, **options)
    )
    tracer = botocore_telemetry.tracer_provider.get_tracer("the-application")
    with tracer.start_as_current_span("handle request"):
        await call(chat, mode)
    spans = botocore_telemetry.spans()
    (ours,) = botocore_telemetry.model_spans()
    (user,) = [s for s in spans if s.name == "handle request"]
    assert len(spans) == 2
    assert parent_id(ours) == user.context.span_id
    assert ours.name == f"chat {BEDROCK_MODEL}"
    assert ours.attributes["gen_ai.usage.input_tokens"] == 12
    assert ours.attributes["gen_ai.usage.output_tokens"] == 4
    assert botocore_telemetry.tokens("input") == 12
    histogram = "gen_ai.client.token.usage"
    assert histogram_sum(botocore_telemetry, "otel_llm_usage", histogram, "input") == 12
    assert histogram_sum(botocore_telemetry, BOTOCORE_SCOPE, histogram, "input") == 0
