"""OpenTelemetry spans, token and cost metrics for every LangChain model call."""

from otel_llm_usage.patch.instrumentor import LangChainUsageInstrumentor, track_usage
from otel_llm_usage.record.custom_attributes import usage_attributes
from otel_llm_usage.record.tracking import ModelUsage, UsageTracker
from otel_llm_usage.version import __version__

__all__ = [
    "LangChainUsageInstrumentor",
    "ModelUsage",
    "UsageTracker",
    "__version__",
    "track_usage",
    "usage_attributes",
]
