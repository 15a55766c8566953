"""Beside the official OpenTelemetry GenAI instrumentations, installed side by side under
one SDK: one GenAI span and one ``gen_ai.client.token.usage`` record per provider call.

* util-genai based (opentelemetry-instrumentation-genai-openai, -genai-anthropic) see
  util-genai's "inference running" value in our call's context and stay quiet;
* botocore's Bedrock extension has no such check: our provider hook calls past it inside
  our calls (tests/test_http_context.py). opentelemetry-instrumentation-openai-v2 (2.4b0,
  the last release) cannot be installed here: it pins opentelemetry-instrumentation
  ~=0.60b0 and imports ``opentelemetry.util.genai.instruments``, gone in util-genai 1.x.

Both orders of ``instrument()`` are tested, and outside our calls (a direct SDK call)
the official spans are untouched. The last test runs everything under
``opentelemetry-instrument`` in a subprocess, as users run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from _provider_server import ProviderServer, Reply
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as GenAIOpenAI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm_usage import LangChainUsageInstrumentor
from otel_llm_usage import semconv as sc

# One event loop for the module's async tests: the provider packages cache their async
# HTTP clients, and a client must stay on one loop.
module_loop = pytest.mark.asyncio(loop_scope="module")

OURS = "otel_llm_usage"


class Side:
    """One SDK, our instrumentor and an official one."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def genai_spans(self) -> list[ReadableSpan]:
        return [
            s
            for s in self.exporter.get_finished_spans()
            if (s.attributes or {}).get(sc.GEN_AI_OPERATION_NAME)
        ]

    def records(self, name: str, token_type: str | None = None) -> dict[str, int]:
        """Scope name → number of measurements of histogram ``name``."""
        found: dict[str, int] = {}
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        kind = point.attributes.get(sc.GEN_AI_TOKEN_TYPE)
                        if token_type is None or kind == token_type:
                            scope = scope_metrics.scope.name
                            found[scope] = found.get(scope, 0) + point.count
        return found


def _side_by_side(official: Callable[[], Any], ours_first: bool) -> Iterator[Side]:
    side = Side()
    ours = LangChainUsageInstrumentor()
    if ours.is_instrumented_by_opentelemetry:
        ours.uninstrument()
    theirs = official()
    order = [ours, theirs] if ours_first else [theirs, ours]
    for instrumentor in order:
        instrumentor.instrument(**side.providers())
    try:
        yield side
    finally:
        for instrumentor in order:  # the same order: the first one is not the outermost
            instrumentor.uninstrument()


@pytest.fixture(params=["ours_first", "theirs_first"])
def genai_openai(request: pytest.FixtureRequest) -> Iterator[Side]:
    yield from _side_by_side(GenAIOpenAI, request.param == "ours_first")


@pytest.fixture(params=["ours_first", "theirs_first"])
def genai_anthropic(request: pytest.FixtureRequest) -> Iterator[Side]:
    yield from _side_by_side(AnthropicInstrumentor, request.param == "ours_first")


def chat_openai(server: ProviderServer) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini", base_url=server.openai_url, api_key="sk-test", max_retries=0
    )  # type: ignore[call-arg]


def embeddings(server: ProviderServer) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=server.openai_url,
        api_key="sk-test",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )


def assert_one_chat(side: Side, input_tokens: int) -> None:
    (span,) = side.genai_spans()
    assert span.instrumentation_scope.name == OURS
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert side.records(sc.GEN_AI_CLIENT_TOKEN_USAGE, "input") == {OURS: 1}
    assert side.records(sc.GEN_AI_CLIENT_TOKEN_USAGE, "output") == {OURS: 1}
    assert side.records(sc.GEN_AI_CLIENT_OPERATION_DURATION) == {OURS: 1}


@module_loop
@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
async def test_genai_openai_chat_is_one_span(
    genai_openai: Side, server: ProviderServer, mode: str
) -> None:
    server.script(Reply(input=11, output=3))
    model = chat_openai(server)
    if mode == "invoke":
        model.invoke("hi")
    elif mode == "ainvoke":
        await model.ainvoke("hi")
    elif mode == "stream":
        list(model.stream("hi", stream_usage=True))
    else:
        [chunk async for chunk in model.astream("hi", stream_usage=True)]
    assert_one_chat(genai_openai, 11)


@module_loop
async def test_genai_openai_embeddings_is_one_span(
    genai_openai: Side, server: ProviderServer
) -> None:
    server.script(Reply(input=6), Reply(input=2))
    embeddings(server).embed_documents(["a", "b"])
    await embeddings(server).aembed_query("c")
    spans = genai_openai.genai_spans()
    assert [(s.instrumentation_scope.name, s.name) for s in spans] == [
        (OURS, "embeddings text-embedding-3-small"),
    ] * 2
    assert [s.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for s in spans] == [6, 2]
    assert genai_openai.records(sc.GEN_AI_CLIENT_TOKEN_USAGE, "input") == {OURS: 2}


def test_genai_openai_keeps_its_span_outside_langchain(
    genai_openai: Side, server: ProviderServer
) -> None:
    server.script(Reply(input=4, output=1))
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    (span,) = genai_openai.genai_spans()
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.genai.openai"
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4
    assert OURS not in genai_openai.records(sc.GEN_AI_CLIENT_TOKEN_USAGE)


