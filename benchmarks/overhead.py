"""What ``otel_llm_usage`` adds to a LangChain chat-model call, bare vs instrumented.

    python benchmarks/overhead.py                  # full run (~2-3 min on 2 cores)
    python benchmarks/overhead.py --quick          # smoke run for CI (~20 s)
    python benchmarks/overhead.py --memory         # + RSS growth over 100,000 invokes
    python benchmarks/overhead.py --scenarios invoke,stream_k20 --json out.json

Everything runs in ONE process: a fake chat model with no I/O (``fake_model.py``), the
real OpenTelemetry SDK (TracerProvider + BatchSpanProcessor -> no-op exporter,
MeterProvider + InMemoryMetricReader), and ``LangChainUsageInstrumentor`` switched on and
off (``uninstrument()`` restores LangChain's methods) between repetitions. Each
repetition times the bare and the instrumented variant back to back, in alternating
order, so machine drift cancels. Per scenario:

* bare µs / instrumented µs: medians over the repetitions;
* added µs: median of the per-repetition (instrumented - bare) differences;
* spread: half the range of those differences (a noise indicator).

What the SDK itself costs for the same telemetry (the floor) and the targets are in
``instructions.py``, which compares against a hand-written minimal instrumentation.

``--peer traceloop`` instead runs the shared peer harness (``../shared/bench``) for
bare, this checkout and that peer, each in its own virtualenv, and prints what each adds
and the ratio.

This is a report, not a test: it prints no verdicts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Never let LangSmith tracing switch on behind the benchmark's back.
for _name in ("LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING", "LANGCHAIN_TRACING"):
    os.environ[_name] = "false"

HERE = os.path.dirname(os.path.abspath(__file__))
MSG = "Tell me a joke about observability."

RunFn = Callable[[int], float]

# The clock every timed loop reads. Default: this process's CPU time (all its threads),
# which other processes on a shared machine barely disturb; ``--clock wall`` switches to
# perf_counter, as the shared peer harness uses.
CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
_clock: list[Callable[[], float]] = [time.process_time]


# -- logging: instrumentation problems are logged, not raised ----------------------------


class _CountingHandler(logging.Handler):
    """Counts WARNING+ records (OTel context-detach errors, queue-full drops, ...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.samples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.name}:{record.levelname}"
        self.counts[key] += 1
        if key not in self.samples:
            try:
                self.samples[key] = record.getMessage()[:300]
            except Exception:
                self.samples[key] = "<unprintable>"


LOG_COUNTS = _CountingHandler()


# -- the OpenTelemetry SDK -----------------------------------------------------------------


@dataclass
class Sdk:
    tracer_provider: Any
    meter_provider: Any
    reader: Any
    exporter: Any


