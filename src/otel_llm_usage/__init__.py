"""OpenTelemetry spans, token and cost metrics for every LangChain model call."""

from .custom_attributes import usage_attributes
from .instrumentor import LangChainUsageInstrumentor
from .tracking import ModelUsage, UsageTracker, track_usage
from .version import __version__

__all__ = [
    "LangChainUsageInstrumentor",
    "ModelUsage",
    "UsageTracker",
    "__version__",
    "track_usage",
    "usage_attributes",
]
