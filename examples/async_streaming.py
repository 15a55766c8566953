"""Concurrent ``astream`` calls with usage, each counted in its own ``track_usage()``.

    python examples/async_streaming.py [--client auto|langchain-openai|stdlib]

Offline, like ``quickstart.py``: a local stand-in for the OpenAI API streams its answers
(with a usage chunk at the end, as OpenAI does with ``stream_options.include_usage``).
Three questions are streamed at once with ``asyncio.gather`` under one application span.
Each task counts its own call in its own ``track_usage()`` block (the trackers live in
a ``ContextVar``, so concurrent tasks do not see each other's calls), and an outer block
counts all three.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from _local_provider import LocalProvider, chat_model, client_name
from _report import print_metric_totals, print_spans, print_tracker, usd
from langchain_core.language_models import BaseChatModel
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm_usage import LangChainUsageInstrumentor, UsageTracker, track_usage

QUESTIONS = [
    "What is a span?",
    "Name one OpenTelemetry signal besides traces.",
    "Why should token usage be measured per model call?",
]


async def ask(model: BaseChatModel, question: str) -> tuple[str, UsageTracker]:
    """Stream one answer; the task's own ``track_usage()`` counts only this call."""
    with track_usage() as mine:
        text = ""
        async for chunk in model.astream([("human", question)]):
            text += str(chunk.content)
    return text, mine


async def run(model: BaseChatModel, tracer_provider: TracerProvider) -> UsageTracker:
    tracer = tracer_provider.get_tracer("async_streaming_example")
    with track_usage() as everything, tracer.start_as_current_span("answer-questions"):
        results = await asyncio.gather(*(ask(model, q) for q in QUESTIONS))
    for question, (answer, mine) in zip(QUESTIONS, results, strict=True):
        print(f"  {question}")
        print(f"    -> {answer}")
        print(
            f"    this task's track_usage(): {mine.prompt_tokens} prompt + "
            f"{mine.completion_tokens} completion tokens, {mine.successful_requests} request, "
            f"{usd(mine.total_cost)}"
        )
    return everything


def input_tokens(span: ReadableSpan) -> int:
    value = (span.attributes or {}).get("gen_ai.usage.input_tokens")
    return value if isinstance(value, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--client", choices=("auto", "langchain-openai", "stdlib"), default="auto")
    args = parser.parse_args(argv)

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metric_reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metric_reader])
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    # A small delay between streamed chunks, so the three streams really overlap.
    with LocalProvider(chunk_delay=0.01) as provider:
        model = chat_model(provider.url, args.client)
        print(f"client: {client_name(model)}")
        print(f"\n{len(QUESTIONS)} concurrent astream() calls:")
        everything = asyncio.run(run(model, tracer_provider))

    finished = spans.get_finished_spans()
    parent = next(s for s in finished if s.name == "answer-questions")
    model_spans = sorted(
        (s for s in finished if s is not parent),
        key=input_tokens,  # the calls ended in any order; print them in a stable one
    )
    children = sum(
        1
        for s in model_spans
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    )
    print(f"\nSpans ({children} of {len(model_spans)} are children of 'answer-questions'):")
    print_spans(model_spans)
    print()
    print_tracker("track_usage() around the gather:", everything)
    print("\nMetric totals:")
    print_metric_totals(metric_reader)

    instrumentor.uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
