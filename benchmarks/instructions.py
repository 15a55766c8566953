"""Bare LangChain vs the floor (``floor.py``) vs ours: CPU instructions and time.

    python benchmarks/instructions.py               # callgrind instruction counts, ~10 min
    python benchmarks/instructions.py --time        # µs, the three variants in one process
    python benchmarks/instructions.py --smoke       # every scenario a few times (CI), ~5 s
    python benchmarks/instructions.py --sdk-steps   # what each cheap use of the SDK buys

On a shared, noisy machine the same timing can move by 100 % between runs; callgrind's
instruction counts repeat exactly (PYTHONHASHSEED=0). Each mode runs in one child under
``valgrind --tool=callgrind``; a tiny C helper (``callgrind.h``, built with cc on first
use) zeroes the counts before the N counted calls of each scenario and dumps them after
(all threads: batch runs in a pool), so neither start-up nor warm-up is counted.

Modes: ``bare``; ``floor``, the hand-written minimal instrumentation emitting the same
span and histogram records; ``ours``, LangChainUsageInstrumentor on the same SDK
(BatchSpanProcessor to a no-op exporter, InMemoryMetricReader); ``nosdk``, ours on the
API's no-op providers. "added" is a mode minus bare; "ours ÷ floor" compares the added
costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _name in ("LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING"):
    os.environ[_name] = "false"

# scenario: calls counted under callgrind (the per-call count is their mean)
SCENARIOS = {
    "invoke": 40,
    "ainvoke": 40,
    "stream_k20": 20,
    "stream_k200": 5,
    "astream_k20": 20,
    "astream_events_v2": 10,
    "batch8": 5,
    "new_instance": 40,
    "track_usage_invoke": 40,
}
MODES = ("bare", "floor", "ours", "nosdk")
# what nosdk is measured on: the no-SDK row and our own code inside track_usage
NOSDK_SCENARIOS = ("invoke", "track_usage_invoke")
HELPER_C = """#include <valgrind/callgrind.h>
void zero(void) { CALLGRIND_ZERO_STATS; }
void dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


# -- the child: one mode, every scenario ---------------------------------------------------


