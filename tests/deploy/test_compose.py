"""docker-compose.yml (and its GPU override) agrees with the code: services and wiring, the
volume the trainer writes and the API reads, required secrets, and the mounted files."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from deployfiles import (
    ARTIFACT_MOUNT,
    DEPLOY,
    EXTRA_ENV,
    K8S,
    ROOT,
    SERVED_ARTIFACT,
    image_requirements,
    serve_defaults,
    settings_env_names,
    the_one,
)

from app.cli import build_parser


def test_compose_services_and_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "api", "prometheus", "grafana", "trainer"} <= set(services)
    port = serve_defaults().port
    redis, api = services["redis"], services["api"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])
    env = api["environment"]
    assert env["SEQCAST_REDIS_URL"] == "redis://redis:6379/0"
    assert set(env) <= settings_env_names() | EXTRA_ENV, set(env) - settings_env_names()
    assert any(p.endswith(f":{port}:{port}") or p == f"{port}:{port}" for p in api["ports"])
    args = build_parser().parse_args(api["command"])
    assert args.port == port and args.host == "0.0.0.0"
    assert str(args.artifact) == SERVED_ARTIFACT == env["SEQCAST_ARTIFACT_DIR"]
    if args.workers > 1:
        multiproc = env["PROMETHEUS_MULTIPROC_DIR"]
        assert any(t.split(":")[0] == multiproc for t in api["tmpfs"]), "fresh dir per start"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["build"]["target"] == "runtime"


def test_compose_trainer_writes_the_volume_the_api_reads(compose: dict[str, Any]) -> None:
    services = compose["services"]
    trainer, api = services["trainer"], services["api"]
    assert trainer["profiles"] == ["train"]
    assert trainer["build"]["target"] == "trainer"
    assert f"artifacts:{ARTIFACT_MOUNT}" in trainer["volumes"]
    assert f"artifacts:{ARTIFACT_MOUNT}:ro" in api["volumes"]
    assert "artifacts" in compose["volumes"]
    train = (DEPLOY / "docker" / "train.sh").read_text()
    assert "artifacts=${SEQCAST_ARTIFACTS:-" + ARTIFACT_MOUNT + "}" in train
    assert '"$publish" "$artifacts" "$version"' in train
    assert '"$artifacts/current"' in (DEPLOY / "docker" / "publish.sh").read_text()
    assert SERVED_ARTIFACT == f"{ARTIFACT_MOUNT}/current"
    for script in ("train.sh", "publish.sh"):
        assert os.access(DEPLOY / "docker" / script, os.X_OK)


def test_compose_secrets_are_required_not_defaulted(compose: dict[str, Any]) -> None:
    env = compose["services"]["api"]["environment"]
    for name in ("SEQCAST_API_KEYS", "SEQCAST_ADMIN_KEY"):
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", env[name]), name
    example = (DEPLOY / "compose.env.example").read_text()
    for variable in re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()):
        assert f"{variable}=" in example, f"{variable} is not documented in the example"


def test_compose_mounts_exist_and_prometheus_scrapes_the_api(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "seqcast-api"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"api:{serve_defaults().port}"]
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()
        mounted = [v for v in services["prometheus"]["volumes"] if v.endswith(rule_file + ":ro")]
        assert mounted, f"{rule_file} is not mounted next to prometheus.yml"
    grafana_mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "seqcast.yml").read_text()
    )["providers"][0]
    assert grafana_mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in services


def test_gpu_override_and_training_job_fit_the_base_files(
    compose: dict[str, Any], k8s: dict[str, dict[str, Any]]
) -> None:
    override = yaml.safe_load((DEPLOY / "compose.gpu.yml").read_text())
    assert set(override["services"]) == {"api"} <= set(compose["services"])
    assert override["services"]["api"]["build"]["args"]["VARIANT"] == "gpu"
    assert "gpu" in image_requirements.VARIANTS
    job = yaml.safe_load((K8S / "jobs" / "train.yaml").read_text())
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == ARTIFACT_MOUNT and not mount.get("readOnly", False)
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    deployment = the_one(k8s, "Deployment")["spec"]["template"]["spec"]
    (served,) = [v for v in deployment["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == served["persistentVolumeClaim"][
        "claimName"]
    assert spec["securityContext"]["runAsUser"] == deployment["securityContext"]["runAsUser"]
    assert container["image"].endswith(":trainer")
    script_vars = set(re.findall(r"\$\{?(SEQCAST_[A-Z_]+)", (DEPLOY / "docker" / "train.sh")
                                 .read_text()))
    assert {e["name"] for e in container["env"]} <= script_vars
    assert set(compose["services"]["trainer"]["environment"]) <= script_vars
