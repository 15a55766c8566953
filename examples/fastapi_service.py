"""A FastAPI service whose endpoints call a model: each chat span is a child of its request.

    python examples/fastapi_service.py                # serve on 127.0.0.1, a free port
    python examples/fastapi_service.py --port 8000    # ... on port 8000, until Ctrl-C
    python examples/fastapi_service.py --demo         # serve, call both endpoints, exit
    python examples/fastapi_service.py --otlp http://localhost:4317   # also export

    curl 'http://127.0.0.1:8000/ask?q=What+is+a+span%3F'
    curl -N 'http://127.0.0.1:8000/ask/stream?q=What+is+a+span%3F'

Needs ``fastapi``, ``uvicorn`` and ``opentelemetry-instrumentation-fastapi`` (``pip install
fastapi uvicorn opentelemetry-instrumentation-fastapi``). Offline, like ``quickstart.py``:
the model is the real ``langchain_openai.ChatOpenAI`` (else the standard-library client)
against the local stand-in for the OpenAI API.

Two instrumentations share one tracer provider: ``opentelemetry-instrumentation-fastapi``
makes the ``SERVER`` span of each request (``GET /ask``), and
``LangChainUsageInstrumentor`` makes the ``chat`` span of the model call inside it, with
its tokens and cost. So in Jaeger or Tempo a request's trace shows what its model calls
cost. ``GET /ask`` answers JSON with the request's own usage (from ``track_usage()``);
``GET /ask/stream`` streams the answer as plain text (``astream``: the chat span ends
with the stream, inside the request's span).

The ASGI ``http send``/``http receive`` spans are left out (``exclude_spans``): a
streamed answer would make one per chunk. Every finished span is printed, one line
each; ``--demo`` prints each request's trace as a tree.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from _local_provider import LocalProvider, chat_model, client_name
from _report import span_line, usd
from langchain_core.language_models import BaseChatModel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from otel_llm_usage import LangChainUsageInstrumentor, track_usage

try:
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
except ImportError as exc:
    raise SystemExit(
        f"fastapi_service.py needs fastapi, uvicorn and opentelemetry-instrumentation-fastapi"
        f" ({exc}):\n    pip install fastapi uvicorn opentelemetry-instrumentation-fastapi"
    ) from exc

SYSTEM = "You are a concise assistant."
DEMO_QUESTIONS = ("What is a span?", "Why do LLM calls cost money?")


def create_app(
    model: BaseChatModel,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> FastAPI:
    """The service, instrumented for HTTP (``None`` providers: the global ones).

    LangChain itself is instrumented once per process, apart from any app:
    ``LangChainUsageInstrumentor().instrument(...)`` (or ``opentelemetry-instrument``).
    """
    app = FastAPI(title="otel-llm-usage demo")

    def messages(question: str) -> list[tuple[str, str]]:
        return [("system", SYSTEM), ("human", question)]

    @app.get("/ask")
    async def ask(q: str) -> dict[str, Any]:
        """The answer and what this request's model calls used."""
        with track_usage() as usage:
            reply = await model.ainvoke(messages(q))
        return {
            "answer": reply.content,
            "usage": {
                "requests": usage.successful_requests,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": round(usage.total_cost, 12),
            },
        }

    @app.get("/ask/stream")
    async def ask_stream(q: str) -> StreamingResponse:
        """The answer, streamed as plain text as the model produces it."""

        async def pieces() -> AsyncIterator[str]:
            async for chunk in model.astream(messages(q)):
                if chunk.content:
                    yield str(chunk.content)

        return StreamingResponse(pieces(), media_type="text/plain; charset=utf-8")

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        exclude_spans=["receive", "send"],
    )
    return app


# -- printing ---------------------------------------------------------------------------------


def describe(span: ReadableSpan) -> str:
    if span.instrumentation_scope is not None and span.instrumentation_scope.name == (
        "otel_llm_usage"
    ):
        return span_line(span)
    return f"[span] {span.name} kind={span.kind.name}"


