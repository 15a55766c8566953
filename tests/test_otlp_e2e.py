"""End to end: ``opentelemetry-instrument python app.py`` → real OTLP exporters → receiver.

The app (tests/apps/otlp_app.py) never imports otel_llm_usage: the instrumentor is found
through its ``opentelemetry_instrumentor`` entry point, as a user would get it. What
arrives is decoded with opentelemetry-proto (tests/otlp_receiver.py), so these tests see
the wire types (an int attribute must arrive as ``int_value``), the resource, the
instrumentation scope, the trace tree, and the metric streams' kinds, temporality and
bucket boundaries, over OTLP/gRPC and OTLP/HTTP (protobuf, plain and gzip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import (
    GRPC,
    HTTP,
    FlatPoint,
    FlatSpan,
    OTLPReceiver,
    Typed,
    array,
    boolean,
    double,
    integer,
    string,
)

import otel_llm_usage
from otel_llm_usage import semconv as sc

pytestmark = pytest.mark.e2e  # real processes: `pytest -m "not e2e"` leaves them out

APP = Path(__file__).resolve().parent / "apps" / "otlp_app.py"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
SERVICE = "otlp-e2e"
SCOPE = "otel_llm_usage"
SCHEMA_URL = sc.SCHEMA_URL
BURST = 5000
APP_TIMEOUT = 60

# What every span of FakeChat() carries from the request side.
REQUEST = {
    sc.GEN_AI_OPERATION_NAME: string("chat"),
    sc.GEN_AI_PROVIDER_NAME: string("openai"),
    sc.GEN_AI_REQUEST_MODEL: string("gpt-4o-mini"),
    sc.GEN_AI_REQUEST_TEMPERATURE: double(0.2),
    sc.GEN_AI_REQUEST_MAX_TOKENS: integer(256),
    sc.SERVER_ADDRESS: string("api.openai.com"),
    sc.SERVER_PORT: integer(443),
}
# ... and from the response side when the call succeeds (usage 11/16, genai-prices cost).
RESPONSE = {
    sc.GEN_AI_RESPONSE_MODEL: string("gpt-4o-mini-2024-07-18"),
    sc.GEN_AI_RESPONSE_FINISH_REASONS: array(string("stop")),
    sc.GEN_AI_USAGE_INPUT_TOKENS: integer(11),
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: integer(16),
    sc.GEN_AI_USAGE_COST_AMOUNT: double(1.125e-05),
    sc.GEN_AI_USAGE_COST_CURRENCY: string("USD"),
    sc.GEN_AI_USAGE_COST_SOURCE: string("local"),
}
# Metric attributes of the successful calls' series.
SERIES = {
    sc.GEN_AI_OPERATION_NAME: string("chat"),
    sc.GEN_AI_PROVIDER_NAME: string("openai"),
    sc.GEN_AI_REQUEST_MODEL: string("gpt-4o-mini"),
    sc.GEN_AI_RESPONSE_MODEL: string("gpt-4o-mini-2024-07-18"),
    sc.SERVER_ADDRESS: string("api.openai.com"),
    sc.SERVER_PORT: integer(443),
}
ERROR_SERIES = {
    **{k: v for k, v in SERIES.items() if k != sc.GEN_AI_RESPONSE_MODEL},
    sc.ERROR_TYPE: string("fakes.ProviderError"),
}
SCALAR_KINDS = {"string_value", "int_value", "double_value", "bool_value"}


# --------------------------------------------------------------------------- running the app


@dataclass
class AppRun:
    protocol: str
    compression: str | None
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report: dict[str, Any]


def app_env(
    protocol: str, endpoint: str | None, compression: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a user who configures the SDK only through OTEL_* variables.

    Inherited OTEL_* variables are dropped so the developer's shell cannot change the
    result (a temporality preference, another exporter...).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_SERVICE_NAME=SERVICE,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_METRIC_EXPORT_INTERVAL="500",
        PYTHONUNBUFFERED="1",
    )
    # No OTEL_PYTHON_DISABLED_INSTRUMENTATIONS: ours is the only instrumentor installed
    # here, and should another opentelemetry-instrumentation-* package appear, its
    # spans and metrics fail test_only_our_scopes rather than go unnoticed.
    if endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env["OTEL_EXPORTER_OTLP_INSECURE"] = "true"
    if compression is not None:
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = compression
    env.update(extra)
    return env


def run_app(env: dict[str, str]) -> AppRun:
    assert INSTRUMENT.exists(), f"{INSTRUMENT} missing: is opentelemetry-distro installed?"
    start = time.perf_counter()
    done = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(APP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=APP_TIMEOUT,
        check=False,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"app failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"app printed no report:\n{done.stdout}\n{done.stderr}"
    return AppRun(
        env["OTEL_EXPORTER_OTLP_PROTOCOL"],
        env.get("OTEL_EXPORTER_OTLP_COMPRESSION"),
        done.returncode,
        done.stdout,
        done.stderr,
        seconds,
        json.loads(lines[-1]),
    )


@dataclass
class Basic:
    receiver: OTLPReceiver
    run: AppRun

    def spans(self) -> list[FlatSpan]:
        return self.receiver.spans()

    def model_spans(self) -> list[FlatSpan]:
        return [s for s in self.spans() if s.scope_name == SCOPE]

    def parent(self) -> FlatSpan:
        found = [s for s in self.spans() if s.name == "handle request"]
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def invoke_span(self) -> FlatSpan:
        return self._one(
            lambda s: (
                sc.GEN_AI_REQUEST_STREAM not in s.attributes
                and s.status_code != "STATUS_CODE_ERROR"
            )
        )

    def stream_span(self) -> FlatSpan:
        return self._one(lambda s: sc.GEN_AI_REQUEST_STREAM in s.attributes)

    def error_span(self) -> FlatSpan:
        return self._one(lambda s: s.status_code == "STATUS_CODE_ERROR")

    def _one(self, match: Any) -> FlatSpan:
        found = [s for s in self.model_spans() if match(s)]
        assert len(found) == 1, describe(self.model_spans())
        return found[0]

    def points(self, name: str) -> list[FlatPoint]:
        return self.receiver.latest_points(name, SCOPE)


def describe(spans: list[FlatSpan]) -> str:
    return "\n".join(
        f"{s.scope_name} {s.name!r} {s.kind} {s.status_code} {s.attributes}" for s in spans
    )


BASIC_CASES = [
    pytest.param((GRPC, None), id="grpc"),
    pytest.param((HTTP, None), id="http-protobuf"),
    pytest.param((HTTP, "gzip"), id="http-protobuf-gzip"),
]


@pytest.fixture(scope="module", params=BASIC_CASES)
def basic(request: pytest.FixtureRequest) -> Iterator[Basic]:
    """One app run (invoke, stream, failing invoke) per protocol, shared by the tests."""
    protocol, compression = request.param
    with OTLPReceiver() as receiver:
        run = run_app(app_env(protocol, receiver.endpoint(protocol), compression))
        # The SDK exports synchronously at shutdown, so everything is here once the
        # process has exited; the wait only guards against a slow loopback.
        receiver.wait_for(lambda r: len(r.spans()) >= 4 and bool(r.received("metrics")), 5)
        yield Basic(receiver, run)


def only(points: list[FlatPoint], **attributes: Typed) -> FlatPoint:
    """The one point whose attributes include ``attributes`` (keys with '__' for '.')."""
    wanted = {k.replace("__", "."): v for k, v in attributes.items()}
    found = [p for p in points if all(p.attributes.get(k) == v for k, v in wanted.items())]
    assert len(found) == 1, f"{wanted} matched {[p.attributes for p in found]} of {points}"
    return found[0]


def assert_contains(actual: dict[str, Typed], expected: dict[str, Typed]) -> None:
    wrong = {k: (actual.get(k, "<missing>"), v) for k, v in expected.items() if actual.get(k) != v}
    assert not wrong, "attribute: (received, expected)\n" + "\n".join(
        f"  {k}: {got!r} != {want!r}" for k, (got, want) in wrong.items()
    )


# --------------------------------------------------------------------------- transport


def test_app_ran_with_the_sdk(basic: Basic) -> None:
    assert basic.run.report["tracer_provider"] == "TracerProvider"
    assert basic.run.report["meter_provider"] == "MeterProvider"
    assert basic.run.report["errors"] == 1
    # nothing from the SDK or the instrumentor went wrong loudly
    assert "Traceback" not in basic.run.stderr, basic.run.stderr
    assert "Failed to export" not in basic.run.stderr, basic.run.stderr


def test_everything_came_over_the_configured_protocol(basic: Basic) -> None:
    received = basic.receiver.received()
    assert {r.signal for r in received} == {"traces", "metrics"}
    assert {r.transport for r in received} == {basic.run.protocol}
    for r in received:
        agent = r.headers.get("user-agent", "")
        assert agent.startswith("OTel-OTLP-Exporter-Python") or "grpc-python" in agent, agent
        if basic.run.protocol == HTTP:
            assert r.headers.get("content-type") == "application/x-protobuf"
            assert r.headers.get("content-encoding") == basic.run.compression


# --------------------------------------------------------------------------- resource, scope


def test_resource_names_the_service(basic: Basic) -> None:
    for span in basic.spans():
        assert span.resource["service.name"] == string(SERVICE)
        assert span.resource["telemetry.sdk.language"] == string("python")
    for point in basic.receiver.metric_points():
        assert point.resource["service.name"] == string(SERVICE)


def test_only_our_scopes(basic: Basic) -> None:
    assert {s.scope_name for s in basic.spans()} == {"app", SCOPE}
    assert {p.scope_name for p in basic.receiver.metric_points()} == {SCOPE}


def test_instrumentation_scope(basic: Basic) -> None:
    spans = basic.model_spans()
    assert len(spans) == 3, describe(basic.spans())
    for span in spans:
        assert span.scope_version == otel_llm_usage.__version__
        assert span.scope_schema_url == SCHEMA_URL
    for point in basic.receiver.metric_points():
        assert point.scope_version == otel_llm_usage.__version__
        assert point.scope_schema_url == SCHEMA_URL


# --------------------------------------------------------------------------- traces


def test_trace_tree(basic: Basic) -> None:
    parent = basic.parent()
    assert parent.parent_span_id == ""
    assert parent.kind == "SPAN_KIND_INTERNAL"
    for span in basic.model_spans():
        assert span.trace_id == parent.trace_id
        assert span.parent_span_id == parent.span_id
        assert span.kind == "SPAN_KIND_CLIENT"
        assert span.name == "chat gpt-4o-mini"
        assert parent.start_time_unix_nano <= span.start_time_unix_nano
        assert span.start_time_unix_nano <= span.end_time_unix_nano <= parent.end_time_unix_nano
    assert len({s.span_id for s in basic.spans()}) == 4


def test_invoke_span_attributes(basic: Basic) -> None:
    span = basic.invoke_span()
    assert span.status_code == "STATUS_CODE_UNSET"
    assert_contains(
        span.attributes,
        {
            **REQUEST,
            **RESPONSE,
            sc.GEN_AI_REQUEST_STOP_SEQUENCES: array(string("\n\nHuman:")),
            sc.GEN_AI_RESPONSE_ID: string("chatcmpl-fake-1"),
        },
    )
    for absent in (
        sc.GEN_AI_REQUEST_STREAM,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.LLM_USAGE_STREAM_CHUNKS,
        sc.LLM_USAGE_USAGE_MISSING,
        sc.LLM_USAGE_PRICE_MISSING,
        sc.ERROR_TYPE,
    ):
        assert absent not in span.attributes, absent


def test_stream_span_attributes(basic: Basic) -> None:
    span = basic.stream_span()
    assert span.status_code == "STATUS_CODE_UNSET"
    assert_contains(
        span.attributes,
        {
            **REQUEST,
            **RESPONSE,
            sc.GEN_AI_REQUEST_STREAM: boolean(True),
            sc.GEN_AI_RESPONSE_ID: string("chatcmpl-s1"),
            # five text chunks and the final usage-only chunk
            sc.LLM_USAGE_STREAM_CHUNKS: integer(6),
        },
    )
    first_chunk = span.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert first_chunk.kind == "double_value"
    duration = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
    assert 0 < first_chunk.value <= duration
    assert sc.GEN_AI_REQUEST_STOP_SEQUENCES not in span.attributes
    assert sc.ERROR_TYPE not in span.attributes


def test_failed_call_span(basic: Basic) -> None:
    span = basic.error_span()
    assert span.status_message == "rate limited"
    assert_contains(span.attributes, {**REQUEST, sc.ERROR_TYPE: string("fakes.ProviderError")})
    for absent in (
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_COST_AMOUNT,
        sc.GEN_AI_RESPONSE_FINISH_REASONS,
    ):
        assert absent not in span.attributes, absent
    # the parent is the app's business, which caught the error
    assert basic.parent().status_code == "STATUS_CODE_UNSET"


def test_attribute_values_are_scalars_or_homogeneous_arrays(basic: Basic) -> None:
    for span in basic.model_spans():
        assert span.dropped_attributes_count == 0
        for key, value in span.attributes.items():
            if value.kind == "array_value":
                kinds = {v.kind for v in value.value}
                assert len(kinds) == 1 and kinds <= SCALAR_KINDS, (key, value)
            else:
                assert value.kind in SCALAR_KINDS, (key, value)


# --------------------------------------------------------------------------- metrics


def assert_cumulative_sum(points: list[FlatPoint], unit: str) -> None:
    assert points
    for point in points:
        assert point.type == "sum"
        assert point.is_monotonic is True
        assert point.temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE"
        assert point.unit == unit


def test_token_counter(basic: Basic) -> None:
    points = basic.points(sc.LLM_USAGE_TOKENS)
    assert_cumulative_sum(points, "{token}")
    # Token types with a zero total (cache, reasoning) are not reported.
    assert len(points) == 2, points
    series = {k.replace(".", "__"): v for k, v in SERIES.items()}
    reported = {"llm_usage__usage__source": string("reported")}
    assert only(points, **series, **reported, gen_ai__token__type=string("input")).value == (
        integer(22)
    )
    assert only(points, **series, **reported, gen_ai__token__type=string("output")).value == (
        integer(32)
    )


def test_cost_counter(basic: Basic) -> None:
    points = basic.points(sc.LLM_USAGE_COST)
    assert_cumulative_sum(points, "USD")
    assert len(points) == 1, points
    assert points[0].attributes == {**SERIES, sc.LLM_USAGE_USAGE_SOURCE: string("reported")}
    assert points[0].value is not None
    assert points[0].value.kind == "double_value"
    assert points[0].value.value == pytest.approx(2 * 1.125e-05, rel=1e-9)


def test_request_counter(basic: Basic) -> None:
    points = basic.points(sc.LLM_USAGE_REQUESTS)
    assert_cumulative_sum(points, "{request}")
    assert len(points) == 2, points
    reported = only(points, llm_usage__usage__source=string("reported"))
    assert reported.attributes == {**SERIES, sc.LLM_USAGE_USAGE_SOURCE: string("reported")}
    assert reported.value == integer(2)
    failed = only(points, llm_usage__usage__source=string("error"))
    assert failed.attributes == {**ERROR_SERIES, sc.LLM_USAGE_USAGE_SOURCE: string("error")}
    assert failed.value == integer(1)


def assert_histogram(points: list[FlatPoint], unit: str, bounds: tuple[float, ...]) -> None:
    assert points
    for point in points:
        assert point.type == "histogram"
        assert point.temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE"
        assert point.unit == unit
        assert point.explicit_bounds == tuple(float(b) for b in bounds)
        assert len(point.bucket_counts) == len(bounds) + 1
        assert sum(point.bucket_counts) == point.count


def test_duration_histogram(basic: Basic) -> None:
    points = basic.points(sc.GEN_AI_CLIENT_OPERATION_DURATION)
    assert_histogram(points, "s", sc.DURATION_BUCKETS)
    assert len(points) == 2, points
    ok = only(points, gen_ai__response__model=SERIES[sc.GEN_AI_RESPONSE_MODEL])
    assert ok.attributes == SERIES
    assert ok.count == 2
    failed = only(points, error__type=string("fakes.ProviderError"))
    assert failed.attributes == ERROR_SERIES
    assert failed.count == 1


def test_token_usage_histogram(basic: Basic) -> None:
    points = basic.points(sc.GEN_AI_CLIENT_TOKEN_USAGE)
    assert_histogram(points, "{token}", sc.TOKEN_BUCKETS)
    assert len(points) == 2, points
    for token_type, total in (("input", 22), ("output", 32)):
        point = only(points, gen_ai__token__type=string(token_type))
        assert point.attributes == {**SERIES, sc.GEN_AI_TOKEN_TYPE: string(token_type)}
        assert (point.count, point.sum) == (2, total)
        # 11 and 16 both fall in the (4, 16] bucket
        assert point.bucket_counts[2] == 2
        assert (point.min, point.max) == (total / 2, total / 2)


def test_stream_timing_histograms(basic: Basic) -> None:
    for name, bounds in (
        (sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, sc.FIRST_CHUNK_BUCKETS),
        (sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK, sc.PER_CHUNK_BUCKETS),
    ):
        points = basic.points(name)
        assert_histogram(points, "s", bounds)
        assert len(points) == 1, (name, points)
        assert points[0].attributes == SERIES
        assert points[0].count == 1


def test_metric_attributes_keep_their_types(basic: Basic) -> None:
    for point in basic.receiver.metric_points():
        if sc.SERVER_PORT in point.attributes:
            assert point.attributes[sc.SERVER_PORT] == integer(443)
        for key, value in point.attributes.items():
            assert value.kind in SCALAR_KINDS, (point.name, key, value)


# --------------------------------------------------------------------------- default ports


def default_port_receiver() -> tuple[OTLPReceiver | None, str]:
    try:
        return OTLPReceiver.on_default_ports().start(), ""
    except RuntimeError as exc:
        return None, str(exc)


@pytest.mark.parametrize("protocol", [GRPC, HTTP], ids=["grpc-4317", "http-4318"])
def test_default_endpoint(protocol: str) -> None:
    """No OTEL_EXPORTER_OTLP_ENDPOINT: the exporter's default localhost:4317 / :4318, as
    when an app sends straight to a Jaeger-all-in-one style backend on the same host."""
    receiver, busy = default_port_receiver()
    if receiver is None:  # a local Collector or Jaeger (as the README suggests) has them
        pytest.skip(
            "needs the OTLP default ports 127.0.0.1:4317 and :4318 free, to stand in for "
            f"a local Collector; stop the one running to run it: {busy}"
        )
    with receiver:
        run_app(app_env(protocol, None))
        receiver.wait_for(lambda r: len(r.spans()) >= 4, 5)
        spans = receiver.spans()
        assert {s.transport for s in spans} == {protocol}
        parent = [s for s in spans if s.name == "handle request"]
        chats = [s for s in spans if s.scope_name == SCOPE]
        assert len(parent) == 1 and len(chats) == 3, describe(spans)
        assert {s.parent_span_id for s in chats} == {parent[0].span_id}
        assert all(s.resource["service.name"] == string(SERVICE) for s in spans)
        tokens = receiver.latest_points(sc.LLM_USAGE_TOKENS, SCOPE)
        assert sum(p.value.value for p in tokens if p.value is not None) == 22 + 32


# --------------------------------------------------------------------------- burst


@dataclass
class Burst:
    run: AppRun
    spans: list[FlatSpan]
    chats: list[FlatSpan]
    parents: list[FlatSpan]
    invokes: int
    dropped: int  # as counted by the SDK (otel.sdk.processor.span.processed, queue_full)
    logged: bool  # "Queue full, dropping Span." on the app's stderr
    summary: dict[str, Any]


def burst(receiver: OTLPReceiver, invokes: int = BURST, **env: str) -> Burst:
    """Run the app's burst mode against ``receiver``, with the SDK's own metrics on so
    that a drop is also counted, and collect what arrived."""
    run = run_app(
        app_env(
            GRPC,
            receiver.endpoint(GRPC),
            OTLP_APP_MODE="burst",
            OTLP_APP_BURST=str(invokes),
            OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED="true",
            **env,
        )
    )
    receiver.wait_for(lambda r: len(r.spans()) >= invokes + 1, 2)
    spans = receiver.spans()
    dropped = sum(
        int(p.value.value)
        for p in receiver.latest_points("otel.sdk.processor.span.processed")
        if p.attributes.get("error.type") == string("queue_full") and p.value is not None
    )
    logged = "Queue full, dropping Span" in run.stderr
    chats = [s for s in spans if s.scope_name == SCOPE]
    parents = [s for s in spans if s.name == "handle request"]
    summary = {
        "invokes": invokes,
        "env": env,
        "app_seconds": round(run.seconds, 2),
        "burst_seconds": round(run.report["seconds"], 2),
        "received_spans": len(spans),
        "received_chat_spans": len(chats),
        "received_parent": len(parents),
        "sdk_counted_dropped": dropped,
        "drop_logged_on_stderr": logged,
        "trace_requests": len(receiver.received("traces")),
    }
    print("burst:", json.dumps(summary))
    assert len({s.span_id for s in spans}) == len(spans), "a span arrived twice"
    if parents:
        assert {s.parent_span_id for s in chats} == {parents[0].span_id}
    # Metrics are not queued per call: their totals are exact even when spans are lost.
    tokens = receiver.latest_points(sc.LLM_USAGE_TOKENS, SCOPE)
    by_type = {p.attributes[sc.GEN_AI_TOKEN_TYPE].value: p.value for p in tokens}
    assert by_type == {"input": integer(11 * invokes), "output": integer(16 * invokes)}, summary
    return Burst(run, spans, chats, parents, invokes, dropped, logged, summary)


def assert_drops_accounted(result: Burst) -> None:
    """Spans were lost: the SDK must have said so on stderr and counted them.

    The SDK counts a drop when it finds the queue full, just before adding; if its
    worker takes a batch in between, nothing is lost but one drop is counted. So the
    count may exceed the loss by at most one per batch exported.
    """
    expected = result.invokes + 1
    received = len(result.spans)
    assert result.logged, f"spans lost silently: {result.summary}\n{result.run.stderr[-2000:]}"
    assert result.dropped > 0, result.summary
    excess = received + result.dropped - expected
    assert 0 <= excess <= result.summary["trace_requests"], result.summary


def test_burst_with_default_batch_processor(record_property: Any) -> None:
    """5,000 invokes back to back with the SDK's default BatchSpanProcessor (queue 2048,
    batch 512, delay 5 s). Every span must arrive, or the SDK must say it dropped some."""
    with OTLPReceiver() as receiver:
        result = burst(receiver)
    record_property("burst", json.dumps(result.summary))
    if result.logged or result.dropped or len(result.spans) < BURST + 1:
        assert_drops_accounted(result)
    else:
        assert len(result.chats) == BURST, result.summary
        assert len(result.parents) == 1, result.summary


def test_burst_against_a_slow_backend_drops_visibly(record_property: Any) -> None:
    """A backend that takes 0.5 s per trace export and a 256-span queue: the SDK must
    drop (the app is never blocked by export), and say so."""
    with OTLPReceiver(trace_delay=0.5) as receiver:
        result = burst(
            receiver,
            2000,
            OTEL_BSP_MAX_QUEUE_SIZE="256",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="128",
        )
    record_property("burst", json.dumps(result.summary))
    assert len(result.spans) < result.invokes + 1, result.summary
    assert_drops_accounted(result)
    # the queue keeps the newest spans: the parent, ended last, is never the one dropped
    assert len(result.parents) == 1, result.summary


# --------------------------------------------------------------------------- an agent run

AGENT = "invoke_agent search_agent"
AGENT_CHAT = "chat gpt-3.5-turbo-0125"
TOOL = "execute_tool search"
# The app's two model calls: a tool call (611 in / 32 out), then the answer (927 / 105),
# priced at gpt-3.5-turbo's $0.50 / $1.50 per million tokens.
AGENT_INPUT = (611, 927)
AGENT_OUTPUT = (32, 105)
AGENT_COST = 0.0009745  # 0.0003535 + 0.000621


@dataclass
class AgentTrace:
    receiver: OTLPReceiver
    run: AppRun

    def spans(self) -> list[FlatSpan]:
        return self.receiver.spans()

    def named(self, name: str) -> list[FlatSpan]:
        return sorted(
            (s for s in self.spans() if s.name == name), key=lambda s: s.start_time_unix_nano
        )

    def one(self, name: str) -> FlatSpan:
        found = self.named(name)
        assert len(found) == 1, describe(self.spans())
        return found[0]


@pytest.fixture(scope="module")
def agent_trace() -> Iterator[AgentTrace]:
    """One run of the app's agent mode (create_agent + a tool) under opentelemetry-instrument,
    exported over OTLP/gRPC."""
    with OTLPReceiver() as receiver:
        run = run_app(app_env(GRPC, receiver.endpoint(GRPC), OTLP_APP_MODE="agent"))
        receiver.wait_for(lambda r: len(r.spans()) >= 5 and bool(r.received("metrics")), 5)
        yield AgentTrace(receiver, run)


def test_agent_app_ran(agent_trace: AgentTrace) -> None:
    assert agent_trace.run.report["mode"] == "agent"
    assert agent_trace.run.report["answer"] == "The Kansas City Chiefs won."
    assert agent_trace.run.report["model_calls"] == 2
    assert "Traceback" not in agent_trace.run.stderr, agent_trace.run.stderr
    assert "Failed to export" not in agent_trace.run.stderr, agent_trace.run.stderr


def test_agent_trace_tree(agent_trace: AgentTrace) -> None:
    """app span → invoke_agent → (chat, execute_tool, chat): the model calls and the tool
    run are the agent span's direct children (no LangGraph node spans in between)."""
    spans = agent_trace.spans()
    assert sorted(s.name for s in spans) == sorted(
        ["handle request", AGENT, AGENT_CHAT, TOOL, AGENT_CHAT]
    ), describe(spans)
    app = agent_trace.one("handle request")
    agent = agent_trace.one(AGENT)
    first, second = agent_trace.named(AGENT_CHAT)
    tool = agent_trace.one(TOOL)
    assert {s.trace_id for s in spans} == {app.trace_id}
    assert len({s.span_id for s in spans}) == 5
    assert (app.parent_span_id, app.scope_name, app.kind) == ("", "app", "SPAN_KIND_INTERNAL")
    assert agent.parent_span_id == app.span_id
    for child in (first, tool, second):
        assert child.parent_span_id == agent.span_id, describe(spans)
    assert (agent.kind, tool.kind) == ("SPAN_KIND_INTERNAL", "SPAN_KIND_INTERNAL")
    assert (first.kind, second.kind) == ("SPAN_KIND_CLIENT", "SPAN_KIND_CLIENT")
    for span in (agent, first, tool, second):
        assert span.scope_name == SCOPE
        assert span.scope_version == otel_llm_usage.__version__
        assert span.status_code == "STATUS_CODE_UNSET"
    # in time: the agent inside the app span, its children inside it and in order
    assert app.start_time_unix_nano <= agent.start_time_unix_nano
    assert agent.end_time_unix_nano <= app.end_time_unix_nano
    assert agent.start_time_unix_nano <= first.start_time_unix_nano
    assert first.end_time_unix_nano <= tool.start_time_unix_nano
    assert tool.end_time_unix_nano <= second.start_time_unix_nano
    assert second.end_time_unix_nano <= agent.end_time_unix_nano


