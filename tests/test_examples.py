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
from typing import Any

import pytest

from otel_llm_usage.record.pricing import builtin_rates

pytestmark = pytest.mark.e2e  # real processes: `pytest -m "not e2e"` leaves them out

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


# --------------------------------------------------------------------------- an agent

# create_agent + the real ChatOpenAI + a search tool; the stand-in answers a request with
# tools by calling the first tool, then quotes the tool's result. gpt-3.5-turbo-0125:
# $0.50 input, $1.50 output per million tokens.
AGENT_WITH_TOOLS = [
    f"client:   {OPENAI_CLIENT}",
    'agent:    create_agent(gpt-3.5-turbo-0125, tools=[search], name="search_agent")',
    "question: Who won the Super Bowl in 2024?",
    "answer:   According to search: The Kansas City Chiefs won Super Bowl LVIII on"
    " February 11, 2024.",
    "The trace (one line per span, children indented):",
    "  [span] handle question",
    "    [span] invoke_agent search_agent provider=openai input=91 (cache_read=0) output=24"
    " cost=$0.00008150 model_calls=2",
    # 31 = system (4 + 5) + question (4 + 7) + the search tool's definition (4 + 1 + 6);
    # 9 = the tool's name + the 8 words of its arguments JSON
    "      [span] chat gpt-3.5-turbo-0125 provider=openai input=31 (cache_read=0) output=9"
    " cost=$0.00002900 finish=tool_calls",
    "      [span] execute_tool search call_id=call_local_1_0",
    # 60 = 31 + the tool call (4 + 9) + the tool's result (4 + 12); 15 = 3 + 12 words
    "      [span] chat gpt-3.5-turbo-0125 provider=openai input=60 (cache_read=0) output=15"
    " cost=$0.00005250 finish=stop",
    "The run's usage, four ways:",
    "  view                            requests  input  output   cost (USD)",
    "  chat spans (sum of 2)                  2     91      24  $0.00008150",
    "  invoke_agent search_agent span         2     91      24  $0.00008150",
    "  track_usage()                          2     91      24  $0.00008150",
    "  llm_usage.* metrics                    2     91      24  $0.00008150",
    "  all four agree: yes",
]


def test_agent_with_tools() -> None:
    rates = builtin_rates("openai", "gpt-3.5-turbo-0125")
    assert rates is not None
    assert (rates.describe()["input"], rates.describe()["output"]) == (0.5, 1.5), (
        "genai-prices changed gpt-3.5-turbo-0125's prices; update the costs above"
    )
    stdout = run_example("agent_with_tools.py")
    assert_lines(stdout, AGENT_WITH_TOOLS)
    # the four views (chat spans, agent span, track_usage(), metrics): one set of numbers
    table = stdout.split("The run's usage, four ways:\n", 1)[1].splitlines()[1:5]
    numbers = {tuple(line.split()[-4:]) for line in table}
    assert numbers == {("2", "91", "24", "$0.00008150")}, table


