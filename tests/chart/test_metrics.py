"""The chart's metrics: a Service per role naming the health port `metrics`, the pods
annotated for annotation-based scraping, and an optional ServiceMonitor (issue 12)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

helm = pytest.importorskip("helm_python")

URL_ONLY = {"database": {"url": "postgresql://agentos:pw@db:5432/agentos"}}
ROLES = {"team-agentos-orchestrator", "team-agentos-worker", "team-agentos-reviewer"}


def _metrics_services(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d
        for d in docs
        if d["kind"] == "Service" and d["metadata"]["labels"].get("agentos.dev/metrics")
    }


def test_by_default_each_role_has_a_metrics_service_and_no_service_monitor(chart: Any) -> None:
    docs = chart.render(URL_ONLY)
    assert chart.by_kind(docs, "ServiceMonitor") == []
    services = _metrics_services(docs)
    assert set(services) == ROLES
    for name, svc in services.items():
        role = name.removeprefix("team-agentos-")
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == role
        assert svc["spec"]["ports"] == [
            {"name": "metrics", "port": 8080, "targetPort": "health", "protocol": "TCP"}
        ]
        for version in ("1.27.0", "1.33.0"):
            kubernetes_validate.validate(chart.strip(svc), version, strict=True)
    # the Service's selector picks exactly its role's pods
    deployments = {d["metadata"]["name"]: d for d in chart.by_kind(docs, "Deployment")}
    for name, svc in services.items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "8080"
        assert annotations["prometheus.io/path"] == "/metrics"
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]


def test_the_service_monitor_scrapes_every_role_service(chart: Any) -> None:
    docs = chart.rendered_set("metrics")
    (sm,) = chart.by_kind(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["name"] == "team-agentos-agents"
    assert sm["metadata"]["namespace"] == chart.NAMESPACE
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [chart.NAMESPACE]}
    assert sm["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    selector = sm["spec"]["selector"]["matchLabels"]
    picked = {
        d["metadata"]["name"]
        for d in chart.by_kind(list(docs), "Service")
        if selector.items() <= d["metadata"]["labels"].items()
    }
    assert picked == ROLES  # the role Services, not the bundled database's or others


def test_a_health_port_change_moves_the_metrics_port(chart: Any) -> None:
    docs = chart.render({**URL_ONLY, "health": {"port": 9100}})
    for svc in _metrics_services(docs).values():
        assert svc["spec"]["ports"][0]["port"] == 9100
    for d in chart.by_kind(docs, "Deployment"):
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == "9100"


def test_metrics_can_be_turned_off(chart: Any) -> None:
    values = {
        **URL_ONLY,
        "metrics": {"enabled": False, "serviceMonitor": {"enabled": True}},
    }
    docs = chart.render(values)
    assert _metrics_services(docs) == {}
    assert chart.by_kind(docs, "ServiceMonitor") == []
    for d in chart.by_kind(docs, "Deployment"):
        assert "prometheus.io/scrape" not in d["spec"]["template"]["metadata"]["annotations"]


def test_bad_metrics_values_are_refused_by_the_schema(chart: Any) -> None:
    for bad in (
        {"metrics": {"serviceMonitor": {"interval": "often"}}},
        {"metrics": {"serviceMonitor": {"enabld": True}}},
        {"metrics": {"enabled": "yes"}},
    ):
        report = helm.lint(str(chart.CHART), {**URL_ONLY, **bad})
        assert any("metrics" in e for e in report["errors"]), (bad, report)
