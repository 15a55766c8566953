"""USD cost: genai-prices' built-in rates, the user's price file, and what reaches spans
and counters. Every figure is exact: ``==`` where the float is exact, else genai-prices'
own ``calc_price`` as the reference (``pytest.approx(rel=1e-12)``)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import Telemetry
from fakes import FakeChat, FakeCompletion, usage_metadata
from genai_prices import Usage as PricesUsage
from genai_prices import calc_price, data_snapshot
from langchain_core.caches import InMemoryCache
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm_usage import LangChainUsageInstrumentor
from otel_llm_usage.extract.usage import Usage
from otel_llm_usage.record.pricing import (
    PRICES_ENV,
    Pricing,
    Rates,
    builtin_rates,
    load_price_file,
    parse_prices,
)

COST = "gen_ai.usage.cost.amount"
USAGE_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
)
# A FakeChat whose responses report gpt-3.5-turbo-0125 ($0.50 / $1.50 per million).
TURBO = {"model_name": "gpt-3.5-turbo-0125", "response_model": "gpt-3.5-turbo-0125"}


def reference(model: str, provider_id: str, **tokens: int) -> float:
    """genai-prices' own figure for the same usage."""
    price = calc_price(PricesUsage(**tokens), model, provider_id=provider_id)
    return float(price.total_price)


@contextmanager
def instrumented(prices: Any = None) -> Iterator[Telemetry]:
    """The ``telemetry`` fixture's set-up, instrumented with ``prices``."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = LangChainUsageInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    try:
        instrumentor.instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider, prices=prices
        )
        yield Telemetry(exporter, reader, tracer_provider, meter_provider)
    finally:
        instrumentor.uninstrument()


def reinstrument(telemetry: Telemetry) -> None:
    """Instrument again (after changing the environment) with the fixture's providers."""
    instrumentor = LangChainUsageInstrumentor()
    instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )


def chat(model: str, **kwargs: Any) -> FakeChat:
    return FakeChat(model_name=model, response_model=model, **kwargs)


def price_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "otel_llm_usage.record.pricing" and r.levelno == logging.ERROR
    ]


# -- the seeds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "input_tokens", "output_tokens", "expected"),
    [
        ("openai", "gpt-3.5-turbo-0125", 11, 16, 2.95e-05),
        ("openai", "gpt-3.5-turbo-instruct", 4, 14, 3.4e-05),
        ("aws.bedrock", "anthropic.claude-v2", 26, 70, 0.001888),
        ("openai", "gpt-3.5-turbo-0125", 1538, 137, 0.0009745),
    ],
)
def test_seed_costs(provider, model, input_tokens, output_tokens, expected):
    assert Pricing().cost(provider, model, Usage(input_tokens, output_tokens)) == expected


def test_seed_costs_on_spans(telemetry):
    FakeCompletion().invoke("Tell me a joke")
    chat("gpt-3.5-turbo-0125", usage=usage_metadata(1538, 137)).invoke("hi")
    FakeChat(
        provider="amazon_bedrock",
        model_name="anthropic.claude-v2",
        response_model="anthropic.claude-v2",
        usage=usage_metadata(26, 70),
    ).invoke("hi")
    completion, turbo, claude = telemetry.model_spans()
    assert completion.attributes[COST] == 3.4e-05
    assert turbo.attributes[COST] == 0.0009745
    assert claude.attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert claude.attributes[COST] == 0.001888


# -- every class of token at its own rate ----------------------------------------------


def test_gpt_4o_mini_cache_reads():
    # 400 uncached x $0.15 + 600 cache reads x $0.075 + 200 output x $0.60 per million
    cost = Pricing().cost("openai", "gpt-4o-mini", Usage(1000, 200, cache_read=600))
    assert cost == 0.000225
    assert cost == pytest.approx(
        reference(
            "gpt-4o-mini", "openai", input_tokens=1000, cache_read_tokens=600, output_tokens=200
        ),
        rel=1e-12,
    )


