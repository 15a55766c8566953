"""Soak: many instrumented calls in one process; reports memory growth and span drops.

    python benchmarks/soak.py                      # 1,000,000 calls (~10 min here)
    python benchmarks/soak.py --calls 20000        # a short run

The real SDK: BatchSpanProcessor (default queue) to an exporter that only counts, and an
in-memory metric reader read every 100,000 calls. One call in ten streams (K=5). The
report: RSS before/after warm-up and at the end, spans exported vs calls, the SDK's own
drop counter is not public, so drops = calls - exported spans after a final flush, and
the token counter total vs the expected one.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_model import FakeChatOpenAI

from otel_llm_usage import LangChainUsageInstrumentor


class CountingExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.count += len(spans)
        return SpanExportResult.SUCCESS


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def input_tokens(reader: InMemoryMetricReader) -> int:
    total = 0
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "llm_usage.tokens":
                    for point in metric.data.data_points:
                        if point.attributes.get("gen_ai.token.type") == "input":
                            total += point.value
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()

    exporter = CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    LangChainUsageInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    invoke_model, stream_model = FakeChatOpenAI(), FakeChatOpenAI(chunks=5)

    for _ in range(2000):  # warm-up: caches, interned strings, the SDK's first batches
        invoke_model.invoke("hi")
    gc.collect()
    start_rss, started = rss_mb(), time.perf_counter()
    print(f"after warm-up: RSS {start_rss:.1f} MB", flush=True)
    for index in range(args.calls):
        if index % 10 == 9:
            for _chunk in stream_model.stream("hi"):
                pass
        else:
            invoke_model.invoke("hi")
        if index and index % 100_000 == 0:
            print(
                f"{index:>9,} calls: RSS {rss_mb():.1f} MB, exported {exporter.count:,}, "
                f"{(time.perf_counter() - started) / index * 1e6:.0f} µs/call",
                flush=True,
            )
            input_tokens(reader)  # a collection, as a periodic reader would do
    tracer_provider.force_flush()
    gc.collect()
    end_rss = rss_mb()
    calls = args.calls + 2000
    exported = exporter.count
    tokens = input_tokens(reader)
    print(f"calls: {calls:,} in {time.perf_counter() - started:.0f} s")
    print(f"RSS: {start_rss:.1f} -> {end_rss:.1f} MB (growth {end_rss - start_rss:+.2f} MB)")
    print(f"spans exported: {exported:,} of {calls:,} (dropped {calls - exported:,})")
    print(f"llm_usage.tokens input: {tokens:,} (expected {calls * 11:,})")
    tracer_provider.shutdown()


if __name__ == "__main__":
    main()
