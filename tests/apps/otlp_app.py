"""An application that knows nothing of otel_llm_usage, run under ``opentelemetry-instrument``.

The auto-instrumentation finds ``LangChainUsageInstrumentor`` through its entry point;
this file only uses the OpenTelemetry API and LangChain. Modes (``OTLP_APP_MODE``):

``basic`` (default)
    In a "handle request" span: one ``invoke`` (with a stop sequence), one fully
    consumed ``stream``, and one ``invoke`` that raises ``fakes.ProviderError``.
``burst``
    In a "handle request" span: ``OTLP_APP_BURST`` (default 5000) invokes, as fast as
    possible, with whatever span processor the SDK was configured with.
``agent``
    In a "handle request" span: one run of a ``langchain.agents.create_agent`` agent
    named "search_agent" whose model (``fakes.ScriptedChat``, gpt-3.5-turbo-0125) first
    calls the ``search`` tool (611 in / 32 out), then answers (927 in / 105 out).

It prints one JSON line with what it did, then exits normally; flushing is left to the
SDK's shutdown at exit unless ``OTLP_APP_FORCE_FLUSH=1``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for fakes

from fakes import FakeChat, ProviderError
from opentelemetry import metrics, trace


def basic() -> dict[str, object]:
    errors = 0
    with trace.get_tracer("app").start_as_current_span("handle request"):
        FakeChat().invoke("Tell me a joke", stop=["\n\nHuman:"])
        text = "".join(str(chunk.content) for chunk in FakeChat().stream("Tell me a joke"))
        try:
            FakeChat(fail_with=ProviderError("rate limited")).invoke("Tell me a joke")
        except ProviderError:
            errors += 1
    return {"mode": "basic", "streamed": text, "errors": errors}


def burst(count: int) -> dict[str, object]:
    chat = FakeChat()
    start = time.perf_counter()
    with trace.get_tracer("app").start_as_current_span("handle request"):
        for _ in range(count):
            chat.invoke("Tell me a joke")
    return {"mode": "burst", "invokes": count, "seconds": time.perf_counter() - start}


def agent() -> dict[str, object]:
    # Imported here: only this mode needs langchain (and its import time).
    from fakes import ScriptedChat, usage_metadata
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def search(query: str) -> str:
        """Search the web."""
        return f"Results for {query}: the 2024 Super Bowl was won by the Kansas City Chiefs."

    model = ScriptedChat(
        model_name="gpt-3.5-turbo-0125",
        response_model="gpt-3.5-turbo-0125",
        script=[
            {
                "tool_call": {
                    "name": "search",
                    "args": {"query": "super bowl 2024"},
                    "id": "call_1",
                },
                "usage": usage_metadata(611, 32),
            },
            {"text": "The Kansas City Chiefs won.", "usage": usage_metadata(927, 105)},
        ],
        calls=[],
    )
    graph = create_agent(model, tools=[search], name="search_agent")
    with trace.get_tracer("app").start_as_current_span("handle request"):
        result = graph.invoke({"messages": [{"role": "user", "content": "Who won in 2024?"}]})
    return {
        "mode": "agent",
        "answer": result["messages"][-1].content,
        "model_calls": len(model.calls),
    }


def main() -> None:
    mode = os.environ.get("OTLP_APP_MODE", "basic")
    if mode == "burst":
        report = burst(int(os.environ.get("OTLP_APP_BURST", "5000")))
    elif mode == "agent":
        report = agent()
    else:
        report = basic()
    report["tracer_provider"] = type(trace.get_tracer_provider()).__name__
    report["meter_provider"] = type(metrics.get_meter_provider()).__name__
    if os.environ.get("OTLP_APP_FORCE_FLUSH") == "1":
        provider = trace.get_tracer_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush()
        meter_provider = metrics.get_meter_provider()
        if hasattr(meter_provider, "force_flush"):
            meter_provider.force_flush()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
