"""OpenTelemetry spans, token and cost metrics for every LangChain model call."""

from .custom_attributes import usage_attributes
from .instrumentor import LangChainUsageInstrumentor, track_usage
from .tracking import ModelUsage, UsageTracker
from .version import __version__

__all__ = [
    "LangChainUsageInstrumentor",
    "ModelUsage",
    "UsageTracker",
    "__version__",
    "track_usage",
    "usage_attributes",
]
