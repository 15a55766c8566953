"""Message content: off by default; when on, semconv JSON, bounded, and never secrets."""

from __future__ import annotations

import json

import pytest
from fakes import FakeChat, FakeCompletion
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from otel_llm_usage import LangChainUsageInstrumentor

SECRET_KEY = "sk-live-THIS-MUST-NOT-LEAK-123456"
SECRET_URL = "https://user:hunter2@llm.internal.example:8443/v1"
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


class SecretChat(FakeChat):
    api_key: str = SECRET_KEY
    default_headers: dict[str, str] = {"Authorization": f"Bearer {SECRET_KEY}"}


@pytest.fixture
def capturing(telemetry, monkeypatch):
    def reinstrument(max_length: str | None = None):
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        if max_length is not None:
            monkeypatch.setenv("OTEL_LLM_USAGE_CONTENT_MAX_LENGTH", max_length)
        instrumentor = LangChainUsageInstrumentor()
        instrumentor.uninstrument()
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        return telemetry

    return reinstrument


def test_content_is_off_by_default(telemetry):
    FakeChat().invoke([SystemMessage("Be brief."), HumanMessage("Tell me a joke")])
    list(FakeChat().stream("Tell me a joke"))
    for span in telemetry.model_spans():
        assert not set(CONTENT_KEYS) & set(span.attributes)


def test_invoke_content_in_semconv_shape(capturing):
    telemetry = capturing()
    FakeChat().invoke(
        [
            SystemMessage("Be brief."),
            HumanMessage("Weather?"),
            AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "c1"}]),
            ToolMessage("sunny", tool_call_id="c1"),
        ]
    )
    (span,) = telemetry.model_spans()
    assert json.loads(span.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Paris"}}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}],
        },
    ]
    assert json.loads(span.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": FakeChat().text}],
            "finish_reason": "stop",
        }
    ]


def test_stream_and_legacy_content(capturing):
    telemetry = capturing()
    list(FakeChat().stream("Tell me a joke"))
    FakeCompletion().invoke("Complete this")
    stream_span, completion_span = telemetry.model_spans()
    assert json.loads(stream_span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Tell me a joke"}]}
    ]
    output = json.loads(stream_span.attributes["gen_ai.output.messages"])
    assert output[0]["parts"] == [{"type": "text", "content": FakeChat().text}]
    assert json.loads(completion_span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Complete this"}]}
    ]
    assert (
        json.loads(completion_span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"]
        == FakeCompletion().text
    )


def test_content_is_truncated_to_valid_json(capturing):
    telemetry = capturing(max_length="200")
    FakeChat(text="x" * 5000).invoke([HumanMessage("a" * 3000), HumanMessage("b" * 3000)])
    (span,) = telemetry.model_spans()
    for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
        text = span.attributes[key]
        assert len(text) <= 200
        parsed = json.loads(text)  # still valid JSON
        assert parsed[0]["parts"][0]["content"].endswith("…")


def test_secrets_never_reach_the_span(capturing):
    telemetry = capturing()
    model = SecretChat(base_url=SECRET_URL)
    model.invoke("hi")
    list(model.stream("hi"))
    for span in telemetry.model_spans():
        dumped = json.dumps(dict(span.attributes), default=str)
        assert SECRET_KEY not in dumped
        assert "hunter2" not in dumped
        assert span.attributes["server.address"] == "llm.internal.example"
        assert span.attributes["server.port"] == 8443


# -- OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: util-genai's values ---------------


def _events_run(telemetry, monkeypatch, value):
    """Reinstrument with ``value`` and an SDK logger provider; one invoke; (span, events)."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        logger_provider=logger_provider,
    )
    FakeChat().invoke([SystemMessage("Be brief."), HumanMessage("Tell me a joke")])
    (span,) = telemetry.model_spans()
    return span, [item.log_record for item in logs.get_finished_logs()]


@pytest.mark.parametrize(
    ("value", "on_span", "in_event"),
    [
        ("NO_CONTENT", False, False),
        ("SPAN_ONLY", True, False),
        ("EVENT_ONLY", False, True),
        ("SPAN_AND_EVENT", True, True),
        ("span_and_event", True, True),
        ("true", True, False),
        ("false", False, False),
        ("bogus", False, False),
    ],
)
def test_capture_modes(telemetry, monkeypatch, value, on_span, in_event):
    span, events = _events_run(telemetry, monkeypatch, value)
    assert bool(set(CONTENT_KEYS) & set(span.attributes)) is on_span
    if on_span:
        assert set(CONTENT_KEYS) <= set(span.attributes)
    assert len(events) == (1 if in_event else 0)
    if in_event:
        (event,) = events
        assert event.event_name == "gen_ai.client.inference.operation.details"
        assert event.trace_id == span.context.trace_id
        assert event.span_id == span.context.span_id
        attributes = dict(event.attributes)
        assert json.loads(attributes["gen_ai.system_instructions"]) == [
            {"type": "text", "content": "Be brief."}
        ]
        assert json.loads(attributes["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "Tell me a joke"}]}
        ]
        assert json.loads(attributes["gen_ai.output.messages"])[0]["role"] == "assistant"
        assert attributes["gen_ai.operation.name"] == "chat"
