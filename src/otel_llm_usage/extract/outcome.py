"""What a model call came to, read from its result: one value per call, made by pure
functions, one per result shape (``ChatResult``, ``LLMResult``, a stream's chunks, a v3
message, an exception). The recorder turns an :class:`Outcome` into telemetry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_llm_usage.extract.usage import (
    InvalidUsage,
    Usage,
    from_chat_result,
    from_llm_result,
    from_message,
    from_response_metadata,
    from_usage_metadata,
)
from otel_llm_usage.internal import internal_error


@dataclass(slots=True)
class Outcome:
    """The response side of one call. ``usage`` None: none reported (``invalid_usage``
    says why, when the reported counts could not be real). The fields every result
    shape has come first: made positionally, an Outcome costs half as much."""

    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    service_tier: str | None = None  # openai.response.service_tier
    output: Any = None  # the message or text, for content capture and estimation
    usage: Usage | None = None
    cache_hit: bool = False  # LangChain's LLM cache answered: no provider request
    invalid_usage: str | None = None
    error: str | None = None  # error.type of a failed call
    description: str | None = None  # the failure's message
    closed_early: bool = False  # a stream the consumer left before its end


@dataclass(slots=True)
class StreamParts:
    """A stream's chunk messages, kept by reference and read at its end (LangChain's own
    ``stream`` keeps them all too, to merge them): per chunk, one list append."""

    messages: list[Any] = field(default_factory=list)
    absorbed: Any = None  # the result of the invoke a stream fell back to

    def read(self) -> tuple[list[Any], list[Mapping[str, Any]], Any]:
        """The chunks' ``usage_metadata`` and ``response_metadata`` (those not empty), and
        the first chunk's message id."""
        usage, metadata = [], []
        for message in self.messages:
            try:
                found = message.usage_metadata
                if found:
                    usage.append(found)
                found = message.response_metadata
                if found:
                    metadata.append(found)
            except Exception:
                internal_error("unreadable stream chunk")
        first_id = getattr(self.messages[0], "id", None) if self.messages else None
        return usage, metadata, first_id


def chat_outcome(result: Any, span_fields: bool = True) -> Outcome:
    """A non-streamed chat call, from its ``ChatResult`` (whose validated generations'
    fields are read directly). ``span_fields`` False: the fields only a span shows
    (finish reasons, response id, service tier) are left out, for a span that does not
    record."""
    generations = getattr(result, "generations", None) or ()
    message = generations[0].message if generations else None
    metadata = message.response_metadata if message is not None else {}
    if len(generations) > 1:
        llm_output = getattr(result, "llm_output", None)
        if isinstance(llm_output, Mapping):
            # n > 1: LangChain merges llm_output (model, id) into a message only when
            # there is one generation
            metadata = {**llm_output, **metadata}
    if not span_fields:
        outcome = Outcome(_response_model(metadata), None, [], None, message)
    else:
        reasons = [
            reason
            for generation in generations
            if (reason := _generation_finish_reason(generation)) is not None
        ]
        outcome = _response(metadata, getattr(message, "id", None), reasons, message)
    usage_metadata = getattr(message, "usage_metadata", None)
    if _is_cache_hit(usage_metadata):
        outcome.cache_hit = True
        return outcome
    try:
        # the first generation's usage_metadata, read here, is what from_chat_result
        # would find first
        usage = from_usage_metadata(usage_metadata) if usage_metadata else None
        outcome.usage = usage if usage is not None else from_chat_result(result)
    except InvalidUsage as exc:
        outcome.invalid_usage = str(exc)
    return outcome


def _generation_finish_reason(generation: Any) -> str | None:
    return _finish_reason(generation.message.response_metadata) or _finish_reason(
        generation.generation_info
    )


def completion_outcome(result: Any) -> Outcome:
    """A legacy text-completion call, from its ``LLMResult``."""
    llm_output = getattr(result, "llm_output", None) or {}
    all_generations = getattr(result, "generations", None) or [[]]
    reasons = []
    for generations in all_generations:
        for generation in generations or ():
            reason = _finish_reason(getattr(generation, "generation_info", None))
            if reason is not None:
                reasons.append(reason)
    first = all_generations[0][0] if all_generations[0] else None
    outcome = _response(llm_output, None, reasons, getattr(first, "text", None))
    _read_usage(outcome, from_llm_result, result)
    return outcome


