"""What a call does when no SDK stands behind the tracer or the meter, or its span does
not record: nothing is built for nobody, and nothing that someone reads is lost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from fakes import FakeChat
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NoOpTracerProvider

from otel_llm_usage import LangChainUsageInstrumentor, track_usage
from otel_llm_usage.extract.outcome import chat_outcome
from otel_llm_usage.patch.instrumentor import _sdk_behind
from otel_llm_usage.record.metrics import Instruments
from otel_llm_usage.record.pricing import builtin_rates

# gpt-4o-mini-2024-07-18 (FakeChat's response model), 11 in / 16 out
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"


def cost_of(model: str, input_tokens: int, output_tokens: int) -> float:
    rates = builtin_rates("openai", model)
    assert rates is not None
    from otel_llm_usage.extract.usage import Usage

    return rates.cost(Usage(input_tokens, output_tokens))


@pytest.fixture
def instrument() -> Iterator[Any]:
    instrumentor = LangChainUsageInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:  # left over by an earlier test
        instrumentor.uninstrument()

    def instrument(**providers: Any) -> None:
        instrumentor.instrument(**providers)

    yield instrument
    instrumentor.uninstrument()


class SeesCurrentSpan(FakeChat):
    seen: ClassVar[list[Any]] = []

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(trace.get_current_span())
        return super()._generate(*args, **kwargs)


def test_without_a_tracer_sdk_the_applications_span_stays_current(instrument):
    """With a no-op tracer our call starts no span and leaves the context's span alone:
    the provider code sees the application's own span (not a non-recording copy of its
    context); metrics and totals are still there."""
    exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    instrument(
        tracer_provider=NoOpTracerProvider(),
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    SeesCurrentSpan.seen = []
    with track_usage() as usage, app_provider.get_tracer("app").start_as_current_span("request"):
        app_span = trace.get_current_span()
        SeesCurrentSpan().invoke("hi")
    assert SeesCurrentSpan.seen == [app_span]
    assert [s.name for s in exporter.get_finished_spans()] == ["request"]
    assert (usage.input_tokens, usage.output_tokens, usage.successful_requests) == (11, 16, 1)
    assert usage.total_cost == cost_of(RESPONSE_MODEL, 11, 16)
    points = {
        metric.name: metric.data.data_points
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in points["llm_usage.tokens"]}
    assert tokens == {"input": 11, "output": 16}
    assert [p.count for p in points["gen_ai.client.operation.duration"]] == [1]


def test_without_a_meter_sdk_no_metric_work_is_done(instrument, monkeypatch):
    calls: list[Any] = []
    monkeypatch.setattr(Instruments, "record_call", lambda *args, **kw: calls.append(args))
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(tracer_provider=tracer_provider, meter_provider=NoOpMeterProvider())
    with track_usage() as usage:
        FakeChat().invoke("hi")
        list(FakeChat().stream("hi"))
    assert calls == []
    assert [s.attributes["gen_ai.usage.input_tokens"] for s in exporter.get_finished_spans()] == [
        11,
        11,
    ]
    assert (usage.input_tokens, usage.output_tokens, usage.successful_requests) == (22, 32, 2)


def test_with_a_meter_sdk_the_metric_sink_runs_once_a_call(instrument, monkeypatch):
    calls: list[Any] = []
    monkeypatch.setattr(Instruments, "record_call", lambda *args, **kw: calls.append(args))
    instrument(tracer_provider=NoOpTracerProvider(), meter_provider=MeterProvider())
    FakeChat().invoke("hi")
    list(FakeChat().stream("hi"))
    assert len(calls) == 2


def test_the_global_providers_are_asked_on_each_call_until_an_sdk_is_set():
    """An application may set its SDK after instrumenting: the answer follows, and stays
    (the API sets a global provider only once)."""
    current: list[Any] = [NoOpTracerProvider()]
    asked: list[Any] = []
    behind = _sdk_behind(None, lambda: asked.append(1) or current[0])
    assert callable(behind)
    assert (behind(), behind()) == (False, False)
    current[0] = TracerProvider()
    assert (behind(), behind()) == (True, True)
    assert len(asked) == 3
    assert _sdk_behind(NoOpMeterProvider(), lambda: None) is False
    assert _sdk_behind(MeterProvider(), lambda: None) is True


def test_a_span_that_does_not_record_still_prices_by_the_response_model(instrument):
    instrument(
        tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
        meter_provider=NoOpMeterProvider(),
    )
    with track_usage() as usage:
        FakeChat(model_name="gpt-4o-mini").invoke("hi")
    assert list(usage.by_model) == [("openai", RESPONSE_MODEL)]
    assert usage.total_cost == cost_of(RESPONSE_MODEL, 11, 16)


def two_choices() -> ChatResult:
    """An n=2 ChatResult: LangChain leaves the model and id in llm_output."""
    usage = {"input_tokens": 9, "output_tokens": 20, "total_tokens": 29}
    return ChatResult(
        generations=[
            ChatGeneration(
                message=AIMessage(
                    content=text, usage_metadata=usage, response_metadata={"finish_reason": r}
                )
            )
            for text, r in (("a", "stop"), ("b", "length"))
        ],
        llm_output={"model_name": "gpt-4o-2024-08-06", "id": "chatcmpl-n2"},
    )


def test_an_outcome_for_a_span_that_does_not_record_leaves_only_span_fields_out():
    full = chat_outcome(two_choices())
    lean = chat_outcome(two_choices(), span_fields=False)
    assert (full.response_model, full.response_id, full.finish_reasons) == (
        "gpt-4o-2024-08-06",
        "chatcmpl-n2",
        ["stop", "length"],
    )
    assert (lean.response_model, lean.response_id, lean.finish_reasons) == (
        "gpt-4o-2024-08-06",
        None,
        [],
    )
    assert full.usage is not None and lean.usage is not None
    assert full.usage.as_tuple() == lean.usage.as_tuple() == (9, 20, 0, 0, 0)
