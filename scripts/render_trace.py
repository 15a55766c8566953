"""Render a real trace as an SVG waterfall, the way Jaeger draws one: one row per span.

    python scripts/render_trace.py          # runs the agent, writes docs/span-tree.svg
    python scripts/render_trace.py --out trace.svg --save-otlp-json trace.json
    python scripts/render_trace.py --from-otlp-json trace.json --out trace.svg

Nothing in the picture is drawn by hand. By default the script runs the agent of
``examples/agent_with_tools.py`` in process (``create_agent``, the real ``ChatOpenAI``
against the offline stand-in for the OpenAI API, a ``search`` tool), instrumented with
``LangChainUsageInstrumentor``, and keeps what the SDK exported (an
``InMemorySpanExporter``). The stand-in answers after ``--latency`` seconds and the tool
after ``--tool-latency``, so the bars have the proportions of a real run. Or it reads
spans in the OTLP/JSON encoding (``--from-otlp-json``: an ``ExportTraceServiceRequest``
per line, as the Collector's ``file`` exporter writes, or one such document) and draws
the trace with the most spans (``--trace-id`` to choose).

Each row: the span's name and kind, indented under its parent; its bar on the time axis
with its duration; and the attributes that matter here: on ``chat`` and
``invoke_agent`` spans ``gen_ai.usage.input_tokens``, ``output_tokens`` and
``cost.amount`` (agent spans: their ``llm_usage.agent.*`` sums). A note under the rows
checks each agent span against its chat spans (the agent span carries their sum) and the
script exits with status 1 if they differ.

Standard library only (the SVG is written as text), plus the SDK and the example for
the in-process run.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEFAULT_OUT = ROOT / "docs" / "span-tree.svg"
SERVICE = "agent-demo"

KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS = ("UNSET", "OK", "ERROR")
INPUT = "gen_ai.usage.input_tokens"
OUTPUT = "gen_ai.usage.output_tokens"
COST = "gen_ai.usage.cost.amount"
AGENT_KEYS = (
    ("llm_usage.agent.input_tokens", INPUT),
    ("llm_usage.agent.output_tokens", OUTPUT),
    ("llm_usage.agent.cost.amount", COST),
    ("llm_usage.agent.cost.currency", "gen_ai.usage.cost.currency"),
)
OPERATION = "gen_ai.operation.name"


# -- spans ------------------------------------------------------------------------------------


@dataclass
class SpanRecord:
    """One span, independent of where it came from (the SDK or an OTLP/JSON file)."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # "" for a root
    name: str
    kind: str  # "INTERNAL", "SERVER", "CLIENT", ...
    start: int  # unix nanoseconds
    end: int
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "UNSET"
    scope: str = ""
    scope_version: str = ""
    service: str = ""
    aliases: set[str] = field(default_factory=set)  # keys added below, not the span's

    def __post_init__(self) -> None:
        # an agent span carries its calls' sums under llm_usage.agent.* (not gen_ai.usage.*,
        # which backends sum over spans): read them under the keys every row uses
        for ours, key in AGENT_KEYS:
            if ours in self.attributes and key not in self.attributes:
                self.attributes[key] = self.attributes[ours]
                self.aliases.add(key)

    @property
    def operation(self) -> str | None:
        value = self.attributes.get(OPERATION)
        return value if isinstance(value, str) else None

    @property
    def duration(self) -> int:
        return max(0, self.end - self.start)


def from_sdk(span: Any) -> SpanRecord:
    """A ``ReadableSpan`` as a :class:`SpanRecord`."""
    attributes = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in (span.attributes or {}).items()
    }
    scope = span.instrumentation_scope
    return SpanRecord(
        trace_id=f"{span.context.trace_id:032x}",
        span_id=f"{span.context.span_id:016x}",
        parent_id=f"{span.parent.span_id:016x}" if span.parent is not None else "",
        name=span.name,
        kind=span.kind.name,
        start=int(span.start_time or 0),
        end=int(span.end_time or 0),
        attributes=attributes,
        status=span.status.status_code.name,
        scope=scope.name if scope is not None else "",
        scope_version=(scope.version or "") if scope is not None else "",
        service=str(span.resource.attributes.get("service.name", "")),
    )


