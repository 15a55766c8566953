"""The shipped backend configuration is consistent with itself and with what we emit.

collector-config.yaml: every component a pipeline names is defined, every defined one is
used, the ports are the documented ones. deploy/docker-compose.yaml: the collector
publishes the ports its receivers and Prometheus exporter listen on, Prometheus scrapes
the collector service at that port, Jaeger receives OTLP where the collector sends it,
Grafana's datasource points at the Prometheus service. The Grafana dashboard queries
only metric names and labels the package really produces in Prometheus; the OTel →
Prometheus name translation here is checked against a real Prometheus server in
tests/test_prometheus_e2e.py (which imports it from this module).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fakes import FakeChat
from opentelemetry.sdk.metrics.export import Histogram, Sum

from otel_llm_usage import semconv as sc

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_CONFIG = ROOT / "collector-config.yaml"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "llm-usage.json"

COLLECTOR_SERVICE = "otel-collector"
JAEGER_SERVICE = "jaeger"
PROMETHEUS_SERVICE = "prometheus"
GRAFANA_SERVICE = "grafana"

# ---------------------------------------------------------------------------------------
# OTel → Prometheus names
# ---------------------------------------------------------------------------------------

COUNTER = "counter"
HISTOGRAM = "histogram"

# Every metric the package emits, with the unit and kind recorder.py creates it with
# (test_metric_table_matches_the_sdk checks this table against the SDK).
METRICS: dict[str, tuple[str, str]] = {
    sc.GEN_AI_CLIENT_OPERATION_DURATION: ("s", HISTOGRAM),
    sc.GEN_AI_CLIENT_TOKEN_USAGE: ("{token}", HISTOGRAM),
    sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK: ("s", HISTOGRAM),
    sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK: ("s", HISTOGRAM),
    sc.LLM_USAGE_TOKENS: ("{token}", COUNTER),
    sc.LLM_USAGE_COST: ("USD", COUNTER),
    sc.LLM_USAGE_REQUESTS: ("{request}", COUNTER),
}

# The units the translation spells out (the rest of the UCUM table is unused here);
# any other unit is appended as it is, so "USD" stays "USD".
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "By": "bytes"}

# What opentelemetry-exporter-prometheus serves and a real Prometheus stored, as seen by
# tests/test_prometheus_e2e.py; the collector's prometheus exporter (prometheus/
# otlptranslator, UnderscoreEscapingWithSuffixes) builds the same names.
OBSERVED_NAMES = {
    sc.GEN_AI_CLIENT_OPERATION_DURATION: "gen_ai_client_operation_duration_seconds",
    sc.GEN_AI_CLIENT_TOKEN_USAGE: "gen_ai_client_token_usage",
    sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK: (
        "gen_ai_client_operation_time_to_first_chunk_seconds"
    ),
    sc.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK: (
        "gen_ai_client_operation_time_per_output_chunk_seconds"
    ),
    sc.LLM_USAGE_TOKENS: "llm_usage_tokens_total",
    sc.LLM_USAGE_COST: "llm_usage_cost_USD_total",
    sc.LLM_USAGE_REQUESTS: "llm_usage_requests_total",
}


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-zA-Z0-9:]+", text) if t]


def prometheus_name(name: str) -> str:
    """The Prometheus metric name of one of our metrics (a histogram's base name)."""
    unit, kind = METRICS[name]
    tokens = _tokens(name)
    unit = re.sub(r"\{[^}]*\}", "", unit)  # {token}: an annotation, not a unit
    suffix = "_".join(_tokens(_UNIT_WORDS.get(unit, unit)))
    if suffix and suffix not in tokens:
        tokens.append(suffix)
    if kind == COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    return "_".join(tokens)


def prometheus_series_names(name: str) -> set[str]:
    """The names of the series one of our metrics becomes in Prometheus."""
    base = prometheus_name(name)
    if METRICS[name][1] == HISTOGRAM:
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}


def all_series_names() -> set[str]:
    return {series for name in METRICS for series in prometheus_series_names(name)}