def test_claude_cache_reads_and_writes():
    # 1000 x $3 + 600 reads x $0.30 + 400 writes x $3.75 + 300 output x $15 per million
    usage = Usage(2000, 300, cache_read=600, cache_creation=400)
    cost = Pricing().cost("anthropic", "claude-3-5-sonnet-20241022", usage)
    assert cost == 0.00918
    assert cost == pytest.approx(
        reference(
            "claude-3-5-sonnet-20241022",
            "anthropic",
            input_tokens=2000,
            cache_read_tokens=600,
            cache_write_tokens=400,
            output_tokens=300,
        ),
        rel=1e-12,
    )


def test_claude_cache_tokens_on_the_span(telemetry):
    usage = usage_metadata(2000, 300, cache_read=600, cache_creation=400)
    FakeChat(
        provider="anthropic",
        model_name="claude-3-5-sonnet-20241022",
        response_model="claude-3-5-sonnet-20241022",
        usage=usage,
    ).invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 600
    assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 400
    assert span.attributes[COST] == 0.00918
    assert telemetry.counter("llm_usage.cost") == 0.00918


def test_o3_mini_reasoning_tokens_at_the_output_rate():
    # genai-prices has no reasoning rate for o3-mini: 500 x $1.10 + 1000 x $4.40 per million
    rates = Pricing().rates("openai", "o3-mini")
    assert rates is not None and rates.reasoning is None
    cost = Pricing().cost("openai", "o3-mini", Usage(500, 1000, reasoning=800))
    assert cost == 0.00495
    assert cost == pytest.approx(
        reference(
            "o3-mini", "openai", input_tokens=500, output_tokens=1000, output_reasoning_tokens=800
        ),
        rel=1e-12,
    )


def test_bedrock_regional_inference_profile():
    model = "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
    rates = Pricing().rates("aws.bedrock", model)
    assert rates is not None
    assert rates.source == "genai-prices:aws/regional.anthropic.claude-3-5-sonnet-20241022-v2:0"
    usage = Usage(2000, 300, cache_read=600, cache_creation=400)
    cost = Pricing().cost("aws.bedrock", model, usage)
    assert cost == 0.00918
    assert cost == pytest.approx(
        reference(
            model,
            "aws",
            input_tokens=2000,
            cache_read_tokens=600,
            cache_write_tokens=400,
            output_tokens=300,
        ),
        rel=1e-12,
    )


def test_bedrock_versioned_id_falls_back_to_the_vendor():
    # anthropic.claude-v2:1 is not in genai-prices' Bedrock list: Anthropic's Claude 2 is
    rates = Pricing().rates("aws.bedrock", "anthropic.claude-v2:1")
    assert rates is not None
    assert rates.source == "genai-prices:anthropic/claude-2"
    assert Pricing().cost("aws.bedrock", "anthropic.claude-v2:1", Usage(26, 70)) == 0.001888


def test_azure_falls_back_to_openai_prices(telemetry):
    rates = Pricing().rates("azure.ai.openai", "gpt-3.5-turbo-0125")
    assert rates is not None
    assert rates.source == "genai-prices:openai/gpt-3.5-turbo"  # the owner of the price
    assert rates.describe() == Pricing().rates("openai", "gpt-3.5-turbo-0125").describe()
    FakeChat(provider="azure", **TURBO).invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert span.attributes[COST] == 2.95e-05


@pytest.mark.parametrize(
    ("input_tokens", "expected"),
    [
        (100_000, 0.13),  # 100k x $1.25 + 1k x $5 per million
        (128_000, 0.165),  # at the threshold: still the base rates
        (200_000, 0.51),  # above 128k: every token at the tier: 200k x $2.50 + 1k x $10
    ],
)
def test_tiered_prices_by_input_size(input_tokens, expected):
    cost = Pricing().cost("gcp.gemini", "gemini-1.5-pro", Usage(input_tokens, 1000))
    assert cost == expected
    assert cost == pytest.approx(
        reference("gemini-1.5-pro", "google", input_tokens=input_tokens, output_tokens=1000),
        rel=1e-12,
    )


