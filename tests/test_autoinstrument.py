"""Zero code: ``opentelemetry-instrument python app.py`` finds the package by its entry point.

The app never imports ``otel_llm_usage`` and configures nothing: the SDK and its console
exporter come from ``opentelemetry-distro`` reading ``OTEL_*`` variables. The app only
adds an observer that prints each span's instrumentation scope (the SDK's console
exporter leaves the scope out of its JSON).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e  # real processes: `pytest -m "not e2e"` leaves them out

APP = '''
import sys
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from opentelemetry import trace


class Chat(BaseChatModel):
    """A chat model with no I/O that reports usage as provider packages do."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "autotest-chat"

    def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(
            ls_provider="openai", ls_model_name=self.model_name, ls_model_type="chat"
        )

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any):
        message = AIMessage(
            content="Auto-instrumented.",
            usage_metadata={"input_tokens": 21, "output_tokens": 8, "total_tokens": 29},
            response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


provider = trace.get_tracer_provider()
if hasattr(provider, "add_span_processor"):  # an SDK was configured for us
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class ScopePrinter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            for span in spans:
                print(f"SCOPE {span.instrumentation_scope.name} | {span.name}", flush=True)
            return SpanExportResult.SUCCESS

    provider.add_span_processor(SimpleSpanProcessor(ScopePrinter()))
else:
    print("NO SDK", flush=True)

print("ANSWER", Chat().invoke("Say something.").content, flush=True)
print("LOADED", "otel_llm_usage" in sys.modules, flush=True)
'''

OTEL_ENV = {
    "OTEL_TRACES_EXPORTER": "console",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_SERVICE_NAME": "autotest",
}


def run_app(tmp_path: Path, *, instrument: bool) -> str:
    app = tmp_path / "app.py"
    app.write_text(APP)
    assert "import otel_llm_usage" not in APP and "from otel_llm_usage" not in APP
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGCHAIN_"))}
    env.update(OTEL_ENV, LANGSMITH_TRACING="false")
    command = [sys.executable, str(app)]
    if instrument:
        command.insert(0, str(Path(sys.executable).parent / "opentelemetry-instrument"))
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed (each starts on a line of its own)."""
    decoder = json.JSONDecoder()
    spans = []
    end = 0
    for match in re.finditer(r"^\{", stdout, re.MULTILINE):
        if match.start() >= end:
            span, end = decoder.raw_decode(stdout, match.start())
            spans.append(span)
    return spans


def test_opentelemetry_instrument_picks_the_package_up_with_no_code(tmp_path: Path) -> None:
    pytest.importorskip(
        "opentelemetry.distro", reason="opentelemetry-distro configures the SDK from OTEL_*"
    )
    stdout = run_app(tmp_path, instrument=True)

    assert "ANSWER Auto-instrumented." in stdout
    assert "LOADED True" in stdout  # loaded by opentelemetry-instrument, not by the app
    assert "SCOPE otel_llm_usage | chat gpt-4o-mini" in stdout.splitlines()

    spans = [s for s in console_spans(stdout) if s["name"] == "chat gpt-4o-mini"]
    assert len(spans) == 1, stdout
    span = spans[0]
    assert span["kind"] == "SpanKind.CLIENT"
    assert span["resource"]["attributes"]["service.name"] == "autotest"
    attributes = span["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["gen_ai.usage.input_tokens"] == 21
    assert attributes["gen_ai.usage.output_tokens"] == 8
    assert attributes["gen_ai.usage.cost.currency"] == "USD"
    assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(
        (21 * 0.15 + 8 * 0.60) / 1_000_000
    )


def test_without_opentelemetry_instrument_nothing_is_loaded(tmp_path: Path) -> None:
    """The control: the same app run plainly has no SDK and never loads the package."""
    stdout = run_app(tmp_path, instrument=False)
    assert "NO SDK" in stdout
    assert "ANSWER Auto-instrumented." in stdout
    assert "LOADED False" in stdout
    assert console_spans(stdout) == []