def record_agent_run(latency: float, tool_latency: float) -> list[SpanRecord]:
    """Run the agent of ``examples/agent_with_tools.py``, instrumented; its spans."""
    sys.path.insert(0, str(EXAMPLES))
    import agent_with_tools as example
    from _local_provider import LocalProvider, chat_model
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_llm_usage import LangChainUsageInstrumentor

    resource = Resource.create({"service.name": SERVICE})
    tracer_provider = TracerProvider(resource=resource)
    exporter = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(resource=resource)
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with LocalProvider(latency=latency) as provider:
            model = chat_model(provider.url, "langchain-openai", model=example.MODEL)
            example.ask_agent(model, tracer_provider.get_tracer("app"), tool_latency)
    finally:
        instrumentor.uninstrument()
    spans = [from_sdk(span) for span in exporter.get_finished_spans()]
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return spans


# -- OTLP/JSON --------------------------------------------------------------------------------


def _any_value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # a string in OTLP/JSON (64-bit)
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return {kv["key"]: _any_value(kv.get("value", {})) for kv in value["kvlistValue"]}
    return None


def _to_any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_to_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attributes(pairs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value", {})) for kv in pairs}


def _hex_id(value: str, size: int) -> str:
    """OTLP/JSON ids are hex; protobuf's own JSON mapping writes base64: take both."""
    if not value:
        return ""
    if len(value) == 2 * size:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return value


def _enum(value: Any, names: Sequence[str], prefix: str) -> str:
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str):
        return value.removeprefix(prefix)
    return names[0]


def read_otlp_json(path: Path) -> list[SpanRecord]:
    """Spans of an OTLP/JSON file: one ``ExportTraceServiceRequest`` or one per line."""
    text = path.read_text(encoding="utf-8")
    try:
        documents = [json.loads(text)]
    except json.JSONDecodeError:
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
    spans: list[SpanRecord] = []
    for document in documents:
        for resource_spans in document.get("resourceSpans", []):
            resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
            for scope_spans in resource_spans.get("scopeSpans", []):
                scope = scope_spans.get("scope", {})
                for span in scope_spans.get("spans", []):
                    spans.append(
                        SpanRecord(
                            trace_id=_hex_id(span.get("traceId", ""), 16),
                            span_id=_hex_id(span.get("spanId", ""), 8),
                            parent_id=_hex_id(span.get("parentSpanId", ""), 8),
                            name=span.get("name", ""),
                            kind=_enum(span.get("kind", 0), KINDS, "SPAN_KIND_"),
                            start=int(span.get("startTimeUnixNano", 0)),
                            end=int(span.get("endTimeUnixNano", 0)),
                            attributes=_attributes(span.get("attributes", [])),
                            status=_enum(
                                span.get("status", {}).get("code", 0), STATUS, "STATUS_CODE_"
                            ),
                            scope=scope.get("name", ""),
                            scope_version=scope.get("version", ""),
                            service=str(resource.get("service.name", "")),
                        )
                    )
    return spans


def write_otlp_json(spans: Sequence[SpanRecord], path: Path) -> None:
    """``spans`` as one OTLP/JSON ``ExportTraceServiceRequest`` (hex ids, int64 as text)."""
    services: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for span in spans:
        encoded: dict[str, Any] = {
            "traceId": span.trace_id,
            "spanId": span.span_id,
            "name": span.name,
            "kind": KINDS.index(span.kind) if span.kind in KINDS else 0,
            "startTimeUnixNano": str(span.start),
            "endTimeUnixNano": str(span.end),
            "attributes": [
                {"key": key, "value": _to_any_value(value)}
                for key, value in span.attributes.items()
                if key not in span.aliases
            ],
            "status": {"code": STATUS.index(span.status) if span.status in STATUS else 0},
        }
        if span.parent_id:
            encoded["parentSpanId"] = span.parent_id
        scopes = services.setdefault(span.service, {})
        scopes.setdefault((span.scope, span.scope_version), []).append(encoded)
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": _to_any_value(service)},
                    ]
                },
                "scopeSpans": [
                    {"scope": {"name": name, "version": version}, "spans": encoded_spans}
                    for (name, version), encoded_spans in scopes.items()
                ],
            }
            for service, scopes in services.items()
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


