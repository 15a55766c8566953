"""Failures inside the instrumentation: never raised into the application, never silent.

The first failure of each kind is logged at WARNING with its traceback (after a change in
LangChain or a provider package, spans would otherwise quietly lose their usage); later
ones of the same kind at DEBUG. All go to the ``otel_llm_usage.internal`` logger.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("otel_llm_usage.internal")

_reported: set[str] = set()


def internal_error(what: str) -> None:
    """Log the exception being handled; ``what`` names the kind of failure."""
    if what in _reported:
        logger.debug("otel-llm-usage: %s", what, exc_info=True)
        return
    _reported.add(what)  # a race between threads only logs one more warning
    logger.warning(
        "otel-llm-usage: %s (further failures of this kind are logged at debug level)",
        what,
        exc_info=True,
    )


def forget_reported() -> None:
    """Start afresh: the next failure of each kind warns again (for tests)."""
    _reported.clear()