def test_tiered_price_just_above_the_threshold():
    cost = Pricing().cost("gcp.gemini", "gemini-1.5-pro", Usage(128_001, 1000))
    assert cost == pytest.approx(
        reference("gemini-1.5-pro", "google", input_tokens=128_001, output_tokens=1000),
        rel=1e-12,
    )
    assert cost == 0.3300025


# -- the user's price file -------------------------------------------------------------


OVERRIDE = {"models": {"gpt-3.5-turbo-0125": {"input": 1.0, "output": 2.0}}}


def write(path: Path, data: Any) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["prices.yaml", "prices.yml", "prices.json"])
def test_override_file_wins_over_builtin(tmp_path, name):
    path = write(tmp_path / name, OVERRIDE)
    with instrumented(prices=str(path)) as telemetry:
        chat("gpt-3.5-turbo-0125").invoke("hi")
        chat("gpt-4o-mini").invoke("hi")
        turbo, mini = telemetry.model_spans()
    assert turbo.attributes[COST] == 4.3e-05  # 11 x $1 + 16 x $2 per million
    assert mini.attributes[COST] == 1.125e-05  # not in the file: genai-prices
    assert telemetry.counter("llm_usage.cost") == 4.3e-05 + 1.125e-05


def test_override_every_rate_class(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  My-Finetune:\n"
        "    input: 3.0\n"
        "    output: 12.0\n"
        "    cache_read: 0.3\n"
        "    cache_write: 3.75\n"
        "    reasoning: 20\n"
    )
    entries, errors = load_price_file(path)
    assert errors == []
    pricing = Pricing(entries)
    # names match case-insensitively; 1000 x 3 + 600 x 0.3 + 400 x 3.75 + 200 x 12 + 100 x 20
    usage = Usage(2000, 300, cache_read=600, cache_creation=400, reasoning=100)
    assert pricing.cost("openai", "my-finetune", usage) == 0.00908
    assert pricing.rates("anthropic", "MY-FINETUNE").source == str(path)


def test_provider_scoped_entry(tmp_path):
    data = {
        "models": {
            "claude-3-5-sonnet-20241022": {"provider": "anthropic", "input": 1, "output": 1},
            "gpt-3.5-turbo-0125": {"provider": "azure", "input": 2, "output": 2},
        }
    }
    with instrumented(prices=str(write(tmp_path / "prices.yaml", data))) as telemetry:
        sonnet = {
            "model_name": "claude-3-5-sonnet-20241022",
            "response_model": "claude-3-5-sonnet-20241022",
        }
        FakeChat(provider="anthropic", **sonnet).invoke("hi")
        FakeChat(provider="amazon_bedrock", **sonnet).invoke("hi")
        FakeChat(provider="azure", **TURBO).invoke("hi")  # "azure" is azure.ai.openai
        FakeChat(provider="openai", **TURBO).invoke("hi")
        anthropic, bedrock, azure, openai = telemetry.model_spans()
    assert anthropic.attributes[COST] == 2.7e-05  # the file: 27 tokens x $1
    assert bedrock.attributes[COST] == pytest.approx(
        reference("claude-3-5-sonnet-20241022", "anthropic", input_tokens=11, output_tokens=16),
        rel=1e-12,
    )
    assert bedrock.attributes[COST] == 0.000273  # built in: 11 x $3 + 16 x $15
    assert azure.attributes[COST] == 5.4e-05  # the file: 27 tokens x $2
    assert openai.attributes[COST] == 2.95e-05  # built in


def test_prices_as_a_mapping():
    with instrumented(prices=OVERRIDE) as telemetry:
        chat("gpt-3.5-turbo-0125").invoke("hi")
        (span,) = telemetry.model_spans()
    assert span.attributes[COST] == 4.3e-05


def test_env_var_names_the_price_file(telemetry, monkeypatch, tmp_path):
    monkeypatch.setenv(PRICES_ENV, str(write(tmp_path / "prices.json", OVERRIDE)))
    reinstrument(telemetry)
    chat("gpt-3.5-turbo-0125").invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes[COST] == 4.3e-05