def make_sdk(sampled: bool = True) -> tuple[Any, Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    class Noop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    # never exports during a run (a few thousand spans): an export lands in whichever
    # scenario runs when the worker thread gets the GIL, which moved counts by 4 %
    never = 10**7
    processor = BatchSpanProcessor(
        Noop(), max_queue_size=never, schedule_delay_millis=never, max_export_batch_size=never
    )
    tracer_provider.add_span_processor(processor)
    reader = InMemoryMetricReader()
    return tracer_provider, MeterProvider(metric_readers=[reader]), reader


class Switch:
    """Puts one mode in place in this process (uninstalling the previous one)."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from floor import Floor
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider

        from otel_llm_usage import LangChainUsageInstrumentor

        self.providers = {
            "ours": (tracer_provider, meter_provider),
            "nosdk": (NoOpTracerProvider(), NoOpMeterProvider()),
        }
        self.floor = Floor(tracer_provider, meter_provider)
        self.ours = LangChainUsageInstrumentor()
        self.mode = "bare"

    def set(self, mode: str) -> None:
        if mode == self.mode:
            return
        if self.mode == "floor":
            self.floor.uninstrument()
        elif self.mode != "bare":
            self.ours.uninstrument()
        if mode == "floor":
            self.floor.instrument()
        elif mode != "bare":
            tracer_provider, meter_provider = self.providers[mode]
            self.ours.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        self.mode = mode


def bodies() -> dict[str, Callable[[], Any]]:
    """One call of each scenario; a coroutine function for the async ones. The calls of
    ``track_usage_invoke`` all run inside one ``track_usage()`` block (see run_loop)."""
    from fake_model import FakeChatOpenAI
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    model, k200 = FakeChatOpenAI(), FakeChatOpenAI(chunks=200)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | model | StrOutputParser()

    async def ainvoke() -> None:
        await model.ainvoke("hi")

    async def astream() -> None:
        async for _ in model.astream("hi"):
            pass

    async def events() -> None:
        async for _ in chain.astream_events({"q": "hi"}, version="v2"):
            pass

    return {
        "invoke": lambda: model.invoke("hi"),
        "ainvoke": ainvoke,
        "stream_k20": lambda: list(model.stream("hi")),
        "stream_k200": lambda: list(k200.stream("hi")),
        "astream_k20": astream,
        "astream_events_v2": events,
        "batch8": lambda: model.batch(["hi"] * 8),
        "new_instance": lambda: FakeChatOpenAI().invoke("hi"),
        "track_usage_invoke": lambda: model.invoke("hi"),
    }


def run_loop(
    name: str, body: Callable[[], Any], n: int, before: Callable[[], Any], after: Callable[[], Any]
) -> None:
    """N calls of ``body``: ``before()`` just before them, ``after()`` just after. What
    lived before is frozen out of the cyclic GC, so its collections cost what these calls
    allocate, not what the process happens to hold (a full collection landing in one
    mode's loop and not another's moved a count by 10 %)."""
    from otel_llm_usage import track_usage

    with track_usage() if name == "track_usage_invoke" else contextlib.nullcontext():
        if asyncio.iscoroutinefunction(body):

            async def loop() -> None:
                gc.collect()
                gc.freeze()
                before()
                for _ in range(n):
                    await body()
                after()

            asyncio.run(loop())
        else:
            gc.collect()
            gc.freeze()
            before()
            for _ in range(n):
                body()
            after()


def nothing() -> None:
    pass


def child(mode: str, helper: str) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    sys.setswitchinterval(60)  # threads switch only where they block: counts repeat
    callgrind = ctypes.CDLL(helper)
    if mode == "steps":
        calls = sdk_steps()
    else:
        tracer_provider, meter_provider, _ = make_sdk()
        Switch(tracer_provider, meter_provider).set(mode)
        calls = bodies()
    names = NOSDK_SCENARIOS if mode == "nosdk" else [s for s in calls if s != "track_usage_invoke"]
    only = os.environ.get("INSTRUCTIONS_ONLY")  # --only: a few scenarios while tuning
    names = [name for name in names if not only or name in only.split(",")]
    for name, body in calls.items():
        if name in names:
            run_loop(name, body, 20, nothing, nothing)  # warm: memos, series, pools
            label = name.encode()
            run_loop(name, body, COUNTED[name], callgrind.zero, partial(callgrind.dump, label))
    run_loop("empty", nothing, 0, callgrind.zero, partial(callgrind.dump, b"empty"))


# -- what each cheap use of the SDK buys (the floor's own cost, one invoke's telemetry) ------

STEPS = {
    "naive": "request and response attributes one by one at the end, metric dicts per call",
    "at_start": "request attributes given to start_span, the rest in one set_attributes",
    "series": "+ metric attribute dicts built once per series (what the floor does)",
    "unsampled_built": "span not sampled, response attributes still built and set",
    "unsampled": "span not sampled, nothing built for it (is_recording)",
    "view_drop": "the token histogram dropped by a View (DropAggregation)",
    "no_histograms": "no histogram records at all (the best a drop could cost)",
}
COUNTED = {**SCENARIOS, **dict.fromkeys(STEPS, 200)}


def sdk_steps() -> dict[str, Callable[[], Any]]:
    """The SDK calls of one instrumented invoke, written each cheaper way in turn."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import DropAggregation, View
    from opentelemetry.trace import SpanKind

    from otel_llm_usage import semconv as sc

    sampled, meters, _ = make_sdk()
    unsampled, _, _ = make_sdk(sampled=False)
    view = View(instrument_name=sc.GEN_AI_CLIENT_TOKEN_USAGE, aggregation=DropAggregation())
    dropping = MeterProvider(views=[view])
    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini"}  # fmt: skip
    request = {**base, "gen_ai.request.temperature": 0.0}
    series = {**base, "gen_ai.response.model": "gpt-4o-mini"}
    inputs, outputs = ({**series, "gen_ai.token.type": t} for t in ("input", "output"))
    usage = {"input_tokens": 11, "output_tokens": 16, "input_token_details": {"cache_read": 3},
             "output_token_details": {"reasoning": 5}}  # fmt: skip

    def response() -> dict[str, Any]:
        return {
            "gen_ai.response.model": "gpt-4o-mini",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": usage["input_tokens"],
            "gen_ai.usage.output_tokens": usage["output_tokens"],
            "gen_ai.usage.cache_read.input_tokens": usage["input_token_details"]["cache_read"],
            "gen_ai.usage.reasoning.output_tokens": usage["output_token_details"]["reasoning"],
            "gen_ai.usage.cost.amount": 8 * 0.15e-6 + 3 * 0.075e-6 + 16 * 0.6e-6,
            "gen_ai.usage.cost.currency": "USD",
            "gen_ai.usage.cost.source": "local",
        }

    def call(tracer_provider: Any, meter_provider: Any, *, naive: bool = False,
             prebuilt: bool = True, check: bool = True,
             histograms: bool = True) -> Callable[[], None]:  # fmt: skip
        tracer, meter = tracer_provider.get_tracer("steps"), meter_provider.get_meter("steps")
        duration = meter.create_histogram(sc.GEN_AI_CLIENT_OPERATION_DURATION, unit="s")
        tokens = meter.create_histogram(sc.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}")

        def once() -> None:
            if naive:
                span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT)
                for key, value in {**request, **response()}.items():
                    span.set_attribute(key, value)
            else:
                span = tracer.start_span(
                    "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=request
                )
                if not check or span.is_recording():
                    span.set_attributes(response())
            span.end()
            if histograms:
                if prebuilt:
                    attributes = (series, inputs, outputs)
                else:
                    current = {**base, "gen_ai.response.model": "gpt-4o-mini"}
                    attributes = (current, {**current, "gen_ai.token.type": "input"},
                                  {**current, "gen_ai.token.type": "output"})  # fmt: skip
                duration.record(0.001, attributes[0])
                tokens.record(11, attributes[1])
                tokens.record(16, attributes[2])

        return once

    variants = [
        call(sampled, meters, naive=True, prebuilt=False),
        call(sampled, meters, prebuilt=False),
        call(sampled, meters),
        call(unsampled, meters, check=False),
        call(unsampled, meters),
        call(sampled, dropping),
        call(sampled, meters, histograms=False),
    ]
    return dict(zip(STEPS, variants, strict=True))


