"""``LangChainUsageInstrumentor``: what is patched, and how it is undone."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider
from wrapt import wrap_function_wrapper

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract.content import DetailsEvents
from otel_llm_usage.internal import internal_error
from otel_llm_usage.package import _instruments
from otel_llm_usage.patch import interop
from otel_llm_usage.record.custom_attributes import AttributePolicy
from otel_llm_usage.record.metrics import instruments_for
from otel_llm_usage.record.pricing import Pricing
from otel_llm_usage.record.recorder import Telemetry
from otel_llm_usage.record.tracking import UsageTracker, counting
from otel_llm_usage.settings import Settings
from otel_llm_usage.version import __version__
from otel_llm_usage.wrap.agents import (
    make_agent_stream,
    make_async_agent_stream,
    make_async_executor_call,
    make_async_executor_stream,
    make_async_tool_call,
    make_executor_call,
    make_executor_stream,
    make_tool_call,
)
from otel_llm_usage.wrap.embeddings import EmbeddingsPatcher
from otel_llm_usage.wrap.stream_usage import StreamUsagePolicy
from otel_llm_usage.wrap.wrappers import (
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
_TOOLS = "langchain_core.tools.base"
_PREGEL = "langgraph.pregel.main"
_EXECUTOR = "langchain_classic.agents.agent"

# (module, attribute path, wrapper factory, operation). Walked to wrap, then the record
# of what was wrapped is walked to unwrap. Attributes missing from the installed
# versions (the v3 event path is new) and modules not installed (langgraph,
# langchain-classic) are skipped.
PATCHES: tuple[tuple[str, str, Callable[[Telemetry, str], Wrapper], str], ...] = (
    (_CHAT, "BaseChatModel._generate_with_cache", make_call, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel._agenerate_with_cache", make_async_call, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel.stream", make_stream, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel.astream", make_async_stream, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel._iter_v2_events", make_events, sc.OPERATION_CHAT),
    (_CHAT, "BaseChatModel._aiter_v2_events", make_async_events, sc.OPERATION_CHAT),
    (_LLMS, "BaseLLM._generate_helper", make_call, sc.OPERATION_TEXT_COMPLETION),
    (_LLMS, "BaseLLM._agenerate_helper", make_async_call, sc.OPERATION_TEXT_COMPLETION),
    (_LLMS, "BaseLLM.stream", make_stream, sc.OPERATION_TEXT_COMPLETION),
    (_LLMS, "BaseLLM.astream", make_async_stream, sc.OPERATION_TEXT_COMPLETION),
    (_TOOLS, "BaseTool.run", make_tool_call, sc.OPERATION_EXECUTE_TOOL),
    (_TOOLS, "BaseTool.arun", make_async_tool_call, sc.OPERATION_EXECUTE_TOOL),
    (_PREGEL, "Pregel.stream", make_agent_stream, sc.OPERATION_INVOKE_AGENT),
    (_PREGEL, "Pregel.astream", make_async_agent_stream, sc.OPERATION_INVOKE_AGENT),
    (_EXECUTOR, "AgentExecutor._call", make_executor_call, sc.OPERATION_INVOKE_AGENT),
    (_EXECUTOR, "AgentExecutor._acall", make_async_executor_call, sc.OPERATION_INVOKE_AGENT),
    (_EXECUTOR, "AgentExecutor.stream", make_executor_stream, sc.OPERATION_INVOKE_AGENT),
    (_EXECUTOR, "AgentExecutor.astream", make_async_executor_stream, sc.OPERATION_INVOKE_AGENT),
)


def _owner(module_name: str, path: str) -> tuple[Any, str] | None:
    """The object holding the attribute, and its name; None if not installed/found.
    Any other error of the import (a package broken against the installed LangChain)
    propagates, to be logged."""
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    *parents, attribute = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return None
    if isinstance(owner, type):
        return (owner, attribute) if attribute in vars(owner) else None
    return (owner, attribute) if hasattr(owner, attribute) else None


class LangChainUsageInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Spans, token and cost metrics for every LangChain model call, agent and tool.

    ``instrument(tracer_provider=..., meter_provider=..., prices=...,
    usage_attribute_keys=..., usage_attribute_max_values=...)``: both providers default
    to the global ones; ``prices`` is a price-file path or mapping (see ``pricing.py``);
    the ``usage_attribute_*`` options bound ``usage_attributes()`` (see
    ``custom_attributes.py``). ``uninstrument()`` restores every patched attribute.
    """

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[Any, str]] = []
            self._implicit = False  # instrumented by track_usage(), not by the application

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def instrument(self, **kwargs: Any) -> Any:
        """As ``BaseInstrumentor.instrument``, except that an application's own call
        replaces an instrumentation that ``track_usage()`` made on its own (with the
        global providers): the application's providers and options win."""
        if self._implicit and self.is_instrumented_by_opentelemetry:
            self.uninstrument()
        self._implicit = False
        return super().instrument(**kwargs)

    def instrument_implicitly(self) -> None:
        """Instrument with the global providers unless instrumented already (for
        ``track_usage()``); a later ``instrument()`` call replaces it."""
        if not self.is_instrumented_by_opentelemetry:
            super().instrument()
            self._implicit = self.is_instrumented_by_opentelemetry

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            "otel_llm_usage",
            __version__,
            kwargs.get("tracer_provider"),
            schema_url=_SCHEMA_URL,
        )
        meter_provider = kwargs.get("meter_provider") or metrics.get_meter_provider()
        meter = metrics.get_meter("otel_llm_usage", __version__, meter_provider, _SCHEMA_URL)
        settings = Settings.from_env()
        telemetry = Telemetry(
            tracer,
            instruments_for(meter_provider, meter),
            _pricing(kwargs.get("prices") or settings.prices),
            capture_content=settings.capture_content,
            content_max_length=settings.content_max_length,
            content_on_span=settings.content_on_span,
            content_events=_content_events(settings, kwargs.get("logger_provider")),
            attribute_policy=AttributePolicy(
                kwargs.get("usage_attribute_keys") or list(settings.attribute_keys),
                kwargs.get("usage_attribute_max_values") or settings.attribute_max_values,
            ),
            estimate=settings.estimate,
            stream_usage=StreamUsagePolicy(
                settings.request_stream_usage, settings.stream_usage_hosts
            ),
            tracing=_sdk_behind(kwargs.get("tracer_provider"), trace.get_tracer_provider),
            metering=_sdk_behind(kwargs.get("meter_provider"), metrics.get_meter_provider),
        )
        for module_name, path, factory, operation in PATCHES:
            try:  # each target alone: one that fails to import or wrap leaves the rest
                found = _owner(module_name, path)
                if found is None:
                    logger.debug("otel-llm-usage: %s.%s not found; not patched", module_name, path)
                    continue
                owner, attribute = found
                wrap_function_wrapper(owner, attribute, factory(telemetry, operation))
            except Exception:
                internal_error(f"could not patch {module_name}.{path}; it is not instrumented")
                continue
            self._patched.append((owner, attribute))
        self._interop: interop.Interop | None = None
        self._embeddings: EmbeddingsPatcher | None = None
        try:
            self._interop = interop.install()
        except Exception:
            internal_error("could not set up the interplay with other GenAI instrumentations")
        try:
            restack = self._interop.stack if self._interop is not None else (lambda: None)
            self._embeddings = EmbeddingsPatcher(telemetry, restack)
            self._embeddings.install()
        except Exception:
            internal_error("could not patch Embeddings; embeddings calls are not instrumented")

    def _uninstrument(self, **kwargs: Any) -> None:
        embeddings: Any = getattr(self, "_embeddings", None)
        if embeddings is not None:
            embeddings.uninstall()
        interop.uninstall(getattr(self, "_interop", None))
        self._embeddings = self._interop = None
        while self._patched:
            owner, attribute = self._patched.pop()
            unwrap(owner, attribute)