class LinePrinter(SpanExporter):
    """Prints each finished span on one line, as it ends."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            print("  " + describe(span), flush=True)
        return SpanExportResult.SUCCESS


def walk(spans: Sequence[ReadableSpan]) -> list[tuple[int, ReadableSpan]]:
    """(depth, span) in tree order, children by start time."""
    ids = {span.context.span_id for span in spans}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    ordered: list[tuple[int, ReadableSpan]] = []

    def visit(parent: int | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            ordered.append((depth, span))
            visit(span.context.span_id, depth + 1)

    visit(None, 0)
    return ordered


# -- serving ----------------------------------------------------------------------------------


def serve_in_thread(server: uvicorn.Server, sock: socket.socket) -> threading.Thread:
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return thread


def demo(base_url: str, spans: InMemorySpanExporter) -> None:
    """Call both endpoints over HTTP, then print each request's trace."""
    import httpx

    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
        for question in DEMO_QUESTIONS:
            print(f"\nGET /ask?q={question}")
            response = client.get("/ask", params={"q": question})
            body = response.json()
            usage = body["usage"]
            print(f"  {response.status_code} answer: {body['answer']}")
            print(
                f"      usage:  {usage['requests']} request, {usage['input_tokens']} input +"
                f" {usage['output_tokens']} output tokens, {usd(usage['cost_usd'])}"
            )
        question = DEMO_QUESTIONS[0]
        print(f"\nGET /ask/stream?q={question}")
        with client.stream("GET", "/ask/stream", params={"q": question}) as response:
            print(f"  {response.status_code} text: ", end="")
            for text in response.iter_text():
                print(text, end="", flush=True)
            print()
    # A client may have read the whole response before the server's middleware has ended
    # the request's span: wait for every request's SERVER span.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        sum(s.kind is SpanKind.SERVER for s in spans.get_finished_spans()) < len(DEMO_QUESTIONS) + 1
    ):
        time.sleep(0.01)
    print("\nThe traces (one per request, children indented):")
    for depth, span in walk(spans.get_finished_spans()):
        print("  " + "  " * depth + describe(span))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="call both endpoints once over HTTP, print the traces and exit",
    )
    parser.add_argument(
        "--otlp",
        metavar="URL",
        help="also export spans and metrics by OTLP/gRPC to this Collector endpoint, "
        "e.g. http://localhost:4317",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "langchain-openai", "stdlib"),
        default="auto",
        help="the LangChain client for the local server (default: langchain-openai "
        "when installed, else the standard-library one)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    resource = Resource.create({"service.name": "otel-llm-usage-fastapi-example"})
    tracer_provider = TracerProvider(resource=resource)
    spans = InMemorySpanExporter()
    if args.demo:
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    else:
        tracer_provider.add_span_processor(SimpleSpanProcessor(LinePrinter()))
    readers: list[MetricReader] = []
    if args.otlp:
        # Imported here: only this mode needs gRPC.
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(args.otlp)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(args.otlp)))
    meter_provider = MeterProvider(metric_readers=readers, resource=resource)
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with LocalProvider() as provider:
        model = chat_model(provider.url, args.client)
        app = create_app(model, tracer_provider, meter_provider)
        print("provider: local stand-in for the OpenAI chat-completions API on 127.0.0.1")
        print(f"client:   {client_name(model)}")
        print(f"serving:  {base_url} (uvicorn; FastAPI and LangChain instrumented)")
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        if args.demo:
            thread = serve_in_thread(server, sock)
            try:
                demo(base_url, spans)
            finally:
                server.should_exit = True
                thread.join(10)
        else:
            print(f"try:      curl '{base_url}/ask?q=What+is+a+span%3F'")
            print(f"          curl -N '{base_url}/ask/stream?q=What+is+a+span%3F'")
            print("spans, as they end (Ctrl-C stops):", flush=True)
            server.run(sockets=[sock])
    sock.close()
    instrumentor.uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
