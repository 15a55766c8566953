"""One model call from start to finish: span, usage, metrics, ``track_usage`` totals.

Every wrapper shape (call, async call, stream, async stream, event stream) drives the
same :class:`CallRecorder`. Nothing here may raise into the application: the public
methods catch and log at debug level.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from . import content, estimate, tracking
from . import semconv as sc
from .custom_attributes import AttributePolicy, Pairs, current_pairs
from .providers import ModelInfo
from .stream_usage import StreamUsagePolicy
from .usage import (
    Usage,
    from_chat_result,
    from_llm_result,
    from_message,
    from_response_metadata,
    from_usage_metadata,
)

logger = logging.getLogger(__name__)

# Context key under which the recorder of the running model call is stored, so a
# LangChain method that calls another one for the same model makes no second span.
ACTIVE_CALL_KEY = otel_context.create_key("otel_llm_usage.active_call")
# Context key holding the agent runs (outermost first) a model call happens under; each
# one sums the usage and cost of the calls below it.
AGENT_RUNS_KEY = otel_context.create_key("otel_llm_usage.agent_runs")

_TOKEN_TYPES = (
    sc.TOKEN_TYPE_INPUT,
    sc.TOKEN_TYPE_OUTPUT,
    sc.TOKEN_TYPE_CACHE_READ,
    sc.TOKEN_TYPE_CACHE_CREATION,
    sc.TOKEN_TYPE_REASONING,
)
# Bound on distinct metric attribute sets; past it, calls share one overflow set.
_SERIES_LIMIT = 2000
_OVERFLOW_ATTRIBUTES = {"otel.metric.overflow": True}


def error_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


_COUNTED_SOURCES = (sc.USAGE_SOURCE_REPORTED, sc.USAGE_SOURCE_ESTIMATED)


class Series:
    """One metric attribute set and the running totals our observable counters report.
    Tokens and cost are kept apart by ``llm_usage.usage.source`` (reported, estimated)."""

    __slots__ = (
        "attributes",
        "cost",
        "cost_attributes",
        "requests",
        "token_attributes",
        "token_usage_attributes",
        "tokens",
    )

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes
        # gen_ai.client.token.usage: the standard attributes only (input, output)
        self.token_usage_attributes = (
            {**attributes, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT},
            {**attributes, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT},
        )
        self.token_attributes = {
            source: [
                {**attributes, sc.GEN_AI_TOKEN_TYPE: token_type, sc.LLM_USAGE_USAGE_SOURCE: source}
                for token_type in _TOKEN_TYPES
            ]
            for source in _COUNTED_SOURCES
        }
        self.cost_attributes = {
            source: {**attributes, sc.LLM_USAGE_USAGE_SOURCE: source} for source in _COUNTED_SOURCES
        }
        self.tokens = {source: [0, 0, 0, 0, 0] for source in _COUNTED_SOURCES}
        self.cost = dict.fromkeys(_COUNTED_SOURCES, 0.0)
        self.requests: dict[str, int] = {}


class Instruments:
    """Metric instruments and counter totals; one per meter provider, made once."""

    def __init__(self, meter: Meter) -> None:
        self.duration = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            sc.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_BUCKETS),
        )
        self.time_to_first_chunk = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(sc.FIRST_CHUNK_BUCKETS),
        )
        self.time_per_output_chunk = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Mean time between output chunks of one streamed response",
            explicit_bucket_boundaries_advisory=list(sc.PER_CHUNK_BUCKETS),
        )
        # Counters are observable: a call adds to our totals (a few dict operations)
        # instead of paying the SDK's per-measurement cost five times per call.
        meter.create_observable_counter(
            sc.LLM_USAGE_TOKENS,
            callbacks=[self._observe_tokens],
            unit="{token}",
            description="Tokens used, by gen_ai.token.type",
        )
        meter.create_observable_counter(
            sc.LLM_USAGE_COST,
            callbacks=[self._observe_cost],
            unit="USD",
            description="Cost of model calls in US dollars",
        )
        meter.create_observable_counter(
            sc.LLM_USAGE_REQUESTS,
            callbacks=[self._observe_requests],
            unit="{request}",
            description="Model calls, by where their usage came from",
        )
        self.lock = threading.Lock()
        self._series: dict[tuple[Any, ...], Series] = {}
        self._overflow = Series(dict(_OVERFLOW_ATTRIBUTES))

    def series(
        self,
        info: ModelInfo,
        response_model: str | None,
        error: str | None,
        custom: Pairs = (),
    ) -> Series:
        key = (info.metric_key, response_model, error, custom)
        found = self._series.get(key)
        if found is not None:
            return found
        with self.lock:
            found = self._series.get(key)
            if found is None:
                if len(self._series) >= _SERIES_LIMIT:
                    return self._overflow
                attributes: dict[str, Any] = {
                    sc.GEN_AI_OPERATION_NAME: info.operation,
                    sc.GEN_AI_PROVIDER_NAME: info.provider,
                }
                if info.request_model:
                    attributes[sc.GEN_AI_REQUEST_MODEL] = info.request_model
                if response_model:
                    attributes[sc.GEN_AI_RESPONSE_MODEL] = response_model
                if info.server_address:
                    attributes[sc.SERVER_ADDRESS] = info.server_address
                    if info.server_port:
                        attributes[sc.SERVER_PORT] = info.server_port
                if error:
                    attributes[sc.ERROR_TYPE] = error
                attributes.update(custom)
                found = self._series[key] = Series(attributes)
        return found

    def _all_series(self) -> list[Series]:
        with self.lock:
            return [*self._series.values(), self._overflow]

    def _observe_tokens(self, _options: CallbackOptions) -> Iterable[Observation]:
        for series in self._all_series():
            for source in _COUNTED_SOURCES:
                counts = series.tokens[source]
                for count, attributes in zip(counts, series.token_attributes[source], strict=True):
                    if count:
                        yield Observation(count, attributes)

    def _observe_cost(self, _options: CallbackOptions) -> Iterable[Observation]:
        for series in self._all_series():
            for source in _COUNTED_SOURCES:
                if series.cost[source]:
                    yield Observation(series.cost[source], series.cost_attributes[source])

    def _observe_requests(self, _options: CallbackOptions) -> Iterable[Observation]:
        for series in self._all_series():
            for source, count in list(series.requests.items()):
                yield Observation(count, {**series.attributes, sc.LLM_USAGE_USAGE_SOURCE: source})


_instruments: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
_instruments_lock = threading.Lock()


def instruments_for(meter_provider: MeterProvider, meter: Meter) -> Instruments:
    """The SDK hands back an existing instrument (with its old callbacks) when asked for
    the same name twice, so instruments live as long as their meter provider."""
    with _instruments_lock:
        found = _instruments.get(meter_provider)
        if found is None:
            found = _instruments[meter_provider] = Instruments(meter)
        return found


class Telemetry:
    """What every call needs, built once at ``instrument()``."""

    def __init__(
        self,
        tracer: Tracer,
        instruments: Instruments,
        pricing: Any = None,
        capture_content: bool = False,
        content_max_length: int = 8192,
        attribute_policy: AttributePolicy | None = None,
        estimate: bool = False,
        stream_usage: StreamUsagePolicy | None = None,
        exporting: Callable[[], bool] | None = None,
    ) -> None:
        self.tracer = tracer
        self.instruments = instruments
        self.pricing = pricing
        self.capture_content = capture_content
        self.content_max_length = content_max_length
        self.attribute_policy = attribute_policy or AttributePolicy()
        self.estimate = estimate
        self.stream_usage = stream_usage or StreamUsagePolicy()
        self._exporting = exporting or (lambda: True)

    def listening(self) -> bool:
        """Whether anyone would see this call: an SDK behind the tracer or the meter, or a
        ``track_usage()`` block. When nobody is, the wrappers call straight through."""
        return bool(tracking.active_trackers()) or self._exporting()

    def custom_attributes(self) -> Pairs:
        """The allowed ``usage_attributes()`` pairs of the current block (usually none)."""
        pairs = current_pairs()
        return self.attribute_policy.apply(pairs) if pairs else ()

    def start(
        self,
        model: Any,
        info: ModelInfo,
        parent: otel_context.Context,
        streaming: bool,
        prompt: Callable[[], Any] | None = None,
    ) -> CallRecorder:
        """``prompt`` returns the call's messages; called only when content is captured."""
        return CallRecorder(self, model, info, parent, streaming, prompt)


