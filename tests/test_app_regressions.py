"""Bugs found by running real LangChain applications (issue 19), each pinned by a test
on the real path: real provider packages against the scripted local server
(examples/_provider_server.py), the real SDK, exact numbers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from _provider_server import ProviderServer, Reply
from conftest import Telemetry
from langchain_openai import ChatOpenAI

from otel_llm_usage import LangChainUsageInstrumentor, track_usage

# One event loop for the module's async tests: langchain-openai caches its async HTTP
# client by base URL, and a client must stay on one loop.
module_loop = pytest.mark.asyncio(loop_scope="module")

PROMPT = "Tell me a joke about token counts"
STREAM_USAGE = "OTEL_LLM_USAGE_REQUEST_STREAM_USAGE"


@pytest.fixture
def stream_usage_on(telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> Telemetry:
    """The instrumentation re-read with OTEL_LLM_USAGE_REQUEST_STREAM_USAGE=true."""
    monkeypatch.setenv(STREAM_USAGE, "true")
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    return telemetry


def responses_model(server: ProviderServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="o4-mini",
        base_url=server.openai_url,
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        **kwargs,
    )


def usage_of(telemetry: Telemetry) -> tuple[int, int, int, int]:
    (span,) = telemetry.model_spans()
    attributes = span.attributes or {}
    return (
        attributes["gen_ai.usage.input_tokens"],
        attributes["gen_ai.usage.output_tokens"],
        attributes["gen_ai.usage.cache_read.input_tokens"],
        attributes["gen_ai.usage.reasoning.output_tokens"],
    )


# -- the Responses API under the stream-usage switch ---------------------------------------

RESPONSES_REPLY = Reply(
    text="Spans all the way down.", input=31, output=57, cache_read=12, reasoning=40
)


@module_loop
@pytest.mark.parametrize("mode", ["stream", "astream", "langgraph_messages"])
@pytest.mark.parametrize("routing", [{"use_responses_api": True}, {"reasoning": {"effort": "low"}}])
async def test_responses_api_streams_under_the_stream_usage_switch(
    stream_usage_on: Telemetry, server: ProviderServer, mode: str, routing: dict[str, Any]
) -> None:
    server.script(RESPONSES_REPLY)
    model = responses_model(server, **routing)
    if mode == "stream":
        text = "".join(chunk.text for chunk in model.stream(PROMPT))
    elif mode == "astream":
        text = "".join([chunk.text async for chunk in model.astream(PROMPT)])
    else:
        from langgraph.graph import END, START, MessagesState, StateGraph

        def node(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(state["messages"])]}

        graph = StateGraph(MessagesState)
        graph.add_node("model", node)
        graph.add_edge(START, "model")
        graph.add_edge("model", END)
        parts = [
            message.text
            for message, _meta in graph.compile().stream(
                {"messages": [("user", PROMPT)]}, stream_mode="messages"
            )
        ]
        text = "".join(parts)
    assert text == "Spans all the way down."
    received = server.requests[-1]
    assert received.path == "/v1/responses"
    assert "stream_options" not in received.body and "stream_usage" not in received.body
    assert usage_of(stream_usage_on) == (31, 57, 12, 40)


# -- a broken patch target never breaks instrument() ---------------------------------------


@pytest.mark.internal_errors
def test_a_patch_target_that_fails_to_import_is_skipped_and_the_rest_instrumented(
    telemetry: Telemetry,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    no_internal_errors: list[Any],
) -> None:
    """As with a langgraph-checkpoint newer than the installed langchain-core: importing
    the module raises TypeError, not ImportError."""
    from fakes import FakeChat

    from otel_llm_usage.patch import instrumentor as module

    (tmp_path / "broken_graph_package.py").write_text("raise TypeError('incompatible')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = ("broken_graph_package", "Pregel.stream", module.PATCHES[0][2], "invoke_agent")
    monkeypatch.setattr(module, "PATCHES", (broken, *module.PATCHES))
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    FakeChat().invoke("hi")
    assert len(telemetry.model_spans()) == 1
    (warning,) = no_internal_errors
    assert warning.getMessage().startswith(
        "otel-llm-usage: could not patch broken_graph_package.Pregel.stream; it is not instrumented"
    )
    assert warning.exc_info is not None and warning.exc_info[0] is TypeError


# -- LLM cache hits on streams that fall back to invoke -----------------------------------


def _fallback_models() -> dict[str, Any]:
    from fakes import FakeChat, FakeChatNoStream
    from langchain_core.caches import InMemoryCache

    return {
        "no _stream": FakeChatNoStream(cache=InMemoryCache()),
        "disable_streaming": FakeChat(cache=InMemoryCache(), disable_streaming=True),
    }


@module_loop
@pytest.mark.parametrize("kind", ["no _stream", "disable_streaming"])
@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_cache_hit_on_a_stream_that_falls_back_to_invoke_is_not_billed(
    telemetry: Telemetry, kind: str, mode: str
) -> None:
    model = _fallback_models()[kind]
    with track_usage() as usage:
        for _ in range(2):
            if mode == "stream":
                list(model.stream("hi"))
            else:
                [chunk async for chunk in model.astream("hi")]
    first, second = telemetry.model_spans()
    assert first.attributes["gen_ai.usage.input_tokens"] == 11
    assert "llm_usage.cache_hit" not in first.attributes
    assert second.attributes["llm_usage.cache_hit"] is True
    assert "gen_ai.usage.input_tokens" not in second.attributes
    assert "gen_ai.usage.cost.amount" not in second.attributes
    assert (usage.input_tokens, usage.output_tokens, usage.successful_requests) == (11, 16, 1)
    assert usage.cache_hits == 1 and usage.calls_without_usage == 0
    assert telemetry.tokens("input") == 11
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="cache") == 1
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="reported") == 1


# -- a model that delegates to another model -----------------------------------------------


def _delegating_model() -> Any:
    from fakes import FakeChat
    from langchain_core.language_models import BaseChatModel
    from langchain_core.outputs import ChatGeneration, ChatResult

    class RouterChat(BaseChatModel):
        """A wrapper chat model, as routers and guards are written: its ``_generate``
        calls another model's ``invoke``."""

        inner: Any

        @property
        def _llm_type(self) -> str:
            return "router"

        def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
            return ChatResult(generations=[ChatGeneration(message=self.inner.invoke(messages))])

    return RouterChat(inner=FakeChat())


