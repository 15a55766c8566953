"""A small in-process OTLP receiver for end-to-end tests: gRPC and HTTP/protobuf.

It stands in for a Collector (or a Jaeger-all-in-one style backend): the real OTLP
exporters of the SDK send to it over the network, and it decodes every request with
the generated ``opentelemetry-proto`` classes (no hand-parsed bytes). Tests read back
flattened spans and metric points whose attribute values keep their OTLP ``AnyValue``
kind (``int_value``, ``double_value``, ``string_value``, ``bool_value``,
``array_value``...), so "an int arrived as an int" can be asserted.

    with OTLPReceiver() as receiver:            # free ports on 127.0.0.1
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint("grpc")
        ...
        spans = receiver.spans()

    OTLPReceiver.on_default_ports()              # 127.0.0.1:4317 (gRPC) + :4318 (HTTP)
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 4317
DEFAULT_HTTP_PORT = 4318

GRPC = "grpc"
HTTP = "http/protobuf"

# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Typed:
    """An OTLP ``AnyValue``: which field of the oneof was set, and its value.

    ``array_value`` holds a tuple of :class:`Typed`; ``kvlist_value`` a tuple of
    ``(key, Typed)`` pairs; ``bytes_value`` bytes; ``None`` kind means unset.
    """

    kind: str | None
    value: Any

    def __repr__(self) -> str:
        return f"{self.kind}({self.value!r})"

    @property
    def plain(self) -> Any:
        """The value without its kind (arrays as lists, kvlists as dicts)."""
        if self.kind == "array_value":
            return [v.plain for v in self.value]
        if self.kind == "kvlist_value":
            return {k: v.plain for k, v in self.value}
        return self.value


def string(value: str) -> Typed:
    return Typed("string_value", value)


def integer(value: int) -> Typed:
    return Typed("int_value", value)


def double(value: float) -> Typed:
    return Typed("double_value", value)


def boolean(value: bool) -> Typed:
    return Typed("bool_value", value)


def array(*values: Typed) -> Typed:
    return Typed("array_value", tuple(values))


def typed(value: common_pb2.AnyValue) -> Typed:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return Typed(kind, tuple(typed(v) for v in value.array_value.values))
    if kind == "kvlist_value":
        return Typed(kind, tuple((kv.key, typed(kv.value)) for kv in value.kvlist_value.values))
    if kind is None:
        return Typed(None, None)
    return Typed(kind, getattr(value, kind))


def attributes(pairs: Iterable[common_pb2.KeyValue]) -> dict[str, Typed]:
    return {kv.key: typed(kv.value) for kv in pairs}


def plain(values: dict[str, Typed]) -> dict[str, Any]:
    return {k: v.plain for k, v in values.items()}


# --------------------------------------------------------------------------- flat records


@dataclass
class Received:
    """One decoded export request and how it arrived."""

    signal: str  # "traces" | "metrics" | "logs"
    transport: str  # GRPC | HTTP
    request: Any
    headers: dict[str, str]
    received_at: float = field(default_factory=time.time)


@dataclass
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Typed]


@dataclass
class FlatSpan:
    transport: str
    resource: dict[str, Typed]
    resource_schema_url: str
    scope_name: str
    scope_version: str
    scope_attributes: dict[str, Typed]
    scope_schema_url: str
    trace_id: str  # hex
    span_id: str  # hex
    parent_span_id: str  # hex, "" for a root span
    name: str
    kind: str  # "SPAN_KIND_CLIENT", ...
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Typed]
    dropped_attributes_count: int
    events: list[SpanEvent]
    links: int
    status_code: str  # "STATUS_CODE_UNSET" | "STATUS_CODE_OK" | "STATUS_CODE_ERROR"
    status_message: str
    flags: int


@dataclass
class FlatPoint:
    """One metric data point with its metric's and stream's description."""

    transport: str
    resource: dict[str, Typed]
    scope_name: str
    scope_version: str
    scope_schema_url: str
    name: str
    unit: str
    description: str
    type: str  # "sum" | "gauge" | "histogram" | "exponential_histogram" | "summary"
    is_monotonic: bool | None  # sums only
    temporality: str | None  # "AGGREGATION_TEMPORALITY_CUMULATIVE", ...; sums, histograms
    attributes: dict[str, Typed]
    start_time_unix_nano: int
    time_unix_nano: int
    value: Typed | None = None  # sums and gauges: int_value (as_int) or double_value (as_double)
    count: int | None = None  # histograms
    sum: float | None = None
    min: float | None = None
    max: float | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity of the time series this point belongs to."""
        return (
            self.scope_name,
            self.name,
            tuple(sorted((k, repr(v)) for k, v in self.attributes.items())),
        )


