"""An agent with a search tool: one span per model call, and the run's total on the agent span.

    python examples/agent_with_tools.py                              # offline, prints it all
    python examples/agent_with_tools.py --otlp http://localhost:4317 # also export (Collector)

Needs ``langchain`` (for ``create_agent``) and ``langchain-openai``: ``pip install
langchain langchain-openai`` (both are in the ``test`` extra). Unlike ``quickstart.py``
there is no standard-library fallback, since that client does not call tools.

No API key and no network: ``langchain.agents.create_agent`` drives the real
``langchain_openai.ChatOpenAI`` against the local stand-in for the OpenAI API
(``_local_provider.py``), which answers a request that carries tools as a tool-calling
model does: first a call of the ``search`` tool, then, given the tool's result, the
final answer. The agent asks "Who won the Super Bowl in 2024?" inside an application
span, so the trace is::

    handle question                      (the application's span)
    └── invoke_agent search_agent        tokens and cost: the sum of its model calls
        ├── chat gpt-3.5-turbo-0125      asks for the tool
        ├── execute_tool search
        └── chat gpt-3.5-turbo-0125      answers

The script prints that tree, then the run's usage four ways, which must agree: the sum
of the chat spans, the ``invoke_agent`` span's attributes, ``track_usage()`` around the
run, and the ``llm_usage.*`` metrics. It exits with status 1 if they do not.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from _local_provider import LocalProvider, chat_model, client_name
from _report import metric_points, span_line, usd
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool, tool
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from otel_llm_usage import LangChainUsageInstrumentor, UsageTracker, track_usage

try:
    import langchain_openai  # noqa: F401  # the client: chat_model(..., "langchain-openai")
    from langchain.agents import create_agent
except ImportError as exc:
    raise SystemExit(
        f"agent_with_tools.py needs langchain and langchain-openai ({exc}):\n"
        "    pip install langchain langchain-openai"
    ) from exc

MODEL = "gpt-3.5-turbo-0125"
AGENT_NAME = "search_agent"
SYSTEM = "You are a helpful assistant."
QUESTION = "Who won the Super Bowl in 2024?"
SEARCH_RESULT = "The Kansas City Chiefs won Super Bowl LVIII on February 11, 2024."
APP_SPAN = "handle question"


def make_search_tool(latency: float = 0.0) -> BaseTool:
    """A search-like tool with a canned result; ``latency`` seconds, as a real search takes."""

    @tool
    def search(query: str) -> str:
        """Search the web for current events."""
        if latency:
            time.sleep(latency)
        return SEARCH_RESULT

    return search


def ask_agent(
    model: BaseChatModel, tracer: Tracer, tool_latency: float = 0.0
) -> tuple[str, UsageTracker]:
    """One agent run inside an application span and a ``track_usage()`` block."""
    agent = create_agent(
        model, tools=[make_search_tool(tool_latency)], system_prompt=SYSTEM, name=AGENT_NAME
    )
    with tracer.start_as_current_span(APP_SPAN), track_usage() as usage:
        result = agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
    return str(result["messages"][-1].content), usage


# -- printing ---------------------------------------------------------------------------------


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def operation(span: ReadableSpan) -> Any:
    return attributes(span).get("gen_ai.operation.name")


def describe(span: ReadableSpan) -> str:
    a = attributes(span)
    if operation(span) in ("chat", "text_completion"):
        return span_line(span)
    if operation(span) == "invoke_agent":
        return f"{span_line(span)} model_calls={a.get('llm_usage.model_calls')}"
    if operation(span) == "execute_tool":
        return f"[span] {span.name} call_id={a.get('gen_ai.tool.call.id')}"
    return f"[span] {span.name}"


def walk(spans: Sequence[ReadableSpan]) -> list[tuple[int, ReadableSpan]]:
    """(depth, span) in tree order, children by start time; roots are spans whose parent
    is not among ``spans``."""
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


@dataclass
class View:
    name: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float

    def same_as(self, other: View) -> bool:
        return (self.requests, self.input_tokens, self.output_tokens) == (
            other.requests,
            other.input_tokens,
            other.output_tokens,
        ) and math.isclose(self.cost, other.cost, rel_tol=1e-9, abs_tol=1e-15)


def views(spans: Sequence[ReadableSpan], usage: UsageTracker, reader: MetricReader) -> list[View]:
    chats = [s for s in spans if operation(s) == "chat"]
    (agent,) = [s for s in spans if operation(s) == "invoke_agent"]
    a = attributes(agent)
    points = metric_points(reader)

    def metric(name: str, **match: str) -> float:
        return sum(
            p.value
            for p in points.get(name, [])
            if all(p.attributes.get(k) == v for k, v in match.items())
        )

    token_type = "gen_ai.token.type"
    return [
        View(
            f"chat spans (sum of {len(chats)})",
            len(chats),
            sum(int(attributes(s)["gen_ai.usage.input_tokens"]) for s in chats),
            sum(int(attributes(s)["gen_ai.usage.output_tokens"]) for s in chats),
            sum(float(attributes(s)["gen_ai.usage.cost.amount"]) for s in chats),
        ),
        View(
            f"{agent.name} span",
            int(a["llm_usage.model_calls"]),
            int(a["llm_usage.agent.input_tokens"]),
            int(a["llm_usage.agent.output_tokens"]),
            float(a["llm_usage.agent.cost.amount"]),
        ),
        View(
            "track_usage()",
            usage.successful_requests,
            usage.input_tokens,
            usage.output_tokens,
            usage.total_cost,
        ),
        View(
            "llm_usage.* metrics",
            int(metric("llm_usage.requests")),
            int(metric("llm_usage.tokens", **{token_type: "input"})),
            int(metric("llm_usage.tokens", **{token_type: "output"})),
            metric("llm_usage.cost"),
        ),
    ]


def print_views(rows: list[View]) -> bool:
    header = ("view", "requests", "input", "output", "cost (USD)")
    table = [header] + [
        (v.name, str(v.requests), str(v.input_tokens), str(v.output_tokens), usd(v.cost))
        for v in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip())
    agree = all(v.same_as(rows[0]) for v in rows[1:])
    print(f"  all four agree: {'yes' if agree else 'NO'}")
    return agree


# -- main -------------------------------------------------------------------------------------


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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    resource = Resource.create({"service.name": "otel-llm-usage-agent-example"})
    tracer_provider = TracerProvider(resource=resource)
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    readers: list[MetricReader] = [reader]
    if args.otlp:
        # Imported here: only this mode needs gRPC.
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(args.otlp)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(args.otlp)))
    meter_provider = MeterProvider(metric_readers=readers, resource=resource)
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    with LocalProvider() as provider:
        # "langchain-openai": the stdlib fallback client cannot call tools.
        model = chat_model(provider.url, "langchain-openai", model=MODEL)
        print("provider: local stand-in for the OpenAI chat-completions API on 127.0.0.1")
        print(f"client:   {client_name(model)}")
        print(f'agent:    create_agent({MODEL}, tools=[search], name="{AGENT_NAME}")')
        print(f"question: {QUESTION}")
        answer, usage = ask_agent(model, tracer_provider.get_tracer("agent_example"))
        print(f"answer:   {answer}")

    spans = exporter.get_finished_spans()
    print("\nThe trace (one line per span, children indented):")
    for depth, span in walk(spans):
        print("  " + "  " * depth + describe(span))
    print("\nThe run's usage, four ways:")
    agree = print_views(views(spans, usage, reader))

    instrumentor.uninstrument()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
