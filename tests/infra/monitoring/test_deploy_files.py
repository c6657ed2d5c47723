"""deploy/: the Prometheus rules mirror the built-in ones, and every metric the rules and the
Grafana dashboard query is one the app really exposes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.infra.monitoring.alerts import RULES, Thresholds
from chainconsult.infra.monitoring.http_metrics import PROBE_ROUTES
from chainconsult.infra.monitoring.traffic import SLOW_ROUTES
from tests.conftest import make_settings
from tests.helpers import serving

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
METRIC = re.compile(r"\bchainconsult_[a-z0-9_]+")
RULE = {rule.name: rule for rule in RULES}


def prometheus_rules() -> list[dict[str, object]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "chainconsult-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_prometheus_rules_match_the_built_in_rules() -> None:
    rules = prometheus_rules()
    by_name = {rule["labels"]["rule"]: rule for rule in rules}  # type: ignore[index]

    assert len(by_name) == len(rules)
    assert set(by_name) == {rule.name for rule in RULES}
    for built_in in RULES:
        labels = by_name[built_in.name]["labels"]
        assert labels["severity"] == built_in.severity.value  # type: ignore[index]


def test_prometheus_traffic_rules_leave_out_the_same_probe_routes() -> None:
    excluded = re.compile(r'route!~"([^"]+)"')
    included = re.compile(r'route=~"([^"]+)"')
    for rule in prometheus_rules():
        name = rule["labels"]["rule"]  # type: ignore[index]
        if name not in {"high_error_rate", "high_latency_p95"}:
            continue
        expr = str(rule["expr"])
        left_out = {frozenset(routes.split("|")) for routes in excluded.findall(expr)}
        only = {frozenset(routes.split("|")) for routes in included.findall(expr)}
        if name == "high_error_rate":
            assert left_out == {PROBE_ROUTES}
            assert only == set()
        else:
            # The password-checking routes are judged apart, on their own budget.
            assert left_out == {PROBE_ROUTES | SLOW_ROUTES}
            assert only == {SLOW_ROUTES}


def test_prometheus_traffic_rules_use_the_built_in_window_budgets_and_hysteresis() -> None:
    by_name = {rule["labels"]["rule"]: rule for rule in prometheus_rules()}  # type: ignore[index]
    t = Thresholds()
    minutes = f"[{t.window_s / 60:.0f}m]"
    for name in ("high_error_rate", "high_latency_p95", "brute_force_spike"):
        ranges = set(re.findall(r"\[\d+[smh]\]", str(by_name[name]["expr"])))
        assert ranges == {minutes}, name
        assert "the last 5 min" in str(by_name[name]["annotations"])
    for name in ("high_error_rate", "high_latency_p95"):
        rule = RULE[name]
        assert by_name[name]["keep_firing_for"] == f"{rule.resolve_after_s / 60:.0f}m"
        assert f'ALERTS{{alertname="{by_name[name]["alert"]}",alertstate="firing"}}' in str(
            by_name[name]["expr"]
        )
    latency = str(by_name["high_latency_p95"]["expr"])
    assert f">= {t.latency_min_requests}" in latency
    for budget in (t.p95_s, t.slow_p95_s):
        assert f"> {budget:g}" in latency
        assert f"> {budget * t.clear_ratio:g}" in latency
    errors = str(by_name["high_error_rate"]["expr"])
    assert f">= {t.min_requests}" in errors
    assert f"> {t.error_rate:g}" in errors
    assert f"> {t.error_rate * t.clear_ratio:g}" in errors


@pytest.fixture
async def trusted_client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, TRUSTED_IPS="127.0.0.1")
    app = create_app(settings)
    async with serving(app) as http:
        yield http


async def test_rules_and_dashboard_query_only_exposed_metrics(
    trusted_client: AsyncClient,
) -> None:
    await trusted_client.get("/api/v2/health")
    exposed = (await trusted_client.get("/metrics")).text
    names = set(METRIC.findall(exposed))

    queried = set()
    for rule in prometheus_rules():
        queried |= set(METRIC.findall(str(rule["expr"])))
    exprs = dashboard_exprs()
    assert len(exprs) >= 25
    for expr in exprs:
        queried |= set(METRIC.findall(expr))

    def exposed_as(name: str) -> bool:
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        return name in names or base in names

    missing = sorted(name for name in queried if not exposed_as(name))
    assert missing == []
