"""``otel-llm-usage prices check|show``: run in-process, and once as the installed script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_llm_usage.cli import main
from otel_llm_usage.record.pricing import PRICES_ENV

GOOD = (
    "models:\n"
    "  my-finetune:\n"
    "    provider: openai\n"
    "    input: 3.0\n"
    "    output: 12.0\n"
    "    cache_read: 0.3\n"
    "  gpt-4o-mini: {input: 1, output: 2}\n"
)

GPT_4O_MINI = (
    "gpt-4o-mini (openai): USD per million tokens\n"
    "  input        0.15\n"
    "  output       0.6\n"
    "  cache_read   0.075\n"
    "  cache_write  0.15 (the input rate)\n"
    "  reasoning    0.6 (the output rate)\n"
    "  source       genai-prices:openai/gpt-4o-mini\n"
)


@pytest.fixture(autouse=True)
def _no_price_file_from_the_environment(monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)


def test_check_ok(tmp_path, capsys):
    path = tmp_path / "prices.yaml"
    path.write_text(GOOD)
    other = tmp_path / "prices.json"
    other.write_text('{"models": {"m": {"input": 1, "output": 2}}}')
    assert main(["prices", "check", str(path), str(other)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: 2 model prices OK\n{other}: 1 model price OK\n"
    assert err == ""


def test_check_errors(tmp_path, capsys):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n"
        "  ok: {input: 1, output: 2}\n"
        "  negative: {input: -1, output: 2}\n"
        "  quoted: {input: '3.0', output: 2}\n"
        "  typo: {input: 1, output: 2, ouput: 3}\n"
        "  half: {input: 1}\n"
        "  OK: {input: 1, output: 2}\n"
        "currency: EUR\n"
    )
    assert main(["prices", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}: currency: unknown top-level field",
        f"{path}: models.negative.input: -1 must be a finite number >= 0",
        f"{path}: models.quoted.input: expected a number of USD per million tokens, "
        "got '3.0' (a string)",
        f"{path}: models.typo.ouput: unknown field; did you mean 'output'? (allowed: "
        "cache_read, cache_write, input, output, provider, reasoning)",
        f"{path}: models.half.output: missing (required)",
        f"{path}: models.OK: the same model as models.ok; model names are matched "
        "case-insensitively",
    ]


def test_check_lists_every_problem_of_an_entry(tmp_path, capsys):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "model:\n"
        "  x: {input: 1, output: 2}\n"
        "models:\n"
        "  many: {input: 'x', cached_read: 1, colour: red, provider: 3}\n"
        "  fine: {input: 1, output: 2}\n"
    )
    assert main(["prices", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    allowed = "(allowed: cache_read, cache_write, input, output, provider, reasoning)"
    assert out == ""
    assert err.splitlines() == [
        f"{path}: model: unknown top-level field; did you mean 'models'?",
        f"{path}: models.many.cached_read: unknown field; did you mean 'cache_read'? {allowed}",
        f"{path}: models.many.colour: unknown field {allowed}",
        f"{path}: models.many.output: missing (required)",
        f"{path}: models.many.input: expected a number of USD per million tokens, got 'x' "
        "(a string)",
        f"{path}: models.many.provider: expected a provider name, got 3",
    ]


def test_check_unreadable_and_invalid(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": {"m": {"input": 1,}}}')
    missing = tmp_path / "missing.yaml"
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["prices", "check", str(bad), str(missing), str(good)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{good}: 2 model prices OK\n"
    with pytest.raises(json.JSONDecodeError) as invalid:  # its text differs by Python version
        json.loads(bad.read_text())
    assert err.splitlines() == [
        f"{bad}: not valid JSON: {invalid.value}",
        f"{missing}: cannot read the price file (No such file or directory)",
    ]


def test_show_known(capsys):
    assert main(["prices", "show", "gpt-4o-mini", "--provider", "openai"]) == 0
    out, err = capsys.readouterr()
    assert out == GPT_4O_MINI
    assert err == ""


def test_show_searches_every_provider_when_none_is_given(capsys):
    """Not only OpenAI's list: each provider that prices the model is named, and the
    same rates through several providers are shown once."""
    assert main(["prices", "show", "claude-3-5-sonnet-20241022"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rates = (
        "  input        3\n"
        "  output       15\n"
        "  cache_read   0.3\n"
        "  cache_write  3.75\n"
        "  reasoning    15 (the output rate)\n"
    )
    model = "claude-3-5-sonnet-20241022"
    assert out == (
        f"{model}: no --provider given, searched every provider; priced for anthropic, "
        "azure.ai.openai, azure.ai.inference, aws.bedrock, gcp.vertex_ai, gcp.gemini, "
        "gcp.gen_ai\n"
        f"{model} (anthropic, azure.ai.openai, azure.ai.inference): USD per million tokens\n"
        + rates
        + "  source       genai-prices:anthropic/claude-3-5-sonnet\n"
        f"{model} (aws.bedrock): USD per million tokens\n"
        + rates
        + f"  source       genai-prices:aws/regional.anthropic.{model}-v2:0\n"
        f"{model} (gcp.vertex_ai, gcp.gemini, gcp.gen_ai): USD per million tokens\n"
        + rates
        + "  source       genai-prices:google/claude-3-5-sonnet\n"
    )
    assert main(["prices", "show", "gpt-4o-mini"]) == 0
    out, _ = capsys.readouterr()
    assert out == (
        "gpt-4o-mini: no --provider given, searched every provider; priced for openai, "
        "azure.ai.openai, azure.ai.inference\n"
        + GPT_4O_MINI.replace("(openai)", "(openai, azure.ai.openai, azure.ai.inference)")
    )


def test_show_searches_the_providers_of_the_price_file(tmp_path, capsys):
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  acme-llm-1: {input: 1, output: 2}\n"
        "  acme-llm-2: {provider: vllm, input: 3, output: 4}\n"
    )
    assert main(["prices", "show", "acme-llm-1", "--prices", str(path)]) == 0
    assert main(["prices", "show", "acme-llm-2", "--prices", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[:2] + out.splitlines()[8:10] == [
        "acme-llm-1: no --provider given, searched every provider; priced for any provider",
        "acme-llm-1 (any provider): USD per million tokens",
        "acme-llm-2: no --provider given, searched every provider; priced for vllm",
        "acme-llm-2 (vllm): USD per million tokens",
    ]


def test_show_provider_and_tiers(capsys):
    assert main(["prices", "show", "gemini-1.5-pro", "--provider", "gcp.gemini"]) == 0
    assert main(["prices", "show", "anthropic.claude-v2", "--provider", "bedrock"]) == 0
    out, _ = capsys.readouterr()
    assert out == (
        "gemini-1.5-pro (gcp.gemini): USD per million tokens\n"
        "  input        1.25; 2.5 above 128000 input tokens\n"
        "  output       5; 10 above 128000 input tokens\n"
        "  cache_read   1.25; 2.5 above 128000 input tokens (the input rate)\n"
        "  cache_write  1.25; 2.5 above 128000 input tokens (the input rate)\n"
        "  reasoning    5; 10 above 128000 input tokens (the output rate)\n"
        "  source       genai-prices:google/gemini-1.5-pro\n"
        "anthropic.claude-v2 (aws.bedrock): USD per million tokens\n"
        "  input        8\n"
        "  output       24\n"
        "  cache_read   8 (the input rate)\n"
        "  cache_write  8 (the input rate)\n"
        "  reasoning    24 (the output rate)\n"
        "  source       genai-prices:anthropic/claude-2\n"
    )


def test_show_with_a_price_file(tmp_path, capsys, monkeypatch):
    path = tmp_path / "prices.yaml"
    path.write_text(GOOD)
    assert main(["prices", "show", "my-finetune", "--prices", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == (
        "my-finetune: no --provider given, searched every provider; priced for openai\n"
        "my-finetune (openai): USD per million tokens\n"
        "  input        3\n"
        "  output       12\n"
        "  cache_read   0.3\n"
        "  cache_write  3 (the input rate)\n"
        "  reasoning    12 (the output rate)\n"
        f"  source       {path}\n"
    )
    assert err == ""
    # the environment's file, as the instrumentation reads it; its entry for another
    # provider does not apply
    monkeypatch.setenv(PRICES_ENV, str(path))
    assert main(["prices", "show", "gpt-4o-mini", "--provider", "openai"]) == 0
    assert main(["prices", "show", "my-finetune", "--provider", "anthropic"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[1:3] == ["  input        1", "  output       2"]
    assert err == (
        "otel-llm-usage: no price known for model 'my-finetune' of provider 'anthropic' "
        f"(looked in genai-prices or {path}); its calls get no cost. Add it to a price "
        f"file (--prices, ${PRICES_ENV}).\n"
    )


def test_show_with_a_broken_price_file(tmp_path, capsys):
    """As at runtime: the bad entries are left out (with a warning), the rest applies."""
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  gpt-4o-mini: {input: -1, output: 2}\n")
    show = ["prices", "show", "gpt-4o-mini", "--provider", "openai", "--prices", str(path)]
    assert main(show) == 0
    out, err = capsys.readouterr()
    assert out == GPT_4O_MINI
    assert err == (
        f"warning: {path}: models.gpt-4o-mini.input: -1 must be a finite number >= 0 (left out)\n"
    )


def test_show_unknown(capsys):
    assert main(["prices", "show", "acme-llm-1"]) == 1
    assert main(["prices", "show", "acme-llm-1", "--provider", "openai"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "otel-llm-usage: no price known for model 'acme-llm-1' of any provider "
        "(looked in genai-prices); its calls get no cost. Add it to a price file "
        f"(--prices, ${PRICES_ENV}).\n"
        "otel-llm-usage: no price known for model 'acme-llm-1' of provider 'openai' "
        "(looked in genai-prices); its calls get no cost. Add it to a price file "
        f"(--prices, ${PRICES_ENV}).\n"
    )


def test_no_command_prints_usage(capsys):
    assert main([]) == 2
    assert main(["prices"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: otel-llm-usage [-h] [--version] COMMAND ...\n")
    assert "usage: otel-llm-usage prices [-h] ACTION ...\n" in err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["prices", "show"])
    assert exited.value.code == 2
    assert "the following arguments are required: MODEL" in capsys.readouterr().err


@pytest.mark.e2e
def test_installed_script():
    script = Path(sys.executable).with_name("otel-llm-usage")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "otel_llm_usage.cli"]
    env = {k: v for k, v in os.environ.items() if k != PRICES_ENV}
    result = subprocess.run(
        [*command, "prices", "show", "gpt-4o-mini", "--provider", "openai"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, GPT_4O_MINI, "")


@pytest.mark.e2e
def test_module_entry_point():
    env = {k: v for k, v in os.environ.items() if k != PRICES_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "otel_llm_usage.cli", "prices", "show", "acme-llm-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no price known for model 'acme-llm-1'" in result.stderr
