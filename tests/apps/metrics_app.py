"""An application that serves its otel_llm_usage metrics for Prometheus to scrape.

It sets up a ``MeterProvider`` with ``opentelemetry-exporter-prometheus``'s
``PrometheusMetricReader``, serves it with ``prometheus_client.start_http_server`` on
127.0.0.1, instruments LangChain with ``LangChainUsageInstrumentor``, then makes
``METRICS_APP_INVOKES`` (default 10) ``FakeChat().invoke`` calls and
``METRICS_APP_STREAMS`` (default 3) fully consumed ``FakeChat().stream`` calls.

Usage: ``python metrics_app.py PORT``. It prints one line, ``READY <json>``, once every
call is made, then keeps serving until its stdin closes or ``METRICS_APP_TIMEOUT``
seconds (default 120) pass.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for fakes

from fakes import FakeChat
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import start_http_server

from otel_llm_usage import LangChainUsageInstrumentor


def main() -> None:
    port = int(sys.argv[1])
    invokes = int(os.environ.get("METRICS_APP_INVOKES", "10"))
    streams = int(os.environ.get("METRICS_APP_STREAMS", "3"))
    timeout = float(os.environ.get("METRICS_APP_TIMEOUT", "120"))

    resource = Resource.create({"service.name": "metrics-e2e"})
    meter_provider = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    # A tracer provider with no processor: spans are made and dropped, no exporter runs.
    tracer_provider = TracerProvider(resource=resource)
    start_http_server(port, addr="127.0.0.1")
    LangChainUsageInstrumentor().instrument(
        meter_provider=meter_provider, tracer_provider=tracer_provider
    )

    chat = FakeChat()
    for _ in range(invokes):
        chat.invoke("Tell me a joke")
    streamed = ""
    for _ in range(streams):
        streamed = "".join(str(chunk.content) for chunk in chat.stream("Tell me a joke"))

    report = {"port": port, "invokes": invokes, "streams": streams, "streamed": streamed}
    print("READY " + json.dumps(report), flush=True)

    # Serve until the parent closes our stdin (or dies), bounded by the timeout.
    stdin_closed = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stdin_closed.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    stdin_closed.wait(timeout)
    meter_provider.shutdown()


if __name__ == "__main__":
    main()
