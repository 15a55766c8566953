"""Token usage: one value type and its extraction from every shape LangChain passes on.

Shapes read (first match wins):

* ``AIMessage.usage_metadata``: ``input_tokens`` already includes cache reads and writes;
  details in ``input_token_details`` / ``output_token_details``.
* OpenAI style (``llm_output["token_usage"]``, ``response_metadata["token_usage"]``):
  ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``.
* Anthropic style (``response_metadata["usage"]``): ``input_tokens`` EXCLUDES
  ``cache_read_input_tokens`` and ``cache_creation_input_tokens``; we add them.
* Bedrock Converse style (``inputTokens``/``outputTokens``, ``cacheReadInputTokens``,
  ``cacheWriteInputTokens``): input excludes the cache tokens, as with Anthropic.
* LangChain.js exports (``tokenUsage``: ``promptTokens``/``completionTokens``).

Every number is validated: only non-negative integers (or integral floats) up to
:data:`MAX_PLAUSIBLE_TOKENS` count. Any other value present makes the extraction raise
:class:`InvalidUsage` (the recorder flags the call's usage as invalid), so a strange usage
dict never invents a value; an unreadable one (a mapping whose methods raise) is no usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_llm_usage.internal import internal_error

# No model call uses more: the largest context windows hold ~10^7 tokens. A larger
# "count" is junk, and summed into a cumulative counter it can overflow OTLP's int64,
# after which the exporter drops the whole metric on every export.
MAX_PLAUSIBLE_TOKENS = 100_000_000


class InvalidUsage(ValueError):
    """A provider reported a token count that cannot be real (negative, not an integer,
    above :data:`MAX_PLAUSIBLE_TOKENS`): the call's usage is unknown, not partly zero."""


class Usage:
    """Token counts of one model call. ``input`` includes cache reads and writes."""

    __slots__ = ("cache_creation", "cache_read", "input", "output", "reasoning")

    def __init__(
        self,
        input: int = 0,
        output: int = 0,
        cache_read: int = 0,
        cache_creation: int = 0,
        reasoning: int = 0,
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_creation = cache_creation
        self.reasoning = reasoning

    @property
    def total(self) -> int:
        return self.input + self.output

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_creation + other.cache_creation,
            self.reasoning + other.reasoning,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Usage) and self.as_tuple() == other.as_tuple()

    __hash__ = None  # type: ignore[assignment]

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.input, self.output, self.cache_read, self.cache_creation, self.reasoning)

    def __repr__(self) -> str:
        return (
            f"Usage(input={self.input}, output={self.output}, cache_read={self.cache_read}, "
            f"cache_creation={self.cache_creation}, reasoning={self.reasoning})"
        )


def _count(value: Any) -> int | None:
    """A token count; None when absent. Raises :class:`InvalidUsage` for a value that is
    present but not a plausible count."""
    if type(value) is int and 0 <= value <= MAX_PLAUSIBLE_TOKENS:  # the common case, first
        return value
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_PLAUSIBLE_TOKENS:
        return int(value)
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_PLAUSIBLE_TOKENS
    ):
        return int(value)  # int subclasses (IntEnum and the like)
    raise InvalidUsage(f"token count {_shown(value)} is not a plausible count")


def _shown(value: Any) -> str:
    try:
        return repr(value)[:64]
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        if key in mapping:
            found = _count(mapping[key])
            if found is not None:
                return found
    return None


def _nested(mapping: Mapping[str, Any], outer: str, inner: str) -> int | None:
    details = mapping.get(outer)
    if isinstance(details, Mapping) and inner in details:
        return _count(details[inner])
    return None