_SPAN_KIND = trace_pb2.Span.SpanKind
_STATUS_CODE = trace_pb2.Status.StatusCode
_TEMPORALITY = metrics_pb2.AggregationTemporality


def _flatten_spans(received: Received) -> list[FlatSpan]:
    spans: list[FlatSpan] = []
    for resource_spans in received.request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                spans.append(
                    FlatSpan(
                        transport=received.transport,
                        resource=resource,
                        resource_schema_url=resource_spans.schema_url,
                        scope_name=scope.name,
                        scope_version=scope.version,
                        scope_attributes=attributes(scope.attributes),
                        scope_schema_url=scope_spans.schema_url,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_SPAN_KIND.Name(span.kind),
                        start_time_unix_nano=span.start_time_unix_nano,
                        end_time_unix_nano=span.end_time_unix_nano,
                        attributes=attributes(span.attributes),
                        dropped_attributes_count=span.dropped_attributes_count,
                        events=[
                            SpanEvent(e.name, e.time_unix_nano, attributes(e.attributes))
                            for e in span.events
                        ],
                        links=len(span.links),
                        status_code=_STATUS_CODE.Name(span.status.code),
                        status_message=span.status.message,
                        flags=span.flags,
                    )
                )
    return spans


def _number(point: Any) -> Typed:
    kind = point.WhichOneof("value")
    return Typed("int_value" if kind == "as_int" else "double_value", getattr(point, kind))


def _flatten_metrics(received: Received) -> list[FlatPoint]:
    points: list[FlatPoint] = []
    for resource_metrics in received.request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                base = {
                    "transport": received.transport,
                    "resource": resource,
                    "scope_name": scope.name,
                    "scope_version": scope.version,
                    "scope_schema_url": scope_metrics.schema_url,
                    "name": metric.name,
                    "unit": metric.unit,
                    "description": metric.description,
                    "type": kind,
                    "is_monotonic": data.is_monotonic if kind == "sum" else None,
                    "temporality": (
                        _TEMPORALITY.Name(data.aggregation_temporality)
                        if hasattr(data, "aggregation_temporality")
                        else None
                    ),
                }
                for point in data.data_points:
                    flat = FlatPoint(
                        **base,
                        attributes=attributes(point.attributes),
                        start_time_unix_nano=point.start_time_unix_nano,
                        time_unix_nano=point.time_unix_nano,
                    )
                    if kind in ("sum", "gauge"):
                        flat.value = _number(point)
                    elif kind == "histogram":
                        flat.count = point.count
                        flat.sum = point.sum if point.HasField("sum") else None
                        flat.min = point.min if point.HasField("min") else None
                        flat.max = point.max if point.HasField("max") else None
                        flat.bucket_counts = tuple(point.bucket_counts)
                        flat.explicit_bounds = tuple(point.explicit_bounds)
                    else:
                        flat.count = point.count
                        flat.sum = point.sum
                    points.append(flat)
    return points


# --------------------------------------------------------------------------- servers


_REQUEST_TYPES: dict[str, tuple[Any, Any]] = {
    "/v1/traces": (
        "traces",
        (
            trace_service_pb2.ExportTraceServiceRequest,
            trace_service_pb2.ExportTraceServiceResponse,
        ),
    ),
    "/v1/metrics": (
        "metrics",
        (
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse,
        ),
    ),
    "/v1/logs": (
        "logs",
        (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
    ),
}


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._receiver._store("traces", GRPC, request, _grpc_headers(context))
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._receiver._store("metrics", GRPC, request, _grpc_headers(context))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OTLPReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._receiver._store("logs", GRPC, request, _grpc_headers(context))
        return logs_service_pb2.ExportLogsServiceResponse()


def _grpc_headers(context: grpc.ServicerContext) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else repr(value)
        for key, value in context.invocation_metadata()
    }


