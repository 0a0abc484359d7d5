"""deploy/k8s agrees with the code: every manifest listed, ports, probe routes, selectors, a
locked-down pod and an environment that is valid production settings."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import yaml
from deployfiles import (
    ARTIFACT_MOUNT,
    EXTRA_ENV,
    K8S,
    SERVED_ARTIFACT,
    api_container,
    k8s_objects,
    serve_defaults,
    settings_env_names,
    the_one,
)

from app.cli import build_parser
from app.main import create_app
from app.settings import Settings


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    for name, obj in k8s_objects().items():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == kustomization["namespace"], name


def test_k8s_ports_agree_with_the_cli(k8s: dict[str, dict[str, Any]]) -> None:
    port = serve_defaults().port
    container = api_container(k8s)
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port
    args = build_parser().parse_args(container["args"])
    assert args.port == port and args.host == "0.0.0.0"
    assert str(args.artifact) == SERVED_ARTIFACT
    (service_port,) = the_one(k8s, "Service")["spec"]["ports"]
    target = service_port["targetPort"]
    assert target in (port, container_port["name"])
    template = the_one(k8s, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in (port, container_port["name"])


def test_k8s_probes_hit_routes_the_app_serves(k8s: dict[str, dict[str, Any]]) -> None:
    routes = set(create_app().openapi()["paths"])
    assert {"/v1/events", "/v1/users/{user_id}/prediction"} <= routes
    container = api_container(k8s)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
    annotations = the_one(k8s, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in routes


def test_k8s_selectors_match_the_pods(k8s: dict[str, dict[str, Any]]) -> None:
    deployment = the_one(k8s, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        the_one(k8s, "Service")["spec"]["selector"],
        the_one(k8s, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = the_one(k8s, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa = the_one(k8s, "HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] >= 2 and hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert api_container(k8s)["resources"]["requests"]["cpu"], "the HPA needs a CPU request"


def test_k8s_pod_is_locked_down_and_mounts_what_it_needs(k8s: dict[str, dict[str, Any]]) -> None:
    spec = the_one(k8s, "Deployment")["spec"]["template"]["spec"]
    container = api_container(k8s)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts[ARTIFACT_MOUNT]["readOnly"] is True
    claim = volumes[mounts[ARTIFACT_MOUNT]["name"]]["persistentVolumeClaim"]["claimName"]
    assert f"PersistentVolumeClaim/{claim}" in k8s
    config = the_one(k8s, "ConfigMap")["data"]
    if build_parser().parse_args(container["args"]).workers > 1:
        multiproc = mounts[config["PROMETHEUS_MULTIPROC_DIR"]]
        assert "emptyDir" in volumes[multiproc["name"]], "multiprocess metrics need a fresh dir"


def test_k8s_environment_is_valid_production_settings(
    k8s: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = api_container(k8s)
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(k8s["ConfigMap/" + source["configMapRef"]["name"]]["data"])
        else:
            env.update(k8s["Secret/" + source["secretRef"]["name"]]["stringData"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    unknown = set(env) - settings_env_names() - EXTRA_ENV
    assert not unknown, f"not settings of the service: {unknown}"
    for name in list(os.environ):
        if name.startswith("SEQCAST_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.env == "production" and settings.auth_enabled
    assert str(settings.artifact_dir) == SERVED_ARTIFACT
    assert settings.redis_url is not None


def test_k8s_prometheus_scrapes_the_annotated_pods_as_the_alerted_job(
    k8s: dict[str, dict[str, Any]],
) -> None:
    """deploy/prometheus/prometheus-k8s.yml keeps the pods the Deployment annotates, reads
    their port and path from the annotations, and names the job the alerts watch."""
    prometheus = K8S.parent / "prometheus"
    config = yaml.safe_load((prometheus / "prometheus-k8s.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "seqcast-api"]
    alerts = (prometheus / "alerts.yml").read_text()
    assert 'up{job="seqcast-api"}' in alerts
    assert config["rule_files"] == ["alerts.yml"]
    (sd,) = job["kubernetes_sd_configs"]
    namespace = the_one(k8s, "Deployment")["metadata"]["namespace"]
    assert sd["role"] == "pod" and sd["namespaces"]["names"] == [namespace]
    by_target = {r.get("target_label"): r for r in job["relabel_configs"]}
    keep = next(r for r in job["relabel_configs"] if r.get("action") == "keep")
    annotations = the_one(k8s, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    assert keep["regex"] == annotations["prometheus.io/scrape"]
    assert by_target["__metrics_path__"]["source_labels"] == [
        "__meta_kubernetes_pod_annotation_prometheus_io_path"]
    assert annotations["prometheus.io/path"] in create_app().openapi()["paths"]
    address = by_target["__address__"]
    assert address["source_labels"][1] == "__meta_kubernetes_pod_annotation_prometheus_io_port"
    pod_ip = re.sub(address["regex"], address["replacement"].replace("$", "\\"),
                    "10.0.0.7:9999;" + annotations["prometheus.io/port"])
    assert pod_ip == "10.0.0.7:" + annotations["prometheus.io/port"]
