"""Overhead in CPU instructions (valgrind callgrind): repeatable where timings are not.

    python benchmarks/instructions.py            # ~15 min on 2 cores (callgrind is slow)

On a shared, noisy machine the same timing can move by 100 % between runs; callgrind's
instruction counts repeat exactly. Each scenario runs in a child process under
``valgrind --tool=callgrind`` at two call counts, so start-up cancels out:
instructions per call = (I(n2) - I(n1)) / (n2 - n1). Compared: bare LangChain, ours
with the real SDK (BatchSpanProcessor, in-memory metric reader), ours with the API's no-op
providers, and the SDK work alone that one instrumented invoke implies (a span with its
attributes and three histogram records): the "SDK floor".
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[4])
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

class Noop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

mode, scenario, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tp = TracerProvider()
tp.add_span_processor(BatchSpanProcessor(Noop(), schedule_delay_millis=10**7))
mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
if mode == "floor":
    tracer, meter = tp.get_tracer("x"), mp.get_meter("x")
    duration, tokens = meter.create_histogram("d", unit="s"), meter.create_histogram("t")
    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini"}
    start = {**base, "gen_ai.request.temperature": 0.0}
    end = {"gen_ai.response.finish_reasons": ("stop",), "gen_ai.usage.input_tokens": 11,
           "gen_ai.usage.output_tokens": 16, "gen_ai.usage.cache_read.input_tokens": 3,
           "gen_ai.usage.reasoning.output_tokens": 5, "gen_ai.usage.cost.amount": 1e-5,
           "gen_ai.usage.cost.currency": "USD", "gen_ai.usage.cost.source": "local"}
    inputs = {**base, "gen_ai.token.type": "input"}
    outputs = {**base, "gen_ai.token.type": "output"}

    def call():
        span = tracer.start_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT, attributes=start)
        span.set_attributes(end)
        span.end()
        duration.record(0.001, base)
        tokens.record(11, inputs)
        tokens.record(16, outputs)
else:
    from fake_model import FakeChatOpenAI
    from otel_llm_usage import LangChainUsageInstrumentor
    if mode == "instrumented":
        LangChainUsageInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif mode == "no-sdk":
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider
        LangChainUsageInstrumentor().instrument(
            tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider())
    if scenario == "invoke":
        model = FakeChatOpenAI()
        call = lambda: model.invoke("hi")
    else:
        model = FakeChatOpenAI(chunks=int(scenario.removeprefix("stream_k")))
        call = lambda: list(model.stream("hi"))
for _ in range(50):
    call()
for _ in range(n):
    call()
"""

# (label, mode, scenario, n1, n2)
RUNS = [
    ("invoke", "bare", "invoke", 10, 110),
    ("invoke", "instrumented", "invoke", 10, 110),
    ("invoke", "no-sdk", "invoke", 10, 110),
    ("invoke", "floor", "invoke", 10, 110),
    ("stream_k20", "bare", "stream_k20", 10, 60),
    ("stream_k20", "instrumented", "stream_k20", 10, 60),
    ("stream_k200", "bare", "stream_k200", 10, 40),
    ("stream_k200", "instrumented", "stream_k200", 10, 40),
]


def instructions(mode: str, scenario: str, n: int) -> int:
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            CHILD,
            mode,
            scenario,
            str(n),
            str(HERE),
        ],
        capture_output=True,
        text=True,
        check=True,
        # a fixed hash seed: dict and set layouts, hence counts, repeat between runs
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    jobs = [(mode, scenario, n) for _, mode, scenario, n1, n2 in RUNS for n in (n1, n2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: instructions(*job), jobs), strict=True))
    per_call = {
        (label, mode): (counts[(mode, scenario, n2)] - counts[(mode, scenario, n1)]) / (n2 - n1)
        for label, mode, scenario, n1, n2 in RUNS
    }

    def row(name: str, bare: float, ours: float) -> None:
        ratio = ours / bare - 1
        print(f"| {name} | {bare:,.0f} | {ours:,.0f} | {ours - bare:,.0f} | {ratio:+.1%} |")

    print("| scenario | bare | instrumented | added | added / bare |")
    print("|---|---:|---:|---:|---:|")
    for label in ("invoke", "stream_k20", "stream_k200"):
        row(label, per_call[(label, "bare")], per_call[(label, "instrumented")])
    row("invoke, no SDK", per_call[("invoke", "bare")], per_call[("invoke", "no-sdk")])
    added = per_call[("invoke", "instrumented")] - per_call[("invoke", "bare")]
    floor = per_call[("invoke", "floor")]
    print(f"\nSDK floor of one invoke (1 span + 3 histogram records): {floor:,.0f} instructions;")
    print(
        f"our own code: {added - floor:,.0f} instructions per invoke "
        f"({(added - floor) / per_call[('invoke', 'bare')]:.1%} of a bare invoke)"
    )
    chunk_bare = (per_call[("stream_k200", "bare")] - per_call[("stream_k20", "bare")]) / 180
    chunk_added = (
        (per_call[("stream_k200", "instrumented")] - per_call[("stream_k200", "bare")])
        - (per_call[("stream_k20", "instrumented")] - per_call[("stream_k20", "bare")])
    ) / 180
    print(
        f"per extra streamed chunk: LangChain {chunk_bare:,.0f}, added {chunk_added:,.0f} "
        f"instructions ({chunk_added / chunk_bare:.1%})"
    )


if __name__ == "__main__":
    main()
