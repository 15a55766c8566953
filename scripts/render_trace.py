"""Draw one real trace as a Mermaid gantt chart (a waterfall, as Jaeger shows a trace).

    python scripts/render_trace.py              # runs the agent, writes docs/span-tree.md

Runs the agent of ``examples/agent_with_tools.py`` in process (``create_agent``, the real
``ChatOpenAI`` against the offline stand-in for the OpenAI API, a ``search`` tool),
instrumented, and draws what the SDK exported: one bar per span, labelled with its name
and, on ``chat`` and ``invoke_agent`` spans, the tokens and cost it carries. GitHub and
most Markdown viewers render the chart; nothing in it is drawn by hand. Exits with status
1 if an agent span's tokens differ from the sum of the chat spans under it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "span-tree.md"
# (input tokens, output tokens, cost) on a chat span, and the sums an agent span carries
CHAT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cost.amount")
AGENT_KEYS = (
    "llm_usage.agent.input_tokens",
    "llm_usage.agent.output_tokens",
    "llm_usage.agent.cost.amount",
)


def record_agent_run(latency: float, tool_latency: float) -> list[Any]:
    """Run the example's agent, instrumented; the spans the SDK exported."""
    sys.path.insert(0, str(ROOT / "examples"))
    import agent_with_tools as example
    from _local_provider import LocalProvider, chat_model
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_llm_usage import LangChainUsageInstrumentor

    tracer_provider = TracerProvider()
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider())
    try:
        with LocalProvider(latency=latency) as provider:
            model = chat_model(provider.url, "langchain-openai", model=example.MODEL)
            example.ask_agent(model, tracer_provider.get_tracer("app"), tool_latency)
    finally:
        instrumentor.uninstrument()
    return list(exporter.get_finished_spans())


def is_agent(span: Any) -> bool:
    return (span.attributes or {}).get("gen_ai.operation.name") == "invoke_agent"


def label(span: Any) -> str:
    attributes = span.attributes or {}
    inputs, outputs, cost = AGENT_KEYS if is_agent(span) else CHAT_KEYS
    text = f"{span.name} ({span.kind.name.lower()})"
    if inputs in attributes:
        text += f" {attributes[inputs]} in / {attributes[outputs]} out"
    if cost in attributes:
        text += f" ${attributes[cost]:.8f}"
    return text.replace(":", " ").replace("#", " ")  # Mermaid's separators


def mismatched_agents(spans: Sequence[Any]) -> list[str]:
    """Agent spans whose tokens are not the sum of the chat spans under them."""
    by_id = {span.context.span_id: span for span in spans}

    def under(span: Any, agent: Any) -> bool:
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            if span is agent:
                return True
        return False

    wrong = []
    for agent in filter(is_agent, spans):
        chats = [s for s in spans if s.name.startswith("chat") and under(s, agent)]
        for key, total in zip(CHAT_KEYS[:2], AGENT_KEYS[:2], strict=True):
            summed = sum((s.attributes or {}).get(key, 0) for s in chats)
            carried = (agent.attributes or {}).get(total)
            if carried != summed:
                wrong.append(f"{agent.name}: {total} {carried} != {summed}")
    return wrong


def gantt(spans: Sequence[Any]) -> str:
    start = min(span.start_time for span in spans)
    rows = ["```mermaid", "gantt", "    title One agent run (exported spans)"]
    rows += ["    dateFormat x", "    axisFormat %S.%L s"]
    for span in sorted(spans, key=lambda s: (s.start_time, -s.end_time)):
        begin = (span.start_time - start) // 1_000_000
        end = max(begin + 1, (span.end_time - start) // 1_000_000)
        rows.append(f"    {label(span)} : {begin}, {end}")
    return "\n".join([*rows, "```"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--latency", type=float, default=0.35, help="model latency, s")
    parser.add_argument("--tool-latency", type=float, default=0.12, help="tool latency, s")
    args = parser.parse_args(argv)
    spans = record_agent_run(args.latency, args.tool_latency)
    wrong = mismatched_agents(spans)
    args.out.write_text(
        "# One agent run, as exported\n\n"
        "Drawn by `scripts/render_trace.py` from the spans an instrumented run of "
        "`examples/agent_with_tools.py` exported; regenerate with "
        "`python scripts/render_trace.py`.\n\n" + gantt(spans) + "\n"
    )
    print(f"wrote {args.out}: {len(spans)} spans")
    for line in wrong:
        print(f"agent span does not carry the sum of its chat spans: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