def prometheus_label(attribute: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", attribute)


def known_labels() -> set[str]:
    """Labels our series can carry: every attribute name in semconv, translated, plus
    the ones Prometheus and the exporters add."""
    attributes = {
        value
        for key, value in vars(sc).items()
        if key.isupper() and isinstance(value, str) and "." in value and value not in METRICS
    }
    return {prometheus_label(a) for a in attributes} | {
        "le",
        "job",
        "instance",
        "service_name",
        "otel_scope_name",
        "otel_scope_version",
    }


# ---------------------------------------------------------------------------------------
# PromQL: just enough to find the metric and label names a dashboard query uses
# ---------------------------------------------------------------------------------------

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_IDENTIFIER = re.compile(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors: [5m], [$__rate_interval]
    expr = _MATCHERS.sub("", expr)
    expr = _GROUPING.sub("", expr)
    return {
        m.group(1)
        for m in _IDENTIFIER.finditer(expr)
        if not m.group(2) and m.group(1).lower() not in _KEYWORDS  # (: a function
    }


def promql_label_names(expr: str) -> set[str]:
    expr = _STRING.sub('""', expr)
    labels: set[str] = set()
    for matchers in _MATCHERS.findall(expr):
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in _GROUPING.findall(expr):
        labels |= {label.strip() for label in grouping.split(",") if label.strip()}
    return labels


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> Iterator[dict[str, Any]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))  # collapsed rows

    yield from walk(dashboard()["panels"])


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    queries = [
        (f"panel {panel['title']!r}", target["expr"])
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard()["templating"]["list"]:
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", query)
            assert inner, f"variable {variable['name']}: unexpected query {query!r}"
            queries.append((f"variable {variable['name']!r}", inner.group(1)))
    return queries


# ---------------------------------------------------------------------------------------
# collector-config.yaml
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(COLLECTOR_CONFIG)
    return config


def _host_port(endpoint: str) -> tuple[str, int]:
    parsed = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    assert parsed.hostname and parsed.port, endpoint
    return parsed.hostname, parsed.port


def _exporters_of_type(collector: dict[str, Any], kind: str) -> dict[str, Any]:
    """Exporters whose type (the part of ``type/name`` before the slash) is ``kind``."""
    return {
        name: config or {}
        for name, config in collector["exporters"].items()
        if name.split("/")[0] == kind
    }


def test_every_collector_component_is_defined_and_used(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for section in ("receivers", "processors", "exporters"):
        defined = set(collector.get(section) or {})
        used = {name for pipeline in pipelines.values() for name in pipeline.get(section, [])}
        assert used <= defined, f"{section} used but not defined: {used - defined}"
        assert defined <= used, f"{section} defined but used by no pipeline: {defined - used}"
    extensions = set(collector.get("extensions") or {})
    assert extensions == set(collector["service"].get("extensions") or [])
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] == ["otlp"], name
        # memory_limiter first so it can refuse data before anything else holds it.
        assert pipeline["processors"] == ["memory_limiter", "batch"], name


def test_collector_receives_otlp_on_the_standard_ports(collector: dict[str, Any]) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def test_collector_exporters(collector: dict[str, Any]) -> None:
    pipelines = collector["service"]["pipelines"]
    (trace_exporter,) = pipelines["traces"]["exporters"]
    assert trace_exporter.split("/")[0] == "otlp"
    trace_config = collector["exporters"][trace_exporter]
    assert _host_port(trace_config["endpoint"]) == (JAEGER_SERVICE, 4317)
    assert trace_config["tls"]["insecure"] is True

    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    prometheus = collector["exporters"]["prometheus"]
    assert _host_port(prometheus["endpoint"]) == ("0.0.0.0", 8889)
    assert prometheus["resource_to_telemetry_conversion"]["enabled"] is True
    # Metric names in the dashboard assume the default suffixing.
    assert prometheus.get("add_metric_suffixes", True) is True


def _commented_block(text: str, key: str) -> dict[str, Any]:
    """Uncomment the ``# key:`` block of collector-config.yaml and parse it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"# {key}:")
    indent = lines[start].index("#")
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip().startswith("#   "):
            break
        block.append(line)
    uncommented = "\n".join(line[indent:].replace("# ", "", 1) for line in block)
    parsed: dict[str, Any] = yaml.safe_load(uncommented)
    return parsed[key]


def test_commented_alternatives_are_valid() -> None:
    text = COLLECTOR_CONFIG.read_text()
    tempo = _commented_block(text, "otlp/tempo")
    assert _host_port(tempo["endpoint"]) == ("tempo", 4317)
    assert tempo["tls"]["insecure"] is True
    remote_write = _commented_block(text, "prometheusremotewrite")
    assert remote_write["endpoint"] == f"http://{PROMETHEUS_SERVICE}:9090/api/v1/write"
    assert remote_write["resource_to_telemetry_conversion"]["enabled"] is True
    assert _commented_block(text, "debug") == {"verbosity": "basic"}


# ---------------------------------------------------------------------------------------
# deploy/docker-compose.yaml, prometheus.yml, Grafana provisioning
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose: dict[str, Any] = load_yaml(COMPOSE)
    return compose["services"]  # type: ignore[no-any-return]


def _container_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service publishes (``ports``) or exposes to the network."""
    found: set[int] = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            found.add(int(entry["target"]))
        else:
            found.add(int(str(entry).rsplit(":", 1)[-1].split("/")[0]))
    found |= {int(str(entry).split("/")[0]) for entry in service.get("expose", [])}
    return found


def _published_ports(service: dict[str, Any]) -> set[int]:
    return {
        int(entry["target"]) if isinstance(entry, dict) else int(str(entry).rsplit(":", 1)[-1])
        for entry in service.get("ports", [])
    }


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts of a service: container path → host path (resolved from deploy/)."""
    found: dict[str, Path] = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            source, target = entry["source"], entry["target"]
        else:
            source, target = str(entry).split(":")[:2]
        found[target] = (DEPLOY / source).resolve()
    return found


def _flag(service: dict[str, Any], flag: str) -> str | None:
    command = service.get("command", [])
    command = command.split() if isinstance(command, str) else command
    for argument in command:
        if argument.startswith(f"{flag}="):
            return str(argument.split("=", 1)[1])
    return None


def test_compose_services(services: dict[str, Any]) -> None:
    assert {COLLECTOR_SERVICE, JAEGER_SERVICE, PROMETHEUS_SERVICE, GRAFANA_SERVICE} <= set(services)
    for name, service in services.items():
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name
        for target, source in _mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_collector_service_runs_the_config_and_publishes_its_ports(
    services: dict[str, Any], collector: dict[str, Any]
) -> None:
    service = services[COLLECTOR_SERVICE]
    assert "opentelemetry-collector-contrib" in service["image"]  # has the prometheus exporter
    config_path = _flag(service, "--config")
    assert config_path, "the collector service names its config with --config="
    assert _mounts(service)[config_path] == COLLECTOR_CONFIG
    listening = {
        _host_port(protocol["endpoint"])[1]
        for protocol in collector["receivers"]["otlp"]["protocols"].values()
    } | {_host_port(collector["exporters"]["prometheus"]["endpoint"])[1]}
    assert listening == {4317, 4318, 8889}
    assert listening <= _published_ports(service)


def test_prometheus_scrapes_the_collector_exporter(
    services: dict[str, Any], collector: dict[str, Any]
) -> None:
    service = services[PROMETHEUS_SERVICE]
    assert _mounts(service)[_flag(service, "--config.file") or ""] == PROMETHEUS_CONFIG
    exporter_port = _host_port(collector["exporters"]["prometheus"]["endpoint"])[1]
    config = load_yaml(PROMETHEUS_CONFIG)
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert f"{COLLECTOR_SERVICE}:{exporter_port}" in targets
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == COLLECTOR_SERVICE]
    # job/instance come from service.name/service.instance.id of the application.
    assert job.get("honor_labels") is True


def test_jaeger_receives_where_the_collector_sends(
    services: dict[str, Any], collector: dict[str, Any]
) -> None:
    (trace_exporter,) = collector["service"]["pipelines"]["traces"]["exporters"]
    host, port = _host_port(collector["exporters"][trace_exporter]["endpoint"])
    assert host == JAEGER_SERVICE
    jaeger = services[JAEGER_SERVICE]
    assert "jaeger" in jaeger["image"]
    assert str(jaeger.get("environment", {}).get("COLLECTOR_OTLP_ENABLED", "true")) == "true"
    assert port in _container_ports(jaeger)
    assert JAEGER_SERVICE in services[COLLECTOR_SERVICE].get("depends_on", [])


def _provisioning(service: dict[str, Any]) -> Path:
    mounts = _mounts(service)
    return mounts["/etc/grafana/provisioning"]


def test_grafana_datasource_points_at_prometheus(services: dict[str, Any]) -> None:
    grafana = services[GRAFANA_SERVICE]
    provisioning = _provisioning(grafana)
    datasources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.y*ml"))
        for source in load_yaml(path)["datasources"]
    ]
    (prometheus,) = [d for d in datasources if d["type"] == "prometheus"]
    listen = _flag(services[PROMETHEUS_SERVICE], "--web.listen-address") or "0.0.0.0:9090"
    assert urlsplit(prometheus["url"]).hostname == PROMETHEUS_SERVICE
    assert urlsplit(prometheus["url"]).port == _host_port(listen)[1]
    # The dashboard refers to the datasource by its uid.
    uids = {
        panel_or_target["datasource"]["uid"]
        for panel in dashboard_panels()
        for panel_or_target in [panel, *panel.get("targets", [])]
        if isinstance(panel_or_target.get("datasource"), dict)
    } | {v["datasource"]["uid"] for v in dashboard()["templating"]["list"] if "datasource" in v}
    assert uids == {prometheus["uid"]}


def test_grafana_loads_the_dashboard(services: dict[str, Any]) -> None:
    grafana = services[GRAFANA_SERVICE]
    mounts = _mounts(grafana)
    providers = [
        provider
        for path in sorted((_provisioning(grafana) / "dashboards").glob("*.y*ml"))
        for provider in load_yaml(path)["providers"]
    ]
    (provider,) = providers
    folder = provider["options"]["path"]
    assert mounts[folder] == DASHBOARD.parent
    home = grafana.get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert home == f"{folder}/{DASHBOARD.name}"


# ---------------------------------------------------------------------------------------
# The dashboard
# ---------------------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            assert target["expr"].count("(") == target["expr"].count(")"), panel["title"]
            assert target["expr"].count("{") == target["expr"].count("}"), panel["title"]


def test_dashboard_queries_only_metrics_we_emit() -> None:
    emitted = all_series_names()
    used: set[str] = set()
    for where, expr in dashboard_queries():
        names = promql_metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= emitted, f"{where}: {names - emitted} is not a metric we emit"
        used |= names
    # Every metric has a panel.
    for name in METRICS:
        assert used & prometheus_series_names(name), f"no panel shows {name}"


def test_dashboard_queries_only_labels_we_emit() -> None:
    known = known_labels()
    for where, expr in dashboard_queries():
        labels = promql_label_names(expr)
        assert labels <= known, f"{where}: unknown labels {labels - known}"
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            legend = set(
                re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", target["legendFormat"])
            )
            assert legend <= promql_label_names(target["expr"]), panel["title"]


def _panel_exprs(*needles: str) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        if all(needle in target["expr"] for needle in needles)
    ]


@pytest.mark.parametrize(
    ("metric", "shape"),
    [
        (sc.LLM_USAGE_TOKENS, "rate("),
        (sc.LLM_USAGE_COST, "rate("),
        (sc.GEN_AI_CLIENT_OPERATION_DURATION, "histogram_quantile(0.95,"),
        (sc.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, "histogram_quantile(0.95,"),
    ],
)
def test_dashboard_has_the_main_panels(metric: str, shape: str) -> None:
    series = prometheus_name(metric)
    if METRICS[metric][1] == HISTOGRAM:
        series += "_bucket"
    exprs = _panel_exprs(shape, series)
    assert exprs, f"no {shape} panel over {series}"
    by_model_and_provider = {
        prometheus_label(sc.GEN_AI_REQUEST_MODEL),
        prometheus_label(sc.GEN_AI_PROVIDER_NAME),
    }
    assert any(by_model_and_provider <= promql_label_names(e) for e in exprs), (
        f"{series}: no panel grouped by model and provider"
    )


def test_cost_panel_is_per_hour() -> None:
    assert any("* 3600" in e for e in _panel_exprs("rate(", prometheus_name(sc.LLM_USAGE_COST)))


# ---------------------------------------------------------------------------------------
# The name translation
# ---------------------------------------------------------------------------------------


def test_translation_gives_the_names_prometheus_stored() -> None:
    assert {name: prometheus_name(name) for name in METRICS} == OBSERVED_NAMES


def test_metric_table_matches_the_sdk(telemetry: Any) -> None:
    """METRICS (unit, kind) is what recorder.py really creates, for every metric."""
    FakeChat().invoke("hi")
    "".join(str(chunk.content) for chunk in FakeChat().stream("hi"))
    seen: dict[str, tuple[str, str]] = {}
    data = telemetry.reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != "otel_llm_usage":
                continue
            for metric in scope_metrics.metrics:
                if isinstance(metric.data, Histogram):
                    kind = HISTOGRAM
                else:
                    assert isinstance(metric.data, Sum) and metric.data.is_monotonic
                    kind = COUNTER
                seen[metric.name] = (metric.unit or "", kind)
    assert seen == METRICS


def test_promql_helpers() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(foo_bucket{a=~"$x", '
        'b!="y z"}[$__rate_interval]))) * 3600 + on (c) group_left bar offset 5m'
    )
    assert promql_metric_names(expr) == {"foo_bucket", "bar"}
    assert promql_label_names(expr) == {"le", "gen_ai_request_model", "a", "b", "c"}