def helper_library() -> str:
    path = Path(tempfile.gettempdir()) / "otel_llm_usage_callgrind.so"
    if not path.exists():
        source = path.with_suffix(".c")
        source.write_text(HELPER_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(path), str(source)], check=True)
    return str(path)


def no_aslr() -> list[str]:
    """Address-space randomisation off (util-linux setarch, where it works): counts that
    moved by 0.5-2 % between runs (dict and allocator layouts) then repeat within ~0.1 %."""
    command = ["setarch", os.uname().machine, "-R"]
    if shutil.which("setarch") and subprocess.run([*command, "true"], check=False).returncode == 0:
        return command
    return []


def count_mode(mode: str, helper: str) -> dict[str, float]:
    """Instructions per call of each scenario of one mode."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cg.out"
        command = [*no_aslr(), "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        subprocess.run(
            [*command, sys.executable, __file__, "--child", mode, "--helper", helper],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        counts = {}
        for dump in Path(folder).glob("cg.out.*"):
            text = dump.read_text()
            name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
            total = re.search(r"^summary: (\d+)", text, re.M)
            if name and total:
                counts[name.group(1)] = int(total.group(1))
    empty = counts.pop("empty")
    return {name: (total - empty) / COUNTED[name] for name, total in counts.items()}


# -- timing: the modes in one process, alternating ------------------------------------------


def timings(reps: int, n_scale: float) -> dict[str, dict[str, float]]:
    """Median µs per call (process CPU time) for every mode and scenario."""
    import warnings

    warnings.filterwarnings("ignore")
    tracer_provider, meter_provider, _ = make_sdk()
    switch = Switch(tracer_provider, meter_provider)
    samples: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    calls = bodies()
    for rep in range(reps):
        for mode in MODES[rep % len(MODES) :] + MODES[: rep % len(MODES)]:
            switch.set(mode)
            for name, body in calls.items():
                if mode == "nosdk" and name not in NOSDK_SCENARIOS:
                    continue
                if name == "track_usage_invoke" and mode != "nosdk":
                    continue
                n = max(1, round(SCENARIOS[name] * n_scale))
                run_loop(name, body, 2, nothing, nothing)
                clock: list[float] = []
                tick = partial(lambda c: c.append(time.process_time()), clock)
                run_loop(name, body, n, tick, tick)
                samples[mode].setdefault(name, []).append((clock[1] - clock[0]) / n * 1e6)
    switch.set("bare")
    return {m: {s: statistics.median(v) for s, v in d.items()} for m, d in samples.items()}


# -- the report -------------------------------------------------------------------------------


def table(results: dict[str, dict[str, float]], unit: str) -> str:
    bare, floor, ours = results["bare"], results["floor"], results["ours"]
    lines = [
        f"| scenario ({unit}) | bare | floor | ours | floor added | ours added | ours ÷ floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, b: float, f: float, o: float) -> None:
        ratio = f"{(o - b) / (f - b):.2f}x" if f != b else "-"
        lines.append(
            f"| {name} | {b:,.1f} | {f:,.1f} | {o:,.1f} | {f - b:,.1f} | {o - b:,.1f} | {ratio} |"
        )

    for name in bare:
        row(name, bare[name], floor[name], ours[name])
    chunk = {m: (results[m]["stream_k200"] - results[m]["stream_k20"]) / 180 for m in MODES[:3]}
    row("per extra chunk", chunk["bare"], chunk["floor"], chunk["ours"])
    nosdk = results["nosdk"]
    lines.append(
        f"| invoke, no SDK | {bare['invoke']:,.1f} | | {nosdk['invoke']:,.1f} | | "
        f"{nosdk['invoke'] - bare['invoke']:,.1f} | |"
    )
    return "\n".join(lines)


def targets(results: dict[str, dict[str, float]]) -> str:
    bare, floor, ours, nosdk = (results[m] for m in MODES)

    def added(mode: dict[str, float], name: str) -> float:
        return mode[name] - bare[name]

    chunk = {m: (results[m]["stream_k200"] - results[m]["stream_k20"]) / 180 for m in MODES[:3]}
    rows = [
        ("invoke: ours ÷ floor (added)", added(ours, "invoke") / added(floor, "invoke"), 1.15),
        (
            "stream_k20: ours ÷ floor (added)",
            added(ours, "stream_k20") / added(floor, "stream_k20"),
            1.15,
        ),
        (
            "own code (no SDK, in track_usage) ÷ bare invoke",
            (nosdk["track_usage_invoke"] - bare["invoke"]) / bare["invoke"],
            0.05,
        ),
        (
            "per extra chunk: ours added ÷ LangChain's",
            (chunk["ours"] - chunk["bare"]) / chunk["bare"],
            0.02,
        ),
        (
            "new instance ÷ reused (ours added)",
            added(ours, "new_instance") / added(ours, "invoke"),
            1.05,
        ),
        ("no SDK ÷ bare invoke", added(nosdk, "invoke") / bare["invoke"], 0.01),
    ]
    out = ["| target | measured | limit | met |", "|---|---:|---:|---|"]
    for name, value, limit in rows:
        out.append(f"| {name} | {value:.3f} | {limit} | {'yes' if value <= limit else 'NO'} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", action="store_true", help="µs in one process, no valgrind")
    parser.add_argument("--smoke", action="store_true", help="every scenario a few times (CI)")
    parser.add_argument("--sdk-steps", action="store_true", help="what each cheap SDK use buys")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--only", help="MODE:SCENARIO,...: those counts alone, while tuning")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--helper", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.child:
        child(args.child, args.helper)
        return
    if args.smoke:  # runs every path of every mode; says nothing about targets
        print(table(timings(1, 0.1), "µs, one repetition: no verdicts"))
        return
    if args.time:
        results = timings(args.reps, 1.0)
        print(table(results, "µs"), targets(results), sep="\n\n")
        return
    helper = helper_library()
    if args.only:
        mode, _, names = args.only.partition(":")
        os.environ["INSTRUCTIONS_ONLY"] = names
        for name, count in count_mode(mode, helper).items():
            print(f"{mode} {name}: {count:,.0f}")
        return
    if args.sdk_steps:
        steps = count_mode("steps", helper)
        print("| one invoke's SDK calls, written | instructions |\n|---|---:|")
        for name, text in STEPS.items():
            print(f"| {text} | {steps[name]:,.0f} |")
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(MODES, pool.map(lambda m: count_mode(m, helper), MODES), strict=True))
    print(table(found, "instructions"), targets(found), sep="\n\n")


if __name__ == "__main__":
    main()
