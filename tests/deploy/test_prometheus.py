"""deploy/prometheus and deploy/grafana use only the metrics and labels the service exports;
`promtool` checks run where Prometheus' tool is installed (Debian: `prometheus`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import yaml
from deployfiles import DEPLOY, ROOT
from prometheus_client.metrics import MetricWrapperBase

from app.metrics import Metrics
from app.monitor import DERIVED


def metric_samples() -> dict[str, set[str]]:
    """Every sample name the service can export -> the label names it carries."""
    samples: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, labels = metric._name, set(metric._labelnames)
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
            "summary": ("", "_sum", "_count", "_created"),
            "info": ("_info",),
        }[str(metric._type)]
        for suffix in suffixes:
            samples[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    for name, (_, labels) in DERIVED.items():  # gauges computed at each scrape
        samples[name] = set(labels)
    return samples


def promql_expressions() -> Iterator[tuple[str, str]]:
    """(where, expression) for every alert rule and dashboard query."""
    for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


_SELECTOR = re.compile(r"\b(seqcast_[a-z0-9_]+)\s*(\{[^}]*\})?")


_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)")


_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def test_alerts_cover_errors_latency_redis_and_model() -> None:
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    exprs = " ".join(r["expr"] for r in rules.values())
    assert 'status=~"5.."' in exprs
    assert "histogram_quantile(0.99" in exprs
    assert re.search(r"seqcast_redis_up\)?\s*==\s*0", exprs)
    assert re.search(r"seqcast_model_ready\)?\s*==\s*0", exprs)
    # Live figures against the training report of the same version, and input drift.
    for live in ("seqcast_live_next_behavior_correct_total", "seqcast_live_log_loss_sum_total",
                 "seqcast_live_auc", "seqcast_input_drift_psi"):
        assert live in exprs
    assert exprs.count("seqcast_model_report") >= 3
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("page", "warn")
        assert rule["annotations"]["summary"]
        assert name in docs, f"docs/deploy.md does not explain {name}"


def test_promql_uses_only_metrics_and_labels_the_service_exports() -> None:
    samples = metric_samples()
    assert "seqcast_http_request_duration_seconds_bucket" in samples
    seen: set[str] = set()
    for where, expr in promql_expressions():
        grouping = {g.strip() for m in _GROUPING.finditer(expr) for g in m.group(1).split(",")}
        names = []
        for match in _SELECTOR.finditer(expr):
            name, selector = match.group(1), match.group(2) or ""
            assert name in samples, f"{where}: {name} is not exported by app/metrics.py"
            used = {label for label, _ in _MATCHER.findall(selector)}
            assert used <= samples[name], f"{where}: {name} has no label {used - samples[name]}"
            names.append(name)
        if names:
            labels = set.union(*(samples[n] for n in names)) | {""}
            assert grouping <= labels, f"{where}: grouping by {grouping - labels}"
        seen.update(names)
    families = {n.rsplit("_bucket", 1)[0] for n in seen}
    for metric in ("seqcast_model_batch_size", "seqcast_redis_duration_seconds",
                   "seqcast_window_length", "seqcast_purchase_probability",
                   "seqcast_events_rejected_total", "seqcast_model_info",
                   "seqcast_live_next_behavior_correct_total", "seqcast_live_log_loss_sum_total",
                   "seqcast_live_auc", "seqcast_live_outcomes_total",
                   "seqcast_live_predictions_recorded_total", "seqcast_input_drift_psi",
                   "seqcast_input_unknown_share", "seqcast_model_report",
                   "seqcast_shadow_predictions_total"):
        assert any(f.startswith(metric) for f in families), f"nothing shows {metric}"


def test_dashboard_is_provisionable() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "seqcast.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_config_and_rules() -> None:
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "config", "prometheus-k8s.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(
            ["promtool", *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
