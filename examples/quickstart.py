"""otel-llm-usage quickstart: spans, token and cost metrics and track_usage(), offline.

    python examples/quickstart.py                              # offline, prints everything
    python examples/quickstart.py --otlp http://localhost:4317 # also export to a Collector

No API key and no network: the model calls go to a local stand-in for the OpenAI API
(``_local_provider.py``, a small HTTP server on 127.0.0.1). The client is the real
``langchain_openai.ChatOpenAI`` when ``langchain-openai`` is installed, else a
standard-library LangChain chat model speaking the same API (``--client`` chooses).

The script sets up the OpenTelemetry SDK (spans kept in memory and printed one line
each, metrics read by an in-memory reader), instruments LangChain, makes an ``invoke``,
a ``stream`` and a ``batch`` inside ``track_usage()``, and prints the totals.

With ``--otlp URL`` spans and metrics also go by OTLP/gRPC to an OpenTelemetry Collector
(e.g. ``docker run -p 4317:4317 otel/opentelemetry-collector``); from there to
Jaeger/Tempo and Prometheus. For a real provider, drop the local server and build your
model as usual: ``ChatOpenAI(model="gpt-4o-mini")`` with ``OPENAI_API_KEY`` set.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from _local_provider import LocalProvider, chat_model, client_name
from _report import print_metric_totals, print_spans, print_tracker, print_usage_table
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm_usage import LangChainUsageInstrumentor, track_usage

SYSTEM = "You are a concise assistant who answers with one short joke."
QUESTION = "Tell me a joke about observability."
BATCH = ["Explain tracing in one sentence.", "What is a metric?"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--otlp",
        metavar="URL",
        help="also export spans and metrics by OTLP/gRPC to this Collector endpoint, "
        "e.g. http://localhost:4317",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="also print every span in full with the SDK's ConsoleSpanExporter (JSON)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "langchain-openai", "stdlib"),
        default="auto",
        help="the LangChain client for the local server (default: langchain-openai "
        "when installed, else the standard-library one)",
    )
    return parser.parse_args(argv)


def setup_telemetry(
    args: argparse.Namespace,
) -> tuple[TracerProvider, MeterProvider, InMemorySpanExporter, InMemoryMetricReader]:
    resource = Resource.create({"service.name": "otel-llm-usage-quickstart"})
    tracer_provider = TracerProvider(resource=resource)
    spans = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    if args.console:
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    metric_reader = InMemoryMetricReader()
    readers: list[MetricReader] = [metric_reader]
    if args.otlp:
        # Imported here: only this mode needs gRPC.
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(args.otlp)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(args.otlp)))
    meter_provider = MeterProvider(metric_readers=readers, resource=resource)
    return tracer_provider, meter_provider, spans, metric_reader


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tracer_provider, meter_provider, spans, metric_reader = setup_telemetry(args)

    # The one line an application needs (or none: `opentelemetry-instrument python app.py`).
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def show_spans() -> None:
        print_spans(spans.get_finished_spans())
        spans.clear()

    with LocalProvider() as provider:
        model = chat_model(provider.url, args.client)
        print("provider: local stand-in for the OpenAI chat-completions API on 127.0.0.1")
        print(f"client:   {client_name(model)}")
        messages = [("system", SYSTEM), ("human", QUESTION)]

        # An outer block around everything: the usage table at the end comes from it.
        with track_usage() as everything:
            print("\n1. invoke")
            reply = model.invoke(messages)
            print(f"  answer: {reply.content}")
            show_spans()

            print("\n2. stream (the same prompt again: the provider reports it as cached)")
            print("  answer: ", end="")
            for chunk in model.stream(messages):
                print(chunk.content, end="", flush=True)
            print()
            show_spans()

            print("\n3. batch inside track_usage() (runs in LangChain's thread pool)")
            with track_usage() as usage:
                replies = model.batch(
                    [[("system", SYSTEM), ("human", q)] for q in BATCH],
                    config={"max_concurrency": 1},  # one at a time: a stable print order
                )
            for question, answer in zip(BATCH, replies, strict=True):
                print(f"  {question} -> {answer.content}")
            show_spans()
            print_tracker("  track_usage() totals of the batch:", usage)

    print("\nUsage by model (track_usage() around the whole run):")
    print_usage_table(everything)
    print("\nMetric totals (what a Collector would receive):")
    print_metric_totals(metric_reader)

    instrumentor.uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
