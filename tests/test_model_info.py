"""The model-info memo is keyed by what a model's values are, not by which instance it is:
a changed field shows on the next span, and a new instance with known values reuses the
memo (the "new ChatOpenAI per request" pattern)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeChat

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract import providers


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Models that :func:`providers.build_model_info` ran for (the memo's misses)."""
    seen: list[Any] = []
    build = providers.build_model_info

    def counting(model: Any, *args: Any) -> providers.ModelInfo:
        seen.append(model)
        return build(model, *args)

    monkeypatch.setattr(providers, "_cache", {})
    monkeypatch.setattr(providers, "build_model_info", counting)
    return seen


def test_changed_model_name_and_temperature_show_on_the_next_span(telemetry, builds):
    model = FakeChat(model_name="gpt-4o-mini", temperature=0.2)
    model.invoke("hi")
    model.model_name = "gpt-4o"
    model.temperature = 0.7
    model.invoke("hi")
    model.max_tokens = 64
    list(model.stream("hi"))
    first, second, third = telemetry.model_spans()
    assert first.name == "chat gpt-4o-mini"
    assert first.attributes[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert second.name == "chat gpt-4o"
    assert second.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert second.attributes[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.7
    assert second.attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] == 256
    assert third.attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert len(builds) == 3


def test_changed_base_url_shows_on_the_next_span(telemetry, builds):
    model = FakeChat(base_url="https://api.openai.com/v1")
    model.invoke("hi")
    model.base_url = "http://localhost:8000/v1"
    model.invoke("hi")
    first, second = telemetry.model_spans()
    assert (first.attributes[sc.SERVER_ADDRESS], first.attributes[sc.SERVER_PORT]) == (
        "api.openai.com",
        443,
    )
    assert (second.attributes[sc.SERVER_ADDRESS], second.attributes[sc.SERVER_PORT]) == (
        "localhost",
        8000,
    )


def test_a_new_instance_with_equal_fields_reuses_the_memo(telemetry, builds):
    for _ in range(5):
        FakeChat(model_name="gpt-4o-mini", temperature=0.2).invoke("hi")
    FakeChat(model_name="gpt-4o-mini", temperature=0.3).invoke("hi")
    FakeChat(model_name="gpt-4o-mini", temperature=0.3).invoke("hi")
    spans = telemetry.model_spans()
    assert [s.attributes[sc.GEN_AI_REQUEST_TEMPERATURE] for s in spans] == [0.2] * 5 + [0.3] * 2
    assert len(builds) == 2


def test_unhashable_field_values_still_memoise(telemetry, builds):
    """Lists and dicts in the key (stop sequences, model_kwargs)."""

    class Chat(FakeChat):
        model_kwargs: dict[str, Any] = {}

    for _ in range(3):
        Chat(model_kwargs={"top_p": 0.5, "logit_bias": {"1": 2}}).invoke("hi", stop=["END"])
    spans = telemetry.model_spans()
    assert spans[0].attributes[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert spans[0].attributes[sc.GEN_AI_REQUEST_TOP_P] == 0.5
    assert len(builds) == 1
    model = Chat(model_kwargs={"top_p": 0.5})
    model.invoke("hi")
    model.model_kwargs["top_p"] = 0.9  # changed in place
    model.invoke("hi")
    assert telemetry.model_spans()[-1].attributes[sc.GEN_AI_REQUEST_TOP_P] == 0.9


def test_the_call_options_are_part_of_the_key(telemetry, builds):
    model = FakeChat()
    model.invoke("hi", model="gpt-4o")
    model.invoke("hi")
    model.invoke("hi", model="gpt-4o")
    names = [s.attributes[sc.GEN_AI_REQUEST_MODEL] for s in telemetry.model_spans()]
    assert names == ["gpt-4o", "gpt-4o-mini", "gpt-4o"]
    assert len(builds) == 2