def test_agent_with_tools_says_it_needs_langchain_openai(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "langchain_openai"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LANGCHAIN_"))}
    env.update(LANGSMITH_TRACING="false", PYTHONPATH=str(shadow.parent))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_with_tools.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "pip install langchain langchain-openai" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# --------------------------------------------------------------------------- FastAPI

SPAN_JOKE = (
    "A span walks into a bar. The bartender says: we do not serve your kind here."
    " The span says: that is fine, I am just passing through."
)
METRIC_JOKE = "Why did the metric break up with the log? It needed more space."

FASTAPI_DEMO = [
    "GET /ask?q=What is a span?",
    f"  200 answer: {SPAN_JOKE}",
    # (4 + 5 words of the system message) + (4 + 4 words of the question)
    "      usage:  1 request, 17 input + 27 output tokens, $0.00001875",
    "GET /ask?q=Why do LLM calls cost money?",
    f"  200 answer: {METRIC_JOKE}",
    "      usage:  1 request, 19 input + 13 output tokens, $0.00001065",
    "GET /ask/stream?q=What is a span?",
    f"  200 text: {SPAN_JOKE}",
    "The traces (one per request, children indented):",
    "  [span] GET /ask kind=SERVER",
    "    [span] chat gpt-4o-mini provider=openai input=17 (cache_read=0) output=27"
    " cost=$0.00001875 finish=stop",
    "  [span] GET /ask kind=SERVER",
    "    [span] chat gpt-4o-mini provider=openai input=19 (cache_read=0) output=13"
    " cost=$0.00001065 finish=stop",
    "  [span] GET /ask/stream kind=SERVER",
    # the same prompt again: cached
    "    [span] chat gpt-4o-mini provider=openai input=17 (cache_read=17) output=27"
    " cost=$0.00001747 stream chunks=31 finish=stop",
]


@pytest.mark.parametrize("client", ["auto", "stdlib"])
def test_fastapi_service_demo(client: str) -> None:
    """The script as a user runs it: uvicorn on a free port, real HTTP requests."""
    stdout = run_example("fastapi_service.py", "--demo", "--client", client)
    expected_client = OPENAI_CLIENT if client == "auto" else STDLIB_CLIENT
    assert_lines(stdout, [f"client:   {expected_client}", *FASTAPI_DEMO])
    assert "serving:  http://127.0.0.1:" in stdout


@pytest.mark.parametrize("client", ["langchain-openai", "stdlib"])
def test_fastapi_service_in_process(telemetry: Any, client: str) -> None:
    """The app in process (FastAPI's TestClient): each request's SERVER span is the
    parent of its chat span, which has the call's exact usage."""
    from fastapi.testclient import TestClient
    from opentelemetry.trace import SpanKind

    sys.path.insert(0, str(EXAMPLES))
    try:
        import fastapi_service
        from _local_provider import LocalProvider, chat_model
    finally:
        sys.path.remove(str(EXAMPLES))

    with LocalProvider() as provider:
        model = chat_model(provider.url, client)
        app = fastapi_service.create_app(model, telemetry.tracer_provider, telemetry.meter_provider)
        with TestClient(app) as http:
            asked = http.get("/ask", params={"q": "What is a span?"})
            streamed = http.get("/ask/stream", params={"q": "Why do LLM calls cost money?"})

    assert asked.status_code == 200
    assert asked.json() == {
        "answer": SPAN_JOKE,
        "usage": {"requests": 1, "input_tokens": 17, "output_tokens": 27, "cost_usd": 1.875e-05},
    }
    assert streamed.status_code == 200
    assert streamed.headers["content-type"] == "text/plain; charset=utf-8"
    assert streamed.text == METRIC_JOKE

    spans = telemetry.spans()
    servers = sorted(
        (s for s in spans if s.kind is SpanKind.SERVER), key=lambda s: s.start_time or 0
    )
    chats = sorted(telemetry.model_spans(), key=lambda s: s.start_time or 0)
    assert [s.name for s in servers] == ["GET /ask", "GET /ask/stream"]
    assert [s.name for s in chats] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert len(spans) == 4, [s.name for s in spans]  # no ASGI send/receive spans
    for server, chat in zip(servers, chats, strict=True):
        assert server.parent is None
        assert server.instrumentation_scope.name == "opentelemetry.instrumentation.fastapi"
        assert chat.parent is not None
        assert chat.parent.span_id == server.context.span_id
        assert chat.context.trace_id == server.context.trace_id
        assert chat.kind is SpanKind.CLIENT
        assert server.start_time <= chat.start_time <= chat.end_time <= server.end_time
    assert servers[0].context.trace_id != servers[1].context.trace_id  # one trace a request

    invoked, stream = (dict(c.attributes) for c in chats)
    for attributes, (input_tokens, output_tokens, cost) in (
        (invoked, (17, 27, 1.875e-05)),  # 17 * $0.15 + 27 * $0.60 per million
        (stream, (19, 13, 1.065e-05)),  # 19 * $0.15 + 13 * $0.60 per million
    ):
        assert attributes["gen_ai.usage.input_tokens"] == input_tokens
        assert attributes["gen_ai.usage.output_tokens"] == output_tokens
        assert attributes["gen_ai.usage.cost.amount"] == pytest.approx(cost, rel=1e-12)
        assert "gen_ai.usage.cache_read.input_tokens" not in attributes
        assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert "gen_ai.request.stream" not in invoked
    assert stream["gen_ai.request.stream"] is True
    assert telemetry.tokens("input") == 17 + 19
    assert telemetry.tokens("output") == 27 + 13


# --------------------------------------------------------------------------- the picture

SCRIPTS = ROOT / "scripts"


def test_the_committed_chart_is_a_rendered_trace() -> None:
    """docs/span-tree.md, drawn by scripts/render_trace.py (tests/test_render_trace.py
    runs it): one bar per span, the agent's sums those of its chat spans."""
    chart = (ROOT / "docs" / "span-tree.md").read_text()
    assert "Drawn by `scripts/render_trace.py`" in chart and "```mermaid\ngantt" in chart
    bars = [line.split(" : ")[0].strip() for line in chart.splitlines() if " : " in line]
    assert bars == [
        "handle question (internal)",
        "invoke_agent search_agent (internal) 91 in / 24 out $0.00008150",
        "chat gpt-3.5-turbo-0125 (client) 31 in / 9 out $0.00002900",
        "execute_tool search (internal)",
        "chat gpt-3.5-turbo-0125 (client) 60 in / 15 out $0.00005250",
    ]


def test_agent_with_tools_exports_to_a_collector() -> None:
    """``--otlp URL`` (what the README's Jaeger section runs): the trace arrives whole."""
    from otlp_receiver import GRPC, OTLPReceiver, integer, string

    with OTLPReceiver() as receiver:
        run_example("agent_with_tools.py", "--otlp", receiver.endpoint(GRPC))
        receiver.wait_for(lambda r: len(r.spans()) >= 5 and bool(r.received("metrics")), 5)
        spans = receiver.spans()
    by_name = {s.name: s for s in spans}
    assert sorted(s.name for s in spans) == [
        "chat gpt-3.5-turbo-0125",
        "chat gpt-3.5-turbo-0125",
        "execute_tool search",
        "handle question",
        "invoke_agent search_agent",
    ]
    app, agent = by_name["handle question"], by_name["invoke_agent search_agent"]
    assert agent.parent_span_id == app.span_id
    assert {s.parent_span_id for s in spans if s not in (app, agent)} == {agent.span_id}
    assert {s.resource["service.name"] for s in spans} == {string("otel-llm-usage-agent-example")}
    assert agent.attributes["llm_usage.agent.input_tokens"] == integer(91)
    assert agent.attributes["llm_usage.agent.output_tokens"] == integer(24)
    assert agent.attributes["llm_usage.agent.cost.amount"].value == pytest.approx(
        8.15e-05, rel=1e-12
    )
