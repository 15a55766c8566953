"""benchmarks/floor.py is a fair floor only if it emits what ours emits: the same spans
(name, kind, attributes, parent) and the same histogram records with the same attributes,
on every path the benchmark compares."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import instructions
from floor import Floor

from otel_llm_usage import LangChainUsageInstrumentor
from otel_llm_usage import semconv as sc

TIMES = (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,)


def _emitted(mode: str, body: Callable[[], Any]) -> tuple[list[Any], list[Any]]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    if mode == "floor":
        floor = Floor(tracer_provider, meter_provider)
        floor.instrument()
    else:
        ours = LangChainUsageInstrumentor()
        ours.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with tracer_provider.get_tracer("app").start_as_current_span("app"):
            result = body()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
    finally:
        if mode == "floor":
            floor.uninstrument()
        else:
            ours.uninstrument()
    spans = [
        (
            span.name,
            span.kind,
            span.parent.span_id if span.parent else None,
            {k: v for k, v in (span.attributes or {}).items() if k not in TIMES},
            sorted(k for k in (span.attributes or {}) if k in TIMES),
        )
        for span in exporter.get_finished_spans()
        if span.name != "app" and span.kind == trace.SpanKind.CLIENT
    ]
    app = next(s for s in exporter.get_finished_spans() if s.name == "app")
    assert all(parent == app.context.span_id for _, _, parent, _, _ in spans)
    spans = [(name, kind, attributes, times) for name, kind, _, attributes, times in spans]
    records = []
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    if hasattr(point, "bucket_counts"):
                        tokens = metric.name == sc.GEN_AI_CLIENT_TOKEN_USAGE
                        records.append(
                            (
                                metric.name,
                                metric.unit,
                                dict(point.attributes),
                                point.count,
                                point.sum if tokens else None,
                                tuple(point.explicit_bounds),
                            )
                        )
    return spans, sorted(records, key=repr)


@pytest.fixture(scope="module")
def scenario_bodies() -> Iterator[dict[str, Callable[[], Any]]]:
    yield instructions.bodies()


@pytest.mark.parametrize(
    "scenario",
    [
        "invoke",
        "ainvoke",
        "stream_k20",
        "astream_k20",
        "astream_events_v2",
        "batch8",
        "new_instance",
    ],
)
def test_floor_emits_what_ours_emits(
    scenario: str, scenario_bodies: dict[str, Callable[[], Any]]
) -> None:
    body = scenario_bodies[scenario]
    floor_spans, floor_records = _emitted("floor", body)
    our_spans, our_records = _emitted("ours", body)
    assert len(our_spans) == (8 if scenario == "batch8" else 1)
    cost = sc.GEN_AI_USAGE_COST_AMOUNT
    for ours, floor in zip(our_spans, floor_spans, strict=True):
        assert ours[2].pop(cost) == pytest.approx(floor[2].pop(cost), rel=1e-12)
    assert floor_spans == our_spans
    assert floor_records == our_records