_SCHEMA_URL = sc.SCHEMA_URL


def _no_op(provider: Any) -> bool:
    """The API's own no-op providers, and its proxies while no SDK has been set."""
    return isinstance(provider, (NoOpTracerProvider, ProxyTracerProvider, NoOpMeterProvider)) or (
        type(provider).__name__ == "_ProxyMeterProvider"
    )


def _sdk_behind(given: Any, global_provider: Callable[[], Any]) -> bool | Callable[[], bool]:
    """Whether an SDK stands behind a provider. One given to ``instrument()`` is checked
    once; the global one on each call until it is an SDK (an application may set it after
    instrumenting, and the API lets it be set only once)."""
    if given is not None:
        return not _no_op(given)
    found = False

    def behind() -> bool:
        nonlocal found
        if not found:
            found = not _no_op(global_provider())
        return found

    return behind


def _content_events(settings: Settings, logger_provider: Any) -> DetailsEvents | None:
    """The event emitter when content goes to events (``logger_provider=`` or the global
    one; without an SDK logger provider the Logs API drops them)."""
    if not settings.content_in_events:
        return None
    from opentelemetry._logs import get_logger

    return DetailsEvents(get_logger("otel_llm_usage", __version__, logger_provider, _SCHEMA_URL))


def _pricing(prices: Any) -> Pricing | None:
    try:
        return Pricing.from_settings(prices)
    except Exception:
        logger.exception("otel-llm-usage: prices unavailable; calls get no cost")
        return None


@contextmanager
def track_usage() -> Iterator[UsageTracker]:
    """Count tokens, requests and cost of every model call made inside the block.

    Instruments LangChain (with whatever OpenTelemetry providers are set globally, the
    no-op ones if none) when nobody has yet; the application's own ``instrument()`` call,
    earlier or later, wins. Nested blocks each count.
    """
    try:
        LangChainUsageInstrumentor().instrument_implicitly()
    except Exception:  # never into the application: the block runs, counting nothing
        logger.warning("otel-llm-usage: could not instrument LangChain", exc_info=True)
    with counting() as tracker:
        yield tracker