class CallRecorder:
    """Owns one model call. ``finish``/``fail`` run once; later calls are no-ops."""

    __slots__ = (
        "_absorbed",
        "_agent_runs",
        "_chunk_metadata",
        "_chunk_usage",
        "_chunks",
        "_custom",
        "_done",
        "_first_chunk",
        "_prompt",
        "_response_id",
        "_start",
        "_streamed_text",
        "context",
        "info",
        "model",
        "requested_usage",
        "span",
        "streaming",
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
    ) -> None:
        self.telemetry = telemetry
        self.model = model
        self.info = info
        self.streaming = streaming
        self._first_chunk: float | None = None
        self._chunks = 0
        self._chunk_usage: list[Any] = []
        self._chunk_metadata: list[Mapping[str, Any]] = []
        self._response_id: str | None = None
        self._absorbed: Any = None
        self._agent_runs: tuple[Any, ...] = parent.get(AGENT_RUNS_KEY) or ()  # type: ignore[assignment]
        self._done = False
        self._custom = telemetry.custom_attributes()
        attributes = info.stream_span_attributes if streaming else info.span_attributes
        if self._custom:
            attributes = {**attributes, **dict(self._custom)}
        self.span = telemetry.tracer.start_span(info.span_name, parent, SpanKind.CLIENT, attributes)
        self.context = otel_context.set_value(
            ACTIVE_CALL_KEY, self, trace.set_span_in_context(self.span, parent)
        )
        self._streamed_text: list[Any] | None = None
        self._prompt = prompt if telemetry.estimate else None
        self.requested_usage = False  # set when we asked the provider for stream usage
        if telemetry.capture_content and prompt is not None and self.span.is_recording():
            self._capture_input(prompt)
            self._streamed_text = []
        elif self._prompt is not None:
            self._streamed_text = []
        self._start = perf_counter()

    def _capture_input(self, prompt: Callable[[], Any]) -> None:
        try:
            limit = self.telemetry.content_max_length
            system, messages = content.input_messages(prompt())
            if system:
                self.span.set_attribute(
                    sc.GEN_AI_SYSTEM_INSTRUCTIONS, content.bounded_json(system, limit)
                )
            self.span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, content.bounded_json(messages, limit))
        except Exception:
            logger.debug("otel-llm-usage: could not capture input messages", exc_info=True)

    # -- data in -----------------------------------------------------------------

    def chunk_handler(self) -> Callable[[Any], None]:
        """What a stream calls for each item (chosen once, not tested per chunk)."""
        if self.info.operation != sc.OPERATION_CHAT:
            return self.on_text_chunk
        if self._streamed_text is not None:
            return self.on_message_chunk_with_text
        return self.on_message_chunk

    def on_message_chunk_with_text(self, message: Any) -> None:
        if self._streamed_text is not None:
            self._streamed_text.append(getattr(message, "content", None))
        self.on_message_chunk(message)

    def on_message_chunk(self, message: Any) -> None:
        """A streamed ``AIMessageChunk``: count it; keep refs to its usage and metadata.
        The hot path of every stream: two attribute reads and a counter."""
        try:
            if self._first_chunk is None:
                self._first_chunk = perf_counter()
                self._response_id = getattr(message, "id", None)
            self._chunks += 1
            usage = message.usage_metadata
            if usage:
                self._chunk_usage.append(usage)
            metadata = message.response_metadata
            if metadata:
                self._chunk_metadata.append(metadata)
        except Exception:
            logger.debug("otel-llm-usage: unreadable stream chunk", exc_info=True)

    def on_text_chunk(self, text: Any = None) -> None:
        """A streamed legacy text chunk (or a v3 content delta): timing, text if captured."""
        if self._streamed_text is not None and isinstance(text, str):
            self._streamed_text.append(text)
        if self._first_chunk is None:
            self._first_chunk = perf_counter()
        self._chunks += 1

    def absorb(self, result: Any) -> None:
        """A result produced inside this call by a nested LangChain method (a stream that
        fell back to ``invoke``): its usage is the call's usage."""
        self._absorbed = result

    # -- endings -------------------------------------------------------------------

    def finish(self, result: Any) -> None:
        """End a non-streamed call from its ``ChatResult`` or ``LLMResult``."""
        if self.info.operation == sc.OPERATION_TEXT_COMPLETION:
            self.finish_completion(result)
        else:
            self.finish_chat(result)

    def finish_chat(self, result: Any) -> None:
        """End a non-streamed chat call from its ``ChatResult``."""
        if self._done:
            return
        try:
            self._done = True
            generations = getattr(result, "generations", None) or ()
            message = getattr(generations[0], "message", None) if generations else None
            metadata = getattr(message, "response_metadata", None) or {}
            finish_reasons = []
            for generation in generations:
                reason = _finish_reason(
                    getattr(getattr(generation, "message", None), "response_metadata", None)
                ) or _finish_reason(getattr(generation, "generation_info", None))
                if reason is not None:
                    finish_reasons.append(reason)
            usage_metadata = getattr(message, "usage_metadata", None)
            cache_hit = (
                (type(usage_metadata) is dict or isinstance(usage_metadata, Mapping))
                and usage_metadata.get("total_cost", None) == 0
                and "total_cost" in usage_metadata
            )
            usage = None if cache_hit else from_chat_result(result)
            self._end(
                usage,
                metadata,
                getattr(message, "id", None),
                finish_reasons,
                None,
                cache_hit=cache_hit,
                output=message,
            )
        except Exception:
            logger.debug("otel-llm-usage: failed to record a chat call", exc_info=True)
            self._safe_end_span()

    def finish_completion(self, result: Any) -> None:
        """End a legacy text-completion call from its ``LLMResult``."""
        if self._done:
            return
        try:
            self._done = True
            llm_output = getattr(result, "llm_output", None) or {}
            finish_reasons = []
            for generations in getattr(result, "generations", None) or ():
                for generation in generations or ():
                    reason = _finish_reason(getattr(generation, "generation_info", None))
                    if reason is not None:
                        finish_reasons.append(reason)
            generations = getattr(result, "generations", None) or [[]]
            first = generations[0][0] if generations[0] else None
            self._end(
                from_llm_result(result),
                llm_output,
                None,
                finish_reasons,
                None,
                output=getattr(first, "text", None),
            )
        except Exception:
            logger.debug("otel-llm-usage: failed to record a completion call", exc_info=True)
            self._safe_end_span()

    def finish_stream(self, closed_early: bool = False) -> None:
        """End a stream: usage summed over its chunks (or from an absorbed result)."""
        if self._done:
            return
        try:
            self._done = True
            if self._absorbed is None:
                usage = _stream_usage(self._chunk_usage, self._chunk_metadata)
            elif self.info.operation == sc.OPERATION_TEXT_COMPLETION:
                usage = from_llm_result(self._absorbed)
            else:
                usage = from_chat_result(self._absorbed)
            metadata: dict[str, Any] = {}
            finish_reasons = []
            for part in self._chunk_metadata:
                metadata.update(part)
                reason = _finish_reason(part)
                if reason is not None:
                    finish_reasons.append(reason)
            output: Any = None
            if self._streamed_text is not None:
                output = "".join(t for t in self._streamed_text if isinstance(t, str))
            self._end(
                usage,
                metadata,
                self._response_id,
                finish_reasons,
                None,
                closed_early=closed_early,
                output=output,
            )
        except Exception:
            logger.debug("otel-llm-usage: failed to record a stream", exc_info=True)
            self._safe_end_span()

    def finish_message(self, message: Any) -> None:
        """End a protocol (v3) stream from its assembled ``AIMessage``."""
        if self._done:
            return
        try:
            self._done = True
            metadata = getattr(message, "response_metadata", None) or {}
            reason = _finish_reason(metadata)
            self._end(
                from_message(message),
                metadata,
                getattr(message, "id", None),
                [reason] if reason is not None else [],
                None,
                output=message,
            )
        except Exception:
            logger.debug("otel-llm-usage: failed to record a protocol stream", exc_info=True)
            self._safe_end_span()

    def fail(self, exc: BaseException) -> None:
        """End a call that raised. Usage streamed so far is kept."""
        if self._done:
            return
        try:
            self._done = True
            if self.requested_usage:
                self.telemetry.stream_usage.note_failure(exc, self.info.server_address)
            metadata: dict[str, Any] = {}
            for part in self._chunk_metadata:
                metadata.update(part)
            self._end(
                _stream_usage(self._chunk_usage, self._chunk_metadata),
                metadata,
                self._response_id,
                [],
                error_type(exc),
                description=_describe(exc),
            )
        except Exception:
            logger.debug("otel-llm-usage: failed to record an error", exc_info=True)
            self._safe_end_span()

    def _safe_end_span(self) -> None:
        self.context = None  # type: ignore[assignment]  # see _end
        try:
            self.span.end()
        except Exception:
            logger.debug("otel-llm-usage: span.end failed", exc_info=True)

    def _end(
        self,
        usage: Usage | None,
        metadata: Mapping[str, Any],
        message_id: Any,
        finish_reasons: list[str],
        error: str | None,
        *,
        description: str | None = None,
        cache_hit: bool = False,
        closed_early: bool = False,
        output: Any = None,
    ) -> None:
        end = perf_counter()
        duration = end - self._start
        # The context holds this recorder (ACTIVE_CALL_KEY): drop it so the pair is freed
        # by reference counting, not left to the cycle collector (~20 µs a call).
        self.context = None  # type: ignore[assignment]
        info = self.info
        response_model = _response_model(metadata)
        source = sc.USAGE_SOURCE_REPORTED
        if usage is None:
            if cache_hit:
                source = sc.USAGE_SOURCE_CACHE
            elif error:
                source = sc.USAGE_SOURCE_ERROR
            else:
                source = sc.USAGE_SOURCE_MISSING
                if self._prompt is not None:
                    usage = estimate.estimate(
                        info.provider,
                        response_model or info.request_model,
                        self._prompt(),
                        _output_text(output),
                        info.operation == sc.OPERATION_CHAT,
                    )
                    if usage is not None:
                        source = sc.USAGE_SOURCE_ESTIMATED
        estimated = source == sc.USAGE_SOURCE_ESTIMATED
        cost = None
        pricing = self.telemetry.pricing
        if usage is not None and pricing is not None:
            cost = pricing.cost(info.provider, response_model, usage, info.request_model)

        span = self.span
        if span.is_recording():
            attributes: dict[str, Any] = {}
            if response_model:
                attributes[sc.GEN_AI_RESPONSE_MODEL] = response_model
            response_id = _response_id(metadata, message_id)
            if response_id:
                attributes[sc.GEN_AI_RESPONSE_ID] = response_id
            if finish_reasons:
                attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
            if usage is not None:
                attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input
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
                elif pricing is not None:
                    attributes[sc.LLM_USAGE_PRICE_MISSING] = True
                if estimated:
                    attributes[sc.LLM_USAGE_USAGE_ESTIMATED] = True
            elif cache_hit:
                attributes[sc.LLM_USAGE_CACHE_HIT] = True
            elif not error:  # a failed call reports no usage: that is not a gap
                attributes[sc.LLM_USAGE_USAGE_MISSING] = True
            if self._first_chunk is not None:
                attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self._first_chunk - self._start
            if self._chunks:
                attributes[sc.LLM_USAGE_STREAM_CHUNKS] = self._chunks
            if closed_early:
                attributes[sc.LLM_USAGE_STREAM_CLOSED_EARLY] = True
            if error:
                attributes[sc.ERROR_TYPE] = error
                span.set_status(Status(StatusCode.ERROR, description))
            if (
                output is not None
                and self.telemetry.capture_content
                and self._streamed_text is not None
            ):
                reason = finish_reasons[0] if finish_reasons else None
                attributes[sc.GEN_AI_OUTPUT_MESSAGES] = content.bounded_json(
                    content.output_message(output, reason), self.telemetry.content_max_length
                )
            span.set_attributes(attributes)
        span.end()

        instruments = self.telemetry.instruments
        series = instruments.series(info, response_model, error, self._custom)
        attributes = series.attributes
        instruments.duration.record(duration, attributes)
        if usage is not None and not estimated:  # the standard histogram: reported only
            token_attributes = series.token_usage_attributes
            instruments.token_usage.record(usage.input, token_attributes[0])
            instruments.token_usage.record(usage.output, token_attributes[1])
        if self._first_chunk is not None:
            instruments.time_to_first_chunk.record(self._first_chunk - self._start, attributes)
            if self._chunks > 1:
                instruments.time_per_output_chunk.record(
                    (end - self._first_chunk) / (self._chunks - 1), attributes
                )
        with instruments.lock:
            if usage is not None:
                tokens = series.tokens[source]
                tokens[0] += usage.input
                tokens[1] += usage.output
                tokens[2] += usage.cache_read
                tokens[3] += usage.cache_creation
                tokens[4] += usage.reasoning
                if cost is not None:
                    series.cost[source] += cost
            series.requests[source] = series.requests.get(source, 0) + 1

        if estimated:  # never mixed into reported totals
            reported_usage, reported_cost = None, None
        else:
            reported_usage, reported_cost = usage, cost
        for agent_run in self._agent_runs:
            agent_run.add(info.provider, reported_usage, reported_cost, error is not None)

        trackers = tracking.active_trackers()
        if trackers:
            model_name = response_model or info.request_model or "unknown"
            for tracker in trackers:
                tracker.add(
                    info.provider,
                    model_name,
                    reported_usage,
                    reported_cost,
                    error is not None,
                    cache_hit,
                )
                if estimated:
                    tracker.add_estimated(usage, cost)


