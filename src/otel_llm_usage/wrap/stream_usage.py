"""Ask OpenAI-compatible servers for usage on streams (``stream_options.include_usage``).

langchain-openai asks by itself on OpenAI's own endpoint, not on Azure or a custom
``base_url`` (vLLM, DeepSeek, a proxy), because some of those reject the option. With
``OTEL_LLM_USAGE_REQUEST_STREAM_USAGE=true`` (or a comma list of base-URL hosts) we ask
on those streams too, but only where the user set ``stream_usage`` neither way. The
answer adds one usage chunk with empty content; the streamed text is unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from otel_llm_usage.settings import REQUEST_STREAM_USAGE_ENV

logger = logging.getLogger(__name__)


class StreamUsagePolicy:
    """Where to ask for stream usage: nowhere (default), everywhere, or listed hosts."""

    def __init__(self, enabled: bool = False, hosts: frozenset[str] | None = None) -> None:
        self.enabled = enabled
        self.hosts = hosts  # None: every host
        self._warned: set[str] = set()
        self._warned_missing: set[str] = set()
        self._lock = threading.Lock()

    def applies(self, model: Any, kwargs: Mapping[str, Any], host: str | None) -> bool:
        """True when this call should ask: an OpenAI-style chat model, a matching host,
        and no choice of the user's (argument, model field or ``model_kwargs``)."""
        if not self.enabled or not hasattr(model, "_should_stream_usage"):
            return False
        if self.hosts is not None and (host or "").lower() not in self.hosts:
            return False
        if "stream_usage" in kwargs or "stream_options" in kwargs:
            return False
        if getattr(model, "stream_usage", None) is not None:
            return False
        extra = getattr(model, "model_kwargs", None) or {}
        if "stream_usage" in extra or "stream_options" in extra:
            return False
        return not _uses_responses_api(model, {**kwargs, **extra})

    def note_missing(self, model: Any, host: str | None, port: int | None) -> None:
        """A stream of an OpenAI-style model ended without usage, and we did not ask for
        it: one warning per endpoint, naming the switch that would."""
        # stream_usage set either way on the model is the user's own choice
        if not hasattr(model, "_should_stream_usage") or model.stream_usage is not None:
            return
        key = f"{host}:{port}" if port else (host or "?")
        with self._lock:
            if key in self._warned_missing or len(self._warned_missing) > 100:
                return
            self._warned_missing.add(key)
        logger.warning(
            "otel-llm-usage: streams from %s report no token usage: the server was not asked "
            "for it (stream_options.include_usage). Set %s=true (or a list of hosts) to ask, "
            "or pass stream_usage=True to the model",
            key,
            REQUEST_STREAM_USAGE_ENV,
        )

    def note_failure(self, exc: BaseException, host: str | None) -> None:
        """One warning per host when a server answers 400 to the option."""
        status = getattr(exc, "status_code", None) or getattr(
            getattr(exc, "response", None), "status_code", None
        )
        if status != 400:
            return
        key = host or "?"
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        logger.warning(
            "otel-llm-usage: %s asked %s for stream usage (stream_options.include_usage) "
            "and it answered 400; if the server does not support the option, leave the host "
            "out of %s",
            REQUEST_STREAM_USAGE_ENV,
            key,
            REQUEST_STREAM_USAGE_ENV,
        )


def _uses_responses_api(model: Any, payload: Mapping[str, Any]) -> bool:
    """Whether ChatOpenAI routes this call to the Responses API (``use_responses_api``,
    ``reasoning=...``, built-in tools...): it always reports stream usage and its client
    rejects ``stream_usage``. When the check itself fails, we do not ask."""
    route = getattr(model, "_use_responses_api", None)
    if route is None:
        return False
    try:
        return bool(route(dict(payload)))
    except Exception:
        return True
