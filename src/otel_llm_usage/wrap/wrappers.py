"""The wrapper shapes around LangChain's convergence points.

Model calls:

* call / async call: ``_generate_with_cache`` (chat) and ``_generate_helper`` (legacy);
* stream / async stream: ``stream`` / ``astream`` (chat and legacy);
* protocol event stream: ``_iter_v2_events`` / ``_aiter_v2_events`` (``version="v3"``).

The same four shapes serve agents and tools (see ``agents.py``): a wrapper asks a
``begin(parent)`` function for a recorder, or for None to pass the call straight through.

Our span is attached to the context only while LangChain and the provider run (around
the call, or around each ``next()`` of a stream), never across a ``yield`` to user code.
A LangChain method that calls another one for the same model (``stream`` falling back to
``invoke``; ``invoke`` driving the v2 event path) finds our recorder in the context and
makes no second span.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract.providers import model_info
from otel_llm_usage.internal import internal_error
from otel_llm_usage.keys import ACTIVE_CALL_KEY
from otel_llm_usage.record.recorder import CallRecorder, Telemetry


def _context_operations() -> tuple[Callable[..., Any], Callable[..., Any], Callable[[], Any]]:
    """attach/detach/get_current, straight on the runtime's ContextVar when the API uses
    its default runtime: that saves ~0.25 µs per call and per streamed chunk. Any other
    runtime goes through the public API."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if isinstance(runtime, ContextVarsRuntimeContext) and isinstance(variable, ContextVar):
        return variable.set, variable.reset, variable.get
    return otel_context.attach, otel_context.detach, otel_context.get_current


attach, detach, current_context = _context_operations()

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


class Recorder(Protocol):
    """What the wrapper shapes need from a recorder (model call, agent run, tool run)."""

    context: otel_context.Context

    def finish(self, result: Any) -> None: ...

    def finish_stream(self, closed_early: bool = False) -> None: ...

    def fail(self, exc: BaseException) -> None: ...


Begin = Callable[[otel_context.Context], "Recorder | None"]
# Called with each item; it may return the handler of the items after it.
ItemHandler = Callable[[Any], Any]


# -- the four shapes ---------------------------------------------------------------------


