"""Settings.from_env: every variable read once, malformed values logged and defaulted."""

from __future__ import annotations

import logging

import pytest

from otel_llm_usage.settings import Settings


def test_nothing_set_is_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert not Settings().capture_content


def test_every_variable() -> None:
    settings = Settings.from_env(
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event",
            "OTEL_LLM_USAGE_CONTENT_MAX_LENGTH": "512",
            "OTEL_LLM_USAGE_ATTRIBUTE_KEYS": " tenant, feature ,,",
            "OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES": "7",
            "OTEL_LLM_USAGE_ESTIMATE": "yes",
            "OTEL_LLM_USAGE_PRICES": "/etc/prices.yaml",
            "OTEL_LLM_USAGE_REQUEST_STREAM_USAGE": "vLLM.internal, 127.0.0.1",
        }
    )
    assert settings == Settings(
        capture_mode="SPAN_AND_EVENT",
        content_max_length=512,
        attribute_keys=("tenant", "feature"),
        attribute_max_values=7,
        estimate=True,
        prices="/etc/prices.yaml",
        request_stream_usage=True,
        stream_usage_hosts=frozenset({"vllm.internal", "127.0.0.1"}),
    )
    assert (settings.capture_content, settings.content_on_span, settings.content_in_events) == (
        True,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("raw", "enabled", "hosts"),
    [("true", True, None), ("all", True, None), ("off", False, None), ("", False, None)],
)
def test_stream_usage_switch(raw: str, enabled: bool, hosts: object) -> None:
    settings = Settings.from_env({"OTEL_LLM_USAGE_REQUEST_STREAM_USAGE": raw})
    assert (settings.request_stream_usage, settings.stream_usage_hosts) == (enabled, hosts)


def test_malformed_values_are_logged_and_defaulted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "otel_llm_usage")
    settings = Settings.from_env(
        {
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "maybe",
            "OTEL_LLM_USAGE_CONTENT_MAX_LENGTH": "8",
            "OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES": "lots",
            "OTEL_LLM_USAGE_ESTIMATE": "perhaps",
        }
    )
    assert settings == Settings()
    assert [record.getMessage() for record in caplog.records] == [
        "otel-llm-usage: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT='maybe' is not one "
        "of EVENT_ONLY, NO_CONTENT, SPAN_AND_EVENT, SPAN_ONLY or true/false; using NO_CONTENT",
        "otel-llm-usage: OTEL_LLM_USAGE_CONTENT_MAX_LENGTH='8' is below 16; using 8192",
        "otel-llm-usage: OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES='lots' is not an integer; using 100",
        "otel-llm-usage: OTEL_LLM_USAGE_ESTIMATE='perhaps' is not true/false; using False",
    ]
