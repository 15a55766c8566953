"""Every setting, read from the environment once, at ``instrument()``.

:meth:`Settings.from_env` reads every ``OTEL_LLM_USAGE_*`` variable and
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``. A malformed value is logged with
the variable's name and replaced by its default: the application runs on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from otel_llm_usage import semconv as sc

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_MAX_LENGTH_ENV = "OTEL_LLM_USAGE_CONTENT_MAX_LENGTH"
ATTRIBUTE_KEYS_ENV = "OTEL_LLM_USAGE_ATTRIBUTE_KEYS"
ATTRIBUTE_MAX_VALUES_ENV = "OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES"
ESTIMATE_ENV = "OTEL_LLM_USAGE_ESTIMATE"
PRICES_ENV = "OTEL_LLM_USAGE_PRICES"
REQUEST_STREAM_USAGE_ENV = "OTEL_LLM_USAGE_REQUEST_STREAM_USAGE"

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})

# util-genai's values, so one setting serves us and the official packages; true/false
# as this variable always meant here (SPAN_ONLY / NO_CONTENT).
_CAPTURE_MODES = {
    sc.CONTENT_NO_CONTENT: sc.CONTENT_NO_CONTENT,
    sc.CONTENT_SPAN_ONLY: sc.CONTENT_SPAN_ONLY,
    sc.CONTENT_EVENT_ONLY: sc.CONTENT_EVENT_ONLY,
    sc.CONTENT_SPAN_AND_EVENT: sc.CONTENT_SPAN_AND_EVENT,
    **{value.upper(): sc.CONTENT_SPAN_ONLY for value in _TRUE},
    **{value.upper(): sc.CONTENT_NO_CONTENT for value in _FALSE},
}


@dataclass(frozen=True)
class Settings:
    """The instrumentation's settings (defaults: nothing set)."""

    capture_mode: str = sc.CONTENT_NO_CONTENT  # CAPTURE_CONTENT_ENV
    content_max_length: int = 8192  # characters per content attribute
    attribute_keys: tuple[str, ...] = ()  # usage_attributes() keys put on telemetry
    attribute_max_values: int = 100  # distinct values per key before "_other"
    estimate: bool = False  # estimate usage a provider did not report
    prices: str | None = None  # the user's price file
    request_stream_usage: bool = False  # ask OpenAI-compatible streams for usage
    stream_usage_hosts: frozenset[str] | None = None  # ... of these hosts only (None: all)

    @property
    def capture_content(self) -> bool:
        """Whether message content is captured at all (on the span, in events or both)."""
        return self.capture_mode != sc.CONTENT_NO_CONTENT

    @property
    def content_on_span(self) -> bool:
        return self.capture_mode in (sc.CONTENT_SPAN_ONLY, sc.CONTENT_SPAN_AND_EVENT)

    @property
    def content_in_events(self) -> bool:
        return self.capture_mode in (sc.CONTENT_EVENT_ONLY, sc.CONTENT_SPAN_AND_EVENT)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        enabled, hosts = _stream_usage(env.get(REQUEST_STREAM_USAGE_ENV))
        return cls(
            capture_mode=_capture_mode(env.get(CAPTURE_CONTENT_ENV)),
            content_max_length=_integer(env, CONTENT_MAX_LENGTH_ENV, 8192, minimum=16),
            attribute_keys=_items(env.get(ATTRIBUTE_KEYS_ENV)),
            attribute_max_values=_integer(env, ATTRIBUTE_MAX_VALUES_ENV, 100, minimum=1),
            estimate=_flag(env, ESTIMATE_ENV),
            prices=env.get(PRICES_ENV) or None,
            request_stream_usage=enabled,
            stream_usage_hosts=hosts,
        )


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    logger.warning("otel-llm-usage: %s=%r is not true/false; using %s", name, raw, default)
    return default


def _integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
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


def _items(raw: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def _capture_mode(raw: str | None) -> str:
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


def _stream_usage(raw: str | None) -> tuple[bool, frozenset[str] | None]:
    """``true`` (or ``all``): every host; a comma list: those hosts; else off."""
    value = (raw or "").strip()
    if value.lower() in _FALSE:
        return False, None
    if value.lower() in _TRUE | {"all"}:
        return True, None
    return True, frozenset(host.lower() for host in _items(value))