def stream_outcome(
    parts: StreamParts, completion: bool, output: Any, closed_early: bool
) -> Outcome:
    """A stream, from its chunks; or from ``parts.absorbed``, the result of the
    ``invoke`` a stream fell back to (a model with no ``_stream``)."""
    usage, chunk_metadata, first_id = parts.read()
    metadata: dict[str, Any] = {}
    reasons = []
    for part in chunk_metadata:
        metadata.update(part)
        reason = _finish_reason(part)
        if reason is not None:
            reasons.append(reason)
    outcome = _response(metadata, first_id, reasons, output)
    outcome.closed_early = closed_early
    absorbed = parts.absorbed
    if absorbed is None:
        _read_usage(outcome, _stream_usage, usage, chunk_metadata)
    elif completion:
        _read_usage(outcome, from_llm_result, absorbed)
    elif _is_cache_hit(getattr(_first_message(absorbed), "usage_metadata", None)):
        outcome.cache_hit = True
    else:
        _read_usage(outcome, from_chat_result, absorbed)
    return outcome


def message_outcome(message: Any) -> Outcome:
    """A protocol (v3) stream, from its assembled ``AIMessage``."""
    metadata = getattr(message, "response_metadata", None) or {}
    reason = _finish_reason(metadata)
    outcome = _response(metadata, getattr(message, "id", None), [reason] if reason else [], message)
    _read_usage(outcome, from_message, message)
    return outcome


def error_outcome(exc: BaseException, parts: StreamParts | None) -> Outcome:
    """A call that raised; the usage a stream (``parts``) reported before failing is kept."""
    usage, chunk_metadata, first_id = parts.read() if parts is not None else ([], [], None)
    metadata: dict[str, Any] = {}
    for part in chunk_metadata:
        metadata.update(part)
    outcome = _response(metadata, first_id, [])
    outcome.error = error_type(exc)
    outcome.description = _describe(exc)
    _read_usage(outcome, _stream_usage, usage, chunk_metadata)
    return outcome


# -- the pieces ------------------------------------------------------------------------


def _response(
    metadata: Mapping[str, Any], message_id: Any, reasons: list[str], output: Any = None
) -> Outcome:
    """The response model, id and service tier from a response's metadata."""
    model = _response_model(metadata)
    response_id = metadata.get("id")
    if not (response_id and isinstance(response_id, str)):
        # LangChain fills in its own run id ("lc_run-…") when the provider gave none.
        ok = message_id and isinstance(message_id, str) and not message_id.startswith("lc_")
        response_id = message_id if ok else None
    tier = metadata.get("service_tier")
    return Outcome(
        model, response_id, reasons, tier if tier and isinstance(tier, str) else None, output
    )


def _read_usage(outcome: Outcome, extract: Callable[..., Usage | None], *args: Any) -> None:
    """``outcome.usage = extract(*args)``; a count that cannot be real makes the usage
    unknown (``invalid_usage``), never partly zero."""
    try:
        outcome.usage = extract(*args)
    except InvalidUsage as exc:
        outcome.invalid_usage = str(exc)


def error_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _first_message(result: Any) -> Any:
    """The message of a ``ChatResult``'s first generation (None if it has none)."""
    generations = getattr(result, "generations", None)
    return getattr(generations[0], "message", None) if generations else None


def _is_cache_hit(usage_metadata: Any) -> bool:
    """LangChain's LLM cache answered: it zeroes the cost of a cached message
    (``usage_metadata["total_cost"] = 0``), a key no provider sets."""
    return (
        type(usage_metadata) is dict or isinstance(usage_metadata, Mapping)  # dict: no ABC check
    ) and usage_metadata.get("total_cost", None) == 0


def _stream_usage(usage_parts: list[Any], metadata_parts: list[Mapping[str, Any]]) -> Usage | None:
    """A stream's usage: the sum of its chunks' ``usage_metadata``; failing that, the last
    usage a chunk carries only in ``response_metadata`` (langchain-cohere's sync stream
    puts its ``token_count`` there and nowhere else)."""
    total: Usage | None = None
    for part in usage_parts:
        usage = from_usage_metadata(part)
        if usage is not None:
            total = usage if total is None else total + usage
    if total is None:
        for metadata in reversed(metadata_parts):
            total = from_response_metadata(metadata)
            if total is not None:
                break
    return total


_MODEL_KEYS = ("model_name", "model", "model_id", "modelId")


def _response_model(metadata: Mapping[str, Any]) -> str | None:
    for key in _MODEL_KEYS:
        value = metadata.get(key)
        if value and isinstance(value, str):
            return value
    return None


_FINISH_REASON_KEYS = ("finish_reason", "stop_reason", "stopReason", "done_reason")


def _finish_reason(metadata: Any) -> str | None:
    if not metadata or (type(metadata) is not dict and not isinstance(metadata, Mapping)):
        return None
    for key in _FINISH_REASON_KEYS:
        value = metadata.get(key)
        if value and isinstance(value, str):
            return value
    return None


def _describe(exc: BaseException) -> str | None:
    try:
        return str(exc)[:1024] or None
    except Exception:
        return None