def test_agent_span_carries_the_sum_of_its_calls_with_wire_types(agent_trace: AgentTrace) -> None:
    agent = agent_trace.one(AGENT)
    chats = agent_trace.named(AGENT_CHAT)
    assert [c.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] for c in chats] == [
        integer(n) for n in AGENT_INPUT
    ]
    assert [c.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] for c in chats] == [
        integer(n) for n in AGENT_OUTPUT
    ]
    # the roll-ups under our names: gen_ai.usage.* stays on the inference spans only
    assert {k: v for k, v in agent.attributes.items() if k != sc.LLM_USAGE_AGENT_COST_AMOUNT} == {
        sc.GEN_AI_OPERATION_NAME: string("invoke_agent"),
        sc.GEN_AI_AGENT_NAME: string("search_agent"),
        sc.GEN_AI_PROVIDER_NAME: string("openai"),
        sc.LLM_USAGE_MODEL_CALLS: integer(2),
        sc.LLM_USAGE_AGENT_INPUT_TOKENS: integer(sum(AGENT_INPUT)),  # 1538
        sc.LLM_USAGE_AGENT_OUTPUT_TOKENS: integer(sum(AGENT_OUTPUT)),  # 137
        sc.LLM_USAGE_AGENT_CACHE_READ_INPUT_TOKENS: integer(0),
        sc.LLM_USAGE_AGENT_CACHE_CREATION_INPUT_TOKENS: integer(0),
        sc.LLM_USAGE_AGENT_REASONING_OUTPUT_TOKENS: integer(0),
        sc.LLM_USAGE_AGENT_COST_CURRENCY: string("USD"),
    }
    cost = agent.attributes[sc.LLM_USAGE_AGENT_COST_AMOUNT]
    assert cost.kind == "double_value"
    assert cost.value == pytest.approx(AGENT_COST, rel=1e-12)
    chat_costs = [c.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] for c in chats]
    assert {c.kind for c in chat_costs} == {"double_value"}
    assert [c.value for c in chat_costs] == [
        pytest.approx(0.0003535, rel=1e-12),
        pytest.approx(0.000621, rel=1e-12),
    ]
    assert cost.value == pytest.approx(sum(c.value for c in chat_costs), rel=1e-12)


