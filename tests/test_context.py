"""Parent/child links, context hygiene across yields, errors, early ends of streams."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest
from fakes import FakeChat, ProviderError
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode


class ObservingChat(FakeChat):
    """Records which span is current while the 'provider' runs."""

    seen: list[Any] = []

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(trace.get_current_span())
        return super()._generate(*args, **kwargs)

    def _stream_chunks(self) -> Any:
        for chunk in super()._stream_chunks():
            self.seen.append(trace.get_current_span())
            yield chunk


@pytest.fixture
def observing() -> ObservingChat:
    ObservingChat.seen = []
    return ObservingChat()


def test_user_span_is_parent_and_chat_span_is_current_in_provider(telemetry, observing):
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as user_span:
        observing.invoke("hi")
        assert trace.get_current_span() is user_span
    (chat,) = telemetry.model_spans()
    assert chat.parent.span_id == user_span.get_span_context().span_id
    assert chat.context.trace_id == user_span.get_span_context().trace_id
    (inside,) = observing.seen
    assert inside.get_span_context().span_id == chat.context.span_id


def test_stream_context_is_not_leaked_to_user_code(telemetry, observing):
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as user_span:
        for _chunk in observing.stream("hi"):
            # between chunks, user code sees its own span, never ours
            assert trace.get_current_span() is user_span
    (chat,) = telemetry.model_spans()
    assert chat.parent.span_id == user_span.get_span_context().span_id
    assert {s.get_span_context().span_id for s in observing.seen} == {chat.context.span_id}


async def test_astream_context_is_not_leaked_to_user_code(telemetry, observing):
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as user_span:
        async for _chunk in observing.astream("hi"):
            assert trace.get_current_span() is user_span
    (chat,) = telemetry.model_spans()
    assert chat.parent.span_id == user_span.get_span_context().span_id
    assert {s.get_span_context().span_id for s in observing.seen} == {chat.context.span_id}


def test_provider_exception_passes_through_unchanged(telemetry):
    error = ProviderError("rate limited")
    with pytest.raises(ProviderError) as raised:
        FakeChat(fail_with=error).invoke("hi")
    assert raised.value is error
    # the traceback still reaches the provider's own frame
    assert raised.traceback[-1].name == "_generate"
    (span,) = telemetry.model_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "rate limited"
    assert span.attributes["error.type"] == "fakes.ProviderError"
    assert "gen_ai.usage.input_tokens" not in span.attributes
    (duration,) = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "fakes.ProviderError"
    assert telemetry.counter("llm_usage.requests", error__type="fakes.ProviderError") == 1


async def test_async_provider_exception_passes_through_unchanged(telemetry):
    error = ProviderError("boom")
    with pytest.raises(ProviderError) as raised:
        await FakeChat(fail_with=error).ainvoke("hi")
    assert raised.value is error
    (span,) = telemetry.model_spans()
    assert span.attributes["error.type"] == "fakes.ProviderError"


def test_exception_mid_stream_keeps_usage_so_far_and_marks_error(telemetry):
    error = ProviderError("connection reset")
    model = FakeChat(fail_with=error, fail_after_chunks=3)
    received = []
    with pytest.raises(ProviderError) as raised:
        for chunk in model.stream("hi"):
            received.append(chunk)
    assert raised.value is error
    assert len(received) == 3
    (span,) = telemetry.model_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "fakes.ProviderError"
    assert span.attributes["llm_usage.stream.chunks"] == 3


async def test_exception_mid_astream(telemetry):
    error = ProviderError("connection reset")
    model = FakeChat(fail_with=error, fail_after_chunks=2)
    with pytest.raises(ProviderError) as raised:
        async for _ in model.astream("hi"):
            pass
    assert raised.value is error
    (span,) = telemetry.model_spans()
    assert span.attributes["error.type"] == "fakes.ProviderError"


def test_break_out_of_stream_ends_span_once(telemetry, caplog):
    caplog.set_level(logging.WARNING)
    stream = FakeChat().stream("hi")
    for _chunk in stream:
        break
    stream.close()
    stream.close()
    (span,) = telemetry.model_spans()
    assert span.end_time is not None
    assert span.attributes["llm_usage.stream.closed_early"] is True
    assert span.attributes["llm_usage.stream.chunks"] == 1
    assert span.status.status_code is StatusCode.UNSET
    assert "Failed to detach context" not in caplog.text


def test_abandoned_stream_collected_by_gc_ends_span(telemetry, caplog):
    caplog.set_level(logging.WARNING)

    def consume_two() -> None:
        stream = FakeChat().stream("hi")
        next(stream)
        next(stream)

    consume_two()
    gc.collect()
    (span,) = telemetry.model_spans()
    assert span.attributes["llm_usage.stream.chunks"] == 2
    assert span.attributes["llm_usage.stream.closed_early"] is True
    assert "Failed to detach context" not in caplog.text


def test_consumer_exception_ends_span(telemetry, caplog):
    caplog.set_level(logging.WARNING)
    with pytest.raises(KeyError):
        for _chunk in FakeChat().stream("hi"):
            raise KeyError("consumer bug")
    gc.collect()
    (span,) = telemetry.model_spans()
    assert span.attributes["llm_usage.stream.closed_early"] is True
    assert "Failed to detach context" not in caplog.text


async def test_astream_aclose_ends_span_once(telemetry, caplog):
    caplog.set_level(logging.WARNING)
    stream = FakeChat().astream("hi")
    async for _chunk in stream:
        break
    await stream.aclose()
    await stream.aclose()
    (span,) = telemetry.model_spans()
    assert span.attributes["llm_usage.stream.closed_early"] is True
    assert "Failed to detach context" not in caplog.text


class SlowChat(FakeChat):
    async def _astream(self, *args: Any, **kwargs: Any) -> Any:
        async for chunk in super()._astream(*args, **kwargs):
            await asyncio.sleep(0.05)
            yield chunk


async def test_astream_cancelled_ends_span_with_usage_so_far(telemetry, caplog):
    caplog.set_level(logging.WARNING)
    received = []

    async def consume() -> None:
        async for chunk in SlowChat().astream("hi"):
            received.append(chunk)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (span,) = telemetry.model_spans()
    assert span.attributes["error.type"] == "asyncio.exceptions.CancelledError"
    assert span.attributes["llm_usage.stream.chunks"] == len(received) == 2
    assert "Failed to detach context" not in caplog.text


async def test_astream_timeout_ends_span(telemetry):
    async def consume() -> None:
        async for _ in SlowChat().astream("hi"):
            pass

    # asyncio.TimeoutError: the builtin TimeoutError from 3.11 on, its own class on 3.10
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(consume(), timeout=0.08)
    (span,) = telemetry.model_spans()
    assert span.end_time is not None
    assert span.attributes["error.type"] == "asyncio.exceptions.CancelledError"


def test_suppress_instrumentation_is_honoured(telemetry):
    with suppress_instrumentation():
        FakeChat().invoke("hi")
        list(FakeChat().stream("hi"))
    assert telemetry.model_spans() == []
    assert telemetry.tokens("input") == 0


def test_not_sampled_spans_still_count_tokens(telemetry):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from otel_llm_usage import LangChainUsageInstrumentor

    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=TracerProvider(sampler=ALWAYS_OFF),
        meter_provider=telemetry.meter_provider,
    )
    FakeChat().invoke("hi")
    assert telemetry.spans() == []
    assert telemetry.tokens("input") == 11
    assert telemetry.tokens("output") == 16
