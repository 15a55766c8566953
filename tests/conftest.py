from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm_usage import LangChainUsageInstrumentor
from otel_llm_usage.internal import forget_reported
from otel_llm_usage.internal import logger as internal_logger

# The local provider the tests talk to is the examples' one (examples/_provider_server.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "internal_errors: the test provokes failures inside the instrumentation on purpose "
        "(their warnings do not fail it)",
    )


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_internal_errors(request: pytest.FixtureRequest) -> Iterator[list[logging.LogRecord]]:
    """Every test fails on a failure inside the instrumentation (a warning on the
    ``otel_llm_usage.internal`` logger), unless it is marked ``internal_errors``."""
    forget_reported()
    collect = _Collect()
    internal_logger.addHandler(collect)
    try:
        yield collect.records
    finally:
        internal_logger.removeHandler(collect)
        forget_reported()
    if collect.records and request.node.get_closest_marker("internal_errors") is None:
        messages = [record.getMessage() for record in collect.records]
        pytest.fail(f"failures inside the instrumentation: {messages}")


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def model_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.instrumentation_scope.name == "otel_llm_usage"]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name → its data points."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def counter(self, name: str, **match: Any) -> int | float:
        """Sum of a metric's points whose attributes contain ``match`` (dots as '__')."""
        wanted = {k.replace("__", "."): v for k, v in match.items()}
        total: int | float = 0
        for point in self.metrics().get(name, []):
            attributes = dict(point.attributes)
            if all(attributes.get(k) == v for k, v in wanted.items()):
                total += point.sum if hasattr(point, "sum") else point.value
        return total

    def tokens(self, token_type: str) -> int | float:
        return self.counter("llm_usage.tokens", gen_ai__token__type=token_type)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = LangChainUsageInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:  # left over by an earlier test
        instrumentor.uninstrument()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Telemetry(exporter, reader, tracer_provider, meter_provider)
    finally:
        instrumentor.uninstrument()


@pytest.fixture(scope="module")
def module_server() -> Iterator[Any]:
    """The local provider (examples/_provider_server.py), one per test module: the
    provider packages cache their async HTTP clients by base URL."""
    from _provider_server import ProviderServer

    with ProviderServer() as running:
        yield running


@pytest.fixture
def server(module_server: Any) -> Iterator[Any]:
    """The module's server with a fresh script; a test must use every reply it scripts."""
    module_server.reset()
    yield module_server
    assert module_server.pending == 0, "the test scripted replies it did not use"
    module_server.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake AWS credentials and no local AWS configuration; nothing leaves the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
