"""``LangChainUsageInstrumentor``: what is patched, and how it is undone."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from . import semconv as sc
from .package import _instruments
from .pricing import Pricing
from .recorder import Telemetry, instruments_for
from .version import __version__
from .wrappers import (
    Wrapper,
    make_async_call,
    make_async_events,
    make_async_stream,
    make_call,
    make_events,
    make_stream,
)

logger = logging.getLogger(__name__)

_CHAT = "langchain_core.language_models.chat_models"
_LLMS = "langchain_core.language_models.llms"

# (module, class, method, wrapper factory, operation). Walked to wrap and to unwrap.
# Methods missing from the installed langchain-core (the v3 event path is new) are
# skipped.
PATCHES: tuple[tuple[str, str, str, Callable[[Telemetry, str], Wrapper], str], ...] = (
    (_CHAT, "BaseChatModel", "_generate_with_cache", make_call, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel", "_agenerate_with_cache", make_async_call, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel", "stream", make_stream, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel", "astream", make_async_stream, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel", "_iter_v2_events", make_events, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel", "_aiter_v2_events", make_async_events, sc.OPERATION_CHAT),
    (_LLMS, "BaseLLM", "_generate_helper", make_call, sc.OPERATION_TEXT_COMPLETION),
    (_LLMS, "BaseLLM", "_agenerate_helper", make_async_call, sc.OPERATION_TEXT_COMPLETION),
    (_LLMS, "BaseLLM", "stream", make_stream, sc.OPERATION_TEXT_COMPLETION),
    (_LLMS, "BaseLLM", "astream", make_async_stream, sc.OPERATION_TEXT_COMPLETION),
)


class LangChainUsageInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans, token and cost metrics for every LangChain model call.

    ``instrument(tracer_provider=..., meter_provider=..., prices=...)``; both providers
    default to the global ones. ``uninstrument()`` restores every patched method.
    """

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[type, str]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            "otel_llm_usage",
            __version__,
            kwargs.get("tracer_provider"),
            schema_url="https://opentelemetry.io/schemas/1.41.0",
        )
        meter_provider = kwargs.get("meter_provider") or metrics.get_meter_provider()
        meter = metrics.get_meter(
            "otel_llm_usage",
            __version__,
            meter_provider,
            schema_url="https://opentelemetry.io/schemas/1.41.0",
        )
        telemetry = Telemetry(tracer, instruments_for(meter_provider, meter), _pricing(kwargs))
        for module_name, class_name, method, factory, operation in PATCHES:
            owner = getattr(importlib.import_module(module_name), class_name)
            if method not in vars(owner):
                logger.debug("otel-llm-usage: %s.%s not found; not patched", class_name, method)
                continue
            wrap_function_wrapper(owner, method, factory(telemetry, operation))
            self._patched.append((owner, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._patched:
            owner, method = self._patched.pop()
            unwrap(owner, method)


def _pricing(kwargs: dict[str, Any]) -> Pricing | None:
    try:
        return Pricing.from_settings(kwargs.get("prices"))
    except Exception:
        logger.exception("otel-llm-usage: prices unavailable; calls get no cost")
        return None
