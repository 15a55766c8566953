"""End to end: our metrics → opentelemetry-exporter-prometheus → a REAL Prometheus server.

tests/apps/metrics_app.py makes INVOKES ``FakeChat().invoke`` and STREAMS
``FakeChat().stream`` calls (each reports usage 11/16, priced 1.125e-05 USD by
genai-prices) and serves its metrics with ``PrometheusMetricReader``. A Prometheus
server scrapes it every second; the test reads the totals back through the Prometheus
HTTP API and checks them exactly, checks the series names against the translation in
test_deploy_config.py, and runs every query of the Grafana dashboard against the stored
data.

The server is the ``prometheus`` binary named by ``$PROMETHEUS_BIN``, else the one that
``bash .ci/run`` unpacks from Debian's package into ``.cache/prometheus/`` (nothing is
installed on the system), else one on PATH. Where none can be had the tests skip and
say so, except under CI (``CI`` set), where a missing Prometheus is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from test_deploy_config import (
    METRICS,
    PROMETHEUS_CONFIG,
    dashboard_queries,
    prometheus_name,
    prometheus_series_names,
    promql_label_names,
)

from otel_llm_usage import semconv as sc

pytestmark = pytest.mark.e2e  # real processes: `pytest -m "not e2e"` leaves them out

APP = Path(__file__).resolve().parent / "apps" / "metrics_app.py"
INVOKES = 10
STREAMS = 3
CALLS = INVOKES + STREAMS  # a stream is a model call too
INPUT_TOKENS, OUTPUT_TOKENS = 11, 16  # FakeChat's default usage
COST_PER_CALL = 1.125e-05  # gpt-4o-mini at genai-prices: 11 * 0.15e-6 + 16 * 0.6e-6
BUDGET = 55.0  # seconds for the whole test: starting Prometheus and the app, every query
BINARY_ENV = "PROMETHEUS_BIN"
# Where .ci/run unpacks Debian's prometheus package (apt-get download + dpkg-deb -x).
CACHED = Path(__file__).resolve().parents[1] / ".cache" / "prometheus" / "usr" / "bin"
FETCH = (
    "run `bash .ci/run` once (it unpacks Debian's prometheus package into "
    f".cache/prometheus/, installing nothing), set {BINARY_ENV} to a prometheus binary, "
    "or put one (https://prometheus.io/download/) on PATH"
)


def missing(what: str) -> None:
    """No Prometheus here: a skip that says how to get one; under CI, a failure."""
    message = f"{what}: this end-to-end test needs a real Prometheus; {FETCH}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def prometheus_binary() -> str:
    for candidate in (os.environ.get(BINARY_ENV), str(CACHED / "prometheus")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("prometheus")
    if found is None:
        missing("no Prometheus server binary")
    assert found is not None
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """End a process we started: politely, then by force."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


@dataclass
class App:
    port: int
    report: dict[str, Any]
    ready_at: float  # time.time() once the app said every call was made


@pytest.fixture
def deadline() -> float:
    """When the test must be over, however slow the machine (teardown aside)."""
    return time.monotonic() + BUDGET


@pytest.fixture
def app_port() -> int:
    return free_port()