def test_instrument_prices_wins_over_env_var(monkeypatch, tmp_path):
    other = {"models": {"gpt-3.5-turbo-0125": {"input": 100, "output": 100}}}
    monkeypatch.setenv(PRICES_ENV, str(write(tmp_path / "env.yaml", other)))
    with instrumented(prices=str(write(tmp_path / "given.yaml", OVERRIDE))) as telemetry:
        chat("gpt-3.5-turbo-0125").invoke("hi")
        (span,) = telemetry.model_spans()
    assert span.attributes[COST] == 4.3e-05


VALID = "  my-model: {input: 1, output: 2}\n"


@pytest.mark.parametrize(
    ("name", "text", "expected", "kept"),
    [
        ("bad.yaml", "models: [unclosed\n", "not valid YAML", False),
        ("bad.json", '{"models": {', "not valid JSON", False),
        ("nomodels.yaml", "prices:\n" + VALID, "models: expected a top-level 'models'", False),
        (
            "negative.yaml",
            "models:\n  bad: {input: -1, output: 2}\n" + VALID,
            "models.bad.input",
            True,
        ),
        (
            "string.yaml",
            'models:\n  bad: {input: "cheap", output: 2}\n' + VALID,
            "models.bad.input: expected a number of USD per million tokens, got 'cheap'",
            True,
        ),
        (
            "string.json",
            '{"models": {"bad": {"input": "3.0", "output": 2}, "my-model": {"input": 1, '
            '"output": 2}}}',
            "models.bad.input: expected a number of USD per million tokens, got '3.0'",
            True,
        ),
        (
            "unknown.yaml",
            "models:\n  bad: {input: 1, output: 2, inptu: 3}\n" + VALID,
            "models.bad.inptu: unknown field; did you mean 'input'?",
            True,
        ),
        (
            "nooutput.yaml",
            "models:\n  bad: {input: 1}\n" + VALID,
            "models.bad.output: missing",
            True,
        ),
    ],
)
def test_malformed_file_logs_keeps_valid_entries_and_builtin(
    tmp_path, caplog, name, text, expected, kept
):
    caplog.set_level(logging.WARNING)
    path = tmp_path / name
    path.write_text(text)
    with instrumented(prices=str(path)) as telemetry:  # nothing raised
        chat("gpt-3.5-turbo-0125").invoke("hi")
        chat("my-model").invoke("hi")
        chat("bad").invoke("hi")
        turbo, mine, bad = telemetry.model_spans()
    errors = price_errors(caplog)
    assert len(errors) == 1, errors
    assert str(path) in errors[0]
    assert expected in errors[0]
    assert turbo.attributes[COST] == 2.95e-05  # the built-in prices still apply
    if kept:
        assert mine.attributes[COST] == 4.3e-05
    else:
        assert mine.attributes["llm_usage.price.missing"] is True
    assert COST not in bad.attributes
    assert bad.attributes["llm_usage.price.missing"] is True


@pytest.mark.parametrize("where", ["missing.yaml", "."])
def test_unreadable_price_file(tmp_path, caplog, where):
    caplog.set_level(logging.WARNING)
    path = tmp_path / where
    with instrumented(prices=str(path)) as telemetry:
        chat("gpt-3.5-turbo-0125").invoke("hi")
        (span,) = telemetry.model_spans()
    (error,) = price_errors(caplog)
    assert f"{path}: cannot read the price file" in error
    assert span.attributes[COST] == 2.95e-05


def test_parse_details():
    entries, errors = parse_prices(
        {
            "models": {
                "a": {"input": 1, "output": Decimal("2.5"), "cache_read": None},
                "A": {"input": 1, "output": 1},
                "b": {"input": True, "output": 1},
                "c": {"input": float("nan"), "output": 1},
                "d": {"input": 1, "output": 1, "provider": 3},
                "e": [1, 2],
            },
            "version": 2,
        },
        "test",
    )
    assert entries == {(None, "a"): Rates(Decimal(1), Decimal("2.5"), source="test")}
    assert errors == [
        "test: version: unknown top-level field",
        "test: models.A: the same model as models.a; model names are matched case-insensitively",
        "test: models.b.input: expected a number of USD per million tokens, got True (bool)",
        "test: models.c.input: nan must be a finite number >= 0",
        "test: models.d.provider: expected a provider name, got 3",
        "test: models.e: expected a mapping of prices, got [1, 2]",
    ]


