"""Every example runs offline as a user would run it (a subprocess), with exact numbers.

The local stand-in provider counts one token per word (+4 per message) and reports a
repeated prompt as cached, so every token count below is known in advance. Costs are
gpt-4o-mini's built-in genai-prices rates: $0.15 input, $0.075 cached input and $0.60
output per million tokens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_llm_usage.pricing import builtin_rates

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
OPENAI_CLIENT = "langchain_openai.ChatOpenAI"
STDLIB_CLIENT = "LocalChatModel (a standard-library HTTP client)"


def run_example(
    name: str, *args: str, tmp_path: Path | None = None, hide_langchain_openai: bool = False
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGCHAIN_"))}
    env["LANGSMITH_TRACING"] = "false"
    if hide_langchain_openai:
        # A package that fails to import stands for one that is not installed.
        assert tmp_path is not None
        shadow = tmp_path / "shadow" / "langchain_openai"
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env["PYTHONPATH"] = str(shadow.parent)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def assert_lines(stdout: str, expected: list[str]) -> None:
    lines = stdout.splitlines()
    missing = [line for line in expected if line not in lines]
    assert not missing, "missing lines:\n" + "\n".join(missing) + "\n--- stdout:\n" + stdout


@pytest.fixture(autouse=True, scope="module")
def _prices_are_the_expected_ones() -> None:
    rates = builtin_rates("openai", "gpt-4o-mini")
    assert rates is not None
    described = rates.describe()
    assert (described["input"], described["cache_read"], described["output"]) == (
        0.15,
        0.075,
        0.6,
    ), f"genai-prices changed gpt-4o-mini's prices; update the costs in this file: {described}"


QUICKSTART = [
    "provider: local stand-in for the OpenAI chat-completions API on 127.0.0.1",
    "1. invoke",
    "  answer: Why did the metric break up with the log? It needed more space.",
    # 25 = (4 + 11 words of the system message) + (4 + 6 words of the question)
    "  [span] chat gpt-4o-mini provider=openai input=25 (cache_read=0) output=13"
    " cost=$0.00001155 finish=stop",
    "2. stream (the same prompt again: the provider reports it as cached)",
    "  answer: Why did the metric break up with the log? It needed more space.",
    # 17 chunks: 16 streamed (role, 13 words, finish, usage) + LangChain's closing one
    "  [span] chat gpt-4o-mini provider=openai input=25 (cache_read=25) output=13"
    " cost=$0.00000968 stream chunks=17 finish=stop",
    "3. batch inside track_usage() (runs in LangChain's thread pool)",
    "  Explain tracing in one sentence. -> I asked the trace for directions."
    " It gave me the whole call stack.",
    "  What is a metric? -> Observability is like a joke: if you have to explain it,"
    " the dashboard is wrong.",
    "  [span] chat gpt-4o-mini provider=openai input=24 (cache_read=0) output=13"
    " cost=$0.00001140 finish=stop",
    "  [span] chat gpt-4o-mini provider=openai input=23 (cache_read=0) output=15"
    " cost=$0.00001245 finish=stop",
    "  track_usage() totals of the batch:",
    "  requests:     2 ok, 0 failed",
    "  tokens:       75 = 47 prompt (cached 0) + 28 completion",
    "  cost:         $0.00002385",
    "Usage by model (track_usage() around the whole run):",
    "  provider  model        requests  input  cache_read  output   cost (USD)",
    "  openai    gpt-4o-mini         4     97          25      54  $0.00004507",
    "  total                         4     97          25      54  $0.00004507",
    "Metric totals (what a Collector would receive):",
    '  llm_usage.requests{llm_usage.usage.source="reported"} = 4',
    '  llm_usage.tokens{gen_ai.token.type="cache_read"} = 25',
    '  llm_usage.tokens{gen_ai.token.type="input"} = 97',
    '  llm_usage.tokens{gen_ai.token.type="output"} = 54',
    "  llm_usage.cost = 0.00004507 USD",
    "  gen_ai.client.operation.duration: 4 recorded",
    "  gen_ai.client.token.usage: 8 recorded, sum input=97, output=54",
    "  gen_ai.client.operation.time_to_first_chunk: 1 recorded",
    # once per stream (the mean inter-chunk time), not once per chunk
    "  gen_ai.client.operation.time_per_output_chunk: 1 recorded",
]


def test_quickstart_with_langchain_openai() -> None:
    pytest.importorskip("langchain_openai")
    stdout = run_example("quickstart.py")
    assert_lines(stdout, [f"client:   {OPENAI_CLIENT}", *QUICKSTART])


def test_quickstart_with_the_stdlib_client() -> None:
    stdout = run_example("quickstart.py", "--client", "stdlib")
    assert_lines(stdout, [f"client:   {STDLIB_CLIENT}", *QUICKSTART])


def test_quickstart_falls_back_when_langchain_openai_is_not_installed(tmp_path: Path) -> None:
    """What the README's first command runs: `pip install -e .` has no langchain-openai."""
    stdout = run_example("quickstart.py", tmp_path=tmp_path, hide_langchain_openai=True)
    assert_lines(stdout, [f"client:   {STDLIB_CLIENT}", *QUICKSTART])


