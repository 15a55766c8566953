"""Usage normalised from every shape LangChain and the providers hand over."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llm_usage.extract.usage import (
    InvalidUsage,
    Usage,
    from_chat_result,
    from_llm_result,
    from_provider_usage,
    from_response_metadata,
    from_usage_metadata,
)


def test_usage_metadata_with_details():
    usage = from_usage_metadata(
        {
            "input_tokens": 1200,
            "output_tokens": 300,
            "total_tokens": 1500,
            "input_token_details": {"cache_read": 1000, "cache_creation": 150, "audio": 0},
            "output_token_details": {"reasoning": 200},
        }
    )
    assert usage == Usage(1200, 300, 1000, 150, 200)


def test_openai_token_usage_includes_cached_in_prompt():
    usage = from_response_metadata(
        {
            "token_usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920},
                "completion_tokens_details": {"reasoning_tokens": 192},
            }
        }
    )
    assert usage == Usage(2006, 300, 1920, 0, 192)


def test_anthropic_usage_adds_cache_tokens_to_input():
    usage = from_response_metadata(
        {
            "usage": {
                "input_tokens": 21,
                "output_tokens": 393,
                "cache_creation_input_tokens": 188086,
                "cache_read_input_tokens": 0,
            }
        }
    )
    assert usage == Usage(21 + 188086, 393, 0, 188086, 0)


def test_bedrock_converse_usage():
    usage = from_provider_usage(
        {"inputTokens": 30, "outputTokens": 12, "totalTokens": 142, "cacheReadInputTokens": 100}
    )
    assert usage == Usage(130, 12, 100, 0, 0)


def test_langchain_js_camel_case():
    usage = from_response_metadata({"tokenUsage": {"promptTokens": 7, "completionTokens": 9}})
    assert usage == Usage(7, 9)


def test_legacy_llm_output():
    class Result:
        llm_output = {"token_usage": {"prompt_tokens": 4, "completion_tokens": 14}}
        generations: list[Any] = []

    assert from_llm_result(Result()) == Usage(4, 14)


def test_chat_result_with_n_generations_counts_call_usage_once():
    class Message:
        usage_metadata = {"input_tokens": 10, "output_tokens": 40, "total_tokens": 50}
        response_metadata: dict[str, Any] = {}

    class Generation:
        message = Message()

    class Result:
        generations = [Generation(), Generation()]
        llm_output = None

    assert from_chat_result(Result()) == Usage(10, 40)


def test_absent_values_and_shapes_are_no_usage():
    assert from_usage_metadata({"input_tokens": 5.0, "output_tokens": None}) == Usage(5, 0)
    assert from_usage_metadata({"input_tokens": 100_000_000}) == Usage(100_000_000, 0)
    assert from_usage_metadata(None) is None
    assert from_usage_metadata([1, 2]) is None
    assert from_response_metadata({"token_usage": "lots"}) is None


@pytest.mark.parametrize(
    "value", ["12", -3, True, float("nan"), 2.5, 100_000_001, 2**53, 2**63, float("inf")]
)
def test_counts_that_cannot_be_real_make_the_usage_invalid_not_partly_zero(value: Any):
    """Not silently 0 for that class: the whole usage is unknown (the recorder flags it)."""
    with pytest.raises(InvalidUsage, match="is not a plausible count"):
        from_usage_metadata({"input_tokens": value, "output_tokens": 2})
    with pytest.raises(InvalidUsage):
        from_usage_metadata({"input_tokens": 3, "input_token_details": {"cache_read": value}})
    with pytest.raises(InvalidUsage):
        from_provider_usage({"prompt_tokens": 3, "completion_tokens": value})
    with pytest.raises(InvalidUsage):
        from_response_metadata({"usage": {"input_tokens": value, "output_tokens": 2}})


class Exploding(dict):  # type: ignore[type-arg]
    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("attribute access raises")

    def __contains__(self, key: object) -> bool:
        raise RuntimeError("attribute access raises")


@pytest.mark.internal_errors
def test_mapping_whose_methods_raise():
    assert from_usage_metadata(Exploding(input_tokens=1)) is None
    assert from_provider_usage(Exploding(prompt_tokens=1)) is None


junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "input_tokens",
                    "output_tokens",
                    "prompt_tokens",
                    "completion_tokens",
                    "input_token_details",
                    "output_token_details",
                    "cache_read",
                    "reasoning",
                    "prompt_tokens_details",
                    "cached_tokens",
                    "cache_read_input_tokens",
                    "token_usage",
                    "usage",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(junk)
def test_any_shape_gives_valid_usage_or_none(value: Any):
    for extract in (from_usage_metadata, from_provider_usage, from_response_metadata):
        try:
            usage = extract(value)
        except InvalidUsage:
            continue
        if usage is not None:
            assert all(type(n) is int and 0 <= n <= 100_000_000 for n in usage.as_tuple())
