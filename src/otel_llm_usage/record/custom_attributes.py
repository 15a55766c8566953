"""``usage_attributes()``: the user's own attributes (tenant, feature, …) on the spans and
metrics of the model calls made inside a block.

Metric cardinality stays bounded: only keys on the allow-list given at ``instrument()``
(``usage_attribute_keys=`` or ``OTEL_LLM_USAGE_ATTRIBUTE_KEYS``) are used, and each key
keeps at most N distinct values (``usage_attribute_max_values=`` or
``OTEL_LLM_USAGE_ATTRIBUTE_MAX_VALUES``, default 100); later values become ``_other``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

OTHER = "_other"
Pairs = tuple[tuple[str, Any], ...]

_current: ContextVar[Pairs] = ContextVar("otel_llm_usage_attributes", default=())


# The pairs of the innermost block (a C call: every model call asks).
current_pairs: Callable[[], Pairs] = _current.get


@contextmanager
def usage_attributes(
    attributes: Mapping[str, str | int | float | bool] | None = None, /, **more: Any
) -> Iterator[None]:
    """Add attributes to the model calls inside the block; inner blocks add to outer ones.

    ``with usage_attributes(tenant="acme", feature="search"): ...`` or, for names that
    are not Python identifiers, ``usage_attributes({"app.tenant": "acme"})``.
    """
    merged = dict(_current.get())
    merged.update(attributes or {})
    merged.update(more)
    token = _current.set(tuple(sorted(merged.items())))
    try:
        yield
    finally:
        _current.reset(token)


class AttributePolicy:
    """The allow-list and the per-key cap on distinct values."""

    def __init__(self, keys: Iterable[str] = (), max_values: int = 100) -> None:
        self.keys = frozenset(keys)
        self.max_values = max_values
        self._values: dict[str, set[Any]] = {key: set() for key in self.keys}
        self._memo: dict[Pairs, Pairs] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def apply(self, pairs: Pairs) -> Pairs:
        """The pairs that may be used, with over-the-cap values folded into ``_other``."""
        if not pairs:
            return ()
        found = self._memo.get(pairs)
        if found is not None:
            return found
        with self._lock:
            allowed = []
            for key, value in pairs:
                if key not in self.keys:
                    if key not in self._warned and len(self._warned) < 100:
                        self._warned.add(key)
                        logger.warning(
                            "otel-llm-usage: usage attribute %r is not in the allow-list "
                            "(OTEL_LLM_USAGE_ATTRIBUTE_KEYS); ignored",
                            key,
                        )
                    continue
                if not isinstance(value, (str, bool, int, float)):
                    value = str(value)
                seen = self._values[key]
                if value not in seen:
                    if len(seen) >= self.max_values:
                        value = OTHER
                    else:
                        seen.add(value)
                allowed.append((key, value))
            result = tuple(allowed)
            if len(self._memo) < 10_000:
                self._memo[pairs] = result
            return result