@pytest.fixture
def metrics_app(tmp_path: Path, app_port: int, deadline: float) -> Iterator[App]:
    if importlib.util.find_spec("opentelemetry.exporter.prometheus") is None:
        pytest.fail(
            "opentelemetry-exporter-prometheus is missing: install the test extra "
            "(pip install -e '.[test]')",
            pytrace=False,
        )
    port = app_port
    env = dict(
        os.environ,
        METRICS_APP_INVOKES=str(INVOKES),
        METRICS_APP_STREAMS=str(STREAMS),
        METRICS_APP_TIMEOUT=str(int(BUDGET) + 30),  # stdin closing normally ends it
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        OTEL_SDK_DISABLED="false",
    )
    stderr_path = tmp_path / "app.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(APP), str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            text=True,
        )
    try:
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout: IO[str] = process.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        report: dict[str, Any] | None = None
        while report is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (process.poll() is not None and lines.empty()):
                pytest.fail(
                    f"metrics_app never printed READY (exit {process.poll()}):\n"
                    + tail(stderr_path),
                    pytrace=False,
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line.startswith("READY "):
                report = json.loads(line[len("READY ") :])
        yield App(port, report, time.time())
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the app's cue to stop serving
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            stop(process)


@dataclass
class Prometheus:
    url: str
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        """The value of a query that sums to one sample; None while there is none."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])


@pytest.fixture
def prometheus(tmp_path: Path, app_port: int, deadline: float) -> Iterator[Prometheus]:
    """A Prometheus server scraping 127.0.0.1:app_port every second (started first: the
    app is not up yet, which only fails its first scrapes)."""
    binary = prometheus_binary()
    port = free_port()
    log = tmp_path / "prometheus.log"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: metrics_app\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{app_port}']\n"
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}", log)
        ready_by = min(deadline, time.monotonic() + 20)
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"prometheus exited ({process.returncode}):\n{tail(log)}", pytrace=False
                )
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > ready_by:
                pytest.fail(f"prometheus not ready:\n{tail(log)}", pytrace=False)
            time.sleep(0.1)
        yield server
    finally:
        stop(process, timeout=10)


def wait_for(what: str, check: Any, deadline: float, prometheus: Prometheus) -> Any:
    """Poll ``check()`` until it returns something other than None, before ``deadline``."""
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            targets = prometheus.get("/api/v1/targets")
            pytest.fail(
                f"timed out waiting for {what}; targets: {json.dumps(targets)[:2000]}\n"
                + tail(prometheus.log),
                pytrace=False,
            )
        time.sleep(0.25)


def test_prometheus_stores_exact_totals(
    prometheus: Prometheus, metrics_app: App, deadline: float
) -> None:
    assert metrics_app.report["invokes"] == INVOKES
    assert metrics_app.report["streams"] == STREAMS

    tokens = prometheus_name(sc.LLM_USAGE_TOKENS)
    cost = prometheus_name(sc.LLM_USAGE_COST)
    requests = prometheus_name(sc.LLM_USAGE_REQUESTS)
    duration = prometheus_name(sc.GEN_AI_CLIENT_OPERATION_DURATION)
    first_chunk = prometheus_name(sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
    per_chunk = prometheus_name(sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK)
    token_usage = prometheus_name(sc.GEN_AI_CLIENT_TOKEN_USAGE)

    def scraped_after_the_last_call() -> float | None:
        # A scrape's samples carry the time it started: one that started after READY
        # holds every call (the app serves while it makes them, so earlier ones may not).
        last = prometheus.scalar(f'max(timestamp({requests}{{job="metrics_app"}}))')
        return last if last is not None and last >= metrics_app.ready_at else None

    wait_for("a scrape after the last call", scraped_after_the_last_call, deadline, prometheus)

    # Every series name the translation predicts is stored, and no other of ours.
    stored = set(prometheus.get("/api/v1/label/__name__/values"))
    ours = {name for name in stored if name.startswith(("llm_usage_", "gen_ai_"))}
    expected = {series for name in METRICS for series in prometheus_series_names(name)}
    assert ours == expected

    def total(expr: str) -> float:
        value = prometheus.scalar(expr)
        assert value is not None, f"no data for {expr}"
        return value

    assert total(f'sum({tokens}{{gen_ai_token_type="input"}})') == CALLS * INPUT_TOKENS
    assert total(f'sum({tokens}{{gen_ai_token_type="output"}})') == CALLS * OUTPUT_TOKENS
    # FakeChat reports no cache or reasoning tokens: absent, or zero.
    others = f'sum({tokens}{{gen_ai_token_type=~"cache_read|cache_creation|reasoning"}})'
    assert prometheus.scalar(others) in (None, 0)
    assert math.isclose(total(f"sum({cost})"), CALLS * COST_PER_CALL, rel_tol=1e-12)
    assert total(f"sum({requests})") == CALLS
    assert total(f'sum({requests}{{llm_usage_usage_source="reported"}})') == CALLS
    assert total(f"sum({duration}_count)") == CALLS
    assert total(f'sum({duration}_bucket{{le="+Inf"}})') == CALLS
    assert total(f"sum({first_chunk}_count)") == STREAMS
    assert total(f"sum({per_chunk}_count)") == STREAMS
    assert total(f'sum({token_usage}_sum{{gen_ai_token_type="input"}})') == CALLS * INPUT_TOKENS
    assert total(f'sum({token_usage}_sum{{gen_ai_token_type="output"}})') == CALLS * OUTPUT_TOKENS

    # The labels the dashboard groups by are on the series.
    (series,) = prometheus.query(cost)
    labels = series["metric"]
    assert labels["gen_ai_provider_name"] == "openai"
    assert labels["gen_ai_request_model"] == "gpt-4o-mini"
    assert labels["__name__"] == "llm_usage_cost_USD_total"

    # Every dashboard query runs and finds data (rate() needs two samples: wait for them).
    stored_labels = set(prometheus.get("/api/v1/labels"))
    for where, expr in dashboard_queries():
        assert promql_label_names(expr) <= stored_labels, where
        runnable = (
            expr.replace("$__rate_interval", "1m")
            .replace("$__range", "1m")
            .replace("$provider", ".*")
            .replace("$model", ".*")
        )
        assert "$" not in runnable, f"{where}: unknown variable in {expr}"
        wait_for(
            f"{where}: {runnable}",
            lambda q=runnable: prometheus.query(q) or None,
            deadline,
            prometheus,
        )


def test_promtool_accepts_the_deploy_config() -> None:
    """deploy/prometheus.yml is a valid Prometheus configuration (promtool ships with the
    same Debian package as the server)."""
    promtool = str(Path(prometheus_binary()).with_name("promtool"))
    if not os.access(promtool, os.X_OK):
        promtool = shutil.which("promtool") or ""
    if not promtool:
        missing("no promtool beside the prometheus binary or on PATH")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