def run_call(recorder: Recorder, wrapped: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    token = attach(recorder.context)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        recorder.fail(exc)
        raise
    finally:
        detach(token)
    recorder.finish(result)
    return result


async def run_async_call(
    recorder: Recorder, wrapped: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    token = attach(recorder.context)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        recorder.fail(exc)
        raise
    finally:
        detach(token)
    recorder.finish(result)
    return result


def traced_iter(
    inner: Iterator[Any], begin: Begin, on_item_for: Callable[[Any], ItemHandler] | None
) -> Iterator[Any]:
    """Re-yield ``inner`` with the recorder's context attached around each ``next()``.
    Started lazily: nothing happens until the consumer pulls the first item."""
    recorder = begin(current_context())
    if recorder is None:
        yield from inner
        return
    on_item = on_item_for(recorder) if on_item_for is not None else None
    context = recorder.context
    completed = False
    try:
        while True:
            token = attach(context)
            try:
                item = next(inner)
            except StopIteration:
                completed = True
                break
            except BaseException as exc:
                completed = True
                recorder.fail(exc)
                raise
            finally:
                detach(token)
            if on_item is not None:  # a handler may name the one for the later items
                on_item = on_item(item) or on_item
            yield item
    finally:
        if not completed:  # closed early: break, close(), garbage collection
            token = attach(context)
            try:
                close = getattr(inner, "close", None)
                if close is not None:
                    close()
            finally:
                detach(token)
                recorder.finish_stream(closed_early=True)
    recorder.finish_stream()


async def traced_aiter(
    inner: AsyncIterator[Any], begin: Begin, on_item_for: Callable[[Any], ItemHandler] | None
) -> AsyncIterator[Any]:
    recorder = begin(current_context())
    if recorder is None:
        async for item in inner:
            yield item
        return
    on_item = on_item_for(recorder) if on_item_for is not None else None
    context = recorder.context
    completed = False
    try:
        while True:
            token = attach(context)
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                completed = True
                break
            except BaseException as exc:
                completed = True
                recorder.fail(exc)
                raise
            finally:
                detach(token)
            if on_item is not None:  # a handler may name the one for the later items
                on_item = on_item(item) or on_item
            yield item
    finally:
        if not completed:  # closed early: break + aclose(), cancellation, GC
            token = attach(context)
            try:
                aclose = getattr(inner, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                detach(token)
                recorder.finish_stream(closed_early=True)
    recorder.finish_stream()


# -- model calls -------------------------------------------------------------------------


def _start_model_call(
    telemetry: Telemetry,
    instance: Any,
    operation: str,
    parent: otel_context.Context,
    stop: Any,
    kwargs: dict[str, Any],
    streaming: bool,
    prompt: Callable[[], Any] | None,
    asked_for_usage: bool,
) -> CallRecorder | None:
    """The recorder of a model call, or None to call straight through (instrumentation
    suppressed, or the same call reached through another method)."""
    if parent.get(_SUPPRESS_INSTRUMENTATION_KEY):
        return None
    outer: CallRecorder | None = parent.get(ACTIVE_CALL_KEY)  # type: ignore[assignment]
    if outer is not None:
        if outer.model is instance:  # the same call, through another method
            return None
        # A model whose own code calls another model: the inner call is the provider
        # call and is counted; the outer span only holds it.
        outer.delegated = True
    try:
        info = model_info(instance, operation, stop, kwargs)
        return CallRecorder(telemetry, instance, info, parent, streaming, prompt, asked_for_usage)
    except Exception:
        internal_error("could not start a span")
        return None


def _model_begin(
    telemetry: Telemetry,
    instance: Any,
    operation: str,
    stop: Any,
    kwargs: dict[str, Any],
    prompt: Callable[[], Any],
    asked_for_usage: bool,
) -> Begin:
    """A stream's ``begin``: it runs at the stream's first ``next()``."""

    def begin(parent: otel_context.Context) -> CallRecorder | None:
        if not telemetry.listening():
            return None
        return _start_model_call(
            telemetry, instance, operation, parent, stop, kwargs, True, prompt, asked_for_usage
        )

    return begin


def _nested_in(parent: otel_context.Context, instance: Any) -> CallRecorder | None:
    active = parent.get(ACTIVE_CALL_KEY)
    if active is not None and active.model is instance:  # type: ignore[attr-defined]
        return active  # type: ignore[return-value]
    return None


def _streams_internally(instance: Any, kwargs: dict[str, Any], async_api: bool, chat: bool) -> bool:
    """Whether ``invoke`` will stream from the provider (``streaming=True``, a streaming
    callback such as ``astream_events``'): LangChain's own test on the call's kwargs for
    chat models; a legacy LLM streams by its own ``streaming`` field (LangChain has no
    test for those)."""
    try:
        if chat:
            if (  # none of LangChain's reasons to stream (a plain invoke): ~19k instructions
                not getattr(kwargs.get("run_manager"), "handlers", True)
                and not kwargs.get("stream")
                and instance.__dict__.get("streaming") is not True
            ):
                return False
            return bool(instance._should_stream(async_api=async_api, **kwargs))
        return getattr(instance, "streaming", None) is True
    except Exception:
        return False


def _ask_for_usage(
    telemetry: Telemetry, instance: Any, operation: str, kwargs: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The stream's kwargs, with ``stream_usage=True`` added where the policy says so."""
    policy = telemetry.stream_usage
    if not policy.enabled or operation != sc.OPERATION_CHAT:
        return kwargs, False
    try:
        host = model_info(instance, operation, kwargs.get("stop"), kwargs).server_address
        if policy.applies(instance, kwargs, host):
            return {**kwargs, "stream_usage": True}, True
    except Exception:
        internal_error("stream usage request check failed")
    return kwargs, False


def _first_argument(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> Callable[[], Any]:
    """The call's messages or prompts, read only if content is captured."""
    return lambda: args[0] if args else kwargs.get(name)


def _converted_input(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Callable[[], Any]:
    """``stream(input)``: LangChain's own conversion of the input to messages."""

    def prompt() -> Any:
        value = instance._convert_input(args[0] if args else kwargs.get("input"))
        return value.to_messages() if hasattr(value, "to_messages") else value

    return prompt


def _call_recorder(
    telemetry: Telemetry,
    operation: str,
    instance: Any,
    parent: otel_context.Context,
    args: Any,
    kwargs: dict[str, Any],
    async_api: bool,
) -> tuple[CallRecorder | None, dict[str, Any]]:
    """The recorder of a non-streamed call (None: call straight through), and the kwargs
    to call with: an invoke that streams internally may be asked for stream usage."""
    chat = operation == sc.OPERATION_CHAT
    streams = _streams_internally(instance, kwargs, async_api, chat)
    asked = False
    if streams:
        kwargs, asked = _ask_for_usage(telemetry, instance, operation, kwargs)
    prompt = None
    if telemetry.capture_content or telemetry.estimate:
        prompt = _first_argument(args, kwargs, "messages" if chat else "prompts")
    stop = args[1] if len(args) > 1 else kwargs.get("stop")
    recorder = _start_model_call(
        telemetry, instance, operation, parent, stop, kwargs, streams, prompt, asked
    )
    return recorder, kwargs


def make_call(telemetry: Telemetry, operation: str) -> Wrapper:
    listening = telemetry.listening

    def traced_call(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        if not listening():
            return wrapped(*args, **kwargs)
        parent = current_context()
        outer = _nested_in(parent, instance)
        if outer is not None:  # e.g. stream() fell back to invoke(): feed the outer span
            result = wrapped(*args, **kwargs)
            outer.absorb(result)
            return result
        recorder, kwargs = _call_recorder(
            telemetry, operation, instance, parent, args, kwargs, async_api=False
        )
        if recorder is None:
            return wrapped(*args, **kwargs)
        return run_call(recorder, wrapped, args, kwargs)

    return traced_call


def make_async_call(telemetry: Telemetry, operation: str) -> Wrapper:
    listening = telemetry.listening

    async def traced_acall(
        wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
    ) -> Any:
        if not listening():
            return await wrapped(*args, **kwargs)
        parent = current_context()
        outer = _nested_in(parent, instance)
        if outer is not None:
            result = await wrapped(*args, **kwargs)
            outer.absorb(result)
            return result
        recorder, kwargs = _call_recorder(
            telemetry, operation, instance, parent, args, kwargs, async_api=True
        )
        if recorder is None:
            return await wrapped(*args, **kwargs)
        return await run_async_call(recorder, wrapped, args, kwargs)

    return traced_acall


def _chunk_handler(recorder: CallRecorder) -> ItemHandler:
    return recorder.chunk_handler()


_MESSAGE_FINISH = "message-finish"
_CONTENT_DELTA = "content-block-delta"


def _event_handler_for(kwargs: dict[str, Any]) -> Callable[[CallRecorder], ItemHandler]:
    accumulator = kwargs.get("stream")  # the ChatModelStream the events are dispatched into

    def handler(recorder: CallRecorder) -> ItemHandler:
        def on_event(event: Any) -> None:
            try:
                kind = event.get("event") if isinstance(event, dict) else None
                if kind == _CONTENT_DELTA:
                    delta = event.get("delta")
                    recorder.on_text_chunk(delta.get("text") if isinstance(delta, dict) else None)
                elif kind == _MESSAGE_FINISH:
                    # The v3 pump may stop pulling once the message is done: end here
                    # rather than waiting for StopIteration.
                    message = getattr(accumulator, "output_message", None)
                    if message is None:
                        from langchain_core.messages import AIMessage

                        message = AIMessage(content="", usage_metadata=event.get("usage"))
                    recorder.finish_message(message)
            except Exception:
                internal_error("unreadable protocol event")

        return on_event

    return handler


def _stream_factory(traced: Callable[..., Any]) -> Callable[[Telemetry, str], Wrapper]:
    """``stream``/``astream`` wrappers; ``traced`` is ``traced_iter`` or ``traced_aiter``."""

    def make(telemetry: Telemetry, operation: str) -> Wrapper:
        def traced_stream(
            wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
        ) -> Any:
            prompt = _converted_input(instance, args, kwargs)
            kwargs, asked = _ask_for_usage(telemetry, instance, operation, kwargs)
            begin = _model_begin(
                telemetry, instance, operation, kwargs.get("stop"), kwargs, prompt, asked
            )
            return traced(wrapped(*args, **kwargs), begin, _chunk_handler)

        return traced_stream

    return make


def _events_factory(traced: Callable[..., Any]) -> Callable[[Telemetry, str], Wrapper]:
    """Wrappers of the v2-handler event paths (``_iter_v2_events``/``_aiter_v2_events``)."""

    def make(telemetry: Telemetry, operation: str) -> Wrapper:
        def traced_events(
            wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any
        ) -> Any:
            prompt = _first_argument(args, kwargs, "messages")
            kwargs, asked = _ask_for_usage(telemetry, instance, operation, kwargs)
            begin = _model_begin(
                telemetry, instance, operation, kwargs.get("stop"), kwargs, prompt, asked
            )
            return traced(wrapped(*args, **kwargs), begin, _event_handler_for(kwargs))

        return traced_events

    return make


make_stream = _stream_factory(traced_iter)
make_async_stream = _stream_factory(traced_aiter)
make_events = _events_factory(traced_iter)
make_async_events = _events_factory(traced_aiter)
