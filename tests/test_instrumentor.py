"""instrument()/uninstrument(): what is patched is restored, nothing is patched twice."""

from __future__ import annotations

from importlib.metadata import entry_points

from fakes import FakeChat
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_llm_usage import LangChainUsageInstrumentor
from otel_llm_usage.patch.instrumentor import PATCHES, _owner


def current(owner: object, attribute: str) -> object:
    return vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)


def originals() -> dict[tuple[object, str], object]:
    found = {}
    for module, path, _, _ in PATCHES:
        located = _owner(module, path)
        assert located is not None, f"{module}.{path} moved"  # every target is installed
        found[located] = current(*located)
    return found


def test_every_patch_target_exists_in_installed_versions():
    assert len(originals()) == len(PATCHES)


def test_uninstrument_restores_every_attribute_and_cycles_cleanly(telemetry):
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    before = originals()
    for _ in range(100):
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
        instrumentor.instrument()  # a second call patches nothing more
        for key, original in before.items():
            patched = current(*key)
            assert patched is not original
            assert patched.__wrapped__ is original  # one layer, never two
        instrumentor.uninstrument()
        assert originals() == before
    FakeChat().invoke("hi")
    list(FakeChat().stream("hi"))
    assert telemetry.spans() == []
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    FakeChat().invoke("hi")
    assert len(telemetry.model_spans()) == 1
    # counters are cumulative across re-instrumentation with the same meter provider
    assert telemetry.tokens("input") == 11


def test_fresh_providers_get_fresh_counters():
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    instrumentor = LangChainUsageInstrumentor()
    readers = []
    for _ in range(2):
        reader = InMemoryMetricReader()
        readers.append(reader)
        instrumentor.instrument(
            tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader])
        )
        try:
            FakeChat().invoke("hi")
        finally:
            instrumentor.uninstrument()
    for reader in readers:
        points = [
            point
            for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == "llm_usage.tokens"
            for point in metric.data.data_points
            if point.attributes["gen_ai.token.type"] == "input"
        ]
        assert [p.value for p in points] == [11]


def test_registered_as_opentelemetry_instrumentor():
    found = [
        ep
        for ep in entry_points(group="opentelemetry_instrumentor")
        if ep.value == "otel_llm_usage:LangChainUsageInstrumentor"
    ]
    assert len(found) == 1
    assert found[0].load() is LangChainUsageInstrumentor


def test_no_sdk_means_non_recording_spans_and_no_errors():
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(
        tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
    )
    try:
        assert FakeChat().invoke("hi").usage_metadata["input_tokens"] == 11
        assert len(list(FakeChat().stream("hi"))) == 6
    finally:
        instrumentor.uninstrument()