def test_yaml_details(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  a: {input: 1e-3, output: 2.5E+1}\n"  # YAML 1.2 numbers, as JSON reads them
        "  b: {input: 1, output: 1, provider: bedrock}\n"
        "  a: {input: 5e-1, output: 1}\n"
    )
    entries, errors = load_price_file(path)
    assert errors == [f"{path}: a (line 4): written twice; the last one is used"]
    assert entries[(None, "a")].input == Decimal("0.5")
    assert ("aws.bedrock", "b") in entries


def test_request_model_is_the_fallback_and_user_entries_come_first(caplog):
    caplog.set_level(logging.WARNING)
    entries, _ = parse_prices({"models": {"my-deployment": {"input": 1, "output": 2}}}, "f")
    pricing = Pricing(entries)
    usage = Usage(11, 16)
    # the user's entry for the request model wins over genai-prices for the response model
    assert pricing.cost("azure.ai.openai", "gpt-4o-mini", usage, "my-deployment") == 4.3e-05
    # a response model nobody prices: the request model's price
    assert pricing.cost("openai", "acme-proxy-v1", usage, "gpt-3.5-turbo-0125") == 2.95e-05
    assert pricing.cost("openai", "acme-proxy-v1", usage, "acme-request") is None
    assert pricing.cost("openai", "acme-proxy-v1", usage, "acme-request") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'acme-proxy-v1' of provider 'openai'" in warnings[0]


# -- spans and counters ----------------------------------------------------------------


def test_cost_attributes_and_counter(telemetry):
    chat("gpt-3.5-turbo-0125").invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 16
    assert span.attributes[COST] == 2.95e-05
    assert span.attributes["gen_ai.usage.cost.currency"] == "USD"
    assert span.attributes["gen_ai.usage.cost.source"] == "local"
    assert "llm_usage.price.missing" not in span.attributes
    assert telemetry.counter("llm_usage.cost") == 2.95e-05
    assert telemetry.counter("llm_usage.cost", llm_usage__usage__source="reported") == 2.95e-05


def test_unknown_model_has_no_cost_and_warns_once(telemetry, caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        chat("acme-llm-1").invoke("hi")
        chat("acme-llm-2").invoke("hi")
    spans = telemetry.model_spans()
    assert len(spans) == 6
    for span in spans:
        assert span.attributes["llm_usage.price.missing"] is True
        assert span.attributes["gen_ai.usage.input_tokens"] == 11
        assert COST not in span.attributes
        assert "gen_ai.usage.cost.currency" not in span.attributes
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "otel_llm_usage.record.pricing" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 2
    assert "'acme-llm-1' of provider 'openai'" in warnings[0]
    assert "'acme-llm-2' of provider 'openai'" in warnings[1]
    assert telemetry.counter("llm_usage.cost") == 0
    assert telemetry.tokens("input") == 66


def test_langchain_cache_hit_has_no_usage_and_no_cost(telemetry):
    model = FakeChat(cache=InMemoryCache(), **TURBO)
    first = model.invoke("same question")
    second = model.invoke("same question")
    assert second.content == first.content
    miss, hit = telemetry.model_spans()
    assert miss.attributes[COST] == 2.95e-05
    assert "llm_usage.cache_hit" not in miss.attributes
    assert hit.attributes["llm_usage.cache_hit"] is True
    for key in (*USAGE_KEYS, COST, "gen_ai.usage.cost.currency", "llm_usage.price.missing"):
        assert key not in hit.attributes
    assert telemetry.tokens("input") == 11
    assert telemetry.tokens("output") == 16
    assert telemetry.counter("gen_ai.client.token.usage") == 27  # histogram: the first call
    assert telemetry.counter("llm_usage.cost") == 2.95e-05
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="cache") == 1
    assert telemetry.counter("llm_usage.requests", llm_usage__usage__source="reported") == 1


# -- offline ---------------------------------------------------------------------------


