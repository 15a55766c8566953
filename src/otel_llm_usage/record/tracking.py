"""``track_usage()``'s tracker: totals of tokens, requests and cost inside a ``with`` block.

The provider-neutral successor of LangChain's ``get_openai_callback()``. Trackers live in
a ``ContextVar``, so asyncio tasks and LangChain's own thread pools (``batch``), which copy
the context, count into the blocks they were started in. A plain ``threading.Thread``
starts with an empty context: its calls are not counted unless the thread runs its work
through ``contextvars.copy_context().run``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from otel_llm_usage.extract.usage import Usage

_active: ContextVar[tuple[UsageTracker, ...]] = ContextVar("otel_llm_usage_trackers", default=())

# The trackers counting in this context (a C call: every model call asks).
active_trackers: Callable[[], tuple[UsageTracker, ...]] = _active.get


@dataclass
class ModelUsage:
    """Totals of one (provider, model) inside a tracker."""

    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    total_cost: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class UsageTracker:
    """What :func:`track_usage` yields. Read the fields after (or during) the block.

    A failed call counts in ``failed_requests`` (and its tokens, if a stream reported
    some before failing); a call whose provider reported no usage in
    ``calls_without_usage``; one whose reported counts cannot be real (negative, not
    integers, absurdly large) in ``calls_with_invalid_usage``, with no tokens; one with
    usage but no known price in ``unpriced_calls``. A
    LangChain LLM-cache hit makes no provider request: it counts in ``cache_hits`` only,
    never in the tokens, the cost or ``successful_requests``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    cache_hits: int = 0
    total_cost: float = 0.0
    calls_without_usage: int = 0
    calls_with_invalid_usage: int = 0
    unpriced_calls: int = 0
    # Estimates for calls whose provider reported nothing (OTEL_LLM_USAGE_ESTIMATE=true):
    # kept apart, never added to the reported totals above.
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0
    estimated_cost: float = 0.0
    estimated_calls: int = 0
    by_model: dict[tuple[str, str], ModelUsage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    # get_openai_callback() names, so code written for it keeps working
    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens

    @property
    def prompt_tokens_cached(self) -> int:
        return self.cache_read_tokens

    def add(
        self,
        provider: str,
        model: str,
        usage: Usage | None,
        cost: float | None,
        failed: bool,
        cache_hit: bool,
        invalid_usage: bool = False,
    ) -> None:
        with self._lock:
            if cache_hit:
                self.cache_hits += 1
                return
            key = (provider, model)
            per_model = self.by_model.get(key)
            if per_model is None:
                per_model = self.by_model[key] = ModelUsage(provider, model)
            if failed:
                self.failed_requests += 1
                per_model.failed_requests += 1
            else:
                self.successful_requests += 1
                per_model.successful_requests += 1
            if usage is None:
                if invalid_usage:
                    self.calls_with_invalid_usage += 1
                elif not failed:
                    self.calls_without_usage += 1
                return
            self.input_tokens += usage.input
            self.output_tokens += usage.output
            self.cache_read_tokens += usage.cache_read
            self.cache_creation_tokens += usage.cache_creation
            self.reasoning_tokens += usage.reasoning
            per_model.input_tokens += usage.input
            per_model.output_tokens += usage.output
            per_model.cache_read_tokens += usage.cache_read
            per_model.cache_creation_tokens += usage.cache_creation
            per_model.reasoning_tokens += usage.reasoning
            if cost is None:
                self.unpriced_calls += 1
            else:
                self.total_cost += cost
                per_model.total_cost += cost

    def add_estimated(self, usage: Usage | None, cost: float | None) -> None:
        if usage is None:
            return
        with self._lock:
            self.estimated_calls += 1
            self.estimated_input_tokens += usage.input
            self.estimated_output_tokens += usage.output
            if cost is not None:
                self.estimated_cost += cost

    def __str__(self) -> str:
        return (
            f"Tokens Used: {self.total_tokens}\n"
            f"\tPrompt Tokens: {self.input_tokens}\n"
            f"\t\tPrompt Tokens Cached: {self.cache_read_tokens}\n"
            f"\t\tPrompt Tokens Cache Write: {self.cache_creation_tokens}\n"
            f"\tCompletion Tokens: {self.output_tokens}\n"
            f"\t\tReasoning Tokens: {self.reasoning_tokens}\n"
            f"Successful Requests: {self.successful_requests}\n"
            f"Total Cost (USD): ${self.total_cost}"
        )


@contextmanager
def counting() -> Iterator[UsageTracker]:
    """The block of :func:`otel_llm_usage.track_usage` (which also makes sure LangChain is
    instrumented): a new tracker, active in this context until the block ends."""
    tracker = UsageTracker()
    token = _active.set((*_active.get(), tracker))
    try:
        yield tracker
    finally:
        try:
            _active.reset(token)
        except ValueError:
            # Left in another context than it was entered in (an async generator
            # finalised by another task): take this tracker out of that one.
            _active.set(tuple(t for t in _active.get() if t is not tracker))
