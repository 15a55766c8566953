"""OpenTelemetry spans, token and cost metrics for every LangChain model call."""

from .instrumentor import LangChainUsageInstrumentor
from .tracking import ModelUsage, UsageTracker, track_usage
from .version import __version__

__all__ = [
    "LangChainUsageInstrumentor",
    "ModelUsage",
    "UsageTracker",
    "__version__",
    "track_usage",
]
