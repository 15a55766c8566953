"""Printing helpers shared by the examples: one line per span, a usage table, metric totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import ReadableSpan

from otel_llm_usage import UsageTracker


def usd(amount: float) -> str:
    return f"${amount:.8f}"


def span_line(span: ReadableSpan) -> str:
    """The span's name and the attributes this package adds, on one line."""
    a: dict[str, Any] = dict(span.attributes or {})
    parts = [f"[span] {span.name}", f"provider={a.get('gen_ai.provider.name')}"]
    # agent spans carry their calls' sums under llm_usage.agent.*, model spans gen_ai.usage.*
    usage = "llm_usage.agent" if "llm_usage.agent.input_tokens" in a else "gen_ai.usage"
    if f"{usage}.input_tokens" in a:
        parts.append(
            f"input={a[f'{usage}.input_tokens']}"
            f" (cache_read={a.get(f'{usage}.cache_read.input_tokens', 0)})"
            f" output={a[f'{usage}.output_tokens']}"
        )
    if a.get("llm_usage.usage.missing"):
        parts.append("usage=missing")
    if f"{usage}.cost.amount" in a:
        parts.append(f"cost={usd(a[f'{usage}.cost.amount'])}")
    if a.get("llm_usage.price.missing"):
        parts.append("cost=unknown")
    if a.get("gen_ai.request.stream"):
        parts.append(f"stream chunks={a.get('llm_usage.stream.chunks')}")
    if "gen_ai.response.finish_reasons" in a:
        parts.append(f"finish={','.join(a['gen_ai.response.finish_reasons'])}")
    return " ".join(parts)


def print_spans(spans: Iterable[ReadableSpan]) -> None:
    for span in spans:
        if span.instrumentation_scope is not None and span.instrumentation_scope.name == (
            "otel_llm_usage"
        ):
            print("  " + span_line(span))


def print_tracker(title: str, usage: UsageTracker) -> None:
    """The totals of a ``track_usage()`` block, in ``get_openai_callback()`` terms."""
    print(title)
    print(f"  requests:     {usage.successful_requests} ok, {usage.failed_requests} failed")
    print(
        f"  tokens:       {usage.total_tokens} = {usage.prompt_tokens} prompt"
        f" (cached {usage.prompt_tokens_cached}) + {usage.completion_tokens} completion"
    )
    print(f"  cost:         {usd(usage.total_cost)}")


def print_usage_table(usage: UsageTracker) -> None:
    header = ("provider", "model", "requests", "input", "cache_read", "output", "cost (USD)")
    rows = [
        (
            m.provider,
            m.model,
            str(m.successful_requests),
            str(m.input_tokens),
            str(m.cache_read_tokens),
            str(m.output_tokens),
            usd(m.total_cost),
        )
        for m in sorted(usage.by_model.values(), key=lambda m: (m.provider, m.model))
    ]
    rows.append(
        (
            "total",
            "",
            str(usage.successful_requests),
            str(usage.input_tokens),
            str(usage.cache_read_tokens),
            str(usage.output_tokens),
            usd(usage.total_cost),
        )
    )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip())


def metric_points(reader: MetricReader) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    data = reader.get_metrics_data()  # type: ignore[attr-defined]
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                found[metric.name].extend(metric.data.data_points)
    return found


def print_metric_totals(reader: MetricReader) -> None:
    """Totals of what this package exports, summed over all other attributes."""
    points = metric_points(reader)

    def by(name: str, key: str) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for point in points.get(name, []):
            totals[str(point.attributes.get(key))] += point.value
        return dict(sorted(totals.items()))

    for source, count in by("llm_usage.requests", "llm_usage.usage.source").items():
        print(f'  llm_usage.requests{{llm_usage.usage.source="{source}"}} = {count:g}')
    for token_type, count in by("llm_usage.tokens", "gen_ai.token.type").items():
        print(f'  llm_usage.tokens{{gen_ai.token.type="{token_type}"}} = {count:g}')
    cost = sum(point.value for point in points.get("llm_usage.cost", []))
    print(f"  llm_usage.cost = {cost:.8f} USD")
    for name in (
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
    ):
        histograms = points.get(name, [])
        count = sum(point.count for point in histograms)
        line = f"  {name}: {count} recorded"
        if name == "gen_ai.client.token.usage":
            sums: dict[str, int] = defaultdict(int)
            for point in histograms:
                sums[str(point.attributes.get("gen_ai.token.type"))] += int(point.sum)
            line += ", sum " + ", ".join(f"{k}={v}" for k, v in sorted(sums.items()))
        print(line)