def test_genai_prices_makes_no_network_call(telemetry, monkeypatch):
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # the bundled data is loaded afresh, under the patch
    bundled = getattr(data_snapshot, "_bundled_snapshot", None)
    if bundled is not None and hasattr(bundled, "cache_clear"):
        bundled.cache_clear()
    assert builtin_rates("anthropic", "claude-3-5-sonnet-20241022") is not None
    assert Pricing().cost("gcp.gemini", "gemini-1.5-pro", Usage(200_000, 1000)) == 0.51
    assert reference("gpt-4o-mini", "openai", input_tokens=11, output_tokens=16) == 1.125e-05
    chat("gpt-3.5-turbo-0125").invoke("hi")
    (span,) = telemetry.model_spans()
    assert span.attributes[COST] == 2.95e-05
    assert attempts == []


# -- prices by the time of the call ----------------------------------------------------------


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def _reference(model: str, provider: str, usage: Usage, at: float) -> float:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(at, timezone.utc)
    prices_usage = PricesUsage(input_tokens=usage.input, output_tokens=usage.output)
    return float(
        calc_price(
            prices_usage, model, provider_id=provider, genai_request_timestamp=when
        ).total_price
    )


def test_time_of_day_prices_follow_the_clock_through_the_memo():
    """DeepSeek's off-peak price (16:30-00:30 UTC) is half the standard one; the memo keeps
    a price only until its next boundary."""
    now = [_epoch("2026-12-02T12:00:00+00:00")]
    pricing = Pricing(clock=lambda: now[0])
    usage = Usage(1_000_000, 1_000_000)
    peak = pricing.cost("deepseek", "deepseek-chat", usage)
    now[0] = _epoch("2026-12-02T16:29:59+00:00")
    assert pricing.cost("deepseek", "deepseek-chat", usage) == peak
    now[0] = _epoch("2026-12-02T16:30:00+00:00")
    off_peak = pricing.cost("deepseek", "deepseek-chat", usage)
    now[0] = _epoch("2026-12-03T00:30:00+00:00")
    next_morning = pricing.cost("deepseek", "deepseek-chat", usage)
    assert peak == pytest.approx(1.37, rel=1e-12)
    assert off_peak == pytest.approx(0.685, rel=1e-12)
    assert next_morning == peak
    for at, cost in (("2026-12-02T12:00:00+00:00", peak), ("2026-12-02T20:00:00+00:00", off_peak)):
        assert cost == pytest.approx(
            _reference("deepseek-chat", "deepseek", usage, _epoch(at)), rel=1e-12
        )


def _a_start_date_price_change() -> tuple[str, float, float]:
    """An Anthropic model of the installed genai-prices data whose price changes on a
    start date: (model, the second before, the second it starts)."""
    from datetime import datetime, time, timedelta, timezone

    from genai_prices.types import StartDateConstraint

    (anthropic,) = [p for p in data_snapshot.get_snapshot().providers if p.id == "anthropic"]
    usage = Usage(1_000_000, 1_000_000)
    for model in anthropic.models:
        for conditional in model.prices if isinstance(model.prices, list) else ():
            if isinstance(conditional.constraint, StartDateConstraint):
                day = datetime.combine(conditional.constraint.start_date, time(0), timezone.utc)
                before, after = (day - timedelta(seconds=1)).timestamp(), day.timestamp()
                if _reference(model.id, "anthropic", usage, before) != _reference(
                    model.id, "anthropic", usage, after
                ):
                    return model.id, before, after
    raise AssertionError("no start-date price change in genai-prices' Anthropic data")


def test_start_date_prices_change_on_their_day():
    model, before_day, on_the_day = _a_start_date_price_change()
    now = [before_day]
    pricing = Pricing(clock=lambda: now[0])
    usage = Usage(1_000_000, 1_000_000)
    before = pricing.cost("anthropic", model, usage)
    now[0] = on_the_day
    after = pricing.cost("anthropic", model, usage)
    assert before != after
    assert before == pytest.approx(_reference(model, "anthropic", usage, before_day), rel=1e-12)
    assert after == pytest.approx(_reference(model, "anthropic", usage, on_the_day), rel=1e-12)
