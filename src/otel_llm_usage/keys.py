"""The OpenTelemetry context keys this package sets."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

# The recorder of the running model call, so a LangChain method that calls another one
# for the same model makes no second span (and a model calling another model is seen).
ACTIVE_CALL_KEY = otel_context.create_key("otel_llm_usage.active_call")
# The agent runs (outermost first) a model call happens under; each one sums the usage
# and cost of the calls below it.
AGENT_RUNS_KEY = otel_context.create_key("otel_llm_usage.agent_runs")


def _span_key() -> str | None:
    """The key under which the API keeps the current span (it has exactly one)."""
    found = trace.set_span_in_context(trace.INVALID_SPAN, Context())
    return next(iter(found)) if len(found) == 1 else None


_SPAN_KEY = _span_key()


def call_context(parent: Context, span: trace.Span, recorder: Any) -> Context:
    """``parent`` with ``span`` current and ``recorder`` the active call, in one copy of
    the context (the API's ``set_span_in_context`` then ``set_value`` make two)."""
    if _SPAN_KEY is None:
        return otel_context.set_value(
            ACTIVE_CALL_KEY, recorder, trace.set_span_in_context(span, parent)
        )
    return Context({**parent, _SPAN_KEY: span, ACTIVE_CALL_KEY: recorder})
