"""usage_attributes(): allow-listed, value-capped attributes on spans and metrics."""

from __future__ import annotations

import uuid

import pytest
from fakes import FakeChat

from otel_llm_usage import LangChainUsageInstrumentor, usage_attributes


@pytest.fixture
def with_policy(telemetry):
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        usage_attribute_keys=["tenant", "feature"],
        usage_attribute_max_values=3,
    )
    return telemetry


def test_attributes_reach_spans_and_metrics(with_policy):
    with usage_attributes(tenant="acme"), usage_attributes(feature="search"):
        FakeChat().invoke("hi")
    FakeChat().invoke("hi")
    first, second = with_policy.model_spans()
    assert first.attributes["tenant"] == "acme"
    assert first.attributes["feature"] == "search"
    assert "tenant" not in second.attributes
    assert with_policy.counter("llm_usage.tokens", tenant="acme", gen_ai__token__type="input") == 11
    assert with_policy.tokens("input") == 22


def test_keys_outside_the_allow_list_are_dropped_with_one_warning(with_policy, caplog):
    for _ in range(3):
        with usage_attributes({"user.id": "u-1"}, tenant="acme"):
            FakeChat().invoke("hi")
    for span in with_policy.model_spans():
        assert "user.id" not in span.attributes
        assert span.attributes["tenant"] == "acme"
    assert caplog.text.count("'user.id' is not in the allow-list") == 1


def test_distinct_values_are_capped_and_series_bounded(with_policy):
    for index in range(10_000):
        with usage_attributes(tenant=f"t{index % 50}", feature="f"):
            FakeChat().invoke(
                f"prompt {index}", config={"run_id": uuid.uuid4(), "metadata": {"i": index}}
            )
    points = [
        p
        for p in with_policy.metrics()["llm_usage.tokens"]
        if p.attributes["gen_ai.token.type"] == "input"
    ]
    tenants = sorted(p.attributes["tenant"] for p in points)
    assert tenants == ["_other", "t0", "t1", "t2"]
    assert sum(p.value for p in points) == 10_000 * 11
    other = next(p for p in points if p.attributes["tenant"] == "_other")
    assert other.value == (10_000 - 3 * 200) * 11
    durations = with_policy.metrics()["gen_ai.client.operation.duration"]
    assert len(durations) == 4