def from_usage_metadata(metadata: Any) -> Usage | None:
    """Usage from LangChain's ``usage_metadata`` (input already includes cache tokens)."""
    if type(metadata) is not dict and not isinstance(metadata, Mapping):  # dict: no ABC check
        return None
    try:
        input_tokens: Any = metadata.get("input_tokens")
        output_tokens: Any = metadata.get("output_tokens")
        cache_read: Any = 0
        cache_creation: Any = 0
        reasoning: Any = 0
        details = metadata.get("input_token_details")
        if details and (type(details) is dict or isinstance(details, Mapping)):
            cache_read = details.get("cache_read", 0)
            cache_creation = details.get("cache_creation", 0)
        details = metadata.get("output_token_details")
        if details and (type(details) is dict or isinstance(details, Mapping)):
            reasoning = details.get("reasoning", 0)
        if (  # the common case, plain ints in range, tested without a call per count
            type(input_tokens) is type(output_tokens) is type(cache_read) is int
            and type(cache_creation) is type(reasoning) is int
            # all in range at once: each of them is at most their bitwise or (and a
            # negative one makes it negative)
            and 0
            <= input_tokens | output_tokens | cache_read | cache_creation | reasoning
            <= MAX_PLAUSIBLE_TOKENS
        ):
            return Usage(input_tokens, output_tokens, cache_read, cache_creation, reasoning)
        input_tokens, output_tokens = _count(input_tokens), _count(output_tokens)
        if input_tokens is None and output_tokens is None:
            return None
        return Usage(
            input_tokens or 0,
            output_tokens or 0,
            _count(cache_read) or 0,
            _count(cache_creation) or 0,
            _count(reasoning) or 0,
        )
    except InvalidUsage:
        raise
    except Exception:  # a Mapping whose methods raise
        internal_error("unreadable usage_metadata")
        return None


_INPUT_KEYS = ("prompt_tokens", "input_tokens", "inputTokens", "promptTokens")
_OUTPUT_KEYS = ("completion_tokens", "output_tokens", "outputTokens", "completionTokens")
# Keys whose presence means the input count EXCLUDES cache reads/writes.
_EXCLUSIVE_CACHE_READ = ("cache_read_input_tokens", "cacheReadInputTokens")
_EXCLUSIVE_CACHE_WRITE = ("cache_creation_input_tokens", "cacheWriteInputTokens")


def from_provider_usage(raw: Any) -> Usage | None:
    """Usage from a provider-style dict (OpenAI, Anthropic, Bedrock Converse, LangChain.js)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        input_tokens = _first(raw, _INPUT_KEYS)
        output_tokens = _first(raw, _OUTPUT_KEYS)
        if input_tokens is None and output_tokens is None:
            return None
        usage = Usage(input_tokens or 0, output_tokens or 0)
        cache_read = _first(raw, _EXCLUSIVE_CACHE_READ)
        cache_write = _first(raw, _EXCLUSIVE_CACHE_WRITE)
        if cache_read is not None or cache_write is not None:
            # Anthropic / Bedrock: input_tokens counts only the uncached part.
            usage.cache_read = cache_read or 0
            usage.cache_creation = cache_write or 0
            usage.input += usage.cache_read + usage.cache_creation
        else:
            usage.cache_read = _nested(raw, "prompt_tokens_details", "cached_tokens") or 0
        usage.reasoning = _nested(raw, "completion_tokens_details", "reasoning_tokens") or 0
        return usage
    except InvalidUsage:
        raise
    except Exception:
        internal_error("unreadable provider usage")
        return None


# "token_count": langchain-cohere (its billed units on streams)
_METADATA_USAGE_KEYS = ("token_usage", "usage", "tokenUsage", "token_count")


def from_response_metadata(metadata: Any) -> Usage | None:
    """Usage from ``response_metadata`` or ``llm_output``, whichever key the provider used."""
    if not isinstance(metadata, Mapping):
        return None
    for key in _METADATA_USAGE_KEYS:
        raw = metadata.get(key)
        if raw:
            usage = from_provider_usage(raw)
            if usage is not None:
                return usage
    return None


def from_message(message: Any) -> Usage | None:
    """Usage carried by an ``AIMessage`` (or chunk)."""
    usage = from_usage_metadata(getattr(message, "usage_metadata", None))
    if usage is None:
        usage = from_response_metadata(getattr(message, "response_metadata", None))
    return usage


def from_chat_result(result: Any) -> Usage | None:
    """Usage of one provider call from a ``ChatResult``.

    Every generation of an ``n > 1`` call carries the same call-wide usage, so only the
    first one that has usage counts.
    """
    for generation in getattr(result, "generations", None) or ():
        usage = from_message(getattr(generation, "message", None))
        if usage is not None:
            return usage
    return from_response_metadata(getattr(result, "llm_output", None))


def from_llm_result(result: Any) -> Usage | None:
    """Usage of one legacy text-completion call from an ``LLMResult``."""
    usage = from_response_metadata(getattr(result, "llm_output", None))
    if usage is not None:
        return usage
    total: Usage | None = None
    for generations in getattr(result, "generations", None) or ():
        for generation in generations or ():
            info = getattr(generation, "generation_info", None)
            found = from_response_metadata(info) or from_usage_metadata(
                info.get("usage_metadata") if isinstance(info, Mapping) else None
            )
            if found is not None:
                total = found if total is None else total + found
    return total