def _output_text(output: Any) -> str:
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    text = getattr(output, "text", None)  # BaseMessage.text: the text of its content
    return text if isinstance(text, str) else ""


def _stream_usage(usage_parts: list[Any], metadata_parts: list[Any]) -> Usage | None:
    """A stream's usage: the sum of its chunks' ``usage_metadata``; failing that, the last
    usage a chunk carries only in ``response_metadata`` (langchain-cohere's sync stream
    puts its ``token_count`` there and nowhere else)."""
    usage = _sum_usage_metadata(usage_parts)
    if usage is None:
        for metadata in reversed(metadata_parts):
            usage = from_response_metadata(metadata)
            if usage is not None:
                break
    return usage


def _sum_usage_metadata(parts: list[Any]) -> Usage | None:
    total: Usage | None = None
    for part in parts:
        usage = from_usage_metadata(part)
        if usage is not None:
            total = usage if total is None else total + usage
    return total


_FINISH_REASON_KEYS = ("finish_reason", "stop_reason", "stopReason", "done_reason")


def _finish_reason(metadata: Any) -> str | None:
    if not metadata or (type(metadata) is not dict and not isinstance(metadata, Mapping)):
        return None
    for key in _FINISH_REASON_KEYS:
        value = metadata.get(key)
        if value and isinstance(value, str):
            return value
    return None


_MODEL_KEYS = ("model_name", "model", "model_id", "modelId")


def _response_model(metadata: Mapping[str, Any]) -> str | None:
    for key in _MODEL_KEYS:
        value = metadata.get(key)
        if value and isinstance(value, str):
            return value
    return None


def _response_id(metadata: Mapping[str, Any], message_id: Any) -> str | None:
    value = metadata.get("id")
    if value and isinstance(value, str):
        return value
    # LangChain fills in its own run id ("lc_run-…") when the provider gave none.
    if message_id and isinstance(message_id, str) and not message_id.startswith("lc_"):
        return message_id
    return None


def _describe(exc: BaseException) -> str | None:
    try:
        return str(exc)[:1024] or None
    except Exception:
        return None
