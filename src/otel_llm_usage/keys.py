"""The OpenTelemetry context keys this package sets."""

from __future__ import annotations

from opentelemetry import context as otel_context

# The recorder of the running model call, so a LangChain method that calls another one
# for the same model makes no second span (and a model calling another model is seen).
ACTIVE_CALL_KEY = otel_context.create_key("otel_llm_usage.active_call")
# The agent runs (outermost first) a model call happens under; each one sums the usage
# and cost of the calls below it.
AGENT_RUNS_KEY = otel_context.create_key("otel_llm_usage.agent_runs")
