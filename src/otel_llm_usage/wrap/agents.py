"""``invoke_agent`` spans for LangChain 1.x agents and ``execute_tool`` spans for tools.

An agent run sums the usage and cost of every model call under it (nested agents: each
level its own sum) and puts the totals on its span, so a trace view answers "what did
this run cost" without a query. Agents are:

* the LangGraph graphs made by ``langchain.agents.create_agent``, which marks them in
  their config metadata (``ls_integration="langchain_create_agent"``,
  ``lc_agent_name``): their ``stream``/``astream`` (which ``invoke``/``ainvoke`` drive)
  get the span;
* the classic ``AgentExecutor`` (langchain-classic), where installed: its ``_call``/
  ``_acall`` (``invoke``) and ``stream``/``astream``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract.outcome import error_type
from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.internal import internal_error
from otel_llm_usage.keys import AGENT_RUNS_KEY
from otel_llm_usage.record.recorder import Telemetry
from otel_llm_usage.wrap.wrappers import (
    Wrapper,
    current_context,
    run_async_call,
    run_call,
    traced_aiter,
    traced_iter,
)

_CREATE_AGENT_MARK = "langchain_create_agent"


def agent_name(graph: Any) -> str | None:
    """The agent's name if ``graph`` was made by ``create_agent``, else None."""
    config = getattr(graph, "config", None)
    metadata = config.get("metadata") if isinstance(config, Mapping) else None
    if not isinstance(metadata, Mapping) or metadata.get("ls_integration") != _CREATE_AGENT_MARK:
        return None
    name = metadata.get("lc_agent_name")
    return name if isinstance(name, str) and name else "agent"


class AgentRun:
    """One ``invoke_agent`` span and the sums of the model calls made under it."""

    def __init__(
        self,
        tracer: Tracer,
        graph: Any,
        name: str,
        parent: otel_context.Context,
        custom: tuple[tuple[str, Any], ...] = (),
    ):
        self.graph = graph
        self.span = tracer.start_span(
            f"{sc.OPERATION_INVOKE_AGENT} {name}",
            parent,
            SpanKind.INTERNAL,
            {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_INVOKE_AGENT,
                sc.GEN_AI_AGENT_NAME: name,
                **dict(custom),
            },
        )
        runs: tuple[AgentRun, ...] = parent.get(AGENT_RUNS_KEY) or ()  # type: ignore[assignment]
        self.context = otel_context.set_value(
            AGENT_RUNS_KEY, (*runs, self), trace.set_span_in_context(self.span, parent)
        )
        self.usage = Usage()
        self.cost = 0.0
        self.calls = 0
        self.calls_without_usage = 0
        self.cache_hits = 0
        self.unpriced = 0
        self.providers: set[str] = set()
        self._lock = threading.Lock()
        self._done = False

    def add(
        self,
        provider: str,
        usage: Usage | None,
        cost: float | None,
        failed: bool,
        cache_hit: bool = False,
    ) -> None:
        """One model call under this run; a cache hit is a known zero, not missing usage."""
        with self._lock:
            self.calls += 1
            self.providers.add(provider)
            if cache_hit:
                self.cache_hits += 1
                return
            if usage is None:
                if not failed:
                    self.calls_without_usage += 1
                return
            self.usage = self.usage + usage
            if cost is None:
                self.unpriced += 1
            else:
                self.cost += cost

    def finish(self, result: Any) -> None:
        self._end(None)

    def finish_stream(self, closed_early: bool = False) -> None:
        self._end(None)

    def fail(self, exc: BaseException) -> None:
        self._end(exc)

    def _end(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        self.context = None  # type: ignore[assignment]  # it holds this run: free the pair
        try:
            span = self.span
            if span.is_recording():
                with self._lock:
                    usage, cost = self.usage, self.cost
                    attributes: dict[str, Any] = {sc.LLM_USAGE_MODEL_CALLS: self.calls}
                    if len(self.providers) == 1:
                        attributes[sc.GEN_AI_PROVIDER_NAME] = next(iter(self.providers))
                    if self.calls - self.calls_without_usage > 0:
                        # our names: a backend summing gen_ai.usage.* over spans
                        # would count an agent's calls twice
                        attributes[sc.LLM_USAGE_AGENT_INPUT_TOKENS] = usage.input
                        attributes[sc.LLM_USAGE_AGENT_OUTPUT_TOKENS] = usage.output
                        attributes[sc.LLM_USAGE_AGENT_CACHE_READ_INPUT_TOKENS] = usage.cache_read
                        attributes[sc.LLM_USAGE_AGENT_CACHE_CREATION_INPUT_TOKENS] = (
                            usage.cache_creation
                        )
                        attributes[sc.LLM_USAGE_AGENT_REASONING_OUTPUT_TOKENS] = usage.reasoning
                        attributes[sc.LLM_USAGE_AGENT_COST_AMOUNT] = cost
                        attributes[sc.LLM_USAGE_AGENT_COST_CURRENCY] = sc.COST_CURRENCY_USD
                    if self.unpriced:
                        attributes[sc.LLM_USAGE_PRICE_MISSING] = True
                    if self.calls_without_usage:
                        attributes[sc.LLM_USAGE_CALLS_WITHOUT_USAGE] = self.calls_without_usage
                    if self.cache_hits:
                        attributes[sc.LLM_USAGE_CACHE_HITS] = self.cache_hits
                if exc is not None:
                    attributes[sc.ERROR_TYPE] = error_type(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)[:1024] or None))
                span.set_attributes(attributes)
            span.end()
        except Exception:
            internal_error("failed to end an agent span")


