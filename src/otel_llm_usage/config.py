"""Settings read from the environment once, at ``instrument()``. A malformed value is
logged with the variable's name and replaced by its default: the application runs on."""

from __future__ import annotations

import logging
import os

from . import semconv as sc

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_MAX_LENGTH_ENV = "OTEL_LLM_USAGE_CONTENT_MAX_LENGTH"

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def env_flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    logger.warning("otel-llm-usage: %s=%r is not true/false; using %s", name, raw, default)
    return default


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        logger.warning("otel-llm-usage: %s=%r is not an integer; using %s", name, raw, default)
        return default
    if value < minimum:
        logger.warning("otel-llm-usage: %s=%r is below %s; using %s", name, raw, minimum, default)
        return default
    return value


_CAPTURE_MODES = {
    sc.CONTENT_NO_CONTENT: sc.CONTENT_NO_CONTENT,
    sc.CONTENT_SPAN_ONLY: sc.CONTENT_SPAN_ONLY,
    sc.CONTENT_EVENT_ONLY: sc.CONTENT_EVENT_ONLY,
    sc.CONTENT_SPAN_AND_EVENT: sc.CONTENT_SPAN_AND_EVENT,
    **{value.upper(): sc.CONTENT_SPAN_ONLY for value in _TRUE},
    **{value.upper(): sc.CONTENT_NO_CONTENT for value in _FALSE},
}


def capture_mode() -> str:
    """``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``: util-genai's values
    (``NO_CONTENT``, ``SPAN_ONLY``, ``EVENT_ONLY``, ``SPAN_AND_EVENT``, any case), so
    one setting serves us and the official packages; ``true`` means ``SPAN_ONLY`` (what
    it always meant here), ``false`` or unset ``NO_CONTENT``."""
    raw = os.environ.get(CAPTURE_CONTENT_ENV)
    if raw is None:
        return sc.CONTENT_NO_CONTENT
    found = _CAPTURE_MODES.get(raw.strip().upper())
    if found is None:
        logger.warning(
            "otel-llm-usage: %s=%r is not one of %s or true/false; using NO_CONTENT",
            CAPTURE_CONTENT_ENV,
            raw,
            ", ".join(sorted(set(_CAPTURE_MODES.values()))),
        )
        return sc.CONTENT_NO_CONTENT
    return found


def capture_content() -> bool:
    """Whether message content is captured at all (on the span, in events or both)."""
    return capture_mode() != sc.CONTENT_NO_CONTENT


def content_on_span() -> bool:
    return capture_mode() in (sc.CONTENT_SPAN_ONLY, sc.CONTENT_SPAN_AND_EVENT)


def content_in_events() -> bool:
    return capture_mode() in (sc.CONTENT_EVENT_ONLY, sc.CONTENT_SPAN_AND_EVENT)


def content_max_length() -> int:
    return env_int(CONTENT_MAX_LENGTH_ENV, 8192, minimum=16)


ATTRIBUTE_KEYS_ENV = "OTEL_LLM_USAGE_ATTRIBUTE_KEYS"
ATTRIBUTE_MAX_VALUES_ENV = "OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES"


def env_list(name: str) -> list[str]:
    raw = os.environ.get(name) or ""
    return [item.strip() for item in raw.split(",") if item.strip()]


def attribute_keys() -> list[str]:
    return env_list(ATTRIBUTE_KEYS_ENV)


def attribute_max_values() -> int:
    return env_int(ATTRIBUTE_MAX_VALUES_ENV, 100, minimum=1)


ESTIMATE_ENV = "OTEL_LLM_USAGE_ESTIMATE"


def estimate() -> bool:
    return env_flag(ESTIMATE_ENV)