def _handler_for(receiver: OTLPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's requests.Session expects

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            found = _REQUEST_TYPES.get(path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if found is None:
                self._reply(404, b"unknown OTLP path", "text/plain")
                return
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != "application/x-protobuf":
                self._reply(415, b"only application/x-protobuf", "text/plain")
                return
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            try:
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding not in ("", "identity"):
                    self._reply(415, b"unsupported Content-Encoding", "text/plain")
                    return
                signal, (request_type, response_type) = found
                request = request_type.FromString(body)
            except (OSError, zlib.error, DecodeError) as exc:
                self._reply(400, str(exc).encode(), "text/plain")
                return
            receiver._store(signal, HTTP, request, {k.lower(): v for k, v in self.headers.items()})
            self._reply(200, response_type().SerializeToString(), "application/x-protobuf")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


def port_in_use(port: int, host: str = HOST) -> str | None:
    """Why ``port`` cannot be ours on ``host`` (and on ``localhost``), or None if free."""
    for family, _, _, _, address in socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(address) == 0:
                return f"something already listens on localhost {address}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"cannot bind {host}:{port}: {exc}"
    return None


class OTLPReceiver:
    """gRPC (TraceService, MetricsService, LogsService) and HTTP (POST /v1/traces,
    /v1/metrics, /v1/logs) OTLP receiver on ``host``; port 0 picks a free port.

    Every request is answered with an empty (full-success) Export*ServiceResponse.
    """

    def __init__(
        self, grpc_port: int = 0, http_port: int = 0, host: str = HOST, trace_delay: float = 0.0
    ) -> None:
        self.host = host
        # Seconds each trace export takes to answer: a slow or overloaded backend.
        self.trace_delay = trace_delay
        self._wanted = (grpc_port, http_port)
        self.grpc_port = 0
        self.http_port = 0
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    @classmethod
    def on_default_ports(cls) -> OTLPReceiver:
        """A receiver on 127.0.0.1:4317 and :4318, where an exporter with no endpoint
        configured sends. Raises ``RuntimeError`` saying why when a port is taken."""
        for port in (DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT):
            reason = port_in_use(port)
            if reason is not None:
                raise RuntimeError(f"OTLP default port {port} is not free: {reason}")
        return cls(DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> OTLPReceiver:
        if self._grpc_server is not None:
            raise RuntimeError("OTLPReceiver already started")
        grpc_port, http_port = self._wanted
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc"),
            options=[
                ("grpc.so_reuseport", 0),  # a taken port must fail, not be shared
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceServicer(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsServicer(self), server
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
        try:
            bound = server.add_insecure_port(f"{self.host}:{grpc_port}")
        except RuntimeError as exc:
            server.stop(None)
            raise RuntimeError(f"cannot bind gRPC {self.host}:{grpc_port}: {exc}") from exc
        if not bound:  # older grpcio returns 0 instead of raising
            server.stop(None)
            raise RuntimeError(f"cannot bind gRPC {self.host}:{grpc_port}")
        server.start()
        self._grpc_server = server
        self.grpc_port = bound
        try:
            http_server = ThreadingHTTPServer((self.host, http_port), _handler_for(self))
        except OSError as exc:
            self.stop()
            raise RuntimeError(f"cannot bind HTTP {self.host}:{http_port}: {exc}") from exc
        http_server.daemon_threads = True
        self._http_server = http_server
        self.http_port = http_server.server_address[1]
        self._http_thread = threading.Thread(
            target=http_server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="otlp-http",
            daemon=True,
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(5)
            self._grpc_server = None

    def __enter__(self) -> OTLPReceiver:
        return self if self._grpc_server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def endpoint(self, protocol: str) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT`` for ``protocol``."""
        port = self.grpc_port if protocol == GRPC else self.http_port
        return f"http://{self.host}:{port}"

    # -- storage --------------------------------------------------------------------

    def _store(self, signal: str, transport: str, request: Any, headers: dict[str, str]) -> None:
        if signal == "traces" and self.trace_delay:
            time.sleep(self.trace_delay)
        with self._lock:
            self._received.append(Received(signal, transport, request, headers))

    def received(self, signal: str | None = None) -> list[Received]:
        with self._lock:
            found = list(self._received)
        return [r for r in found if signal is None or r.signal == signal]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    # -- reading back ---------------------------------------------------------------

    def spans(self) -> list[FlatSpan]:
        return [s for r in self.received("traces") for s in _flatten_spans(r)]

    def metric_points(self) -> list[FlatPoint]:
        """Every data point of every metrics request, in arrival order."""
        return [p for r in self.received("metrics") for p in _flatten_metrics(r)]

    def latest_points(self, name: str, scope_name: str | None = None) -> list[FlatPoint]:
        """For metric ``name``, the newest point of each time series (attribute set).

        With cumulative temporality, that is each series' total at the last export.
        """
        latest: dict[tuple[Any, ...], FlatPoint] = {}
        for point in self.metric_points():
            if point.name != name or (scope_name is not None and point.scope_name != scope_name):
                continue
            previous = latest.get(point.key)
            if previous is None or point.time_unix_nano >= previous.time_unix_nano:
                latest[point.key] = point
        return list(latest.values())

    def wait_for(self, condition: Callable[[OTLPReceiver], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if condition(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