class ToolRun:
    """One ``execute_tool`` span."""

    def __init__(
        self,
        tracer: Tracer,
        tool: Any,
        parent: otel_context.Context,
        call_id: Any,
        arguments: Any,
        capture: bool,
        max_length: int,
    ):
        name = str(getattr(tool, "name", None) or type(tool).__name__)
        attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: name,
            sc.GEN_AI_TOOL_TYPE: sc.TOOL_TYPE_FUNCTION,
        }
        description = getattr(tool, "description", None)
        if isinstance(description, str) and description:
            attributes[sc.GEN_AI_TOOL_DESCRIPTION] = description[:max_length]
        if isinstance(call_id, str) and call_id:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = call_id
        if capture:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = _as_text(arguments, max_length)
        self.capture = capture
        self.max_length = max_length
        self.span = tracer.start_span(
            f"{sc.OPERATION_EXECUTE_TOOL} {name}", parent, SpanKind.INTERNAL, attributes
        )
        self.context = trace.set_span_in_context(self.span, parent)
        self._done = False

    def finish(self, result: Any) -> None:
        if self._done:
            return
        self._done = True
        try:
            if self.capture and self.span.is_recording():
                content = getattr(result, "content", result)  # a ToolMessage or the value
                self.span.set_attribute(
                    sc.GEN_AI_TOOL_CALL_RESULT, _as_text(content, self.max_length)
                )
            self.span.end()
        except Exception:
            internal_error("failed to end a tool span")

    def finish_stream(self, closed_early: bool = False) -> None:
        self.finish(None)

    def fail(self, exc: BaseException) -> None:
        if self._done:
            return
        self._done = True
        try:
            self.span.set_attribute(sc.ERROR_TYPE, error_type(exc))
            self.span.set_status(Status(StatusCode.ERROR, str(exc)[:1024] or None))
            self.span.end()
        except Exception:
            internal_error("failed to end a tool span")


def _as_text(value: Any, max_length: int) -> str:
    try:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    except Exception:
        text = repr(value)
    return text[:max_length]


# -- wrappers -------------------------------------------------------------------------------


