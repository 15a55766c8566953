"""The floor: the least an instrumentation can do and still emit what ours emits.

One wrapper per LangChain convergence point that ``otel_llm_usage`` patches
(``BaseChatModel._generate_with_cache`` / ``_agenerate_with_cache`` / ``stream`` /
``astream``), written by hand for ``fake_model.FakeChatOpenAI`` and nothing else: the same
span (name, kind, attributes, parent), the same histogram records with the same
attributes, through public OpenTelemetry APIs only, with no other logic (no provider
detection, no price look-up, no nested-call guard, no error handling beyond ending the
span, no ``track_usage``, no counters). What ours adds beyond the floor's added cost is
what our own code costs. ``tests/test_benchmark_floor.py`` checks that both emit the same.

Already the cheap way to use the SDK: request attributes given at ``start_span``, the
response attributes in one ``set_attributes``, metric attribute dicts built once per
series, nothing computed for a span that does not record (``instructions.py --floor-steps``
measures what each of these buys).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from time import perf_counter
from typing import Any

from langchain_core.language_models import BaseChatModel
from opentelemetry import context, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import SpanKind, TracerProvider
from wrapt import wrap_function_wrapper

from otel_llm_usage import semconv as sc

# gpt-4o-mini, USD per token: input, cached input, output (what genai-prices says)
PRICE_IN, PRICE_CACHED, PRICE_OUT = 0.15e-6, 0.075e-6, 0.6e-6
PATCHED = ("_generate_with_cache", "_agenerate_with_cache", "stream", "astream")


class Floor:
    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self.tracer = tracer_provider.get_tracer("floor")
        meter = meter_provider.get_meter("floor")
        self.duration = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            sc.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_BUCKETS),
        )
        self.first_chunk = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            explicit_bucket_boundaries_advisory=list(sc.FIRST_CHUNK_BUCKETS),
        )
        self.per_chunk = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            explicit_bucket_boundaries_advisory=list(sc.PER_CHUNK_BUCKETS),
        )
        self._requests: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
        self._series: dict[tuple[Any, ...], tuple[dict[str, Any], ...]] = {}

    def instrument(self) -> None:
        for name, wrapper in zip(
            PATCHED, (self.call, self.acall, self.stream, self.astream), strict=True
        ):
            wrap_function_wrapper(BaseChatModel, name, wrapper)

    @staticmethod
    def uninstrument() -> None:
        for name in PATCHED:
            setattr(BaseChatModel, name, getattr(BaseChatModel, name).__wrapped__)

    # -- what every call needs -------------------------------------------------------

    def _start(self, model: Any, streaming: bool) -> trace.Span:
        key = (model.model_name, model.temperature, streaming)
        request = self._requests.get(key)
        if request is None:
            attributes: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: model.model_name,
                sc.GEN_AI_REQUEST_TEMPERATURE: model.temperature,
            }
            if streaming:
                attributes[sc.GEN_AI_REQUEST_STREAM] = True
            request = self._requests[key] = (f"chat {model.model_name}", attributes)
        return self.tracer.start_span(request[0], kind=SpanKind.CLIENT, attributes=request[1])

    def _end(
        self,
        span: trace.Span,
        model: Any,
        start: float,
        usage: Any,
        metadata: Any,
        first: float | None = None,
        chunks: int = 0,
    ) -> None:
        end = perf_counter()
        response_model = metadata.get("model_name")
        if span.is_recording():
            cache_read = usage["input_token_details"]["cache_read"]
            uncached = usage["input_tokens"] - cache_read
            attributes = {
                sc.GEN_AI_RESPONSE_MODEL: response_model,
                sc.GEN_AI_RESPONSE_FINISH_REASONS: (metadata["finish_reason"],),
                sc.GEN_AI_USAGE_INPUT_TOKENS: usage["input_tokens"],
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage["output_tokens"],
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage["output_token_details"]["reasoning"],
                sc.GEN_AI_USAGE_COST_AMOUNT: uncached * PRICE_IN
                + cache_read * PRICE_CACHED
                + usage["output_tokens"] * PRICE_OUT,
                sc.GEN_AI_USAGE_COST_CURRENCY: sc.COST_CURRENCY_USD,
                sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_LOCAL,
            }
            if first is not None:
                attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = first - start
                attributes[sc.LLM_USAGE_STREAM_CHUNKS] = chunks
            span.set_attributes(attributes)
        span.end()
        key = (model.model_name, response_model)
        series = self._series.get(key)
        if series is None:
            base = {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.GEN_AI_REQUEST_MODEL: model.model_name,
                sc.GEN_AI_RESPONSE_MODEL: response_model,
            }
            series = self._series[key] = (
                base,
                {**base, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT},
                {**base, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT},
            )
        self.duration.record(end - start, series[0])
        self.tokens.record(usage["input_tokens"], series[1])
        self.tokens.record(usage["output_tokens"], series[2])
        if first is not None:
            self.first_chunk.record(first - start, series[0])
            self.per_chunk.record((end - first) / (chunks - 1), series[0])

    # -- the wrappers ----------------------------------------------------------------

    def call(self, wrapped: Any, model: Any, args: Any, kwargs: Any) -> Any:
        span = self._start(model, False)
        token = context.attach(trace.set_span_in_context(span))
        start = perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException:
            span.end()
            raise
        finally:
            context.detach(token)
        message = result.generations[0].message
        self._end(span, model, start, message.usage_metadata, message.response_metadata)
        return result

    async def acall(self, wrapped: Any, model: Any, args: Any, kwargs: Any) -> Any:
        span = self._start(model, False)
        token = context.attach(trace.set_span_in_context(span))
        start = perf_counter()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException:
            span.end()
            raise
        finally:
            context.detach(token)
        message = result.generations[0].message
        self._end(span, model, start, message.usage_metadata, message.response_metadata)
        return result

    def stream(self, wrapped: Any, model: Any, args: Any, kwargs: Any) -> Iterator[Any]:
        inner = wrapped(*args, **kwargs)
        span = self._start(model, True)
        ctx = trace.set_span_in_context(span)
        start = perf_counter()
        first, chunks, usage, metadata = None, 0, None, None
        while True:
            token = context.attach(ctx)
            try:
                chunk = next(inner)
            except StopIteration:
                break
            except BaseException:
                span.end()
                raise
            finally:
                context.detach(token)
            if first is None:
                first = perf_counter()
            chunks += 1
            if chunk.usage_metadata:
                usage = chunk.usage_metadata
            if chunk.response_metadata:
                metadata = chunk.response_metadata
            yield chunk
        self._end(span, model, start, usage, metadata, first, chunks)

    async def astream(self, wrapped: Any, model: Any, args: Any, kwargs: Any) -> AsyncIterator[Any]:
        inner = wrapped(*args, **kwargs)
        span = self._start(model, True)
        ctx = trace.set_span_in_context(span)
        start = perf_counter()
        first, chunks, usage, metadata = None, 0, None, None
        while True:
            token = context.attach(ctx)
            try:
                chunk = await inner.__anext__()
            except StopAsyncIteration:
                break
            except BaseException:
                span.end()
                raise
            finally:
                context.detach(token)
            if first is None:
                first = perf_counter()
            chunks += 1
            if chunk.usage_metadata:
                usage = chunk.usage_metadata
            if chunk.response_metadata:
                metadata = chunk.response_metadata
            yield chunk
        self._end(span, model, start, usage, metadata, first, chunks)