def make_sdk() -> Sdk:
    """The SDK the peers were measured with: BatchSpanProcessor -> no-op exporter and
    an InMemoryMetricReader (no background export thread for metrics)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class CountingExporter(SpanExporter):
        """Drops spans; counts them (and keeps the last batch for a sanity check)."""

        def __init__(self) -> None:
            self.exported = 0
            self.last: list[Any] = []
            self._lock = threading.Lock()

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            with self._lock:
                self.exported += len(spans)
                self.last = list(spans[-4:])
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    resource = Resource.create({"service.name": "otel-llm-usage-overhead-bench"})
    exporter = CountingExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    return Sdk(tracer_provider, meter_provider, reader, exporter)


def exported_spans(sdk: Sdk) -> int:
    sdk.tracer_provider.force_flush()
    return int(sdk.exporter.exported)


def histogram_points(sdk: Sdk, prefix: str = "gen_ai.") -> dict[str, float]:
    """Cumulative histogram record counts and sums by metric name (ours only)."""
    out: dict[str, float] = {}
    data = sdk.reader.get_metrics_data()
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not metric.name.startswith(prefix):
                    continue
                for point in getattr(metric.data, "data_points", ()):
                    if hasattr(point, "count") and hasattr(point, "bucket_counts"):
                        out[f"{metric.name}#count"] = out.get(f"{metric.name}#count", 0) + int(
                            point.count
                        )
                        out[f"{metric.name}#sum"] = out.get(f"{metric.name}#sum", 0) + float(
                            point.sum
                        )
    return out


# -- switching the instrumentation on and off ----------------------------------------------


class Switch:
    """Modes: ``bare`` (uninstrumented), ``sdk`` (real SDK), ``noop`` (API no-op
    providers), ``tracer_only`` / ``meter_only`` (the SDK for one signal, no-op for the
    other): the last two split the added time between spans, metrics and our code."""

    def __init__(self, sdk: Sdk) -> None:
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider

        from otel_llm_usage import LangChainUsageInstrumentor

        self.sdk = sdk
        self.instrumentor: Any = LangChainUsageInstrumentor()
        # one instance each, so per-provider caches behave as in an application
        self.noop_tracer_provider = NoOpTracerProvider()
        self.noop_meter_provider = NoOpMeterProvider()
        self.mode = "bare"
        if self.instrumentor.is_instrumented_by_opentelemetry:
            self.instrumentor.uninstrument()

    def set(self, mode: str) -> None:
        if mode == self.mode:
            return
        if self.mode != "bare":
            self.instrumentor.uninstrument()
        if mode == "sdk":
            self.instrumentor.instrument(
                tracer_provider=self.sdk.tracer_provider,
                meter_provider=self.sdk.meter_provider,
            )
        elif mode == "noop":
            self.instrumentor.instrument(
                tracer_provider=self.noop_tracer_provider,
                meter_provider=self.noop_meter_provider,
            )
        elif mode == "tracer_only":
            self.instrumentor.instrument(
                tracer_provider=self.sdk.tracer_provider,
                meter_provider=self.noop_meter_provider,
            )
        elif mode == "meter_only":
            self.instrumentor.instrument(
                tracer_provider=self.noop_tracer_provider,
                meter_provider=self.sdk.meter_provider,
            )
        elif mode != "bare":
            raise ValueError(mode)
        self.mode = mode


def is_patched() -> bool:
    from langchain_core.language_models.chat_models import BaseChatModel

    return hasattr(vars(BaseChatModel)["_generate_with_cache"], "__wrapped__")


# -- scenarios -----------------------------------------------------------------------------


def _sync_loop(body: Callable[[], Any]) -> RunFn:
    def run(n: int) -> float:
        clock = _clock[0]
        start = clock()
        for _ in range(n):
            body()
        return clock() - start

    return run


def _tracked_loop(body: Callable[[], Any]) -> RunFn:
    """``_sync_loop`` inside one ``track_usage()`` block (its enter/exit not timed per call)."""
    from otel_llm_usage import track_usage

    loop = _sync_loop(body)

    def run(n: int) -> float:
        with track_usage():
            return loop(n)

    return run


def _async_loop(make: Callable[[], Any]) -> RunFn:
    async def inner(n: int) -> float:
        clock = _clock[0]
        start = clock()
        for _ in range(n):
            await make()
        return clock() - start

    def run(n: int) -> float:
        return asyncio.run(inner(n))

    return run


@dataclass
class Scenario:
    name: str
    unit: str
    bare: RunFn
    instrumented: RunFn
    instrumented_mode: str = "sdk"
    min_n: int = 10
    description: str = ""


@dataclass
class Models:
    m: Any
    k1: Any
    k20: Any
    k200: Any
    chain: Any
    extra: dict[str, Any] = field(default_factory=dict)


def make_models() -> Models:
    from fake_model import MODEL_NAME, FakeChatOpenAI
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    k20 = FakeChatOpenAI(model_name=MODEL_NAME, chunks=20)
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    return Models(
        m=FakeChatOpenAI(model_name=MODEL_NAME, chunks=20),
        k1=FakeChatOpenAI(model_name=MODEL_NAME, chunks=1),
        k20=k20,
        k200=FakeChatOpenAI(model_name=MODEL_NAME, chunks=200),
        chain=prompt | FakeChatOpenAI(model_name=MODEL_NAME, chunks=20) | StrOutputParser(),
    )


def build_scenarios(models: Models) -> dict[str, Scenario]:
    from otel_llm_usage import track_usage

    m = models.m

    def invoke() -> None:
        m.invoke(MSG)

    def invoke_tracked() -> None:
        with track_usage():
            m.invoke(MSG)

    def consume(model: Any) -> Callable[[], None]:
        def body() -> None:
            for _ in model.stream(MSG):
                pass

        return body

    def aconsume(model: Any) -> Callable[[], Any]:
        async def body() -> None:
            async for _ in model.astream(MSG):
                pass

        return body

    async def events() -> None:
        async for _ in models.chain.astream_events({"q": MSG}, version="v2"):
            pass

    async def gather200() -> None:
        await asyncio.gather(*(m.ainvoke(MSG) for _ in range(200)))

    batch_in = [MSG] * 8

    def same(run: RunFn) -> tuple[RunFn, RunFn]:
        return run, run

    table: list[tuple[str, str, tuple[RunFn, RunFn], str, int, str]] = [
        ("invoke", "call", same(_sync_loop(invoke)), "sdk", 10, "model.invoke"),
        (
            "ainvoke",
            "call",
            same(_async_loop(lambda: m.ainvoke(MSG))),
            "sdk",
            10,
            "await model.ainvoke",
        ),
        ("stream_k1", "stream", same(_sync_loop(consume(models.k1))), "sdk", 10, "K=1"),
        ("stream_k20", "stream", same(_sync_loop(consume(models.k20))), "sdk", 10, "K=20"),
        ("stream_k200", "stream", same(_sync_loop(consume(models.k200))), "sdk", 5, "K=200"),
        ("astream_k20", "stream", same(_async_loop(aconsume(models.k20))), "sdk", 10, "K=20"),
        ("astream_k200", "stream", same(_async_loop(aconsume(models.k200))), "sdk", 5, "K=200"),
        (
            "astream_events_v2",
            "run",
            same(_async_loop(events)),
            "sdk",
            5,
            "prompt | model(K=20) | StrOutputParser()",
        ),
        (
            "batch8",
            "batch of 8",
            same(_sync_loop(lambda: m.batch(batch_in))),
            "sdk",
            5,
            "model.batch([msg]*8)",
        ),
        (
            "gather200",
            "gather",
            same(_async_loop(gather200)),
            "sdk",
            2,
            "asyncio.gather of 200 ainvoke",
        ),
        (
            "nosdk_invoke",
            "call",
            same(_sync_loop(invoke)),
            "noop",
            10,
            "instrumented with NoOpTracerProvider/NoOpMeterProvider",
        ),
        (
            "track_usage_invoke",
            "call",
            (_sync_loop(invoke), _sync_loop(invoke_tracked)),
            "sdk",
            10,
            "with track_usage(): model.invoke (bare: plain invoke)",
        ),
        # Where invoke's added time goes: spans alone, metrics alone, and our code with
        # no SDK at all (no-op providers; the track_usage() block makes it do the work:
        # usage, prices, totals; span attributes are skipped on a non-recording span).
        ("invoke_tracer_only", "call", same(_sync_loop(invoke)), "tracer_only", 10, "spans"),
        ("invoke_meter_only", "call", same(_sync_loop(invoke)), "meter_only", 10, "metrics"),
        (
            "invoke_no_sdk_tracked",
            "call",
            (_sync_loop(invoke), _tracked_loop(invoke)),
            "noop",
            10,
            "no-op providers, with track_usage(): our code without the SDK",
        ),
    ]
    return {
        name: Scenario(name, unit, runs[0], runs[1], mode, min_n, description)
        for name, unit, runs, mode, min_n, description in table
    }


# Derived rows: name -> (needs, description).
DERIVED: dict[str, tuple[tuple[str, ...], str]] = {
    "per_chunk_sync": (("stream_k20", "stream_k200"), "(stream_k200 - stream_k20) / 180"),
    "per_chunk_async": (("astream_k20", "astream_k200"), "(astream_k200 - astream_k20) / 180"),
}
ALL_NAMES = [
    "invoke",
    "ainvoke",
    "stream_k1",
    "stream_k20",
    "stream_k200",
    "per_chunk_sync",
    "astream_k20",
    "astream_k200",
    "per_chunk_async",
    "astream_events_v2",
    "batch8",
    "gather200",
    "nosdk_invoke",
    "track_usage_invoke",
    "invoke_tracer_only",
    "invoke_meter_only",
    "invoke_no_sdk_tracked",
    "memory",
]


def calibrate(run: RunFn, target_s: float, min_n: int, max_n: int = 200_000) -> int:
    run(2)  # first-call costs (imports, caches, executors) out of the estimate
    n = 2
    while True:
        elapsed = run(n)
        if elapsed >= target_s / 4 or n >= max_n:
            break
        n *= 2
    return max(min_n, min(max_n, int(target_s / max(elapsed / n, 1e-9))))


def measure(
    scenario: Scenario, switch: Switch, reps: int, target_s: float, log: Callable[[str], None]
) -> dict[str, Any]:
    switch.set("bare")
    n = calibrate(scenario.bare, target_s, scenario.min_n)
    switch.set(scenario.instrumented_mode)
    scenario.instrumented(max(2, n // 10))  # warm the instrumented path (memo caches)
    bare: list[float] = []
    instrumented: list[float] = []
    for rep in range(reps):
        order = ("bare", "instrumented") if rep % 2 == 0 else ("instrumented", "bare")
        for which in order:
            if which == "bare":
                switch.set("bare")
                scenario.bare(2)
                gc.collect()
                bare.append(scenario.bare(n) / n * 1e6)
            else:
                switch.set(scenario.instrumented_mode)
                scenario.instrumented(2)
                gc.collect()
                instrumented.append(scenario.instrumented(n) / n * 1e6)
    switch.set("bare")
    diffs = [i - b for i, b in zip(instrumented, bare, strict=True)]
    result = {
        "unit": scenario.unit,
        "description": scenario.description,
        "n": n,
        "reps": reps,
        "bare_us": statistics.median(bare),
        "instrumented_us": statistics.median(instrumented),
        "added_us": statistics.median(diffs),
        "added_min_us": min(instrumented) - min(bare),
        "spread_us": (max(diffs) - min(diffs)) / 2,
        "bare_samples_us": [round(x, 3) for x in bare],
        "instrumented_samples_us": [round(x, 3) for x in instrumented],
    }
    log(
        f"  {scenario.name:20s} bare {result['bare_us']:10.1f}  instr "
        f"{result['instrumented_us']:10.1f}  added {result['added_us']:9.1f} "
        f"(±{result['spread_us']:.1f}) µs/{scenario.unit}  n={n}"
    )
    return result


def derive(results: dict[str, Any]) -> None:
    for name, (needs, description) in DERIVED.items():
        if not all(need in results for need in needs):
            continue
        small, large = (results[need] for need in needs)
        per = 180.0
        bare = (large["bare_us"] - small["bare_us"]) / per
        instrumented = (large["instrumented_us"] - small["instrumented_us"]) / per
        diffs = [
            ((li - lb) - (si - sb)) / per
            for si, sb, li, lb in zip(
                small["instrumented_samples_us"],
                small["bare_samples_us"],
                large["instrumented_samples_us"],
                large["bare_samples_us"],
                strict=False,
            )
        ]
        results[name] = {
            "unit": "chunk",
            "description": description,
            "bare_us": bare,
            "instrumented_us": instrumented,
            "added_us": (large["added_us"] - small["added_us"]) / per,
            "added_min_us": (large["added_min_us"] - small["added_min_us"]) / per,
            "spread_us": (max(diffs) - min(diffs)) / 2 if diffs else 0.0,
            "derived": True,
        }


# -- what one call produces (spans, histogram records, tokens) -----------------------------


def cyclic_garbage(body: Callable[[], Any], calls: int, sdk: Sdk) -> float:
    """Objects per call that only the cyclic GC can free (reference cycles): each one
    keeps what it references (a span, its attributes) alive until a GC pass, and they
    are what makes the collector run at all."""
    body()
    gc.collect()
    gc.disable()
    try:
        for _ in range(calls):
            body()
        exported_spans(sdk)  # spans still queued for export are not garbage yet
        return gc.collect() / calls
    finally:
        gc.enable()


def census(models: Models, switch: Switch, calls: int = 50) -> dict[str, Any]:
    """Spans and histogram records per invoke / per stream, token sums, and a check
    that ``uninstrument()`` really stops the spans."""
    sdk = switch.sdk
    out: dict[str, Any] = {}

    def count(label: str, body: Callable[[], Any], check_tokens: bool) -> None:
        spans0, hist0 = exported_spans(sdk), histogram_points(sdk)
        for _ in range(calls):
            body()
        spans1, hist1 = exported_spans(sdk), histogram_points(sdk)
        records = sum(hist1[k] - hist0.get(k, 0) for k in hist1 if k.endswith("#count")) / float(
            calls
        )
        token_sum = hist1.get("gen_ai.client.token.usage#sum", 0) - hist0.get(
            "gen_ai.client.token.usage#sum", 0
        )
        entry = {
            "spans_per_call": (spans1 - spans0) / calls,
            "histogram_records_per_call": records,
        }
        if check_tokens:
            entry["token_usage_sum_per_call"] = token_sum / calls
        entry["cyclic_garbage_per_call"] = cyclic_garbage(body, calls, sdk)
        out[label] = entry

    def stream20() -> None:
        for _ in models.k20.stream(MSG):
            pass

    switch.set("sdk")
    count("invoke", lambda: models.m.invoke(MSG), True)
    count("stream_k20", stream20, True)
    last = list(sdk.exporter.last)
    if last:
        attributes = dict(last[-1].attributes or {})
        out["last_span"] = {"name": last[-1].name, "attributes": attributes}
    switch.set("bare")
    out["bare_cyclic_garbage_per_call"] = cyclic_garbage(lambda: models.m.invoke(MSG), calls, sdk)
    patched = is_patched()
    spans0 = exported_spans(sdk)
    for _ in range(10):
        models.m.invoke(MSG)
    out["uninstrument_ok"] = (exported_spans(sdk) == spans0) and not patched
    return out


# -- memory --------------------------------------------------------------------------------


def rss_bytes() -> tuple[int | None, str]:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss), "psutil"
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "/proc/self/statm"
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * (1 if sys.platform == "darwin" else 1024), "resource.ru_maxrss (peak)"
    except Exception:
        return None, "unavailable"


def measure_memory(models: Models, switch: Switch, calls: int, log: Callable[[str], None]) -> Any:
    sdk = switch.sdk
    switch.set("sdk")
    warmup = min(5000, max(500, calls // 10))
    for _ in range(warmup):
        models.m.invoke(MSG)
    exported_spans(sdk)
    gc.collect()
    rss0, method = rss_bytes()
    blocks0 = sys.getallocatedblocks()
    objects0 = len(gc.get_objects())
    spans0 = exported_spans(sdk)
    drops0 = sum(v for k, v in LOG_COUNTS.counts.items() if k.startswith("opentelemetry"))
    start = time.perf_counter()
    for _ in range(calls):
        models.m.invoke(MSG)
    elapsed = time.perf_counter() - start
    spans = exported_spans(sdk) - spans0
    gc.collect()
    rss1, _ = rss_bytes()
    switch.set("bare")
    growth = (rss1 - rss0) / 1e6 if rss0 is not None and rss1 is not None else None
    result = {
        "calls": calls,
        "warmup_calls": warmup,
        "us_per_call_during": elapsed / calls * 1e6,
        "rss_method": method,
        "rss_before_mb": rss0 / 1e6 if rss0 is not None else None,
        "rss_after_mb": rss1 / 1e6 if rss1 is not None else None,
        "rss_growth_mb": growth,
        "rss_growth_bytes_per_call": (growth * 1e6 / calls) if growth is not None else None,
        "py_alloc_blocks_growth": sys.getallocatedblocks() - blocks0,
        "gc_objects_growth": len(gc.get_objects()) - objects0,
        "spans_exported": spans,
        "otel_warnings_during": sum(
            v for k, v in LOG_COUNTS.counts.items() if k.startswith("opentelemetry")
        )
        - drops0,
    }
    log(
        f"  memory: {calls} invokes, RSS {result['rss_before_mb']:.1f} -> "
        f"{result['rss_after_mb']:.1f} MB ({method}); spans exported {spans}/{calls}"
    )
    return result


# -- report ----------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) < 10 and digits == 1:
        return f"{value:,.2f}"
    return f"{value:,.{digits}f}"


def render(report: dict[str, Any]) -> str:
    results: dict[str, Any] = report["results"]
    rows: list[list[str]] = []
    for name in ALL_NAMES:
        if name not in results:
            continue
        r = results[name]
        if name == "memory":
            growth = r.get("rss_growth_mb")
            rows.append(
                [
                    f"memory: RSS growth, {r['calls']:,} invokes (MB)",
                    _fmt(r.get("rss_before_mb")),
                    _fmt(r.get("rss_after_mb")),
                    _fmt(growth, 2),
                    "-",
                    f"spans {r['spans_exported']:,}/{r['calls']:,}",
                ]
            )
            continue
        added = r["added_us"]
        digits = 3 if r.get("unit") == "chunk" else 1
        rows.append(
            [
                f"{name} (µs/{r['unit']})",
                _fmt(r["bare_us"], digits),
                _fmt(r["instrumented_us"], digits),
                _fmt(added, digits),
                _fmt(r.get("added_min_us"), digits),
                f"±{_fmt(r['spread_us'], digits)}",
            ]
        )
    header = [
        "scenario",
        "bare µs",
        "instrumented µs",
        "added µs",
        "added (min)",
        "spread",
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|"
        + "|".join(("-" * (w + 1) + ":") if i else "-" * (w + 2) for i, w in enumerate(widths))
        + "|",
    ]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    clock = report.get("clock", "cpu")
    notes = [
        "",
        f"Clock: {clock} ({'process CPU time, all threads' if clock == 'cpu' else 'wall'}); "
        f"{report.get('reps')} repetitions of ~{report.get('target_s')} s per variant.",
        "bare/instrumented = medians; added = median of the per-repetition "
        "(instrumented - bare) pairs; added (min) = min(instrumented) - "
        "min(bare); spread = half the range of the pairs.",
        "Per-chunk rows: (K=200 - K=20)/180 of each column.",
        "nosdk_invoke: instrumented with the API's NoOpTracerProvider/NoOpMeterProvider.",
        "track_usage_invoke: bare = plain invoke, instrumented = `with track_usage(): invoke`.",
        "Against the floor (the least an instrumentation emitting the same telemetry can "
        "cost): benchmarks/instructions.py.",
        "memory row: bare/instrumented columns hold RSS MB before/after.",
    ]
    census_info = report.get("census")
    if census_info is not None:
        notes.append(
            f"uninstrument() restores LangChain (no spans, no wrapper left): "
            f"{census_info.get('uninstrument_ok')}"
        )
        for label in ("invoke", "stream_k20"):
            if label in census_info:
                c = census_info[label]
                notes.append(
                    f"{label}: {c['spans_per_call']:g} span/call, "
                    f"{c['histogram_records_per_call']:g} histogram records/call, "
                    f"token-usage sum/call {c.get('token_usage_sum_per_call', 0):g} "
                    f"(expected 27), cyclic garbage {c.get('cyclic_garbage_per_call', 0):g} "
                    f"objects/call (bare: {census_info.get('bare_cyclic_garbage_per_call', 0):g})"
                )
    if report.get("log_warnings"):
        notes.append(f"WARNING+ log records during the run: {report['log_warnings']}")
    return "\n".join(lines + notes)


# -- main ------------------------------------------------------------------------------


# Scenarios both this script and the shared peer harness run (harness names).
PEER_SCENARIOS = (
    "invoke",
    "ainvoke",
    "stream_k1",
    "stream_k20",
    "stream_k200",
    "astream_k20",
    "batch8",
    "astream_events_v2",
    "gather200",
)
PEER_RATIO_TARGET = 6.0  # the performance issue: at least 6x less than the fastest peer


def run_peer(peer: str, bench_dir: str, quick: bool) -> int:
    """Side by side with another instrumentation: the shared peer harness runs ``bare``,
    ``otel_llm_usage`` (this checkout) and ``peer``, each in its own virtualenv and
    process, with the same fake model, SDK set-up and protocol; this prints what each
    adds per scenario and the ratio (peer added / ours added)."""
    import subprocess
    import tempfile

    driver = os.path.join(bench_dir, "run_peers.py")
    if not os.path.isfile(driver):
        print(f"no peer harness at {driver} (use --bench-dir)", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(bench_dir, "configs", f"{peer}.py")):
        known = sorted(
            name[:-3]
            for name in os.listdir(os.path.join(bench_dir, "configs"))
            if name.endswith(".py") and not name.startswith("_")
        )
        print(f"unknown peer {peer!r}; the harness knows: {', '.join(known)}", file=sys.stderr)
        return 2
    results_dir = tempfile.mkdtemp(prefix="otel-llm-usage-peer-")
    command = [sys.executable, driver, "--configs", f"bare,otel_llm_usage,{peer}"]
    command += ["--results", results_dir, "--no-memory"] + (["--quick"] if quick else [])
    env = {**os.environ, "OTEL_LLM_USAGE_SRC": os.path.dirname(HERE)}
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=False)
    added: dict[str, dict[str, float]] = {}
    bare_us: dict[str, float] = {}
    for config in ("otel_llm_usage", peer):
        path = os.path.join(results_dir, f"{config}.timing.json")
        try:
            with open(path) as f:
                phases = json.load(f)["phases"]
        except (OSError, KeyError, ValueError) as exc:
            print(f"{config}: no timing results ({exc}); see {results_dir}", file=sys.stderr)
            return 1
        added[config] = {
            name: phases["instrumented"][name]["median_us"] - phases["bare"][name]["median_us"]
            for name in PEER_SCENARIOS
            if name in phases.get("instrumented", {}) and name in phases.get("bare", {})
        }
        if config == "otel_llm_usage":
            bare_us = {name: phases["bare"][name]["median_us"] for name in added[config]}
    print(render_peer(peer, bare_us, added["otel_llm_usage"], added[peer]))
    print(f"(raw results: {results_dir})")
    return 0


def render_peer(
    peer: str, bare_us: dict[str, float], ours: dict[str, float], theirs: dict[str, float]
) -> str:
    rows = [(name, bare_us[name], ours[name], theirs[name]) for name in ours if name in theirs]
    if all(k in ours and k in theirs for k in ("stream_k20", "stream_k200")):
        rows.append(
            (
                "per extra sync chunk",
                (bare_us["stream_k200"] - bare_us["stream_k20"]) / 180,
                (ours["stream_k200"] - ours["stream_k20"]) / 180,
                (theirs["stream_k200"] - theirs["stream_k20"]) / 180,
            )
        )
    header = (
        f"| scenario | bare µs | otel_llm_usage added µs | {peer} added µs | {peer} / ours "
        f"| ≥ {PEER_RATIO_TARGET:g}x |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for name, bare, mine, other in rows:
        if mine > 0:
            ratio = f"{other / mine:.1f}x"
            verdict = "pass" if other / mine >= PEER_RATIO_TARGET else "FAIL"
        else:  # we add nothing measurable: no ratio, nothing to fail
            ratio, verdict = "-", "pass"
        lines.append(f"| {name} | {bare:,.1f} | {mine:,.1f} | {other:,.1f} | {ratio} | {verdict} |")
    lines.append(
        f"\nThe performance target is {PEER_RATIO_TARGET:g}x (ours at most 1/{PEER_RATIO_TARGET:g}"
        " of the fastest peer's added time). Timings are medians of the harness's"
        " repetitions (wall clock), bare and instrumented in the same process."
    )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (~20 s), for CI")
    parser.add_argument(
        "--scenarios",
        default="",
        help=f"comma list (default: all but memory). Known: {','.join(ALL_NAMES)}",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--memory", action="store_true", help="also measure RSS growth over N invokes"
    )
    parser.add_argument(
        "--memory-calls",
        type=int,
        default=None,
        help="N for the memory run (default 100000; 3000 with --quick)",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 9; quick 3)")
    parser.add_argument(
        "--target-s",
        type=float,
        default=None,
        help="seconds per timed repetition (default 0.15; quick 0.02)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time (default, robust on a shared machine); wall: perf_counter",
    )
    parser.add_argument(
        "--peer",
        metavar="CONFIG",
        help="instead: run the shared peer harness for bare, otel_llm_usage and CONFIG "
        "(e.g. traceloop), each in its own virtualenv, and print the side-by-side ratio",
    )
    parser.add_argument(
        "--bench-dir",
        default=os.path.join(os.path.dirname(HERE), "..", "shared", "bench"),
        help="the shared peer harness (default: ../shared/bench from the repository root)",
    )
    return parser.parse_args(argv)


def selected(args: argparse.Namespace) -> list[str]:
    if args.scenarios:
        wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in ALL_NAMES]
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {ALL_NAMES}")
    else:
        wanted = [s for s in ALL_NAMES if s != "memory"]
    if args.memory or (args.quick and not args.scenarios):
        wanted.append("memory")
    for name, (needs, _) in DERIVED.items():
        if name in wanted:
            wanted.extend(needs)
    return [s for s in ALL_NAMES if s in set(wanted)]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peer:
        return run_peer(args.peer, args.bench_dir, args.quick)
    reps = args.reps or (3 if args.quick else 9)
    target_s = args.target_s or (0.02 if args.quick else 0.15)
    _clock[0] = CLOCKS[args.clock]
    memory_calls = args.memory_calls or (3000 if args.quick else 100_000)
    names = selected(args)

    def log(message: str) -> None:
        print(message, flush=True)

    logging.getLogger().addHandler(LOG_COUNTS)
    logging.getLogger().setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*astream_events.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        from langchain_core._api.beta_decorator import LangChainBetaWarning

        warnings.filterwarnings("ignore", category=LangChainBetaWarning)
    except ImportError:
        pass
    if HERE not in sys.path:
        sys.path.insert(0, HERE)

    t_start = time.perf_counter()
    sdk = make_sdk()
    switch = Switch(sdk)
    models = make_models()
    scenarios = build_scenarios(models)
    versions: dict[str, str | None] = {}
    from importlib import metadata

    for dist in ("otel-llm-usage", "langchain-core", "opentelemetry-sdk", "wrapt"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    log(
        f"otel_llm_usage overhead bench: reps={reps}, target {target_s}s/rep, "
        f"clock={args.clock}, "
        f"python {platform.python_version()}, {os.cpu_count()} cpus, "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )

    results: dict[str, Any] = {}
    for name in names:
        if name in scenarios:
            try:
                results[name] = measure(scenarios[name], switch, reps, target_s, log)
            except Exception as exc:  # a broken call path is a result, not a crash
                log(f"  {name}: ERROR {type(exc).__name__}: {exc}")
                results[name + "_error"] = f"{type(exc).__name__}: {exc}"
                switch.set("bare")
    derive(results)
    report: dict[str, Any] = {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "clock": args.clock,
        "reps": reps,
        "target_s": target_s,
        "results": results,
    }
    report["census"] = census(models, switch)
    if "memory" in names:
        results["memory"] = measure_memory(models, switch, memory_calls, log)
    report["log_warnings"] = dict(LOG_COUNTS.counts)
    report["log_samples"] = dict(LOG_COUNTS.samples)
    report["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    report["table"] = render(report)
    print()
    print(report["table"])
    print(f"\n(total {report['elapsed_s']} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
        print(f"(results written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