@module_loop
@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream"])
async def test_genai_anthropic_chat_is_one_span(
    genai_anthropic: Side, server: ProviderServer, mode: str
) -> None:
    server.script(Reply(input=13, output=5))
    model = ChatAnthropic(
        model="claude-3-5-haiku-20241022",
        base_url=server.url,
        api_key="sk-ant-test",  # type: ignore[arg-type]
        max_retries=0,
    )  # type: ignore[call-arg]
    if mode == "invoke":
        model.invoke("hi")
    elif mode == "ainvoke":
        await model.ainvoke("hi")
    elif mode == "stream":
        list(model.stream("hi"))
    else:
        [chunk async for chunk in model.astream("hi")]
    assert_one_chat(genai_anthropic, 13)


def test_uninstrument_in_any_order_restores_the_sdk() -> None:
    original = vars(openai.resources.embeddings.Embeddings)["create"]
    while hasattr(original, "__wrapped__"):
        original = original.__wrapped__
    for first_out in ("ours", "theirs"):
        side = Side()
        ours, theirs = LangChainUsageInstrumentor(), GenAIOpenAI()
        if ours.is_instrumented_by_opentelemetry:
            ours.uninstrument()
        theirs.instrument(**side.providers())
        ours.instrument(**side.providers())
        for instrumentor in (ours, theirs) if first_out == "ours" else (theirs, ours):
            instrumentor.uninstrument()
        assert vars(openai.resources.embeddings.Embeddings)["create"] is original


APP = """
import os, sys
from opentelemetry import metrics, trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

class Printer(SpanExporter):
    def export(self, spans):
        for span in spans:
            operation = (span.attributes or {}).get("gen_ai.operation.name")
            if operation:
                print("GENAI", span.instrumentation_scope.name, "|", span.name, flush=True)
        return SpanExportResult.SUCCESS

trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(Printer()))
url = os.environ["PROVIDER_URL"]
ChatOpenAI(model="gpt-4o-mini", base_url=url, api_key="sk-test", max_retries=0).invoke("hi")
OpenAIEmbeddings(
    model="text-embedding-3-small", base_url=url, api_key="sk-test",
    check_embedding_ctx_length=False, max_retries=0,
).embed_documents(["a"])
print("METRICS-BEGIN", flush=True)
metrics.get_meter_provider().force_flush()
print("METRICS-END", flush=True)
"""


def test_under_opentelemetry_instrument_one_span_per_call(
    server: ProviderServer, tmp_path: Path
) -> None:
    """Every installed instrumentation loads (genai-openai, genai-anthropic, botocore,
    httpx, ours) in the order entry points come; each call is one GenAI span."""
    server.default = Reply(input=5, output=2)
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {
        **os.environ,
        "PROVIDER_URL": server.openai_url,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "interop-test",
    }
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    done = subprocess.run(
        [str(instrument), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("GENAI")]
    assert lines == [
        "GENAI otel_llm_usage | chat gpt-4o-mini",
        "GENAI otel_llm_usage | embeddings text-embedding-3-small",
    ]
    exported = done.stdout.split("METRICS-BEGIN", 1)[1].split("METRICS-END", 1)[0]
    records: dict[tuple[str, str, str], int] = {}
    decoder = json.JSONDecoder()
    text = exported.strip()
    while text:
        data, end = decoder.raw_decode(text)
        text = text[end:].strip()
        for resource in data["resource_metrics"]:
            for scope in resource["scope_metrics"]:
                for metric in scope["metrics"]:
                    if metric["name"] != sc.GEN_AI_CLIENT_TOKEN_USAGE:
                        continue
                    for point in metric["data"]["data_points"]:
                        key = (
                            scope["scope"]["name"],
                            point["attributes"][sc.GEN_AI_OPERATION_NAME],
                            point["attributes"][sc.GEN_AI_TOKEN_TYPE],
                        )
                        records[key] = records.get(key, 0) + point["count"]
    assert records == {
        (OURS, "chat", "input"): 1,
        (OURS, "chat", "output"): 1,
        (OURS, "embeddings", "input"): 1,
    }


def test_marks_are_util_genai_data_with_fresh_dicts() -> None:
    """What util-genai's check sees: its own data class, built without its 50-field
    ``__init__``; each call gets its own dicts (the inner invocation writes to them)."""
    import dataclasses

    from opentelemetry import context
    from opentelemetry.util.genai._embedding_invocation import EmbeddingData
    from opentelemetry.util.genai._inference_invocation import InferenceData

    from otel_llm_usage.patch import interop

    interop.MARKS.clear()
    interop._load_marks()
    try:
        base = context.get_current()
        first = interop.mark(base, sc.OPERATION_CHAT).get(sc.UTIL_GENAI_INFERENCE_CONTEXT_KEY)
        second = interop.mark(base, sc.OPERATION_CHAT).get(sc.UTIL_GENAI_INFERENCE_CONTEXT_KEY)
        embedding = interop.mark(base, sc.OPERATION_EMBEDDINGS).get(
            sc.UTIL_GENAI_EMBEDDING_CONTEXT_KEY
        )
        assert isinstance(first, InferenceData) and isinstance(embedding, EmbeddingData)
        assert first == InferenceData() and embedding == EmbeddingData()
        assert dataclasses.asdict(first) == dataclasses.asdict(InferenceData())
        assert first.attributes is not second.attributes
        first.attributes["k"] = 1
        assert second.attributes == {} and InferenceData().attributes == {}
    finally:
        interop.MARKS.clear()