def _agent_begin(
    telemetry: Telemetry, graph: Any, name: str
) -> Callable[[otel_context.Context], Any]:
    def begin(parent: otel_context.Context) -> AgentRun | None:
        if parent.get(_SUPPRESS_INSTRUMENTATION_KEY) or not telemetry.listening():
            return None
        runs: tuple[AgentRun, ...] = parent.get(AGENT_RUNS_KEY) or ()  # type: ignore[assignment]
        if runs and runs[-1].graph is graph:
            return None  # the same run re-entering its own stream
        try:
            return AgentRun(telemetry.tracer, graph, name, parent, telemetry.custom_attributes())
        except Exception:
            internal_error("could not start an agent span")
            return None

    return begin


def _agent_stream_factory(traced: Callable[..., Any]) -> Callable[[Telemetry, str], Wrapper]:
    """``Pregel.stream``/``astream`` wrappers; ``traced``: ``traced_iter`` or ``traced_aiter``."""

    def make(telemetry: Telemetry, operation: str) -> Wrapper:
        def traced_agent_stream(
            wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
        ) -> Any:
            inner = wrapped(*args, **kwargs)
            name = agent_name(instance)
            if name is None:
                return inner
            return traced(inner, _agent_begin(telemetry, instance, name), None)

        return traced_agent_stream

    return make


make_agent_stream = _agent_stream_factory(traced_iter)
make_async_agent_stream = _agent_stream_factory(traced_aiter)


def _tool_run(telemetry: Telemetry, tool: Any, args: Any, kwargs: Any) -> ToolRun | None:
    parent = current_context()
    if parent.get(_SUPPRESS_INSTRUMENTATION_KEY) or not telemetry.listening():
        return None
    try:
        arguments = args[0] if args else kwargs.get("tool_input")
        return ToolRun(
            telemetry.tracer,
            tool,
            parent,
            kwargs.get("tool_call_id"),
            arguments,
            telemetry.capture_content,
            telemetry.content_max_length,
        )
    except Exception:
        internal_error("could not start a tool span")
        return None


def make_tool_call(telemetry: Telemetry, operation: str) -> Wrapper:
    def traced_tool(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        recorder = _tool_run(telemetry, instance, args, kwargs)
        if recorder is None:
            return wrapped(*args, **kwargs)
        return run_call(recorder, wrapped, args, kwargs)

    return traced_tool


def make_async_tool_call(telemetry: Telemetry, operation: str) -> Wrapper:
    async def traced_atool(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        recorder = _tool_run(telemetry, instance, args, kwargs)
        if recorder is None:
            return await wrapped(*args, **kwargs)
        return await run_async_call(recorder, wrapped, args, kwargs)

    return traced_atool


# -- the classic AgentExecutor ------------------------------------------------------------


def _executor_name(executor: Any) -> str:
    name = getattr(executor, "name", None)
    return name if isinstance(name, str) and name else "AgentExecutor"


def make_executor_call(telemetry: Telemetry, operation: str) -> Wrapper:
    def traced_executor(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        recorder = _agent_begin(telemetry, instance, _executor_name(instance))(current_context())
        if recorder is None:
            return wrapped(*args, **kwargs)
        return run_call(recorder, wrapped, args, kwargs)

    return traced_executor


def make_async_executor_call(telemetry: Telemetry, operation: str) -> Wrapper:
    async def traced_aexecutor(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        recorder = _agent_begin(telemetry, instance, _executor_name(instance))(current_context())
        if recorder is None:
            return await wrapped(*args, **kwargs)
        return await run_async_call(recorder, wrapped, args, kwargs)

    return traced_aexecutor


def make_executor_stream(telemetry: Telemetry, operation: str) -> Wrapper:
    def traced_executor_stream(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        begin = _agent_begin(telemetry, instance, _executor_name(instance))
        return traced_iter(wrapped(*args, **kwargs), begin, None)

    return traced_executor_stream


def make_async_executor_stream(telemetry: Telemetry, operation: str) -> Wrapper:
    def traced_executor_astream(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        begin = _agent_begin(telemetry, instance, _executor_name(instance))
        return traced_aiter(wrapped(*args, **kwargs), begin, None)

    return traced_executor_astream