@pytest.mark.parametrize("mode", ["invoke", "stream", "batch"])
def test_a_model_that_delegates_to_another_counts_one_provider_call(
    telemetry: Telemetry, mode: str
) -> None:
    """The model that calls the provider carries the usage; the delegating model's span
    stays (its child is the provider call) and counts nothing."""
    router = _delegating_model()
    with track_usage() as usage:
        if mode == "invoke":
            router.invoke("hi")
        elif mode == "stream":
            list(router.stream("hi"))
        else:
            router.batch(["hi"])
    outer, inner = sorted(telemetry.model_spans(), key=lambda span: span.start_time or 0)
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert inner.name == "chat gpt-4o-mini"
    assert (
        inner.attributes["gen_ai.usage.input_tokens"],
        inner.attributes["gen_ai.usage.output_tokens"],
    ) == (11, 16)
    assert outer.attributes["llm_usage.delegated"] is True
    assert not [key for key in outer.attributes if key.startswith("gen_ai.usage.")]
    assert "llm_usage.usage.missing" not in outer.attributes
    assert (usage.successful_requests, usage.input_tokens, usage.output_tokens) == (1, 11, 16)
    assert usage.calls_without_usage == 0
    assert telemetry.tokens("input") == 11
    assert telemetry.counter("llm_usage.requests") == 1
    (duration,) = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.attributes["gen_ai.request.model"] == "gpt-4o-mini"


# -- counts that cannot be real --------------------------------------------------------------


def test_impossible_token_counts_are_flagged_and_the_totals_stay_exportable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """2,048 calls each reporting 2**52 input tokens would sum past OTLP's int64 in the
    cumulative counter, and the exporter would then drop the whole metric on every export.
    Such calls are recorded as invalid usage; the real exporter delivers the totals."""
    from fakes import FakeChat
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from otlp_receiver import HTTP, OTLPReceiver

    absurd = FakeChat(usage={"input_tokens": 2**52, "output_tokens": 5, "total_tokens": 5})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    instrumentor = LangChainUsageInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    with OTLPReceiver() as receiver:
        exporter = OTLPMetricExporter(endpoint=f"{receiver.endpoint(HTTP)}/v1/metrics")
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        meter_provider = MeterProvider(metric_readers=[reader])
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            with track_usage() as usage, caplog.at_level("WARNING", "otel_llm_usage"):
                for _ in range(2048):
                    absurd.invoke("hi")
                FakeChat().invoke("hi")
            assert meter_provider.force_flush(10_000)
        finally:
            instrumentor.uninstrument()
            meter_provider.shutdown()

        def total(name: str, **match: str) -> int:
            points = receiver.latest_points(name, "otel_llm_usage")
            return sum(
                point.value.value
                for point in points
                if all(point.attributes[k.replace("__", ".")].value == v for k, v in match.items())
            )

        assert total("llm_usage.tokens", gen_ai__token__type="input") == 11
        assert total("llm_usage.tokens", gen_ai__token__type="output") == 16
        assert total("llm_usage.requests", llm_usage__usage__source="invalid") == 2048
        assert total("llm_usage.requests", llm_usage__usage__source="reported") == 1
    first = spans.get_finished_spans()[0]
    assert first.attributes["llm_usage.usage.invalid"] is True
    assert "gen_ai.usage.input_tokens" not in first.attributes
    assert "llm_usage.usage.missing" not in first.attributes
    assert (usage.calls_with_invalid_usage, usage.calls_without_usage) == (2048, 0)
    assert (usage.successful_requests, usage.input_tokens, usage.output_tokens) == (2049, 11, 16)
    warnings = [r.getMessage() for r in caplog.records if "cannot be real" in r.getMessage()]
    assert warnings == [
        "otel-llm-usage: provider 'openai' reported usage that cannot be real (token count "
        "4503599627370496 is not a plausible count); such calls are recorded without tokens "
        "or cost, flagged llm_usage.usage.invalid"
    ]


