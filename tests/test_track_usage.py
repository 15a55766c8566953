"""``track_usage()``: exact totals of tokens, requests and cost inside a ``with`` block,
whatever way the calls are made (invoke, stream, batch's thread pool, asyncio tasks)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from typing import Any

import pytest
from fakes import FakeChat, FakeCompletion, ProviderError, usage_metadata
from langchain_core.caches import InMemoryCache
from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

from otel_llm_usage import LangChainUsageInstrumentor, ModelUsage, UsageTracker, track_usage
from otel_llm_usage.record.tracking import active_trackers

TURBO = ("openai", "gpt-3.5-turbo-0125")
TURBO_COST = 2.95e-05  # 11 x $0.50 + 16 x $1.50 per million: exact as a float


def turbo(**kwargs: Any) -> FakeChat:
    """A chat model whose responses report gpt-3.5-turbo-0125 and 11/16 tokens."""
    return FakeChat(model_name=TURBO[1], response_model=TURBO[1], **kwargs)


def summed(cost: float, times: int) -> float:
    """``cost`` added ``times`` times, as the tracker adds it: the exact float expected."""
    total = 0.0
    for _ in range(times):
        total += cost
    return total


def totals(usage: UsageTracker) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_creation_tokens": usage.cache_creation_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "successful_requests": usage.successful_requests,
        "failed_requests": usage.failed_requests,
        "cache_hits": usage.cache_hits,
        "total_cost": usage.total_cost,
        "calls_without_usage": usage.calls_without_usage,
        "unpriced_calls": usage.unpriced_calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "prompt_tokens_cached": usage.prompt_tokens_cached,
        "estimated_calls": usage.estimated_calls,
    }


def expected(calls: int = 0, **changes: Any) -> dict[str, Any]:
    """Totals of ``calls`` turbo calls (11/16 tokens each), with ``changes``."""
    found = {
        "input_tokens": 11 * calls,
        "output_tokens": 16 * calls,
        "total_tokens": 27 * calls,
        "cache_read_tokens": 0,
        "cache_creation_tokens": 0,
        "reasoning_tokens": 0,
        "successful_requests": calls,
        "failed_requests": 0,
        "cache_hits": 0,
        "total_cost": summed(TURBO_COST, calls),
        "calls_without_usage": 0,
        "unpriced_calls": 0,
        "estimated_calls": 0,
    }
    found.update(changes)
    found["prompt_tokens"] = found["input_tokens"]
    found["completion_tokens"] = found["output_tokens"]
    found["prompt_tokens_cached"] = found["cache_read_tokens"]
    return found


def turbo_by_model(calls: int) -> dict[tuple[str, str], ModelUsage]:
    return {
        TURBO: ModelUsage(
            *TURBO,
            input_tokens=11 * calls,
            output_tokens=16 * calls,
            successful_requests=calls,
            total_cost=summed(TURBO_COST, calls),
        )
    }


# -- the ways of calling a model -------------------------------------------------------


def test_invoke(telemetry):
    with track_usage() as usage:
        turbo().invoke("Tell me a joke")
        assert totals(usage) == expected(1)  # readable during the block
    assert totals(usage) == expected(1)
    assert usage.total_cost == TURBO_COST
    assert usage.by_model == turbo_by_model(1)
    assert usage.by_model[TURBO].total_tokens == 27
    assert str(usage) == (
        "Tokens Used: 27\n"
        "\tPrompt Tokens: 11\n"
        "\t\tPrompt Tokens Cached: 0\n"
        "\t\tPrompt Tokens Cache Write: 0\n"
        "\tCompletion Tokens: 16\n"
        "\t\tReasoning Tokens: 0\n"
        "Successful Requests: 1\n"
        "Total Cost (USD): $2.95e-05"
    )


def test_two_calls(telemetry):
    model = turbo()
    with track_usage() as usage:
        model.invoke("one")
        model.invoke("two")
    assert totals(usage) == expected(2)
    assert usage.total_tokens == 54
    assert usage.total_cost == 5.9e-05
    assert usage.by_model == turbo_by_model(2)
    assert str(usage) == (
        "Tokens Used: 54\n"
        "\tPrompt Tokens: 22\n"
        "\t\tPrompt Tokens Cached: 0\n"
        "\t\tPrompt Tokens Cache Write: 0\n"
        "\tCompletion Tokens: 32\n"
        "\t\tReasoning Tokens: 0\n"
        "Successful Requests: 2\n"
        "Total Cost (USD): $5.9e-05"
    )


async def test_stream_and_astream(telemetry):
    model = turbo()
    with track_usage() as usage:
        streamed = "".join(str(chunk.content) for chunk in model.stream("one"))
        astreamed = "".join([str(chunk.content) async for chunk in model.astream("two")])
    assert streamed == astreamed == model.text
    assert totals(usage) == expected(2)
    assert usage.by_model == turbo_by_model(2)


def test_batch_in_langchains_thread_pool(telemetry):
    with track_usage() as usage:
        answers = turbo().batch(["a", "b", "c", "d"], config={"max_concurrency": 4})
    assert len(answers) == 4
    assert totals(usage) == expected(4)
    assert usage.by_model == turbo_by_model(4)


async def test_200_concurrent_ainvoke(telemetry):
    model = turbo()
    with track_usage() as usage:
        answers = await asyncio.gather(*(model.ainvoke(f"q{i}") for i in range(200)))
    assert len(answers) == 200
    assert totals(usage) == expected(200)
    assert usage.total_tokens == 5400
    assert usage.by_model == turbo_by_model(200)
    assert len(telemetry.model_spans()) == 200


def test_legacy_completion(telemetry):
    with track_usage() as usage:
        FakeCompletion().invoke("Tell me a joke")
    assert totals(usage) == expected(
        input_tokens=4, output_tokens=14, total_tokens=18, successful_requests=1, total_cost=3.4e-05
    )
    key = ("openai", "gpt-3.5-turbo-instruct")
    assert usage.by_model == {
        key: ModelUsage(*key, 4, 14, successful_requests=1, total_cost=3.4e-05)
    }


def test_token_classes_and_models(telemetry):
    with track_usage() as usage:
        turbo().invoke("a")
        FakeChat(
            provider="anthropic",
            model_name="claude-3-5-sonnet-20241022",
            response_model="claude-3-5-sonnet-20241022",
            usage=usage_metadata(2000, 300, cache_read=600, cache_creation=400),
        ).invoke("b")
        FakeChat(
            model_name="o3-mini",
            response_model="o3-mini",
            usage=usage_metadata(500, 1000, reasoning=800),
        ).invoke("c")
    assert totals(usage) == expected(
        input_tokens=2511,
        output_tokens=1316,
        total_tokens=3827,
        cache_read_tokens=600,
        cache_creation_tokens=400,
        reasoning_tokens=800,
        successful_requests=3,
        total_cost=TURBO_COST + 0.00918 + 0.00495,
    )
    claude = ("anthropic", "claude-3-5-sonnet-20241022")
    o3 = ("openai", "o3-mini")
    assert usage.by_model == {
        **turbo_by_model(1),
        claude: ModelUsage(*claude, 2000, 300, 600, 400, 0, 1, 0, 0.00918),
        o3: ModelUsage(*o3, 500, 1000, 0, 0, 800, 1, 0, 0.00495),
    }
    assert "\t\tPrompt Tokens Cached: 600\n\t\tPrompt Tokens Cache Write: 400\n" in str(usage)
    assert "\t\tReasoning Tokens: 800\n" in str(usage)


# -- blocks ----------------------------------------------------------------------------


def test_nested_blocks_both_count(telemetry):
    model = turbo()
    with track_usage() as outer:
        model.invoke("before")
        with track_usage() as inner:
            model.invoke("inside")
        model.invoke("after")
    assert totals(inner) == expected(1)
    assert totals(outer) == expected(3)
    assert inner.by_model == turbo_by_model(1)
    assert outer.by_model == turbo_by_model(3)


def test_calls_after_the_block_are_not_counted(telemetry):
    model = turbo()
    with track_usage() as usage:
        model.invoke("inside")
    model.invoke("outside")
    assert totals(usage) == expected(1)
    assert active_trackers() == ()


async def test_block_left_in_another_context(telemetry):
    """An async generator holding a block, closed by another task: the block ends there
    (ContextVar.reset would refuse the token of another context) without an error."""
    seen: list[UsageTracker] = []

    async def answers() -> Any:
        with track_usage() as usage:
            seen.append(usage)
            yield await turbo().ainvoke("hi")
            yield await turbo().ainvoke("again")

    stream = answers()
    await asyncio.create_task(stream.__anext__())
    await asyncio.create_task(stream.aclose())
    assert totals(seen[0]) == expected(1)
    assert active_trackers() == ()


# -- what is counted where -------------------------------------------------------------


def test_failing_model(telemetry):
    error = ProviderError("rate limited")
    model = FakeChat(fail_with=error)
    with track_usage() as usage:
        with pytest.raises(ProviderError) as raised:
            model.invoke("hi")
        with pytest.raises(ProviderError) as streamed:
            list(model.stream("hi"))
    assert raised.value is error  # the original exception, unchanged
    assert streamed.value is error
    assert totals(usage) == expected(failed_requests=2, successful_requests=0)
    key = ("openai", "gpt-4o-mini")  # no response model: the request model
    assert usage.by_model == {key: ModelUsage(*key, failed_requests=2)}


def test_model_reporting_no_usage(telemetry):
    """``FakeChat(usage={})``: the provider reports no usage (see ``FakeChat._usage``)."""
    with track_usage() as usage:
        FakeChat(usage={}).invoke("hi")
        list(FakeChat(usage={}).stream("hi"))
        turbo().invoke("hi")
    assert totals(usage) == expected(1, successful_requests=3, calls_without_usage=2)
    mini = ("openai", "gpt-4o-mini-2024-07-18")
    assert usage.by_model == {
        mini: ModelUsage(*mini, successful_requests=2),
        **turbo_by_model(1),
    }


def test_unpriced_model(telemetry):
    with track_usage() as usage:
        FakeChat(model_name="acme-llm-1", response_model="acme-llm-1").invoke("hi")
        turbo().invoke("hi")
    assert totals(usage) == expected(
        2, unpriced_calls=1, total_cost=TURBO_COST
    )  # tokens of both, cost of the priced one
    acme = ("openai", "acme-llm-1")
    assert usage.by_model[acme] == ModelUsage(*acme, 11, 16, successful_requests=1)


def test_llm_cache_hits(telemetry):
    """A LangChain LLM-cache hit is no provider request: it counts in ``cache_hits``
    only (no tokens, no cost, not a successful request), as on its span."""
    model = turbo(cache=InMemoryCache())
    with track_usage() as usage:
        model.invoke("same")
        model.invoke("same")
        model.invoke("same")
    assert totals(usage) == expected(1, cache_hits=2)
    assert usage.by_model == turbo_by_model(1)


def test_threads(telemetry):
    """A plain ``threading.Thread`` starts with an empty ``contextvars`` context, so calls
    made in it are NOT counted by the block it was started in, though they still get
    their span. (Python 3.14 lets a thread inherit its starter's context where
    ``sys.flags.thread_inherit_context`` is set, the default of free-threaded builds
    only; there such a thread is counted.) A thread that runs its work through
    ``contextvars.copy_context().run`` (as LangChain's own thread pools do) IS counted."""
    model = turbo()
    with track_usage() as usage:
        plain = threading.Thread(target=model.invoke, args=("plain",))
        plain.start()
        plain.join()
        context = contextvars.copy_context()
        copied = threading.Thread(target=context.run, args=(model.invoke, "copied"))
        copied.start()
        copied.join()
    assert len(telemetry.model_spans()) == 2  # both calls were made and recorded
    inherits = bool(getattr(sys.flags, "thread_inherit_context", False))
    assert totals(usage) == expected(2 if inherits else 1)


# -- without OpenTelemetry -------------------------------------------------------------


def test_works_without_opentelemetry():
    """No SDK anywhere: ``track_usage()`` instruments LangChain itself (with the API's
    no-op providers) and still counts."""
    assert isinstance(trace.get_tracer_provider(), (ProxyTracerProvider, NoOpTracerProvider))
    meter_provider = metrics.get_meter_provider()
    assert isinstance(meter_provider, NoOpMeterProvider) or (
        type(meter_provider).__name__ == "_ProxyMeterProvider"
    )
    instrumentor = LangChainUsageInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:  # left over by an earlier test
        instrumentor.uninstrument()
    try:
        with track_usage() as usage:
            assert instrumentor.is_instrumented_by_opentelemetry
            turbo().invoke("hi")
            list(turbo().stream("hi"))
        assert totals(usage) == expected(2)
        assert usage.by_model == turbo_by_model(2)
    finally:
        instrumentor.uninstrument()
    assert not instrumentor.is_instrumented_by_opentelemetry


def test_an_explicit_instrument_call_after_track_usage_wins():
    """track_usage() entered before the application configures the instrumentation
    instruments with the global (here: no-op) providers; the application's own
    instrument(tracer_provider=..., meter_provider=...) afterwards replaces that, so its
    providers get the spans and metrics."""
    instrumentor = LangChainUsageInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:  # left over by an earlier test
        instrumentor.uninstrument()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        with track_usage() as early:
            turbo().invoke("before the application configured anything")
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        with track_usage() as later:
            turbo().invoke("hi")
        instrumentor.instrument()  # a second explicit call is refused, as always
        turbo().invoke("hi again")
    finally:
        instrumentor.uninstrument()
    assert totals(early) == expected(1)
    assert totals(later) == expected(1)
    assert [span.name for span in exporter.get_finished_spans()] == ["chat gpt-3.5-turbo-0125"] * 2
    points = [
        point
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "llm_usage.requests"
        for point in metric.data.data_points
    ]
    assert sum(point.value for point in points) == 2