# -- the tree ---------------------------------------------------------------------------------


def pick_trace(spans: Sequence[SpanRecord], trace_id: str | None = None) -> list[SpanRecord]:
    """The spans of ``trace_id``, else of the trace with the most spans."""
    traces: dict[str, list[SpanRecord]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    if not traces:
        raise SystemExit("no spans to render")
    if trace_id is not None:
        if trace_id.lower() not in traces:
            raise SystemExit(f"no trace {trace_id}; there are: {', '.join(traces)}")
        return traces[trace_id.lower()]
    return max(traces.values(), key=len)


def tree(spans: Sequence[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """(depth, span) in tree order, children by start time; a span whose parent is
    missing is drawn as a root."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[SpanRecord]] = {}
    for span in spans:
        children.setdefault(span.parent_id if span.parent_id in ids else "", []).append(span)
    ordered: list[tuple[int, SpanRecord]] = []

    def visit(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: (s.start, s.end)):
            ordered.append((depth, span))
            visit(span.span_id, depth + 1)

    visit("", 0)
    return ordered


def descendants(span: SpanRecord, spans: Sequence[SpanRecord]) -> list[SpanRecord]:
    children: dict[str, list[SpanRecord]] = {}
    for other in spans:
        children.setdefault(other.parent_id, []).append(other)
    found: list[SpanRecord] = []
    stack = list(children.get(span.span_id, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child.span_id, []))
    return sorted(found, key=lambda s: s.start)


@dataclass
class SumCheck:
    """An agent span's usage against the sum of the chat spans under it."""

    agent: SpanRecord
    chats: list[SpanRecord]

    def parts(self, key: str) -> list[Any]:
        return [chat.attributes.get(key, 0) for chat in self.chats]

    def ok(self, key: str) -> bool:
        total = sum(self.parts(key))
        claimed = self.agent.attributes.get(key, 0)
        if key == COST:
            return math.isclose(total, claimed, rel_tol=1e-9, abs_tol=1e-15)
        return bool(total == claimed)

    @property
    def all_ok(self) -> bool:
        return all(self.ok(key) for key in (INPUT, OUTPUT, COST))


def sum_checks(spans: Sequence[SpanRecord]) -> list[SumCheck]:
    return [
        SumCheck(span, [s for s in descendants(span, spans) if s.operation == "chat"])
        for span in sorted(spans, key=lambda s: s.start)
        if span.operation == "invoke_agent"
    ]


# -- the picture ------------------------------------------------------------------------------

WIDTH = 1200
PAD = 24
NAME_WIDTH = 540
TIMELINE_X0 = PAD + NAME_WIDTH + 20
TIMELINE_X1 = WIDTH - PAD
HEADER = 100
ROW = 50
INDENT = 22
FONT = "Helvetica, Arial, sans-serif"
MONO = "Menlo, Consolas, 'DejaVu Sans Mono', monospace"
GREY = "#6b7280"
INK = "#111827"
COLORS = {
    "invoke_agent": "#7c3aed",
    "chat": "#2563eb",
    "text_completion": "#2563eb",
    "execute_tool": "#ea580c",
    None: "#6b7280",
}
LEGEND = (
    ("invoke_agent", "invoke_agent (INTERNAL): the agent run, usage summed"),
    ("chat", "chat (CLIENT): one model call"),
    ("execute_tool", "execute_tool (INTERNAL)"),
    (None, "the application's span"),
)


def duration_text(nanoseconds: float) -> str:
    ms = nanoseconds / 1e6
    if ms == 0:
        return "0 ms"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def usd(amount: float) -> str:
    return f"${amount:.8f}"


def _xml_attributes(style: dict[str, Any]) -> str:
    """``font_size=12`` as ``font-size="12"``; ``class_`` and ``xml_space`` as they are."""
    names = {"class_": "class", "xml_space": "xml:space"}
    return "".join(
        f" {names.get(key, key.replace('_', '-'))}={quoteattr(str(value))}"
        for key, value in style.items()
    )


def text(x: float, y: float, content: str, **style: Any) -> str:
    """A ``<text>``; ``content`` is markup (escaped text or tspans)."""
    return f'<text x="{x:.1f}" y="{y:.1f}"{_xml_attributes(style)}>{content}</text>'


def tspan(content: Any, class_: str | None = None, **style: Any) -> str:
    """A ``<tspan>`` of plain text ``content``."""
    if class_:
        style = {"class_": class_, **style}
    return f"<tspan{_xml_attributes(style)}>{escape(str(content))}</tspan>"


def key_attributes(span: SpanRecord, checks: dict[str, SumCheck]) -> str:
    """The second line of a row: the attributes that matter for this kind of span."""
    a = span.attributes
    parts: list[str] = []
    if INPUT in a or OUTPUT in a:
        prefix = "llm_usage.agent" if span.operation == "invoke_agent" else "gen_ai.usage"
        parts.append(
            f"{prefix}: input_tokens="
            + tspan(a.get(INPUT, ""), "input-tokens", fill=INK, font_weight="bold")
            + " output_tokens="
            + tspan(a.get(OUTPUT, ""), "output-tokens", fill=INK, font_weight="bold")
        )
    if COST in a:
        parts.append(
            "cost.amount="
            + tspan(usd(float(a[COST])), "cost", fill=INK, font_weight="bold")
            + escape(f" {a.get('gen_ai.usage.cost.currency', '')}".rstrip())
        )
    if span.operation == "invoke_agent":
        check = checks.get(span.span_id)
        parts.append(escape(f"model_calls={a.get('llm_usage.model_calls', '?')}"))
        if check is not None:
            mark = "✓" if check.all_ok else "✗"
            parts.append(
                tspan(
                    f"= Σ of its {len(check.chats)} chat spans {mark}", "sum-note", fill="#7c3aed"
                )
            )
    elif span.operation == "execute_tool":
        parts.append(escape(f"gen_ai.tool.call.id={a.get('gen_ai.tool.call.id', '')}"))
    elif span.operation in ("chat", "text_completion"):
        reasons = a.get("gen_ai.response.finish_reasons")
        if reasons:
            parts.append(escape(f"finish={','.join(map(str, reasons))}"))
    elif not span.parent_id:
        parts.append(escape(f"root span · service.name={span.service}"))
    else:
        parts.append(escape(f"scope={span.scope}"))
    return " · ".join(parts)


def tooltip(span: SpanRecord) -> str:
    lines = [
        f"{span.name} ({span.kind}, {duration_text(span.duration)})",
        f"span {span.span_id} parent {span.parent_id or '-'}",
        *(f"{k} = {v}" for k, v in sorted(span.attributes.items()) if k not in span.aliases),
    ]
    return escape("\n".join(lines))


def render_svg(spans: Sequence[SpanRecord], source: str) -> str:
    rows = tree(spans)
    checks = {check.agent.span_id: check for check in sum_checks(spans)}
    t0 = min(span.start for span in spans)
    t1 = max(span.end for span in spans)
    total = max(1, t1 - t0)
    scale = (TIMELINE_X1 - TIMELINE_X0) / total
    rows_top = HEADER
    rows_bottom = rows_top + ROW * len(rows)
    root = rows[0][1]
    out: list[str] = []
    add = out.append

    # header
    add(text(PAD, 34, escape(f"Trace: {root.name}"), font_size=20, font_weight="bold", fill=INK))
    services = sorted({span.service for span in spans if span.service})
    add(
        text(
            PAD,
            58,
            escape(
                f"service {', '.join(services) or '?'} · trace {root.trace_id} · "
                f"{len(spans)} spans · {duration_text(total)}"
            ),
            font_size=12.5,
            fill=GREY,
        )
    )
    add(text(PAD, HEADER - 10, "Span", font_size=12, font_weight="bold", fill=GREY))
    for i in range(5):
        x = TIMELINE_X0 + (TIMELINE_X1 - TIMELINE_X0) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        label = escape(duration_text(total * i / 4))
        add(text(x, HEADER - 10, label, font_size=11.5, fill=GREY, text_anchor=anchor))

    # rows
    for index, (depth, span) in enumerate(rows):
        y = rows_top + index * ROW
        color = COLORS.get(span.operation, COLORS[None])
        data = {
            "data-span-id": span.span_id,
            "data-parent-id": span.parent_id,
            "data-name": span.name,
            "data-kind": span.kind,
            "data-duration-ns": str(span.duration),
        }
        for key, name in ((INPUT, "data-input-tokens"), (OUTPUT, "data-output-tokens")):
            if key in span.attributes:
                data[name] = str(span.attributes[key])
        if COST in span.attributes:
            data["data-cost"] = repr(float(span.attributes[COST]))
        data_text = "".join(f" {k}={quoteattr(v)}" for k, v in data.items())
        add(f'<g class="span-row"{data_text}>')
        add(f"<title>{tooltip(span)}</title>")
        fill = "#f9fafb" if index % 2 == 0 else "#ffffff"
        add(f'<rect x="0" y="{y}" width="{WIDTH}" height="{ROW}" fill="{fill}"/>')
        x = PAD + depth * INDENT
        if depth:
            elbow = x - INDENT + 5
            add(
                f'<path d="M{elbow} {y - ROW + 27} V{y + 17} H{x - 3}" fill="none" '
                f'stroke="#d1d5db" stroke-width="1.5"/>'
            )
        add(f'<rect x="{x}" y="{y + 11}" width="11" height="11" rx="2" fill="{color}"/>')
        add(
            text(
                x + 17,
                y + 21,
                tspan(span.name, "span-name") + tspan(span.kind, dx=8, font_size=10.5, fill=GREY),
                font_size=14,
                fill=INK,
            )
        )
        add(
            text(
                x + 17,
                y + 40,
                key_attributes(span, checks),
                font_size=11,
                font_family=MONO,
                fill=GREY,
            )
        )
        bar_x = TIMELINE_X0 + (span.start - t0) * scale
        bar_w = max(2.0, span.duration * scale)
        if span.status == "ERROR":
            color = "#dc2626"
        add(
            f'<rect class="bar" x="{bar_x:.1f}" y="{y + 12}" width="{bar_w:.1f}" height="16" '
            f'rx="3" fill="{color}"/>'
        )
        label = escape(duration_text(span.duration))
        if bar_x + bar_w + 70 <= TIMELINE_X1:
            add(text(bar_x + bar_w + 6, y + 24.5, label, font_size=11.5, fill=INK))
        elif bar_w >= 80:  # inside the bar, at its end
            add(
                text(
                    bar_x + bar_w - 6,
                    y + 24.5,
                    label,
                    font_size=11.5,
                    fill="#ffffff",
                    text_anchor="end",
                )
            )
        else:  # before the bar
            add(text(bar_x - 6, y + 24.5, label, font_size=11.5, fill=INK, text_anchor="end"))
        add("</g>")

    # grid over the rows
    for i in range(5):
        x = TIMELINE_X0 + (TIMELINE_X1 - TIMELINE_X0) * i / 4
        add(
            f'<line x1="{x:.1f}" y1="{rows_top - 4}" x2="{x:.1f}" y2="{rows_bottom}" '
            f'stroke="#9ca3af" stroke-opacity="0.35" stroke-dasharray="3 3"/>'
        )
    add(
        f'<line x1="0" y1="{rows_top}" x2="{WIDTH}" y2="{rows_top}" stroke="#d1d5db"/>'
        f'<line x1="0" y1="{rows_bottom}" x2="{WIDTH}" y2="{rows_bottom}" stroke="#d1d5db"/>'
    )

    # notes: each agent span against the sum of its chat spans
    y = rows_bottom + 30
    for check in checks.values():
        chats = len(check.chats)
        add(
            text(
                PAD,
                y,
                escape(
                    f"{check.agent.name} carries the sum of the {chats} chat span"
                    f"{'s' if chats != 1 else ''} under it:"
                ),
                font_size=13,
                font_weight="bold",
                fill=INK,
                class_="sum-check",
            )
        )
        for key in (INPUT, OUTPUT, COST):
            y += 19
            fmt = usd if key == COST else str
            parts = " + ".join(fmt(v) for v in check.parts(key)) or "0"
            claimed = check.agent.attributes.get(key, 0)
            mark = "✓" if check.ok(key) else "✗ differs"
            add(
                text(
                    PAD + 16,
                    y,
                    escape(f"{key:<28} {parts} = {fmt(claimed)}  {mark}"),
                    font_size=12,
                    font_family=MONO,
                    fill="#047857" if check.ok(key) else "#dc2626",
                    xml_space="preserve",
                )
            )
        y += 30

    # legend and provenance
    x = PAD
    for operation, label in LEGEND:
        color = COLORS[operation]
        add(f'<rect x="{x:.1f}" y="{y - 10}" width="11" height="11" rx="2" fill="{color}"/>')
        add(text(x + 17, y, escape(label), font_size=12, fill=INK))
        x += 36 + 6.9 * len(label)
    y += 24
    for line in source.splitlines():
        add(text(PAD, y, escape(line), font_size=11.5, fill=GREY))
        y += 16
    y -= 16
    height = y + 18

    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family={quoteattr(FONT)}>'
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            "<!-- Generated by scripts/render_trace.py from exported spans; do not edit. -->",
            head,
            f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
            *out,
            "</svg>",
            "",
        ]
    )


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the SVG to write")
    parser.add_argument(
        "--from-otlp-json", type=Path, metavar="FILE", help="render spans from this file"
    )
    parser.add_argument("--trace-id", help="with --from-otlp-json: the trace to draw")
    parser.add_argument(
        "--save-otlp-json", type=Path, metavar="FILE", help="also write the spans (OTLP/JSON)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.35, help="seconds the stand-in model takes to answer"
    )
    parser.add_argument(
        "--tool-latency", type=float, default=0.12, help="seconds the search tool takes"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_otlp_json is not None:
        spans = pick_trace(read_otlp_json(args.from_otlp_json), args.trace_id)
        source = (
            "Rendered by scripts/render_trace.py from the OTLP/JSON spans in "
            f"{args.from_otlp_json.name}."
        )
    else:
        spans = pick_trace(record_agent_run(args.latency, args.tool_latency))
        source = (
            "Rendered by scripts/render_trace.py from the spans that an instrumented run of "
            "examples/agent_with_tools.py exported:\nthe real ChatOpenAI and create_agent, "
            f"a local stand-in for the OpenAI API answering in {args.latency:g} s, "
            f"a search tool taking {args.tool_latency:g} s."
        )
    if args.save_otlp_json is not None:
        write_otlp_json(spans, args.save_otlp_json)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_svg(spans, source), encoding="utf-8")
    checks = sum_checks(spans)
    print(f"wrote {args.out}: {len(spans)} spans")
    for depth, span in tree(spans):
        a = span.attributes
        usage = f" input={a[INPUT]} output={a[OUTPUT]}" if INPUT in a else ""
        cost = f" cost={usd(float(a[COST]))}" if COST in a else ""
        print(f"  {'  ' * depth}{span.name} ({duration_text(span.duration)}){usage}{cost}")
    wrong = [check.agent.name for check in checks if not check.all_ok]
    if wrong:
        print(f"agent span(s) whose usage is not the sum of their chat spans: {wrong}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
