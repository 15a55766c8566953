"""Never break the application: strange results, strange chunks, bad configuration."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import Telemetry
from fakes import FakeChat, FakeCompletion
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from otel_llm_usage import LangChainUsageInstrumentor, track_usage

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "token_usage",
                    "usage",
                    "tokenUsage",
                    "prompt_tokens",
                    "completion_tokens",
                    "input_tokens",
                    "output_tokens",
                    "cache_read_input_tokens",
                    "model_name",
                    "model",
                    "finish_reason",
                    "stop_reason",
                    "id",
                    "prompt_tokens_details",
                    "cached_tokens",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


class Hostile:
    """An object whose every attribute access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} for you")


class JunkChat(FakeChat):
    """A provider package passing on whatever it got."""

    response_metadata_value: Any = None
    llm_output_value: Any = None

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        message = AIMessage(content="ok")
        message.response_metadata = self.response_metadata_value  # unvalidated, as some do
        return ChatResult(
            generations=[ChatGeneration(message=message)], llm_output=self.llm_output_value
        )


def valid_usage_or_absent(attributes: Any) -> None:
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        if key in attributes:
            value = attributes[key]
            assert type(value) is int and 0 <= value < 2**53


# LangChain itself requires both to be dicts (it merges them); their values are free.
junk_dict = st.dictionaries(
    st.sampled_from(
        ["token_usage", "usage", "tokenUsage", "model_name", "finish_reason", "id", "x"]
    ),
    junk,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(metadata=junk_dict, llm_output=st.none() | junk_dict)
def test_any_result_shape_never_raises(telemetry, metadata: Any, llm_output: Any):
    telemetry.exporter.clear()
    model = JunkChat(response_metadata_value=metadata, llm_output_value=llm_output)
    with track_usage() as usage:
        assert model.invoke("hi").content == "ok"
    (span,) = telemetry.model_spans()
    valid_usage_or_absent(span.attributes)
    assert usage.successful_requests == 1
    assert usage.input_tokens >= 0


@pytest.mark.internal_errors  # hostile objects make our readers fail: logged, never raised
@settings(max_examples=100, deadline=None)
@given(st.lists(junk | st.just(Hostile()), max_size=4))
def test_recorder_survives_hostile_inputs(items: list[Any]):
    """Straight at the recorder: hostile chunks and results, each end runs once."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from otel_llm_usage.extract.providers import model_info
    from otel_llm_usage.record.metrics import instruments_for
    from otel_llm_usage.record.recorder import CallRecorder, Telemetry

    meter_provider = MeterProvider()
    telemetry = Telemetry(
        TracerProvider().get_tracer("t"),
        instruments_for(meter_provider, meter_provider.get_meter("t")),
    )
    model = FakeChat()
    info = model_info(model, "chat", None, {})
    from opentelemetry import context

    recorder = CallRecorder(telemetry, model, info, context.get_current(), True)
    for item in items:
        recorder.on_message_chunk(item)
        recorder.on_text_chunk(item)
    recorder.absorb(items[0] if items else None)
    recorder.finish_stream()
    recorder.finish_stream()
    recorder.fail(RuntimeError("late"))
    for item in items:
        recorder = CallRecorder(telemetry, model, info, context.get_current(), False)
        recorder.finish_chat(item)
        recorder = CallRecorder(telemetry, model, info, context.get_current(), False)
        recorder.finish_completion(item)
        recorder = CallRecorder(telemetry, model, info, context.get_current(), False)
        recorder.finish_message(item)


def test_bad_configuration_logs_and_uses_defaults(telemetry, monkeypatch, caplog, tmp_path):
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "maybe")
    monkeypatch.setenv("OTEL_LLM_USAGE_CONTENT_MAX_LENGTH", "lots")
    monkeypatch.setenv("OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES", "-5")
    monkeypatch.setenv("OTEL_LLM_USAGE_ESTIMATE", "perhaps")
    monkeypatch.setenv("OTEL_LLM_USAGE_PRICES", str(tmp_path / "missing.yaml"))
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    assert FakeChat().invoke("hi").content == FakeChat().text
    assert FakeCompletion().invoke("hi")
    text = caplog.text
    for name in (
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "OTEL_LLM_USAGE_CONTENT_MAX_LENGTH",
        "OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES",
        "OTEL_LLM_USAGE_ESTIMATE",
    ):
        assert name in text
    assert "missing.yaml" in text
    chat, completion = telemetry.model_spans()
    # defaults: no content captured, built-in prices still used
    assert "gen_ai.input.messages" not in chat.attributes
    assert chat.attributes["gen_ai.usage.cost.amount"] == 1.125e-05
    assert completion.attributes["gen_ai.usage.cost.amount"] == 3.4e-05


class StreamingFlagRaises(FakeCompletion):
    """A legacy LLM whose ``streaming`` flag cannot be read."""

    @property
    def streaming(self) -> bool:
        raise RuntimeError("no flag here")


class StreamingFlagTrue(FakeCompletion):
    streaming: bool = True


def test_legacy_streaming_flag_read_safely(telemetry: Telemetry) -> None:
    """The flag says whether the provider streams (``gen_ai.request.stream``); one that
    raises is read as "not streaming", and the call goes on."""
    assert StreamingFlagRaises().invoke("hi") == FakeCompletion().text
    assert StreamingFlagTrue().invoke("hi") == FakeCompletion().text
    raising, streaming = telemetry.model_spans()
    assert "gen_ai.request.stream" not in raising.attributes
    assert raising.attributes["gen_ai.usage.input_tokens"] == 4
    assert streaming.attributes["gen_ai.request.stream"] is True
    assert streaming.attributes["gen_ai.usage.output_tokens"] == 14


@pytest.mark.internal_errors  # the unreadable chunk is logged
def test_an_unreadable_stream_chunk_loses_only_itself(telemetry, no_internal_errors):
    """A stream's chunks are read at its end: one that cannot be read is logged and left
    out; the usage, model and count of the others are kept."""
    from langchain_core.messages import AIMessageChunk
    from opentelemetry import context

    from otel_llm_usage.extract.providers import model_info
    from otel_llm_usage.record.metrics import instruments_for
    from otel_llm_usage.record.recorder import CallRecorder
    from otel_llm_usage.record.recorder import Telemetry as RecorderTelemetry

    meter_provider = telemetry.meter_provider
    recorder_telemetry = RecorderTelemetry(
        telemetry.tracer_provider.get_tracer("t"),
        instruments_for(meter_provider, meter_provider.get_meter("t")),
    )
    model = FakeChat()
    recorder = CallRecorder(
        recorder_telemetry, model, model_info(model, "chat", None, {}), context.get_current(), True
    )
    handler = recorder.chunk_handler()
    handler = handler(
        AIMessageChunk(content="a", response_metadata={"model_name": "gpt-4o-mini-2024-07-18"})
    )
    handler(Hostile())
    handler(
        AIMessageChunk(
            content="", usage_metadata={"input_tokens": 11, "output_tokens": 16, "total_tokens": 27}
        )
    )
    recorder.finish_stream()
    [span] = telemetry.spans()
    assert span.attributes is not None
    assert (
        span.attributes["gen_ai.usage.input_tokens"],
        span.attributes["gen_ai.usage.output_tokens"],
        span.attributes["gen_ai.response.model"],
        span.attributes["llm_usage.stream.chunks"],
    ) == (11, 16, "gpt-4o-mini-2024-07-18", 3)
    assert [r.getMessage() for r in no_internal_errors] == [
        "otel-llm-usage: unreadable stream chunk (further failures of this kind are logged "
        "at debug level)"
    ]
