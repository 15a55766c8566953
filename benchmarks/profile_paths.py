"""Where the instrumented time goes: cProfile by package, bare vs instrumented.

    python benchmarks/profile_paths.py                      # invoke, stream_k20, nosdk_invoke
    python benchmarks/profile_paths.py --scenarios invoke --calls 5000 --top 25
    python benchmarks/profile_paths.py --pyinstrument invoke   # call tree (needs pyinstrument)

Same set-up as ``overhead.py`` (fake model, real SDK with a BatchSpanProcessor to a
no-op exporter, InMemoryMetricReader). For each scenario the same loop runs under
cProfile uninstrumented and instrumented; exclusive (tottime) seconds are summed per
bucket (otel_llm_usage, opentelemetry SDK/API, langchain, wrapt, pydantic, stdlib...)
and shown per call, with the instrumented - bare difference. cProfile inflates small
functions, so read the split, not the absolute numbers (those are in ``overhead.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import overhead  # noqa: E402  (benchmarks/ is not a package)

BUCKETS = (
    ("otel_llm_usage", ("otel_llm_usage",)),
    ("opentelemetry.sdk", ("opentelemetry/sdk",)),
    ("opentelemetry.api", ("opentelemetry/",)),
    ("wrapt", ("wrapt",)),
    ("langchain_core", ("langchain_core", "langchain_protocol", "langsmith")),
    ("pydantic", ("pydantic",)),
    ("benchmark/fake", ("benchmarks/",)),
    ("asyncio", ("asyncio/",)),
)


def bucket(filename: str) -> str:
    if filename.startswith("~") or filename == "<built-in>":
        return "builtins (C)"
    for name, needles in BUCKETS:
        if any(needle in filename for needle in needles):
            return name
    return "other stdlib"


def _body(name: str, models: overhead.Models) -> Callable[[int], Any]:
    msg = overhead.MSG

    def invoke(n: int) -> None:
        for _ in range(n):
            models.m.invoke(msg)

    def stream(model: Any) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                for _chunk in model.stream(msg):
                    pass

        return run

    def ainvoke(n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                await models.m.ainvoke(msg)

        asyncio.run(go())

    def astream(n: int) -> None:
        async def go() -> None:
            for _ in range(n):
                async for _chunk in models.k20.astream(msg):
                    pass

        asyncio.run(go())

    def gather(n: int) -> None:
        async def go() -> None:
            for _ in range(max(1, n // 200)):
                await asyncio.gather(*(models.m.ainvoke(msg) for _ in range(200)))

        asyncio.run(go())

    return {
        "invoke": invoke,
        "nosdk_invoke": invoke,
        "ainvoke": ainvoke,
        "stream_k1": stream(models.k1),
        "stream_k20": stream(models.k20),
        "stream_k200": stream(models.k200),
        "astream_k20": astream,
        "gather200": gather,
    }[name]


def profile(run: Callable[[int], Any], calls: int) -> pstats.Stats:
    run(max(10, calls // 20))  # warm caches
    profiler = cProfile.Profile()
    profiler.enable()
    run(calls)
    profiler.disable()
    return pstats.Stats(profiler)


def profiler_cost(n: int = 200_000) -> float:
    """µs cProfile adds per profiled call (an empty function, profiled vs not); it is
    subtracted from each function's exclusive time, so small functions (the SDK's
    attribute cleaning, ours) are not inflated."""

    def empty() -> None:
        pass

    def loop() -> float:
        start = time.perf_counter()
        for _ in range(n):
            empty()
        return time.perf_counter() - start

    plain = min(loop() for _ in range(3))
    profiled = []
    for _ in range(3):
        profiler = cProfile.Profile()
        profiler.enable()
        profiled.append(loop())
        profiler.disable()
    return max(0.0, (min(profiled) - plain) / n * 1e6)


def _items(stats: pstats.Stats) -> Any:
    return stats.stats.items()  # type: ignore[attr-defined]


def by_bucket(stats: pstats.Stats, calls: int, cost: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for (filename, _line, _func), (_cc, nc, tottime, _ct, _callers) in _items(stats):
        key = bucket(filename)
        own = max(0.0, tottime * 1e6 - nc * cost)
        out[key] = out.get(key, 0.0) + own / calls
    return out


def top(stats: pstats.Stats, calls: int, want: Sequence[str], limit: int, cost: float) -> list[str]:
    rows = []
    for (filename, line, func), (_cc, nc, tottime, cumtime, _callers) in _items(stats):
        if bucket(filename) in want:
            short = filename.split("site-packages/")[-1].split("/src/")[-1]
            own = max(0.0, tottime * 1e6 - nc * cost) / calls
            rows.append((own, cumtime * 1e6 / calls, nc / calls, f"{short}:{line}:{func}"))
    rows.sort(reverse=True)
    return [f"    {t:8.2f} {c:9.2f} {n:7.2f}  {where}" for t, c, n, where in rows[:limit]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="invoke,stream_k20,nosdk_invoke")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--pyinstrument", metavar="SCENARIO", help="print a pyinstrument tree instead"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    sdk = overhead.make_sdk()
    switch = overhead.Switch(sdk)
    models = overhead.make_models()
    cost = profiler_cost()
    print(f"cProfile overhead: {cost:.2f} µs per profiled call (subtracted)")

    if args.pyinstrument:
        from pyinstrument import Profiler

        name = args.pyinstrument
        run = _body(name, models)
        switch.set("noop" if name == "nosdk_invoke" else "sdk")
        run(200)
        profiler = Profiler(interval=0.0001)
        profiler.start()
        run(args.calls)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return 0

    for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
        run = _body(name, models)
        mode = "noop" if name == "nosdk_invoke" else "sdk"
        switch.set("bare")
        bare = profile(run, args.calls)
        switch.set(mode)
        instrumented = profile(run, args.calls)
        switch.set("bare")
        b, i = by_bucket(bare, args.calls, cost), by_bucket(instrumented, args.calls, cost)
        how = f"exclusive µs per op under cProfile, less {cost:.2f} µs per profiled call"
        print(f"\n== {name} ({mode}): {how}, {args.calls} ops")
        print(f"  {'bucket':22s} {'bare':>9s} {'instr':>9s} {'added':>9s}")
        for key in sorted(set(b) | set(i), key=lambda k: -(i.get(k, 0) - b.get(k, 0))):
            print(
                f"  {key:22s} {b.get(key, 0):9.2f} {i.get(key, 0):9.2f} "
                f"{i.get(key, 0) - b.get(key, 0):9.2f}"
            )
        print(f"  {'TOTAL':22s} {sum(b.values()):9.2f} {sum(i.values()):9.2f}")
        groups = (
            ("otel_llm_usage", ("otel_llm_usage",)),
            ("OpenTelemetry", ("opentelemetry.sdk", "opentelemetry.api")),
            ("builtins/wrapt", ("wrapt", "builtins (C)")),
        )
        for label, want in groups:
            print(f"  top {label} functions (self µs/op corrected, cum µs/op raw, calls/op)")
            print("\n".join(top(instrumented, args.calls, want, args.top, cost)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
