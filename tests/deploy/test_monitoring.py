"""deploy/monitoring: the dashboard and alert rules read only metrics the backend exports."""

from __future__ import annotations

import json
import re

import yaml  # type: ignore[import-untyped]
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from callcenter import metrics
from callcenter.settings import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "deploy" / "monitoring"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def exported_names(engine: Engine) -> set[str]:
    database = CollectorRegistry()
    database.register(metrics.DatabaseCollector(engine))
    names: set[str] = set()
    for registry in (REGISTRY, database):
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            names.add(family.name)
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
            names.update(sample.name for sample in family.samples)
    return names


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\bsiaga112_[a-z0-9_]+", expr))


def test_every_alert_and_panel_reads_an_exported_metric(engine: Engine) -> None:
    names = exported_names(engine)
    rules = yaml.safe_load((MONITORING / "prometheus-alerts.yml").read_text())
    alerts = {rule["alert"]: rule["expr"] for rule in rules["groups"][0]["rules"]}
    assert {"Siaga112AmiDown", "Siaga112SpoolGrowing", "Siaga112NoCallsDaytime"} <= set(alerts)
    assert "Siaga112AnswerTimeTargetMissed" in alerts
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used: set[str] = set()
    for expr in [*alerts.values(), *exprs]:
        used |= referenced(expr)
    assert used, "no metric referenced"
    assert used - names == set()
    # The AMI-down rule waits 30 s, as the issue asks.
    ami_down = next(r for r in rules["groups"][0]["rules"] if r["alert"] == "Siaga112AmiDown")
    assert ami_down["for"] == "30s"
