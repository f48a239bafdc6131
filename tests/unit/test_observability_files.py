"""deploy/observability: the dashboard and the alert rules use only metrics the services
expose, the rules file parses, and the scrape config points at the local platform."""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from deploy.local.services import service_ports
from fulfilkit.metrics import PLATFORM, PlatformCollector, PlatformSource, broker_middleware
from fulfilkit.metrics import messaging_gauges as messaging
from stock.app import GAUGES as STOCK_GAUGES
from webhooks.app import GAUGES as WEBHOOK_GAUGES

HERE = Path(__file__).resolve().parents[2] / "deploy" / "observability"
# Series Prometheus makes itself for each target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}
# Aggregations may put their grouping before the parenthesis: `sum by (le) (...)`.
AGGREGATIONS = {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def exposed() -> set[str]:
    """Every sample name the services' registry can produce: the module-level metrics,
    FastStream's (registered by its middleware) and the gauges read when scraped."""
    broker_middleware("drift-check")  # registers FastStream's metrics, as every broker does
    gauges = PlatformCollector()
    gauges.sources = {
        "any": PlatformSource("any", [*messaging("any"), *STOCK_GAUGES, *WEBHOOK_GAUGES])
    }
    names = set(SYNTHETIC)
    for family in [*REGISTRY.collect(), *gauges.describe()]:
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> Iterator[str]:
    """The metric names a PromQL expression selects: identifiers outside label matchers,
    grouping clauses, ranges and strings, that are neither functions nor keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        name, rest = match.group(), expr[match.end() :].lstrip()
        if name in KEYWORDS | AGGREGATIONS | {"Inf", "NaN"} or rest.startswith("("):
            continue
        yield name


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((HERE / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rules() -> list[dict]:
    return [
        r
        for g in yaml.safe_load((HERE / "alert-rules.yml").read_text())["groups"]
        for r in g["rules"]
    ]


def test_the_expression_reader_finds_metric_names_only() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, route) (rate(fulfil_http_request_duration_seconds"
        '_bucket{status=~"5..", route!="x"}[5m]))) / on (service) up{job="fulfil"} > 1e3'
    )
    assert list(metric_names(expr)) == ["fulfil_http_request_duration_seconds_bucket", "up"]


def test_the_dashboard_uses_only_metrics_the_services_expose() -> None:
    names = exposed()
    used = {n for expr in dashboard_exprs() for n in metric_names(expr)}
    assert used and used <= names, sorted(used - names)
    assert {"fulfil_consumer_lag_messages", "fulfil_http_requests_total"} <= used


def test_the_alert_rules_parse_and_use_only_metrics_the_services_expose() -> None:
    names = exposed()
    loaded = rules()
    alerts = {r["alert"] for r in loaded}
    assert {
        "FulfilServiceDown",
        "FulfilConsumerLagGrowing",
        "FulfilInboxDeadLetters",
        "FulfilDeadLetterTopicNotEmpty",
        "FulfilOutboxStuck",
        "FulfilWebhookFailureRatio",
    } <= alerts
    for rule in loaded:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        used = set(metric_names(rule["expr"]))
        assert used and used <= names, (rule["alert"], sorted(used - names))


def test_the_scrape_config_scrapes_every_local_service_and_loads_the_rules() -> None:
    config = yaml.safe_load((HERE / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alert-rules.yml"]
    [job] = config["scrape_configs"]
    assert job["job_name"] == "fulfil" and job["metrics_path"] == "/metrics"
    targets = {entry["labels"]["service"]: entry["targets"] for entry in job["static_configs"]}
    assert targets == {name: [f"127.0.0.1:{port}"] for name, port in service_ports().items()}


def test_the_platform_gauges_are_registered_once() -> None:
    assert PLATFORM in REGISTRY._collector_to_names
