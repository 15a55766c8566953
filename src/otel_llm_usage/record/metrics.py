"""The metric instruments and the running totals our observable counters report.

One :class:`Instruments` per meter provider. A call adds to the totals of its
:class:`Series` (one metric attribute set) and records the standard histograms.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from otel_llm_usage import semconv as sc
from otel_llm_usage.extract.providers import ModelInfo
from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.record.custom_attributes import Pairs

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

    def record_call(
        self,
        series: Series,
        duration: float,
        usage: Usage | None,
        source: str,
        cost: float | None,
        first_chunk: float | None = None,
        per_chunk: float | None = None,
        output_tokens: bool = True,
    ) -> None:
        """One call: the standard histograms (reported tokens only; ``output_tokens``
        False for operations that have none, such as embeddings) and our totals."""
        attributes = series.attributes
        self.duration.record(duration, attributes)
        if usage is not None and source == sc.USAGE_SOURCE_REPORTED:
            token_attributes = series.token_usage_attributes
            self.token_usage.record(usage.input, token_attributes[0])
            if output_tokens:
                self.token_usage.record(usage.output, token_attributes[1])
        if first_chunk is not None:
            self.time_to_first_chunk.record(first_chunk, attributes)
        if per_chunk is not None:
            self.time_per_output_chunk.record(per_chunk, attributes)
        with self.lock:
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