def test_agent_tool_span(agent_trace: AgentTrace) -> None:
    assert agent_trace.one(TOOL).attributes == {
        sc.GEN_AI_OPERATION_NAME: string("execute_tool"),
        sc.GEN_AI_TOOL_NAME: string("search"),
        sc.GEN_AI_TOOL_TYPE: string("function"),
        sc.GEN_AI_TOOL_DESCRIPTION: string("Search the web."),
        sc.GEN_AI_TOOL_CALL_ID: string("call_1"),
    }


def test_agent_metrics_agree_with_the_agent_span(agent_trace: AgentTrace) -> None:
    receiver = agent_trace.receiver
    tokens = receiver.latest_points(sc.LLM_USAGE_TOKENS, SCOPE)
    by_type = {p.attributes[sc.GEN_AI_TOKEN_TYPE].value: p.value for p in tokens}
    assert by_type == {"input": integer(1538), "output": integer(137)}
    (requests,) = receiver.latest_points(sc.LLM_USAGE_REQUESTS, SCOPE)
    assert requests.value == integer(2)
    (cost,) = receiver.latest_points(sc.LLM_USAGE_COST, SCOPE)
    assert cost.value is not None and cost.value.kind == "double_value"
    assert cost.value.value == pytest.approx(AGENT_COST, rel=1e-12)
