"""One model call from start to finish: its span, then its :class:`~.outcome.Outcome`
turned into telemetry by small sinks (span attributes, metrics, agent runs, trackers).

Every wrapper shape (call, async call, stream, async stream, event stream) drives the
same :class:`CallRecorder`. Nothing here may raise into the application: the endings
catch and log (see ``internal.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import INVALID_SPAN, SpanKind, Status, StatusCode, Tracer

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract import content
from otel_llm_usage.extract.outcome import (
    Outcome,
    StreamParts,
    chat_outcome,
    completion_outcome,
    error_outcome,
    message_outcome,
    stream_outcome,
)
from otel_llm_usage.extract.providers import ModelInfo
from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.internal import internal_error
from otel_llm_usage.keys import ACTIVE_CALL_KEY, AGENT_RUNS_KEY, call_context
from otel_llm_usage.patch import interop
from otel_llm_usage.record import estimate, tracking
from otel_llm_usage.record.custom_attributes import AttributePolicy, Pairs, current_pairs
from otel_llm_usage.record.metrics import Instruments
from otel_llm_usage.wrap.stream_usage import StreamUsagePolicy

logger = logging.getLogger(__name__)


class Telemetry:
    """What every call needs, built once at ``instrument()``.

    ``tracing``/``metering``: whether an SDK stands behind the tracer/meter, as a fixed
    answer (providers given to ``instrument()``) or a function asked on each call (the
    global ones, which an application may set after instrumenting).
    """

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        pricing: Any = None,
        capture_content: bool = False,
        content_max_length: int = 8192,
        content_on_span: bool = True,
        content_events: content.DetailsEvents | None = None,
        attribute_policy: AttributePolicy | None = None,
        estimate: bool = False,
        stream_usage: StreamUsagePolicy | None = None,
        tracing: bool | Callable[[], bool] = True,
        metering: bool | Callable[[], bool] = True,
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.pricing = pricing
        # capture_content: collect messages at all; they go on the span (content_on_span)
        # and/or into a gen_ai.client.inference.operation.details event (content_events)
        self.capture_content = capture_content
        self.content_on_span = content_on_span
        self.content_events = content_events
        self.content_max_length = content_max_length
        self.attribute_policy = attribute_policy or AttributePolicy()
        self.estimate = estimate
        self.stream_usage = stream_usage or StreamUsagePolicy()
        self.tracing: Callable[[], bool] = _asked(tracing)
        self.metering: Callable[[], bool] = _asked(metering)
        self.listening = _listening(self.tracing, self.metering)
        self._warned_invalid: set[str] = set()

    def warn_invalid_usage(self, provider: str, why: str | None) -> None:
        """One warning per provider: its calls with impossible counts get no usage."""
        if provider in self._warned_invalid or len(self._warned_invalid) > 100:
            return
        self._warned_invalid.add(provider)
        logger.warning(
            "otel-llm-usage: provider %r reported usage that cannot be real (%s); such "
            "calls are recorded without tokens or cost, flagged %s",
            provider,
            why,
            sc.LLM_USAGE_USAGE_INVALID,
        )

    def custom_attributes(self) -> Pairs:
        """The allowed ``usage_attributes()`` pairs of the current block (usually none)."""
        pairs = current_pairs()
        return self.attribute_policy.apply(pairs) if pairs else ()


def _always() -> bool:
    return True


def _never() -> bool:
    return False


def _asked(answer: bool | Callable[[], bool]) -> Callable[[], bool]:
    if answer is True:
        return _always
    return _never if answer is False else answer


def _listening(tracing: Callable[[], bool], metering: Callable[[], bool]) -> Callable[[], object]:
    """Whether anyone would see a call: an SDK behind the tracer or the meter, or a
    ``track_usage()`` block (truthy or not). When nobody is, the wrappers call straight
    through; with no SDK at all this is one C call."""
    if tracing is _always or metering is _always:
        return _always
    if tracing is _never and metering is _never:
        return tracking.active_trackers

    def listening() -> bool:
        return bool(tracking.active_trackers()) or tracing() or metering()

    return listening


class CallRecorder:
    """Owns one model call. The endings (``finish*``, ``fail``) run once; later calls
    are no-ops. ``parts`` collects a stream's chunks (None on a non-streamed call)."""

    __slots__ = (
        "_agent_runs",
        "_chunks",
        "_content_in",
        "_custom",
        "_done",
        "_first_chunk",
        "_prompt",
        "_recording",
        "_start",
        "_streamed_text",
        "context",
        "delegated",
        "info",
        "model",
        "parts",
        "requested_usage",
        "span",
        "telemetry",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        model: Any,
        info: ModelInfo,
        parent: otel_context.Context,
        streaming: bool,
        prompt: Callable[[], Any] | None = None,
        requested_usage: bool = False,
    ) -> None:
        self.telemetry = telemetry
        self.model = model
        self.info = info
        self.requested_usage = requested_usage  # we asked the provider for stream usage
        # Set when this model's own code called another model (a router, a guard): that
        # call is the provider call, counted on its own span; this one counts nothing.
        self.delegated = False
        self._done = False
        self._first_chunk: float | None = None
        self._chunks = 0
        self.parts = StreamParts() if streaming else None
        self._agent_runs: tuple[Any, ...] = parent.get(AGENT_RUNS_KEY) or ()  # type: ignore[assignment]
        self._custom = telemetry.custom_attributes()
        attributes = info.stream_span_attributes if streaming else info.span_attributes
        if self._custom:
            attributes = {**attributes, **dict(self._custom)}
        if telemetry.tracing():
            span = telemetry.tracer.start_span(info.span_name, parent, SpanKind.CLIENT, attributes)
            self.context = call_context(parent, span, self)
        else:  # no SDK tracer: a no-op span would only repeat the parent's; it stays current
            span = INVALID_SPAN
            self.context = otel_context.set_value(ACTIVE_CALL_KEY, self, parent)
        self.span = span
        # Whether the span records does not change before it ends: asked once; what only
        # the span shows (finish reasons, response id, content) is read only if it does.
        self._recording = span.is_recording()
        if interop.MARKS:
            self.context = interop.mark(self.context, info.operation)
        self._content_in: dict[str, Any] | None = None
        self._streamed_text: list[Any] | None = None
        self._prompt = prompt if telemetry.estimate else None
        if self._prompt is not None:
            self._streamed_text = []
        if telemetry.capture_content and prompt is not None and self._recording:
            self._capture_input(prompt)
            self._streamed_text = []
        self._start = perf_counter()

    def _capture_input(self, prompt: Callable[[], Any]) -> None:
        try:
            limit = self.telemetry.content_max_length
            system, messages = content.input_messages(prompt())
            found = {sc.GEN_AI_INPUT_MESSAGES: content.bounded_json(messages, limit)}
            if system:
                found[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = content.bounded_json(system, limit)
            self._content_in = found
            if self.telemetry.content_on_span:
                self.span.set_attributes(found)
        except Exception:
            internal_error("could not capture input messages")

    # -- data in -----------------------------------------------------------------

    def chunk_handler(self) -> Callable[[Any], Any]:
        """What a stream calls for each item (chosen once, not tested per chunk)."""
        if self.info.operation != sc.OPERATION_CHAT:
            return self.on_text_chunk
        if self._streamed_text is not None:
            return self.on_message_chunk_with_text
        return self.on_first_message_chunk

    def on_first_message_chunk(self, message: Any) -> Callable[[Any], None]:
        """A stream's first ``AIMessageChunk``: its time noted. Returns the handler of the
        later ones, a C-level list append: the hot path of every stream."""
        self.on_message_chunk(message)
        return self.parts.messages.append  # type: ignore[union-attr]

    def on_message_chunk_with_text(self, message: Any) -> None:
        if self._streamed_text is not None:
            self._streamed_text.append(getattr(message, "content", None))
        self.on_message_chunk(message)

    def on_message_chunk(self, message: Any) -> None:
        """A streamed ``AIMessageChunk``, kept by reference (read at the end)."""
        if self._first_chunk is None:
            self._first_chunk = perf_counter()
        self.parts.messages.append(message)  # type: ignore[union-attr]

    def on_text_chunk(self, text: Any = None) -> None:
        """A streamed legacy text chunk (or a v3 content delta): timing, text if captured."""
        if self._streamed_text is not None and isinstance(text, str):
            self._streamed_text.append(text)
        if self._first_chunk is None:
            self._first_chunk = perf_counter()
        self._chunks += 1

    def _chunk_count(self) -> int:
        """Text chunks and protocol deltas are counted as they come; messages are kept."""
        return self._chunks + (len(self.parts.messages) if self.parts is not None else 0)

    def absorb(self, result: Any) -> None:
        """A result produced inside this call by a nested LangChain method (a stream that
        fell back to ``invoke``): its usage is the call's usage."""
        if self.parts is not None:
            self.parts.absorbed = result

    # -- endings -------------------------------------------------------------------

    def finish(self, result: Any) -> None:
        """End a non-streamed call from its ``ChatResult`` or ``LLMResult``."""
        if self.info.operation == sc.OPERATION_TEXT_COMPLETION:
            self._finish(completion_outcome, result)
        else:
            self._finish(chat_outcome, result, self._recording)

    def finish_chat(self, result: Any) -> None:
        self._finish(chat_outcome, result)

    def finish_completion(self, result: Any) -> None:
        self._finish(completion_outcome, result)

    def finish_stream(self, closed_early: bool = False) -> None:
        """End a stream: usage summed over its chunks (or from an absorbed result)."""
        self._finish(self._stream_outcome, closed_early)

    def finish_message(self, message: Any) -> None:
        """End a protocol (v3) stream from its assembled ``AIMessage``."""
        self._finish(message_outcome, message)

    def fail(self, exc: BaseException) -> None:
        """End a call that raised. Usage streamed so far is kept."""
        if self.requested_usage and not self._done:
            try:
                self.telemetry.stream_usage.note_failure(exc, self.info.server_address)
            except Exception:
                internal_error("could not read the status of a failed call")
        self._finish(error_outcome, exc, self.parts)

    def _stream_outcome(self, closed_early: bool) -> Outcome:
        output: Any = None
        if self._streamed_text is not None:
            output = "".join(t for t in self._streamed_text if isinstance(t, str))
        completion = self.info.operation == sc.OPERATION_TEXT_COMPLETION
        return stream_outcome(self.parts or StreamParts(), completion, output, closed_early)

    def _finish(self, make_outcome: Callable[..., Outcome], *args: Any) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._end(make_outcome(*args))
        except Exception:
            internal_error(f"failed to record a call ({make_outcome.__name__})")
            self._safe_end_span()

    def _safe_end_span(self) -> None:
        self.context = None  # type: ignore[assignment]  # see _end
        try:
            self.span.end()
        except Exception:
            internal_error("span.end failed")

    def _end(self, outcome: Outcome) -> None:
        end = perf_counter()
        # The context holds this recorder (ACTIVE_CALL_KEY): drop it so the pair is freed
        # by reference counting, not left to the cycle collector (~20 µs a call).
        self.context = None  # type: ignore[assignment]
        if self.delegated:
            self._end_delegated(outcome)
            return
        telemetry = self.telemetry
        info = self.info
        usage, source = self._settle(outcome)
        cost = None
        pricing = telemetry.pricing
        if usage is not None and pricing is not None:
            cost = pricing.cost(info.provider, outcome.response_model, usage, info.request_model)

        span = self.span
        if self._recording:
            if outcome.error:
                span.set_status(Status(StatusCode.ERROR, outcome.description))
            span.set_attributes(self._span_attributes(outcome, usage, source, cost))
        span.end()

        if telemetry.metering():
            self._record_metrics(outcome, usage, source, cost, end)
        if self._agent_runs or tracking.active_trackers():
            self._add_to_totals(outcome, usage, source, cost)

    def _record_metrics(
        self, outcome: Outcome, usage: Usage | None, source: str, cost: float | None, end: float
    ) -> None:
        """The metrics sink (skipped when no SDK stands behind the meter)."""
        first_chunk = per_chunk = None
        if self._first_chunk is not None:
            first_chunk = self._first_chunk - self._start
            chunks = self._chunk_count()
            if chunks > 1:
                per_chunk = (end - self._first_chunk) / (chunks - 1)
        info = self.info
        instruments = self.telemetry.instruments
        series = instruments.series(info, outcome.response_model, outcome.error, self._custom)
        instruments.record_call(
            series,
            end - self._start,
            usage,
            source,
            cost,
            first_chunk,
            per_chunk,
            output_tokens=info.operation != sc.OPERATION_EMBEDDINGS,
        )

    def _settle(self, outcome: Outcome) -> tuple[Usage | None, str]:
        """The call's usage and where it came from (``llm_usage.usage.source``)."""
        if outcome.usage is not None:
            return outcome.usage, sc.USAGE_SOURCE_REPORTED
        if outcome.cache_hit:
            return None, sc.USAGE_SOURCE_CACHE
        info = self.info
        if outcome.invalid_usage is not None:
            self.telemetry.warn_invalid_usage(info.provider, outcome.invalid_usage)
            return None, sc.USAGE_SOURCE_INVALID
        if outcome.error:  # a failed call reports no usage: that is not a gap
            return None, sc.USAGE_SOURCE_ERROR
        if self.parts is not None and not self.requested_usage:
            self.telemetry.stream_usage.note_missing(
                self.model, info.server_address, info.server_port
            )
        if self._prompt is not None:
            estimated = estimate.estimate(
                info.provider,
                outcome.response_model or info.request_model,
                self._prompt(),
                _output_text(outcome.output),
                info.operation == sc.OPERATION_CHAT,
            )
            if estimated is not None:
                return estimated, sc.USAGE_SOURCE_ESTIMATED
        return None, sc.USAGE_SOURCE_MISSING

    def _span_attributes(
        self, outcome: Outcome, usage: Usage | None, source: str, cost: float | None
    ) -> dict[str, Any]:
        """The span sink: what the call's end adds to the span."""
        attributes: dict[str, Any] = {}
        if outcome.response_model:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = outcome.response_model
        if outcome.response_id:
            attributes[sc.GEN_AI_RESPONSE_ID] = outcome.response_id
        if outcome.finish_reasons:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = outcome.finish_reasons
        if outcome.service_tier:
            attributes[sc.OPENAI_RESPONSE_SERVICE_TIER] = outcome.service_tier
        if usage is not None:
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
            if self.info.operation != sc.OPERATION_EMBEDDINGS:
                attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output
            if usage.cache_read:
                attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read
            if usage.cache_creation:
                attributes[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation
            if usage.reasoning:
                attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning
            if cost is not None:
                attributes[sc.GEN_AI_USAGE_COST_AMOUNT] = cost
                attributes[sc.GEN_AI_USAGE_COST_CURRENCY] = sc.COST_CURRENCY_USD
                attributes[sc.GEN_AI_USAGE_COST_SOURCE] = sc.COST_SOURCE_LOCAL
            elif self.telemetry.pricing is not None:
                attributes[sc.LLM_USAGE_PRICE_MISSING] = True
            if source == sc.USAGE_SOURCE_ESTIMATED:
                attributes[sc.LLM_USAGE_USAGE_ESTIMATED] = True
        elif source in _FLAG_OF_SOURCE:
            attributes[_FLAG_OF_SOURCE[source]] = True
        if self._first_chunk is not None:
            attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._first_chunk - self._start
        chunks = self._chunk_count()
        if chunks:
            attributes[sc.LLM_USAGE_STREAM_CHUNKS] = chunks
        if outcome.closed_early:
            attributes[sc.LLM_USAGE_STREAM_CLOSED_EARLY] = True
        if outcome.error:
            attributes[sc.ERROR_TYPE] = outcome.error
        if (
            outcome.output is not None
            and self.telemetry.capture_content
            and self._streamed_text is not None
        ):
            reason = outcome.finish_reasons[0] if outcome.finish_reasons else None
            output_json = content.bounded_json(
                content.output_message(outcome.output, reason), self.telemetry.content_max_length
            )
            if self.telemetry.content_on_span:
                attributes[sc.GEN_AI_OUTPUT_MESSAGES] = output_json
            events = self.telemetry.content_events
            if events is not None:
                events.emit(self.span, self.info, self._content_in, output_json)
        return attributes

    def _add_to_totals(
        self, outcome: Outcome, usage: Usage | None, source: str, cost: float | None
    ) -> None:
        """The agent-run and ``track_usage()`` sinks. Estimates never mix into reported
        totals: trackers keep them apart."""
        estimated = source == sc.USAGE_SOURCE_ESTIMATED
        reported_usage, reported_cost = (None, None) if estimated else (usage, cost)
        failed = outcome.error is not None
        provider = self.info.provider
        for agent_run in self._agent_runs:
            agent_run.add(provider, reported_usage, reported_cost, failed, outcome.cache_hit)
        trackers = tracking.active_trackers()
        if trackers:
            model_name = outcome.response_model or self.info.request_model or "unknown"
            invalid = source == sc.USAGE_SOURCE_INVALID
            for tracker in trackers:
                tracker.add(
                    provider,
                    model_name,
                    reported_usage,
                    reported_cost,
                    failed,
                    outcome.cache_hit,
                    invalid,
                )
                if estimated:
                    tracker.add_estimated(usage, cost)

    def _end_delegated(self, outcome: Outcome) -> None:
        """The span of a model that called another model: no usage, metrics or totals
        (the inner call has them), so one provider call is counted once."""
        span = self.span
        if span.is_recording():
            span.set_attribute(sc.LLM_USAGE_DELEGATED, True)
            if outcome.error:
                span.set_attribute(sc.ERROR_TYPE, outcome.error)
                span.set_status(Status(StatusCode.ERROR, outcome.description))
        span.end()


# A call without usage is flagged on its span with why.
_FLAG_OF_SOURCE = {
    sc.USAGE_SOURCE_CACHE: sc.LLM_USAGE_CACHE_HIT,
    sc.USAGE_SOURCE_INVALID: sc.LLM_USAGE_USAGE_INVALID,
    sc.USAGE_SOURCE_MISSING: sc.LLM_USAGE_USAGE_MISSING,
}


def _output_text(output: Any) -> str:
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    text = getattr(output, "text", None)  # BaseMessage.text: the text of its content
    return text if isinstance(text, str) else ""