# -- fallbacks, retries and agent middleware -------------------------------------------------


def _flaky(failures: int, **kwargs: Any) -> Any:
    """A FakeChat whose first ``failures`` calls raise, as a rate-limited provider does."""
    from fakes import FakeChat, ProviderError

    class FlakyChat(FakeChat):
        left: list[int] = []

        def _generate(self, *args: Any, **kw: Any) -> Any:
            if self.left:
                self.left.pop()
                raise ProviderError("429 rate limited")
            return super()._generate(*args, **kw)

    return FlakyChat(left=[1] * failures, **kwargs)


def test_with_fallbacks_counts_the_failed_call_and_the_fallback(telemetry: Telemetry) -> None:
    from fakes import FakeChat

    primary = _flaky(1, model_name="gpt-4o")
    with track_usage() as usage:
        primary.with_fallbacks([FakeChat()]).invoke("hi")
    failed, answered = telemetry.model_spans()
    assert (failed.name, failed.attributes["error.type"]) == ("chat gpt-4o", "fakes.ProviderError")
    assert "gen_ai.usage.input_tokens" not in failed.attributes
    assert answered.attributes["gen_ai.usage.input_tokens"] == 11
    assert (usage.failed_requests, usage.successful_requests, usage.input_tokens) == (1, 1, 11)
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="error") == 1
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="reported") == 1


def test_with_retry_counts_each_attempt_and_the_tokens_once(telemetry: Telemetry) -> None:
    model = _flaky(2)
    with track_usage() as usage:
        model.with_retry(stop_after_attempt=3, wait_exponential_jitter=False).invoke("hi")
    spans = telemetry.model_spans()
    assert [span.attributes.get("error.type") for span in spans] == [
        "fakes.ProviderError",
        "fakes.ProviderError",
        None,
    ]
    assert (usage.failed_requests, usage.successful_requests) == (2, 1)
    assert (usage.input_tokens, usage.output_tokens) == (11, 16)
    assert telemetry.tokens("input") == 11


def test_agent_middleware_retry_and_model_fallback_roll_up_every_call(
    telemetry: Telemetry,
) -> None:
    """create_agent with ModelFallbackMiddleware around ModelRetryMiddleware: the primary
    fails twice (a try and a retry), the fallback answers. Every attempt is its own chat
    span under the agent span; the agent sums what was reported."""
    from fakes import FakeChat
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelFallbackMiddleware, ModelRetryMiddleware

    primary = _flaky(2, model_name="gpt-4o")
    fallback = FakeChat(usage={"input_tokens": 30, "output_tokens": 7, "total_tokens": 37})
    agent = create_agent(
        primary,
        tools=[],
        name="support",
        middleware=[
            ModelFallbackMiddleware(fallback),
            ModelRetryMiddleware(max_retries=1, initial_delay=0, jitter=False, on_failure="error"),
        ],
    )
    with track_usage() as usage:
        agent.invoke({"messages": [{"role": "user", "content": "hi"}]})
    spans = telemetry.model_spans()
    (agent_span,) = [s for s in spans if s.name == "invoke_agent support"]
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert [(s.name, s.attributes.get("error.type")) for s in chats] == [
        ("chat gpt-4o", "fakes.ProviderError"),
        ("chat gpt-4o", "fakes.ProviderError"),
        ("chat gpt-4o-mini", None),
    ]
    for chat in chats:
        assert chat.context.trace_id == agent_span.context.trace_id
    assert agent_span.attributes["llm_usage.model_calls"] == 3
    assert (usage.failed_requests, usage.successful_requests, usage.input_tokens) == (2, 1, 30)


def test_responses_api_invoke_reports_every_token_class(
    telemetry: Telemetry, server: ProviderServer
) -> None:
    server.script(replace(RESPONSES_REPLY, id="resp_abc123"))
    message = responses_model(server, use_responses_api=True).invoke(PROMPT)
    assert message.text == "Spans all the way down."
    assert server.requests[-1].path == "/v1/responses"
    assert usage_of(telemetry) == (31, 57, 12, 40)
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.response.id"] == "resp_abc123"
    assert span.attributes["gen_ai.response.model"] == "o4-mini"