def test_quickstart_help_says_how_to_reach_a_collector() -> None:
    stdout = run_example("quickstart.py", "--help")
    assert "--otlp URL" in stdout
    assert "http://localhost:4317" in stdout


ASYNC_STREAMING = [
    "3 concurrent astream() calls:",
    "  What is a span?",
    "    -> A span walks into a bar. The bartender says: we do not serve your kind here."
    " The span says: that is fine, I am just passing through.",
    "    this task's track_usage(): 8 prompt + 27 completion tokens, 1 request, $0.00001740",
    "  Name one OpenTelemetry signal besides traces.",
    "    -> Observability is like a joke: if you have to explain it, the dashboard is wrong.",
    "    this task's track_usage(): 10 prompt + 15 completion tokens, 1 request, $0.00001050",
    "  Why should token usage be measured per model call?",
    "    -> Why did the metric break up with the log? It needed more space.",
    "    this task's track_usage(): 13 prompt + 13 completion tokens, 1 request, $0.00000975",
    "Spans (3 of 3 are children of 'answer-questions'):",
    "  [span] chat gpt-4o-mini provider=openai input=8 (cache_read=0) output=27"
    " cost=$0.00001740 stream chunks=31 finish=stop",
    "  [span] chat gpt-4o-mini provider=openai input=10 (cache_read=0) output=15"
    " cost=$0.00001050 stream chunks=19 finish=stop",
    "  [span] chat gpt-4o-mini provider=openai input=13 (cache_read=0) output=13"
    " cost=$0.00000975 stream chunks=17 finish=stop",
    "track_usage() around the gather:",
    "  requests:     3 ok, 0 failed",
    "  tokens:       86 = 31 prompt (cached 0) + 55 completion",
    "  cost:         $0.00003765",
    '  llm_usage.requests{llm_usage.usage.source="reported"} = 3',
    '  llm_usage.tokens{gen_ai.token.type="input"} = 31',
    '  llm_usage.tokens{gen_ai.token.type="output"} = 55',
    "  llm_usage.cost = 0.00003765 USD",
    "  gen_ai.client.operation.duration: 3 recorded",
    "  gen_ai.client.token.usage: 6 recorded, sum input=31, output=55",
    "  gen_ai.client.operation.time_to_first_chunk: 3 recorded",
    "  gen_ai.client.operation.time_per_output_chunk: 3 recorded",
]


@pytest.mark.parametrize("client", ["auto", "stdlib"])
def test_async_streaming(client: str) -> None:
    if client == "auto":
        pytest.importorskip("langchain_openai")
    stdout = run_example("async_streaming.py", "--client", client)
    expected_client = OPENAI_CLIENT if client == "auto" else STDLIB_CLIENT
    assert_lines(stdout, [f"client: {expected_client}", *ASYNC_STREAMING])
    assert "cache_read" not in stdout.split("Metric totals:")[1]  # no repeated prompt


def test_the_readme_code_example_runs(tmp_path: Path) -> None:
    """The README's code block, as written, against the local stand-in for the API."""
    pytest.importorskip("langchain_openai")
    sys.path.insert(0, str(EXAMPLES))
    try:
        from _local_provider import LocalProvider
    finally:
        sys.path.remove(str(EXAMPLES))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("## Use it in code", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGCHAIN_"))}
    with LocalProvider() as provider:
        env.update(
            OPENAI_API_KEY="sk-demo",
            OPENAI_BASE_URL=provider.url,
            NO_PROXY="127.0.0.1,localhost",
            LANGSMITH_TRACING="false",
        )
        result = subprocess.run(
            [sys.executable, str(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    # (4 + 6) + 27 tokens, then (4 + 4) + 13 tokens
    assert "58 0 $0.000027" in lines, result.stdout
    assert "Tokens Used: 58" in lines
    assert "Successful Requests: 2" in lines
    assert '"name": "chat gpt-4o-mini",' in result.stdout
